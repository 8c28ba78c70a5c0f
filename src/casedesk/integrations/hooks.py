"""What a delivery to an instant trigger says, and whether to believe it.

This is the protocol side of ``POST /hooks/{token}``, without storage: reading the body (JSON,
a form, text) into what selections see (``{body, query, headers}``), answering handshakes,
checking authenticity (an HMAC with a timestamp window, a bearer token, a client state in each
event), and splitting a delivery into events with their ids. Every refusal is a product error
with its HTTP meaning: 400 for a body that cannot be read, 401 for one that cannot be
believed, 413 for one too large, 422 for one that could not be stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

import orjson

from casedesk.integrations.expressions import ExpressionError, render, render_tree, select
from casedesk.integrations.manifests.instant import (
    BearerVerification,
    ClientStateVerification,
    HmacVerification,
    InstantSpec,
    Notification,
    Verification,
)
from casedesk.kit.errors import CasedeskError, InvalidInput
from casedesk.kit.values import JSON_MAX_DEPTH, depth_of

MAX_ID_CHARS = 255
"""An event id longer than its column is kept as its SHA-256 instead."""
MAX_BODY_DEPTH = JSON_MAX_DEPTH - 1
"""Nesting levels of a body: an event is stored as the item of an execution and may be the
whole ``{body, query, headers}``, one level more, which must stay within JSON_MAX_DEPTH."""
MAX_FORM_FIELDS = 1_000
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_NEVER_KEPT = frozenset({"authorization", "proxy-authorization", "cookie"})
"""Headers a delivery is stored without: credentials are checked, never written down."""


class MalformedDelivery(CasedeskError):
    status = 400
    title = "Malformed delivery"
    slug = "malformed-delivery"


class DeliveryNotAuthentic(CasedeskError):
    status = 401
    title = "Delivery not authentic"
    slug = "delivery-not-authentic"


class DeliveryTooLarge(CasedeskError):
    status = 413
    title = "Delivery too large"
    slug = "delivery-too-large"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request to a hook, as it arrived."""

    method: str
    body: bytes
    headers: Mapping[str, str]
    """Names in lower case."""
    query: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Reading:
    """A delivery read: its text exactly as sent, its body as data, and what selections see."""

    text: str
    body: Any
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    content: bytes = b""
    media_type: str | None = None


def read(spec: InstantSpec, delivery: Delivery) -> Reading:
    """The delivery's body as the trigger reads it; refuses one that is too large, not UTF-8,
    not in the format it claims, or not storable (U+0000, too deep)."""
    limit = spec.max_body_bytes
    if limit is not None and len(delivery.body) > limit:
        raise DeliveryTooLarge(f"this hook takes bodies of at most {limit} bytes")
    try:
        text = delivery.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedDelivery(f"the body is not UTF-8 text (at byte {exc.start})") from None
    body = _parse(spec, text, delivery.headers.get("content-type"))
    _check_storable(text, body)
    context = {"body": body, "query": dict(delivery.query), "headers": dict(delivery.headers)}
    return Reading(text, body, context)


def _media_type(content_type: str | None) -> str:
    if not content_type:
        return ""
    message = Message()
    message["content-type"] = content_type
    return message.get_content_type()


def _format_of(spec: InstantSpec, content_type: str | None) -> str:
    if spec.body != "auto":
        return spec.body
    media = _media_type(content_type)
    if media == "application/x-www-form-urlencoded":
        return "form"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    return "auto"


def _parse(spec: InstantSpec, text: str, content_type: str | None) -> Any:
    if not text.strip():
        return None
    kind = _format_of(spec, content_type)
    if kind == "form":
        return _form(text, spec.form_json)
    if kind == "text":
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if kind == "auto":
            return text  # neither declared nor looking like JSON: it is text
        raise MalformedDelivery(
            f"the body is not JSON: {exc.msg} at character {exc.pos}", position=exc.pos
        ) from None


def _form(text: str, json_fields: list[str]) -> dict[str, Any]:
    try:
        pairs = parse_qsl(
            text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS
        )
    except UnicodeDecodeError:
        raise MalformedDelivery("the form body decodes to something that is not UTF-8") from None
    except ValueError as exc:
        raise MalformedDelivery(f"the form body cannot be read: {exc}") from None
    form: dict[str, Any] = dict(pairs)
    for name in json_fields:
        if name not in form:
            continue
        try:
            form[name] = orjson.loads(form[name])
        except orjson.JSONDecodeError as exc:
            raise MalformedDelivery(
                f"the form field `{name}` is not JSON: {exc.msg} at character {exc.pos}",
                field=name,
            ) from None
    return form


