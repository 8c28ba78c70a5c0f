"""The files of a channel's message: what a connector's hooks say a message carries, and
fetching them through the connection, each bounded by the attachment limit.

A hook's ``files`` names each file of an entity as a ``ChannelFile``: its name, declared type,
the size the service states, an inline image's content id, and either its bytes (a small part
Gmail gives in the message itself), where to fetch them (``url``: a path under the connector's
base URL, or an absolute URL; the answer is the file, or JSON whose ``base64_field`` holds it
in base64 or base64url), or a ``note`` saying why it is not fetched (an attached Outlook item,
a file kept in SharePoint).

``fetch_files`` downloads them outside any transaction. A file the service says is over the
limit is not downloaded; a download is read to the limit plus one byte at most (JSON answers:
the base64 text of that many bytes), so a file larger than it says is cut there and refused
like one it said was large. What cannot be had is noted, never raised: a file gone (404, 410),
refused (401, 403, another 4xx), or a web page answered in its place (Slack's sign-in page for
a token that may not read files) is ``missing``; a failure that may pass (5xx, 408, 425, 429,
no answer at all) is ``unavailable``, for the caller to retry the message or keep it without
the file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from casedesk.integrations.errors import ResponseTooLarge, UpstreamUnreachable
from casedesk.integrations.runtime import ConnectorClient

JSON_OVERHEAD = 65_536
"""Bytes a JSON answer may hold besides a file's base64 text (its id, name, type, …)."""
INFO_MAX_BYTES = 1_048_576
"""The most of a file's description (``files.info``) read."""
TRANSIENT = frozenset({408, 425, 429})
"""4xx answers that say "try later"."""
GONE = frozenset({404, 410})
ACTION = "download_file"
"""The action name a download's trace record carries."""


@dataclass(frozen=True, slots=True)
class ChannelFile:
    """One file of a message, as a connector's hook describes it."""

    filename: str | None
    content_type: str | None = None
    size: int | None = None
    """The size the service states, when it does; the bytes decide in the end."""
    content_id: str | None = None
    inline: bool = False
    data: bytes | None = None
    """The bytes, when the entity holds them."""
    url: str | None = None
    """Where to GET them: a path under the connector's base URL, or an absolute URL."""
    base64_field: str | None = None
    """The answer is JSON and this field holds the bytes in base64 or base64url."""
    content_id_field: str | None = None
    """A field of that JSON answer that holds the content id (Graph's ``contentId``)."""
    note: str | None = None
    """Set when the file is not fetched at all: why."""
    info_url: str | None = None
    """Where to GET what the message left out (Slack's ``files.info``), a JSON answer..."""
    info_fields: Mapping[str, str] = field(default_factory=dict)
    """...whose dotted paths give this file's fields: ``{"url": "file.url_private_download",
    "size": "file.size", …}``; an answer without the ``url`` names the file as not fetched
    (with the answer's ``error``, as Slack's ``file_not_found``)."""

    @property
    def name(self) -> str:
        return self.filename or "attachment"


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A file's bytes, or only its size when it was over the limit (nothing kept)."""

    file: ChannelFile
    content: bytes
    content_id: str | None
    over_limit_size: int | None = None
    """The size it has at least, when it was not read: over the limit."""


@dataclass(frozen=True, slots=True)
class UnfetchedFile:
    filename: str
    note: str


@dataclass
class FetchedFiles:
    files: list[FetchedFile] = field(default_factory=list)
    missing: list[UnfetchedFile] = field(default_factory=list)
    """Files that cannot be had: gone, refused, not fetched by design."""
    unavailable: list[UnfetchedFile] = field(default_factory=list)
    """Files whose download failed in a way that may pass (5xx, no answer)."""


def b64decode(text: str) -> bytes:
    """Base64 or base64url, with or without padding (Gmail writes base64url, Graph base64)."""
    cleaned = "".join(text.split()).replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))


