"""Secrets never reach a trace: header values, query parameters and body fields whose names
look secret are replaced by ``[REDACTED]`` before a record is built.

A name looks secret when one of its words (split at separators and camelCase) is a secret
word: ``access_token``, ``clientSecret``, ``X-Hub-Signature-256``. Matching whole words keeps
``max_tokens`` or ``Keep-Alive`` readable. Headers are stricter: a ``key`` word is enough
(``X-Api-Key``, ``Ocp-Apim-Subscription-Key``). A connection adds the names its connector
declares secret and the headers its credentials are sent in.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote_plus

import httpx

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


@dataclass(frozen=True, slots=True)
class Redactor:
    """Redaction for one connection: the general rules plus the names it declares secret."""

    declared: frozenset[str] = frozenset()

    @classmethod
    def declaring(cls, names: Iterable[str]) -> Redactor:
        return cls(frozenset(name.lower() for name in names))

    def is_secret_field(self, name: str) -> bool:
        return name.lower() in self.declared or looks_secret_field(name)

    def is_secret_header(self, name: str) -> bool:
        return name.lower() in self.declared or looks_secret_header(name)

    def headers(self, pairs: Iterable[tuple[str, str]]) -> HeaderPairs:
        return tuple(
            (name, REDACTED if self.is_secret_header(name) else value) for name, value in pairs
        )

    def url(self, url: httpx.URL) -> str:
        """The URL as sent: no credentials, no fragment, secret query parameters redacted."""
        path, _, query = url.raw_path.decode("ascii").partition("?")
        sent = f"{url.scheme}://{url.netloc.decode('ascii')}{path}"
        return f"{sent}?{self.form(query)}" if query else sent

    def form(self, text: str) -> str:
        """A query string or form-encoded body; what is not redacted keeps its encoding."""
        return "&".join(self._form_pair(pair) for pair in text.split("&"))

    def _form_pair(self, pair: str) -> str:
        name, has_value, _ = pair.partition("=")
        if has_value and self.is_secret_field(unquote_plus(name)):
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
