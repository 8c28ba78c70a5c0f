"""Secrets never reach a trace: header values, query parameters and body fields whose names
look secret, and path segments that are secret, are replaced by ``[REDACTED]`` before a
record is built.

A name looks secret when one of its words (split at separators and camelCase) is a secret
word: ``access_token``, ``clientSecret``, ``X-Hub-Signature-256``. Matching whole words keeps
``max_tokens`` or ``Keep-Alive`` readable. Headers are stricter: a ``key`` word is enough
(``X-Api-Key``, ``Ocp-Apim-Subscription-Key``); so is a query parameter named just ``key``
(Google's API keys). A connection adds the names its connector declares secret, the headers
its credentials are sent in, and the path segments that carry a secret (``SecretPath``);
the URLs of well-known webhook services (Slack, Discord, Microsoft Teams, Zapier), whose path
is the credential, are redacted for every connection.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

import httpx
import orjson

from casedesk.traces.records import HeaderPairs

REDACTED = "[REDACTED]"
REDACTED_ENCODED = quote(REDACTED, safe="")
"""The marker inside a query string or form body, encoded like the text around it."""

_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "signature",
        "sig",
        "authorization",
        "cookie",
        "session",
        "credential",
        "credentials",
        # the same names written without separators
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "csrftoken",
        "xsrftoken",
        "clientsecret",
        "apikey",
        "privatekey",
        "accesskey",
        "secretkey",
        "sessionid",
    }
)
_SECRET_WORD_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("access", "key"), ("signing", "key")}
)
_SECRET_HEADER_WORDS = _SECRET_WORDS | {"key"}
_SECRET_QUERY_NAMES = frozenset({"key"})
"""Secret as a query parameter though not as a body field (a JSON ``key`` is an issue key)."""
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _words(name: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(name)]


@functools.lru_cache(maxsize=4096)
def looks_secret_field(name: str) -> bool:
    """Whether a query parameter or body field of this name holds a secret."""
    words = _words(name)
    if not _SECRET_WORDS.isdisjoint(words):
        return True
    return any(pair in _SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


@functools.lru_cache(maxsize=1024)
def looks_secret_header(name: str) -> bool:
    """Whether a header of this name holds a secret."""
    return not _SECRET_HEADER_WORDS.isdisjoint(_words(name))


_ANY_SEGMENT = "*"
_SECRET_SEGMENT = "{secret}"  # noqa: S105 - the placeholder of a pattern, not a secret


@dataclass(frozen=True, slots=True)
class SecretPath:
    """Which segments of a URL path hold a secret, e.g. ``/services/*/*/{secret}``.

    Segments are matched from the start of the path: a literal must be equal, ``*`` is any
    segment (kept) and ``{secret}`` any segment (redacted); segments after the pattern are
    kept. A path the pattern does not match is left as it is.
    """

    segments: tuple[str, ...]

    @classmethod
    def parse(cls, pattern: str) -> SecretPath:
        segments = tuple(pattern.strip("/").split("/"))
        if _SECRET_SEGMENT not in segments:
            raise ValueError(f"the path pattern {pattern!r} marks no segment as {_SECRET_SEGMENT}")
        return cls(segments)

    def redact(self, segments: list[str]) -> bool:
        """Redact ``segments`` (a path split at ``/``, without the leading empty one) in
        place when the pattern matches them; whether it did."""
        for expected, actual in zip(self.segments, segments, strict=False):
            if expected not in (_ANY_SEGMENT, _SECRET_SEGMENT) and expected != actual:
                return False
        for index, expected in enumerate(self.segments[: len(segments)]):
            if expected == _SECRET_SEGMENT and segments[index]:
                segments[index] = REDACTED_ENCODED
        return True


def _paths(*patterns: str) -> tuple[SecretPath, ...]:
    return tuple(SecretPath.parse(pattern) for pattern in patterns)


WELL_KNOWN_SECRET_PATHS: Mapping[str, tuple[SecretPath, ...]] = {
    # Incoming webhooks whose URL is the credential: anyone holding it can post.
    "hooks.slack.com": _paths(
        "/services/*/*/{secret}", "/workflows/*/*/*/{secret}", "/triggers/*/*/{secret}"
    ),
    "discord.com": _paths("/api/webhooks/*/{secret}", "/api/*/webhooks/*/{secret}"),
    "discordapp.com": _paths("/api/webhooks/*/{secret}", "/api/*/webhooks/*/{secret}"),
    "webhook.office.com": _paths("/webhookb2/{secret}/IncomingWebhook/{secret}/{secret}"),
    "hooks.zapier.com": _paths("/hooks/catch/*/{secret}"),
}
"""By host; a host's subdomains (``ptb.discord.com``, ``acme.webhook.office.com``) too."""


@functools.lru_cache(maxsize=1024)
def well_known_secret_paths(host: str) -> tuple[SecretPath, ...]:
    """The secret path patterns of a well-known webhook host; none for any other host."""
    host = host.lower().rstrip(".")
    known = WELL_KNOWN_SECRET_PATHS.get(host)
    if known is None:
        known = WELL_KNOWN_SECRET_PATHS.get(host.partition(".")[2], ())
    return known


