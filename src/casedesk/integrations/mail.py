"""E-mail as channels read and write it: an RFC 5322 message into the fields of a
``ChannelMessage``, and an agent's reply into an RFC 5322 message.

Reading goes through the standard library's ``email`` package (``policy.default``) for the
structure, and decodes what real mail gets wrong here rather than there:

- a body or an encoded word labelled GB2312 (or GBK) is decoded as GB18030, its superset:
  mailers label GBK text GB2312, and a strict GB2312 decoder would lose its characters;
- an unknown charset, or bytes that are not what the label says, are decoded with
  replacement characters, never refused;
- raw 8-bit header bytes (no encoded words) are taken as UTF-8, else as GB18030.

The body is the first ``text/plain`` part that is not an attachment; an HTML-only message is
made text (``html_text``: scripts and styles dropped, block elements on lines of their own).
A message is ``automatic`` when a machine wrote it (RFC 3834's ``Auto-Submitted`` other than
``no``, ``X-Autoreply`` / ``X-Autorespond``, ``Precedence: bulk, junk, list, auto_reply``, a
mailer-daemon or postmaster sender, a ``multipart/report`` delivery status): it never opens a
case and never gets an answer, so two robots cannot write to each other for ever.

This module knows nothing of cases; it answers plain dicts in the ``ChannelMessage`` shape.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import email.utils
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

CHARSET_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "euc_cn": "gb18030", "ascii": "utf-8"}
"""Charsets decoded as the superset real mail needs (keys are Python's codec names)."""
AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
ROBOT_SENDERS = frozenset({"mailer-daemon", "postmaster"})


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    """A file a reply carries: its name, its (sniffed) media type and its bytes."""

    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class TextPart:
    """One text part of a message: its media type, declared charset and undecoded bytes."""

    mime_type: str
    charset: str | None
    content: bytes


# --- decoding -------------------------------------------------------------------------


def decode_bytes(content: bytes, charset: str | None) -> str:
    """Bytes in a declared charset as text: GB2312/GBK as GB18030, anything unknown or wrong
    with replacement characters."""
    codec = _codec(charset)
    if codec is None:
        return _guess(content)
    return content.decode(codec, errors="replace")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        name = codecs.lookup(charset.strip().strip('"').lower()).name
    except LookupError:
        return None
    return CHARSET_SUPERSETS.get(name.replace("-", "_"), name)


def _guess(content: bytes) -> str:
    """Bytes without a (known) charset: UTF-8 when they are, else GB18030, which maps every
    byte sequence to something."""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("gb18030", errors="replace")


def decode_header_value(value: str) -> str:
    """A raw header value as text: RFC 2047 encoded words decoded (GB2312 as GB18030), raw
    8-bit bytes (kept by the parser as surrogate escapes) taken as UTF-8 or GB18030, and the
    folding undone."""
    raw = value.encode("ascii", errors="surrogateescape")
    if any(byte > 0x7F for byte in raw):
        return _unfold(_guess(raw))
    pieces = []
    for chunk, charset in decode_header(_unfold(value)):
        if isinstance(chunk, str):
            pieces.append(chunk)
        elif charset is None:
            pieces.append(chunk.decode("ascii", errors="replace"))
        else:
            pieces.append(decode_bytes(chunk, charset))
    return "".join(pieces)


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).replace("\r", "").replace("\n", "")


def _message_ids(value: str | None) -> list[str]:
    """The Message-IDs of a header, without angle brackets, in order."""
    if not value:
        return []
    found = re.findall(r"<([^<>\s]+)>", value)
    return found or value.split()


def _parties(values: Iterable[str]) -> list[dict[str, Any]]:
    """Addresses of raw address headers, each name decoded on its own (an encoded word may
    hide a comma, so the header is split before it is decoded)."""
    parties = []
    for name, address in email.utils.getaddresses(list(values)):
        if not address and not name:
            continue
        parties.append(
            {"address": address.strip() or None, "name": decode_header_value(name) or None}
        )
    return parties


# --- HTML -----------------------------------------------------------------------------

