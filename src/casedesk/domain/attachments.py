"""Rules of attachments: what a file is (sniffed from its bytes, never taken from the
sender), what it is called (a plain name, no path), and how much a tenant may keep."""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

import filetype  # type: ignore[import-untyped]

SNIFF_BYTES = 8192
"""How much of the start of a file sniffing looks at."""
INLINE_SAFE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""The types a browser may show in a page: images that run nothing (SVG may, so it is not)."""
OCTET_STREAM = "application/octet-stream"
MAX_FILENAME_BYTES = 255
FALLBACK_FILENAME = "attachment"

_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<title",
    b"<style",
    b"<div",
    b"<table",
    b"<a ",
    b"<p>",
    b"<!--",
)
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def sniff_content_type(head: bytes) -> str:
    """The type of a file from its first bytes: a known binary signature, else markup
    (HTML, SVG, XML), else text when it reads as UTF-8, else ``application/octet-stream``."""
    found = filetype.guess_mime(head) if head else None
    if found:
        return str(found)
    return _markup_or_text(head)


def _markup_or_text(head: bytes) -> str:
    start = head.removeprefix(codecs.BOM_UTF8).lstrip().lower()
    if start.startswith(_HTML_STARTS):
        return "text/html"
    if start.startswith(b"<svg") or (start.startswith(b"<?xml") and b"<svg" in start):
        return "image/svg+xml"
    if start.startswith(b"<?xml"):
        return "application/xml"
    if head.startswith(_BOMS[1:]) or b"\x00" in head:
        return OCTET_STREAM
    try:
        # Incremental: the sniffed head may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return OCTET_STREAM
    return "text/plain"


def inline_safe(content_type: str) -> bool:
    return content_type in INLINE_SAFE_TYPES


def sanitise_filename(name: str | None) -> str:
    """A file name fit to store and to send back: its last path segment, without control
    or formatting characters (no right-to-left override making ``exe.txt`` of ``txt.exe``),
    no leading dots, at most 255 UTF-8 bytes with its extension kept."""
    text = unicodedata.normalize("NFC", name or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    text = " ".join(text.split()).lstrip(". ").rstrip(" ")
    if not text:
        return FALLBACK_FILENAME
    return _shortened(text)


def _shortened(text: str) -> str:
    if len(text.encode()) <= MAX_FILENAME_BYTES:
        return text
    stem, dot, extension = text.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = text, ""
    suffix = f".{extension}" if extension else ""
    room = MAX_FILENAME_BYTES - len(suffix.encode())
    return stem.encode()[:room].decode(errors="ignore").rstrip() + suffix


class Refusal(StrEnum):
    TOO_LARGE = "too_large"
    OVER_QUOTA = "over_quota"


@dataclass(frozen=True, slots=True)
class AttachmentLimits:
    max_bytes: int
    """The largest one file may be."""
    quota_bytes: int
    """The most a tenant's attachments may add up to; 0: no quota."""

    def refusal(self, size: int, used: int) -> Refusal | None:
        """Why a file of ``size`` bytes may not join the ``used`` bytes, if it may not."""
        if size > self.max_bytes:
            return Refusal.TOO_LARGE
        if self.quota_bytes and used + size > self.quota_bytes:
            return Refusal.OVER_QUOTA
        return None

    def describe(self, refusal: Refusal, filename: str, size: int, used: int) -> str:
        if refusal is Refusal.TOO_LARGE:
            return (
                f"{filename} has {_size(size)}; an attachment may have at most "
                f"{_size(self.max_bytes)}"
            )
        return (
            f"{filename} has {_size(size)}; with the {_size(used)} of attachments kept "
            f"already, that is more than the quota of {_size(self.quota_bytes)}"
        )

    def limit_of(self, refusal: Refusal) -> int:
        return self.max_bytes if refusal is Refusal.TOO_LARGE else self.quota_bytes

    def for_tenant(self, max_bytes: int | None, quota_bytes: int | None) -> AttachmentLimits:
        """A tenant's own limits where it has them: its file size up to the deployment's
        (which bounds every upload's body), its quota in place of the deployment's."""
        return AttachmentLimits(
            self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes),
            self.quota_bytes if quota_bytes is None else quota_bytes,
        )


def _size(count: int) -> str:
    """Bytes as people read them, exact: ``31,457,289 bytes (30.0 MiB)``."""
    if count < 1024:
        return f"{count:,} bytes"
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            shown = f"{count / scale:.1f}".removesuffix(".0")
            return f"{count:,} bytes ({shown} {unit})"
    return f"{count:,} bytes"  # pragma: no cover - the loop always answers


def download_headers(content_type: str, filename: str, sha256: str, size: int) -> dict[str, str]:
    """The headers a download is served with, wherever it is served: the type is the
    sniffed one and the browser may not guess another; only the inline-safe images are shown
    in place, everything else is saved; and the page the browser would make of the file runs
    in a sandbox, without scripts or this origin's cookies."""
    disposition = "inline" if inline_safe(content_type) else "attachment"
    return {
        "Content-Type": content_type,
        "Content-Length": str(size),
        "Content-Disposition": f"{disposition}; {content_disposition_names(filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "ETag": f'"{sha256}"',
        "Cache-Control": "private, max-age=0, must-revalidate",
        "Accept-Ranges": "bytes",
    }


def content_disposition_names(filename: str) -> str:
    """``filename="ascii"; filename*=UTF-8''percent-encoded`` (RFC 6266, RFC 8187)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in filename)
    return f"filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class RangeNotSatisfiable(Exception):
    """A ``Range`` that starts beyond the file."""


_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a ``Range: bytes=a-b`` header asks for (``a-``, ``-n``
    suffixes included); None for no header, several ranges or a malformed one (the whole
    file is sent); ``RangeNotSatisfiable`` for one that starts beyond the file."""
    found = _RANGE.match((header or "").strip())
    if found is None or found[1] == found[2] == "":
        return None
    first, last = found[1], found[2]
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiable(header)
    if end < start:
        return None
    return start, end