def _unstorable(location: str, message: str, kind: str) -> InvalidInput:
    return InvalidInput(
        f"invalid fields: {location}",
        errors=[{"field": location, "in": "body", "message": message, "type": kind}],
    )


def _check_storable(text: str, body: Any) -> None:
    """PostgreSQL keeps no U+0000 in text, and MariaDB no JSON nested beyond 31 levels: such
    a delivery is refused as every API request with them is, naming where."""
    if "\x00" in text:
        raise _unstorable("body", "must not contain the character U+0000", "string_nul")
    pending: list[tuple[str, Any]] = [("body", body)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            raise _unstorable(where, "must not contain the character U+0000", "string_nul")
        if isinstance(item, dict):
            for key, child in item.items():
                if "\x00" in key:
                    raise _unstorable(where, "a name must not contain U+0000", "string_nul")
                pending.append((f"{where}.{key}", child))
        elif isinstance(item, list):
            pending.extend((f"{where}.{index}", child) for index, child in enumerate(item))
    depth = depth_of(body)
    if depth > MAX_BODY_DEPTH:
        message = f"nests {depth} levels deep; at most {MAX_BODY_DEPTH} are kept"
        raise _unstorable("body", message, "too_deep")


def select_in(selection: str, data: Any) -> Any:
    """A selection over a delivery or an event; one that fails is a malformed delivery."""
    return _select(selection, data)


def _select(selection: str, data: Any) -> Any:
    try:
        return select(selection, data)
    except ExpressionError as exc:
        raise MalformedDelivery(f"the delivery does not fit the trigger: {exc}") from None


def _truthy(value: Any) -> bool:
    """JMESPath's truth: only null, false and empty strings, lists and objects are false."""
    return value is not None and value is not False and value not in ("", [], {})


def handshake(spec: InstantSpec, reading: Reading) -> Answer | None:
    """The answer to a handshake (nothing is stored), or None when this is a delivery."""
    for shake in spec.handshakes:
        if not _truthy(_select(shake.when, reading.context)):
            continue
        try:
            value = render_tree(shake.answer, reading.context)
        except ExpressionError as exc:
            raise MalformedDelivery(f"the handshake cannot be answered: {exc}") from None
        if shake.content_type == "application/json":
            return Answer(shake.status, orjson.dumps(value), shake.content_type)
        text = "" if value is None else str(value)
        return Answer(shake.status, text.encode(), shake.content_type)
    return None


def verify_request(
    verify: Verification, delivery: Delivery, reading: Reading, keys: Mapping[str, str], now: float
) -> None:
    """Check what the request as a whole carries (a signature, a token); raise
    ``DeliveryNotAuthentic`` when it is missing or wrong."""
    check = _REQUEST_CHECKS.get(verify.type)
    if check is not None:
        check(verify, delivery, reading, keys, now)


def _secret(keys: Mapping[str, str], field: str, what: str) -> bytes:
    value = keys.get(field) or ""
    if not value:
        raise DeliveryNotAuthentic(
            f"no {what} is set (secret `{field}`), so no delivery can be verified"
        )
    return value.encode()


def _same(expected: str, offered: str) -> bool:
    return hmac.compare_digest(expected.encode(), offered.encode("utf-8", "replace"))


def _check_hmac(
    verify: HmacVerification,
    delivery: Delivery,
    reading: Reading,
    keys: Mapping[str, str],
    now: float,
) -> None:
    key = _signing_key(verify, _secret(keys, verify.secret_field, "signing secret"))
    offered = delivery.headers.get(verify.header.lower(), "").split()
    if not offered:
        raise DeliveryNotAuthentic(f"the {verify.header} header with the signature is missing")
    timestamp = ""
    if verify.timestamp_header is not None:
        timestamp = delivery.headers.get(verify.timestamp_header.lower(), "").strip()
        if not _UNIX_SECONDS.fullmatch(timestamp):
            raise DeliveryNotAuthentic(
                f"the {verify.timestamp_header} header is missing or not Unix seconds"
            )
        if abs(now - int(timestamp)) > verify.tolerance_seconds:
            raise DeliveryNotAuthentic(
                f"the delivery was signed more than {verify.tolerance_seconds} s from now;"
                " a replayed or delayed delivery is refused"
            )
    signed = _signed_text(verify.base, reading.text, delivery.headers, timestamp)
    digest = hmac.new(key, signed, verify.algorithm).digest()
    if verify.encoding == "hex":
        expected = verify.prefix + digest.hex()
        offered = [
            value[: len(verify.prefix)] + value[len(verify.prefix) :].lower() for value in offered
        ]
    else:
        expected = verify.prefix + base64.b64encode(digest).decode()
    if not any(_same(expected, value) for value in offered):
        raise DeliveryNotAuthentic(f"the signature in {verify.header} does not match")


def _signing_key(verify: HmacVerification, secret: bytes) -> bytes:
    if verify.key == "text":
        return secret
    encoded = secret.removeprefix(b"whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        raise DeliveryNotAuthentic(
            f"the secret `{verify.secret_field}` is not base64, so no delivery can be verified"
        ) from None


def _signed_text(base: str, text: str, headers: Mapping[str, str], timestamp: str) -> bytes:
    """The base string with ``{{ body }}`` standing for the raw body. The body is put in after
    rendering, so its length is not a template's and it is signed byte for byte as sent."""
    marker = f"\ue000{secrets.token_hex(8)}\ue000"
    context = {"body": marker, "headers": dict(headers), "timestamp": timestamp}
    try:
        rendered = str(render(base, context))
    except ExpressionError as exc:
        raise DeliveryNotAuthentic(f"the signed text cannot be made: {exc}") from None
    return rendered.replace(marker, text).encode("utf-8")


def _check_bearer(
    verify: BearerVerification,
    delivery: Delivery,
    reading: Reading,
    keys: Mapping[str, str],
    now: float,
) -> None:
    token = _secret(keys, verify.secret_field, "token")
    value = delivery.headers.get(verify.header.lower(), "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value or not hmac.compare_digest(value.encode("utf-8", "replace"), token):
        raise DeliveryNotAuthentic(f"the token in {verify.header} is missing or wrong")


_REQUEST_CHECKS: dict[str, Callable[[Any, Delivery, Reading, Mapping[str, str], float], None]] = {
    "hmac": _check_hmac,
    "bearer": _check_bearer,
}


def events_of(spec: InstantSpec, reading: Reading) -> list[Any]:
    """The events of one delivery (Graph batches several; most sources send one)."""
    found = _select(spec.events, reading.context)
    if found is None:
        raise MalformedDelivery(
            f"the delivery has no events where the trigger looks ({spec.events})"
        )
    return found if isinstance(found, list) else [found]


def verify_events(verify: Verification, events: list[Any], keys: Mapping[str, str]) -> None:
    """Check what each event carries (Graph's clientState)."""
    if not isinstance(verify, ClientStateVerification):
        return
    expected = _secret(keys, verify.secret_field, "client state")
    for index, event in enumerate(events):
        offered = _select(verify.value, event)
        if not isinstance(offered, str) or not hmac.compare_digest(
            offered.encode("utf-8", "replace"), expected
        ):
            raise DeliveryNotAuthentic(f"event {index}: the client state does not match")


def body_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_ids(spec: InstantSpec, events: list[Any], text: str) -> list[str]:
    """Each event's id at the source; one without an id is known by the body's SHA-256
    (and its place in the delivery, when there are several)."""
    digest = body_digest(text)
    ids = []
    for index, event in enumerate(events):
        found = _select(spec.event_id, event)
        if not _truthy(found):
            ids.append(digest if len(events) == 1 else f"{digest}:{index}")
            continue
        ids.append(source_id_text(found))
    return ids


def source_id_text(value: Any) -> str:
    """An id as a source id: text as it is, anything else as JSON; too long: its SHA-256."""
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= MAX_ID_CHARS:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def delivery_id(ids: list[str], text: str) -> str:
    """What a provider's retry of this delivery repeats: its one event's id, or its body."""
    return ids[0] if len(ids) == 1 else body_digest(text)


def notification_of(spec: InstantSpec, event: Any) -> Notification | None:
    """The lifecycle notification this event is, if it is one."""
    for notification in spec.notifications:
        if _truthy(_select(notification.when, event)):
            return notification
    return None


def kept_headers(verify: Verification, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a delivery is stored with: credentials left out."""
    dropped = set(_NEVER_KEPT)
    if isinstance(verify, BearerVerification):
        dropped.add(verify.header.lower())
    return {name: value for name, value in headers.items() if name not in dropped}
