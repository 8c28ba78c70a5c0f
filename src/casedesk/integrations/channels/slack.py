"""The hooks of the Slack connector: an Events API delivery as a channel message, and an
agent's reply as the input of ``chat.postMessage``.

The item is the delivery's body, Slack's ``event_callback`` envelope (``event``, ``event_id``,
``api_app_id``, ``authorizations``), with the file ``files.info`` fetched joined as ``file``
for a ``file_shared`` event. A message is known by ``channel:ts`` and its thread by
``channel:thread_ts`` (a root message is its own thread: ``channel:ts``), so a reply in a
thread finds the case its root opened, and the ``app_mention`` and ``message`` events of one
message are one message. What is not a person writing (joins, topic changes, other bots'
posts, a reply count changing) comes back as ``kind: ignored`` with a note; the bot's own
posts as ``own``.

Its files: each of a message's ``files`` (or the ``file`` of a ``file_shared`` event) is
downloaded from its ``url_private_download`` with the bot token (Slack answers the file only
to a token that may read it, and a sign-in page otherwise); a file the event names only by id
(``file_access: check_file_info``) is looked up with ``files.info`` first. A deleted file
(``mode: tombstone``), one that is gone (``file_not_found``, a 404) and a file kept outside
Slack (``is_external``: Google Drive, Dropbox) are named in the case's history as not fetched.

Slack writes text in mrkdwn: ``<@U123>`` mentions, ``<#C123|general>`` channels,
``<https://x|label>`` links, ``<!here>``, and ``&amp;``, ``&lt;``, ``&gt;`` for the three
characters it escapes. The case reads them as plain text; a reply is escaped the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from casedesk.integrations.channel_files import ChannelFile
from casedesk.integrations.connector_hooks import ManifestHooks

MAX_TEXT = 40_000
"""Slack truncates a message's text beyond this many characters."""
PERSON_WRITING = frozenset({None, "thread_broadcast", "file_share", "me_message"})
"""Message subtypes that are a person writing (a reply also sent to the channel, a message
with files, a ``/me``); every other subtype is something that happened in the channel."""
_TOKEN = re.compile(r"<([^<>\n]*)>")
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}

Builder = Callable[["_Delivery"], dict[str, Any]]


def _unescape(text: str) -> str:
    for entity, character in _ENTITIES:
        text = text.replace(entity, character)
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _token(inner: str) -> str:
    """One ``<…>`` of mrkdwn as text."""
    target, _, label = inner.partition("|")
    label = _unescape(label)
    if target.startswith("@"):  # a user: <@U123> or <@U123|ann>
        return f"@{label or target[1:]}"
    if target.startswith("#"):  # a channel: <#C123|general>
        return f"#{label or target[1:]}"
    if target.startswith("!"):  # <!here>, <!subteam^S1|@team>, <!date^…|fallback>
        command = target[1:].split("^", 1)[0]
        return label or _SPECIAL.get(command, f"@{command}")
    url = _unescape(target)
    if url.startswith("mailto:"):
        return label or url.removeprefix("mailto:")
    if not label or label == url or url.endswith("//" + label):
        return url
    return f"{label} ({url})"


def readable(mrkdwn: str) -> str:
    """Slack's mrkdwn as plain text: mentions, channels and links written out, the escaped
    characters back as they were typed."""
    parts, at = [], 0
    for found in _TOKEN.finditer(mrkdwn):
        parts.append(_unescape(mrkdwn[at : found.start()]))
        parts.append(_token(found.group(1)))
        at = found.end()
    parts.append(_unescape(mrkdwn[at:]))
    return "".join(parts)


def _sent_at(ts: Any) -> str | None:
    try:
        return datetime.fromtimestamp(float(ts), UTC).isoformat()
    except (TypeError, ValueError, OverflowError):
        return None


def _files_text(files: Any) -> list[str]:
    lines = []
    for file in files if isinstance(files, list) else []:
        if not isinstance(file, Mapping):
            continue
        name = file.get("title") or file.get("name") or file.get("id") or "a file"
        link = file.get("permalink") or file.get("url_private")
        lines.append(f"[file: {name}]" + (f" {link}" if link else ""))
    return lines


INFO_FIELDS = {
    "url": "file.url_private_download",
    "filename": "file.name",
    "content_type": "file.mimetype",
    "size": "file.size",
}
"""Where ``files.info``'s answer tells what a message left out of a file."""