@dataclass(frozen=True, slots=True)
class Redactor:
    """Redaction for one connection: the general rules plus the names it declares secret
    and the path segments it says hold a secret."""

    declared: frozenset[str] = frozenset()
    secret_paths: tuple[SecretPath, ...] = ()

    @classmethod
    def declaring(cls, names: Iterable[str], secret_paths: Iterable[str] = ()) -> Redactor:
        return cls(
            frozenset(name.lower() for name in names),
            tuple(SecretPath.parse(pattern) for pattern in secret_paths),
        )

    def is_secret_field(self, name: str) -> bool:
        return name.lower() in self.declared or looks_secret_field(name)

    def is_secret_parameter(self, name: str) -> bool:
        """Whether a query parameter of this name holds a secret."""
        return name.lower() in _SECRET_QUERY_NAMES or self.is_secret_field(name)

    def is_secret_header(self, name: str) -> bool:
        return name.lower() in self.declared or looks_secret_header(name)

    def headers(self, pairs: Iterable[tuple[str, str]]) -> HeaderPairs:
        return tuple(
            (name, REDACTED if self.is_secret_header(name) else value) for name, value in pairs
        )

    def url(self, url: httpx.URL) -> str:
        """The URL as sent: no credentials, no fragment, secret path segments and query
        parameters redacted."""
        path, _, query = url.raw_path.decode("ascii").partition("?")
        sent = f"{url.scheme}://{url.netloc.decode('ascii')}{self.path(url.host, path)}"
        return f"{sent}?{self.query(query)}" if query else sent

    def path(self, host: str, path: str) -> str:
        """A URL path (percent-encoded, as sent) with its secret segments redacted."""
        patterns = self.secret_paths + well_known_secret_paths(host)
        if not patterns:
            return path
        segments = path.lstrip("/").split("/")
        for pattern in patterns:
            if pattern.redact(segments):
                return "/" + "/".join(segments)
        return path

    def query(self, text: str) -> str:
        """A query string; what is not redacted keeps its encoding."""
        return "&".join(self._pair(pair, self.is_secret_parameter) for pair in text.split("&"))

    def form(self, text: str) -> str:
        """A form-encoded body; what is not redacted keeps its encoding."""
        return "&".join(self._pair(pair, self.is_secret_field) for pair in text.split("&"))

    @staticmethod
    def _pair(pair: str, is_secret: _NameTest) -> str:
        name, has_value, _ = pair.partition("=")
        if has_value and is_secret(unquote_plus(name)):
            return f"{name}={REDACTED_ENCODED}"
        return pair

    def json(self, value: object) -> object:
        """A parsed JSON document with secret fields redacted at any depth.

        Returns ``value`` itself when nothing needed redacting, so callers can keep the
        original text instead of serialising again.
        """
        if isinstance(value, dict):
            redacted = {
                key: REDACTED if self.is_secret_field(key) else self.json(item)
                for key, item in value.items()
            }
            unchanged = all(redacted[key] is item for key, item in value.items())
            return value if unchanged else redacted
        if isinstance(value, list):
            items = [self.json(item) for item in value]
            unchanged = all(new is old for new, old in zip(items, value, strict=True))
            return value if unchanged else items
        return value

    def json_text(self, text: str) -> str:
        """JSON text that may be cut short or malformed, with the values of secret fields
        redacted and everything else kept as written.

        A tolerant scan: strings, brackets, colons and commas are followed well enough to
        know which string is a key, and a secret key's value (a string, a number, or a whole
        object or array) becomes ``"[REDACTED]"``, also when the text ends inside it.
        """
        return _JsonScan(self, text).redacted()


_NameTest = Callable[[str], bool]
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.DOTALL)
"""A string (possibly cut short at the end), a structural character, or a bare literal.
Every ``"`` starts a string that ends at the next unescaped ``"`` or at the end of the
text, so what is a string is never in doubt, however malformed the rest."""
_REDACTED_JSON = orjson.dumps(REDACTED).decode()


class _JsonScan:
    """One pass of ``Redactor.json_text`` over one text."""

    def __init__(self, redactor: Redactor, text: str) -> None:
        self.redactor = redactor
        self.text = text
        self.pieces: list[str] = []
        self.copied = 0  # text before this offset is in ``pieces`` already

    def redacted(self) -> str:
        text, secret_value = self.text, False
        containers: list[str] = []  # the open "{" and "[", innermost last
        expecting_key = False
        skip_from, skip_depth = -1, 0  # inside a secret object or array
        for token in _JSON_TOKEN.finditer(text):
            lexeme = token.group()
            if skip_depth:
                if lexeme in ("{", "["):
                    skip_depth += 1
                elif lexeme in ("}", "]"):
                    skip_depth -= 1
                    if not skip_depth:
                        self._replace(skip_from, token.end())
                continue
            if lexeme in ("{", "["):
                if secret_value:
                    skip_from, skip_depth, secret_value = token.start(), 1, False
                    continue
                containers.append(lexeme)
                expecting_key = lexeme == "{"
            elif lexeme in ("}", "]"):
                if containers:
                    containers.pop()
                expecting_key = False
            elif lexeme == ",":
                expecting_key = bool(containers) and containers[-1] == "{"
            elif lexeme == ":":
                pass
            elif expecting_key:
                secret_value = lexeme.startswith('"') and self.redactor.is_secret_field(
                    _key_name(lexeme)
                )
                expecting_key = False
                continue
            elif secret_value:
                self._replace(token.start(), token.end())
            if lexeme != ":":
                secret_value = False
        if skip_depth:  # the text ends inside a secret object or array
            self._replace(skip_from, len(text))
        if not self.pieces:
            return text
        self.pieces.append(text[self.copied :])
        return "".join(self.pieces)

    def _replace(self, start: int, end: int) -> None:
        self.pieces.append(self.text[self.copied : start])
        self.pieces.append(_REDACTED_JSON)
        self.copied = end


def _key_name(lexeme: str) -> str:
    """A key's name from its JSON string (escapes decoded when it has any)."""
    if "\\" not in lexeme:
        return lexeme[1:-1] if len(lexeme) > 1 and lexeme.endswith('"') else lexeme[1:]
    try:
        name: str = orjson.loads(lexeme)
    except orjson.JSONDecodeError:
        return lexeme.strip('"')
    return name
