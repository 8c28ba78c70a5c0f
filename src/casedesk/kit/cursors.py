"""Page cursors: one codec for every list the API pages through.

A cursor is the base64url form of the JSON ``[kind, key]``: ``kind`` names the list (and its
sort order) the cursor belongs to, ``key`` is the sort key of the last row of a page, a tuple
whose types the list declares. Decoding checks the kind and validates every part of the key
against those types, so whatever a client sends, a cursor either decodes into values the
query can use as they are or is refused with a 422 naming ``cursor``.

Cursors are not signed. A key holds only the position of a row in a list the caller may read
anyway (and every query is bound to the caller's tenant), so a forged cursor can do no more
than start a page somewhere the caller could have paged to; signing would tie every cursor
to the secret key, and rotating that key would then break every list a client is paging.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from casedesk.kit.errors import InvalidInput

K = TypeVar("K")
MAX_CURSOR_CHARS = 512


class CursorCodec(Generic[K]):
    """Encodes and decodes the cursors of one list.

    ``key_type`` is the runtime form of ``K``, a tuple type such as
    ``tuple[Instant, uuid.UUID]``.
    """

    def __init__(self, kind: str, key_type: Any) -> None:
        self.kind = kind
        self._adapter: TypeAdapter[tuple[str, K]] = TypeAdapter(tuple[str, key_type])

    def encode(self, key: K) -> str:
        raw = self._adapter.dump_json((self.kind, key))
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> K:
        refused = InvalidInput("cursor is not one this list returned", field="cursor")
        if len(cursor) > MAX_CURSOR_CHARS:
            raise refused
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            kind, key = self._adapter.validate_json(raw)
        except (ValidationError, ValueError, binascii.Error):
            raise refused from None
        if kind != self.kind:
            raise refused
        return key