def file_of(file: Mapping[str, Any]) -> ChannelFile:
    """One of a message's files, as the download needs it."""
    size = file.get("size")
    described = ChannelFile(
        filename=str(file.get("name") or file.get("title") or "") or None,
        content_type=str(file.get("mimetype") or "") or None,
        size=size if isinstance(size, int) else None,
    )
    name = described.name if described.filename else str(file.get("id") or "a file")
    if file.get("mode") == "tombstone" or file.get("is_deleted"):
        return ChannelFile(filename=name, note="deleted in Slack before it was fetched")
    if file.get("is_external") or file.get("mode") == "external":
        return ChannelFile(filename=name, note="a file kept outside Slack is not fetched")
    url = file.get("url_private_download") or file.get("url_private")
    if isinstance(url, str) and url and file.get("file_access") != "check_file_info":
        return ChannelFile(described.filename, described.content_type, described.size, url=url)
    if not file.get("id"):
        return ChannelFile(filename=name, note="a file without an id or an address")
    return ChannelFile(
        described.filename,
        described.content_type,
        described.size,
        info_url=f"/files.info?file={file['id']}",
        info_fields=INFO_FIELDS,
    )


class _Delivery:
    """One ``event_callback`` as the hooks read it, with the connection's settings."""

    def __init__(self, body: Mapping[str, Any], settings: Mapping[str, Any]) -> None:
        self.body = body
        event = body.get("event")
        self.event: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
        self.settings = settings
        bots = {str(a.get("user_id")) for a in _list(body.get("authorizations")) if a.get("is_bot")}
        if settings.get("bot_user_id"):
            bots.add(str(settings["bot_user_id"]))
        self.bot_users = frozenset(bots)

    @property
    def channel(self) -> str:
        return str(self.event.get("channel") or self.event.get("channel_id") or "")

    def connected(self) -> bool:
        channels = self.settings.get("channels") or []
        return not channels or self.channel in channels

    def own(self, message: Mapping[str, Any]) -> bool:
        """Posted by this connection's bot: its user, its bot id, or the app the delivery is for."""
        if message.get("user") in self.bot_users:
            return True
        bot_id = message.get("bot_id")
        if not bot_id:
            return False
        if bot_id == self.settings.get("bot_id"):
            return True
        profile = message.get("bot_profile")
        app_id = message.get("app_id") or (
            profile.get("app_id") if isinstance(profile, Mapping) else None
        )
        return app_id is not None and app_id == self.body.get("api_app_id")

    def text(self, message: Mapping[str, Any]) -> str:
        raw = str(message.get("text") or "")
        for bot in self.bot_users:  # "@bot my printer…" addresses casedesk: keep what is said
            raw = re.sub(rf"^\s*<@{re.escape(bot)}(\|[^>]*)?>[\s:,]*", "", raw)
        text = readable(raw).strip()
        lines = [text] if text else []
        return "\n".join(lines + _files_text(message.get("files")))

    def message(self, message: Mapping[str, Any], kind: str = "message") -> dict[str, Any]:
        """A message of the channel (an event, or the ``message`` of a ``message_changed``)."""
        ts = str(message.get("ts") or "")
        thread_ts = str(message.get("thread_ts") or ts)
        profile = message.get("user_profile")
        name = None
        if isinstance(profile, Mapping):
            name = profile.get("real_name") or profile.get("display_name") or None
        return {
            "kind": kind,
            "id": f"{self.channel}:{ts}",
            "thread_id": f"{self.channel}:{thread_ts}",
            "text": self.text(message),
            "sender": {"id": message.get("user") or message.get("bot_id"), "name": name},
            "own": self.own(message),
            "sent_at": _sent_at(ts),
            "reply": {"channel": self.channel, "thread_ts": thread_ts},
        }

    def ignored(self, note: str) -> dict[str, Any]:
        ts = self.event.get("ts") or self.event.get("event_ts") or self.body.get("event_id")
        return {"kind": "ignored", "id": f"{self.channel or '-'}:{ts or '-'}", "note": note}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _posted(delivery: _Delivery) -> dict[str, Any]:
    event = delivery.event
    subtype = event.get("subtype")
    if subtype not in PERSON_WRITING and subtype != "bot_message":
        return delivery.ignored(f"a {subtype} event is not a person writing")
    if delivery.own(event):
        return delivery.message(event)
    if subtype == "bot_message" or event.get("bot_id"):
        return delivery.ignored("a message of another bot or app")
    if not event.get("user") or not event.get("ts"):
        return delivery.ignored("a message without an author or a ts")
    return delivery.message(event)


def _changed(delivery: _Delivery) -> dict[str, Any]:
    event = delivery.event
    current = event.get("message")
    before = event.get("previous_message")
    if not isinstance(current, Mapping) or not current.get("ts"):
        return delivery.ignored("a message_changed event without the message")
    previous = before if isinstance(before, Mapping) else {}
    if current.get("text") == previous.get("text") and current.get("files") == previous.get(
        "files"
    ):
        return delivery.ignored("the text did not change (a reply count, an unfurl)")
    if not delivery.own(current) and (current.get("bot_id") or current.get("subtype")):
        return delivery.ignored("an edit of a message that is not a person's")
    return delivery.message(current, "edit") | {"sent_at": _sent_at(event.get("ts"))}