def _answer_cap(file: ChannelFile, max_bytes: int) -> int:
    if file.base64_field is None:
        return max_bytes + 1
    return 4 * ((max_bytes + 1 + 2) // 3) + JSON_OVERHEAD


async def fetch_files(
    client: ConnectorClient,
    files: Sequence[ChannelFile],
    max_bytes: int,
    *,
    execution_id: str | None = None,
    traceparent: str | None = None,
) -> FetchedFiles:
    """Each file's bytes (or why there are none), at most ``max_bytes`` + 1 of each read."""
    fetched = FetchedFiles()
    for described in files:
        file: ChannelFile | None = described
        if described.info_url is not None and described.note is None:
            file = await _looked_up(client, described, fetched, execution_id, traceparent)
        if file is None:
            continue
        if file.note is not None:
            fetched.missing.append(UnfetchedFile(file.name, file.note))
        elif file.data is not None:
            fetched.files.append(FetchedFile(file, file.data, file.content_id))
        elif file.size is not None and file.size > max_bytes:
            fetched.files.append(FetchedFile(file, b"", file.content_id, file.size))
        elif file.url is None:
            fetched.missing.append(UnfetchedFile(file.name, "the service gave no way to fetch it"))
        else:
            await _download(client, file, max_bytes, fetched, execution_id, traceparent)
    return fetched


async def _looked_up(
    client: ConnectorClient,
    file: ChannelFile,
    fetched: FetchedFiles,
    execution_id: str | None,
    traceparent: str | None,
) -> ChannelFile | None:
    """The file with what its ``info_url`` tells; None when that cannot be had (noted)."""
    assert file.info_url is not None
    try:
        answer = await _get(
            client, file, file.info_url, INFO_MAX_BYTES, fetched, execution_id, traceparent
        )
    except ResponseTooLarge:
        fetched.missing.append(UnfetchedFile(file.name, "not fetched: its description is too long"))
        return None
    if answer is None:
        return None
    try:
        document = answer.json()
    except ValueError:
        document = None
    found = {name: _at(document, path) for name, path in file.info_fields.items()}
    if not isinstance(found.get("url"), str):
        error = _at(document, "error")
        note = f"not fetched: {error}" if isinstance(error, str) else "not fetched: no address"
        fetched.missing.append(UnfetchedFile(file.name, note))
        return None
    given: dict[str, Any] = {"url": found["url"], "info_url": None}
    for name in ("filename", "content_type"):
        if isinstance(found.get(name), str) and getattr(file, name) is None:
            given[name] = found[name]
    if isinstance(found.get("size"), int):
        given["size"] = found["size"]
    return replace(file, **given)


def _at(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


async def _get(
    client: ConnectorClient,
    file: ChannelFile,
    url: str,
    cap: int,
    fetched: FetchedFiles,
    execution_id: str | None,
    traceparent: str | None,
) -> httpx.Response | None:
    """A 2xx answer; None when there is none (the file noted as missing or unavailable).
    Raises ``ResponseTooLarge``."""
    try:
        response = await client.download(
            url, max_bytes=cap, action=ACTION, execution_id=execution_id, traceparent=traceparent
        )
    except UpstreamUnreachable as failed:
        fetched.unavailable.append(UnfetchedFile(file.name, f"not fetched: {failed}"))
        return None
    status = response.status_code
    if status >= 500 or status in TRANSIENT:
        note = f"not fetched: the service answered {status}"
        fetched.unavailable.append(UnfetchedFile(file.name, note))
        return None
    if status in GONE:
        fetched.missing.append(UnfetchedFile(file.name, f"gone at the source ({status})"))
        return None
    if status >= 300:
        note = f"not fetched: the service answered {status}"
        fetched.missing.append(UnfetchedFile(file.name, note))
        return None
    return response


async def _download(
    client: ConnectorClient,
    file: ChannelFile,
    max_bytes: int,
    fetched: FetchedFiles,
    execution_id: str | None,
    traceparent: str | None,
) -> None:
    assert file.url is not None
    cap = _answer_cap(file, max_bytes)
    try:
        response = await _get(client, file, file.url, cap, fetched, execution_id, traceparent)
    except ResponseTooLarge:
        size = max(file.size or 0, max_bytes + 1)
        fetched.files.append(FetchedFile(file, b"", file.content_id, size))
        return
    if response is not None:
        _take(file, response, max_bytes, fetched)


def _take(
    file: ChannelFile, response: httpx.Response, max_bytes: int, fetched: FetchedFiles
) -> None:
    answered = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if file.base64_field is None:
        if answered == "text/html" and (file.content_type or "").lower() != "text/html":
            note = "not fetched: the service answered a web page (a sign-in page?) for it"
            fetched.missing.append(UnfetchedFile(file.name, note))
            return
        fetched.files.append(FetchedFile(file, response.content, file.content_id))
        return
    try:
        document = response.json()
        content = b64decode(str(document[file.base64_field]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        note = f"not fetched: the answer holds no {file.base64_field}"
        fetched.missing.append(UnfetchedFile(file.name, note))
        return
    content_id = file.content_id
    if file.content_id_field and isinstance(document.get(file.content_id_field), str):
        content_id = document[file.content_id_field].strip("<>") or content_id
    if len(content) > max_bytes:
        fetched.files.append(FetchedFile(file, b"", content_id, len(content)))
        return
    fetched.files.append(FetchedFile(file, content, content_id))