_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextMaker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "pre":
            self.pre += 1
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCKS and tag != "br":
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self.out.append(data)
            return
        text = re.sub(r"\s+", " ", data)
        if not self.out or self.out[-1].endswith((" ", "\n")):
            text = text.lstrip(" ")  # a space at a line's start, or after one, shows nothing
        self.out.append(text)


def html_text(html: str) -> str:
    """HTML as plain text: what a reader sees, scripts and styles dropped, block elements
    and ``<br>`` on lines of their own, runs of blank lines made one."""
    maker = _TextMaker()
    maker.feed(html)
    maker.close()
    lines = [line.rstrip(" \t") for line in "".join(maker.out).replace("\xa0", " ").split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- reading --------------------------------------------------------------------------


def parsed(raw: bytes | Message) -> Message:
    """The message, parsed once (with policy ``default``) for the readers below."""
    if isinstance(raw, Message):
        return raw
    return email.message_from_bytes(raw, policy=email.policy.default)


def parse_message(raw: bytes | Message) -> dict[str, Any]:
    """An RFC 5322 message as the fields of a ``ChannelMessage`` (all but ``id`` and
    ``thread_id``, which the provider gives)."""
    message = parsed(raw)
    return read_parts(list(message.raw_items()), _text_parts(message))


def _text_parts(message: Message) -> Iterator[TextPart]:
    """The message's text parts in order, leaving out attachments and attached messages."""
    if message.get_content_maintype() == "multipart":
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _text_parts(part)
        return
    if message.get_content_maintype() != "text" or _attached(message):
        return
    content = message.get_payload(decode=True)
    if isinstance(content, bytes):
        yield TextPart(message.get_content_type(), message.get_content_charset(), content)


@dataclass(frozen=True, slots=True)
class AttachedPart:
    """A part of a message that is an attachment (or an inline file with a name)."""

    filename: str | None
    content_type: str
    content: bytes
    inline: bool
    content_id: str | None = None
    """The part's ``Content-ID`` without its angle brackets: what a ``cid:`` URL names."""

    @property
    def size(self) -> int:
        return len(self.content)

    def metadata(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "inline": self.inline,
        }


def attached_parts(raw: bytes | Message) -> list[AttachedPart]:
    """The message's attachments in order: the parts ``parse_message`` leaves out of the text."""
    message = parsed(raw)
    found = []
    for part in message.walk():
        if part.is_multipart() or not (
            _attached(part)
            or part.get_content_maintype()
            not in (
                "text",
                "multipart",
                "message",
            )
        ):
            continue
        content = part.get_payload(decode=True)
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        filename = part.get_filename()
        content_id = str(part.get("Content-ID") or "").strip().strip("<>").strip()
        found.append(
            AttachedPart(
                filename=None if filename is None else decode_header_value(filename),
                content_type=part.get_content_type(),
                content=content if isinstance(content, bytes) else b"",
                inline=disposition == "inline",
                content_id=content_id[:255] or None,
            )
        )
    return found


def _attached(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or bool(part.get_filename())


def read_parts(headers: Sequence[tuple[str, str]], parts: Iterable[TextPart]) -> dict[str, Any]:
    """The ``ChannelMessage`` fields of a message given as its raw headers and its text parts
    (a provider that takes the MIME tree apart itself, as Gmail's ``format=full`` does)."""
    found = _Headers(headers)
    text: str | None = None
    html: str | None = None
    for part in parts:
        if part.mime_type == "text/plain" and text is None:
            text = decode_bytes(part.content, part.charset)
        elif part.mime_type == "text/html" and html is None:
            html = decode_bytes(part.content, part.charset)
    if text is None:
        text = html_text(html) if html is not None else ""
    senders = _parties(found.all("from"))
    sender = senders[0] if senders else {"address": None, "name": None}
    subject = found.first("subject")
    return {
        "subject": None if subject is None else decode_header_value(subject).strip(),
        "text": text.replace("\r\n", "\n").strip(),
        "html": html,
        "sender": sender,
        "to": _parties(found.all("to")),
        "cc": _parties(found.all("cc")),
        "message_id": next(iter(_message_ids(found.first("message-id"))), None),
        "in_reply_to": _message_ids(found.first("in-reply-to")),
        "references": _message_ids(" ".join(found.all("references"))),
        "automatic": is_automatic(headers, sender.get("address")),
        "sent_at": _sent_at(found.first("date")),
    }


class _Headers:
    def __init__(self, headers: Sequence[tuple[str, str]]) -> None:
        self.headers = [(name.lower(), str(value)) for name, value in headers]

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def first(self, name: str) -> str | None:
        return next(iter(self.all(name)), None)


def _sent_at(value: str | None) -> str | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return moment.isoformat()


def is_automatic(headers: Sequence[tuple[str, str]], sender: str | None) -> bool:
    """Whether a machine wrote the message (see the module's description)."""
    found = _Headers(headers)
    auto_submitted = (found.first("auto-submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if found.all("x-autoreply") or found.all("x-autorespond"):
        return True
    if (found.first("precedence") or "").strip().lower() in AUTOMATIC_PRECEDENCE:
        return True
    local = (sender or "").rpartition("@")[0] if "@" in (sender or "") else (sender or "")
    if local.strip().lower() in ROBOT_SENDERS:
        return True
    content_type = (found.first("content-type") or "").lower()
    return content_type.startswith("multipart/report") and "delivery-status" in content_type


# --- writing --------------------------------------------------------------------------


def compose_reply(
    reply: Mapping[str, Any],
    *,
    sender: Mapping[str, Any] | None = None,
    automatic: bool = False,
    auto_submitted: str | None = None,
    date: str | None = None,
    files: Sequence[OutgoingFile] = (),
) -> bytes:
    """An agent's reply (a ``Reply`` as a dict) as an RFC 5322 message: ``multipart/
    alternative`` with the plain text and the HTML, its own ``Message-ID``, ``In-Reply-To``
    and ``References`` that keep it in the thread, and ``Auto-Submitted: auto-replied`` only
    when ``automatic`` (a message casedesk writes without an agent), or the
    ``auto_submitted`` value given (``auto-generated`` for mail that answers nothing).
    ``sender``: the From address and name (none: the provider fills in the account's own).

    With ``files`` the message is ``multipart/mixed``: the text/HTML alternative first, then
    each file as an attachment part (base64, its media type, its name as ``filename``, RFC
    2231-encoded when it is not ASCII)."""
    message = EmailMessage(policy=email.policy.SMTP)
    if sender and sender.get("address"):
        message["From"] = _address(sender)
    message["To"] = [_address(party) for party in reply.get("to") or []]
    message["Subject"] = str(reply.get("subject") or "")
    message["Date"] = date or email.utils.formatdate(localtime=False, usegmt=True)
    message_id = reply.get("message_id") or email.utils.make_msgid(domain="casedesk.invalid")
    message["Message-ID"] = f"<{str(message_id).strip('<>')}>"
    answered = reply.get("in_reply_to")
    references = [str(key).strip("<>") for key in reply.get("references") or []]
    if answered:
        message["In-Reply-To"] = f"<{str(answered).strip('<>')}>"
        if str(answered).strip("<>") not in references:
            references.append(str(answered).strip("<>"))
    if references:
        message["References"] = " ".join(f"<{key}>" for key in references)
    if auto_submitted or automatic:
        message["Auto-Submitted"] = auto_submitted or "auto-replied"
    message.set_content(str(reply.get("text") or ""))
    if reply.get("html"):
        message.add_alternative(str(reply["html"]), subtype="html")
    for file in files:
        maintype, _, subtype = file.content_type.split(";")[0].strip().lower().partition("/")
        if not maintype or not subtype or maintype in ("multipart", "message"):
            maintype, subtype = "application", "octet-stream"
        # Bytes go out base64 as they are, text files too: never re-encoded or re-wrapped.
        message.add_attachment(file.content, maintype, subtype, filename=file.filename)
    return message.as_bytes()


def _address(party: Mapping[str, Any]) -> Address:
    return Address(display_name=str(party.get("name") or ""), addr_spec=str(party["address"]))