def _deleted(delivery: _Delivery) -> dict[str, Any]:
    event = delivery.event
    ts = event.get("deleted_ts")
    if not ts:
        return delivery.ignored("a message_deleted event without deleted_ts")
    before = event.get("previous_message")
    previous = before if isinstance(before, Mapping) else {}
    thread_ts = previous.get("thread_ts") or ts
    return {
        "kind": "delete",
        "id": f"{delivery.channel}:{ts}",
        "thread_id": f"{delivery.channel}:{thread_ts}",
        "sender": {"id": previous.get("user")},
        "own": delivery.own(previous),
        "sent_at": _sent_at(event.get("ts")),
        "reply": {"channel": delivery.channel, "thread_ts": thread_ts},
    }


_MESSAGE_SUBTYPES: dict[str | None, Builder] = {
    "message_changed": _changed,
    "message_deleted": _deleted,
}


def _message_event(delivery: _Delivery) -> dict[str, Any]:
    if not delivery.connected():
        return delivery.ignored(f"channel {delivery.channel} is not connected")
    subtype = delivery.event.get("subtype")
    return _MESSAGE_SUBTYPES.get(subtype, _posted)(delivery)


def _file_shared(delivery: _Delivery) -> dict[str, Any]:
    """A file shared in a channel: the event names it, ``files.info`` (joined as ``file``)
    tells what it is and the message (``shares``) that shared it, whose id it takes."""
    if not delivery.connected():
        return delivery.ignored(f"channel {delivery.channel} is not connected")
    event, channel = delivery.event, delivery.channel
    file = delivery.body.get("file")
    if not isinstance(file, Mapping):
        return delivery.ignored("a file_shared event whose file was not fetched")
    user = event.get("user_id") or file.get("user")
    if user in delivery.bot_users:
        return delivery.ignored("a file the bot shared")
    share: Mapping[str, Any] = {}
    shares = file.get("shares")
    for visibility in ("public", "private"):
        found = _list((shares or {}).get(visibility, {}).get(channel) if shares else None)
        if found:
            share = found[0]
            break
    ts = str(share.get("ts") or event.get("event_ts") or "")
    thread_ts = str(share.get("thread_ts") or ts)
    return {
        "kind": "message",
        "id": f"{channel}:{ts}",
        "thread_id": f"{channel}:{thread_ts}",
        "text": "\n".join(_files_text([file])),
        "sender": {"id": user},
        "sent_at": _sent_at(ts),
        "reply": {"channel": channel, "thread_ts": thread_ts},
    }


def _mention(delivery: _Delivery) -> dict[str, Any]:
    """Someone addressed the bot: a person writing, in whichever channel the bot is in."""
    event = delivery.event
    if delivery.own(event) or not event.get("user") or not event.get("ts"):
        return delivery.ignored("a mention not written by a person")
    return delivery.message(event)


_EVENTS: dict[str, Builder] = {
    "message": _message_event,
    "app_mention": _mention,
    "file_shared": _file_shared,
}


class SlackHooks(ManifestHooks):
    def message(
        self, trigger: str, entity: Any, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        body = entity if isinstance(entity, Mapping) else {}
        delivery = _Delivery(body, context.get("settings") or {})
        if body.get("type") != "event_callback":
            return delivery.ignored(f"a {body.get('type') or 'nameless'} delivery is no event")
        kind = str(delivery.event.get("type") or "")
        build = _EVENTS.get(kind)
        if build is None:
            return delivery.ignored(f"a {kind or 'nameless'} event is not a message")
        return build(delivery)

    def files(self, trigger: str, entity: Any, context: Mapping[str, Any]) -> list[ChannelFile]:
        body = entity if isinstance(entity, Mapping) else {}
        event = body.get("event") if isinstance(body.get("event"), Mapping) else {}
        assert isinstance(event, Mapping)
        if event.get("type") == "file_shared":
            shared = body.get("file")
            return [file_of(shared)] if isinstance(shared, Mapping) else []
        return [file_of(file) for file in _list(event.get("files"))]

    def outgoing(
        self, action: str, reply: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """``chat.postMessage`` in the thread the case came from: its channel and the root's
        ts (from the message answered, else from the case's thread id)."""
        where = reply.get("reply") or {}
        channel, thread_ts = where.get("channel"), where.get("thread_ts")
        thread_id = str(reply.get("thread_id") or "")
        if (not channel or not thread_ts) and ":" in thread_id:
            channel, thread_ts = thread_id.split(":", 1)
        text = _escape(str(reply.get("text") or ""))
        if len(text) > MAX_TEXT:
            text = text[: MAX_TEXT - 1] + "…"
        return {"channel": channel, "thread_ts": thread_ts, "text": text}
