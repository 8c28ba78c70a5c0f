"""Column types that behave the same on SQLite, PostgreSQL and MariaDB/MySQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime everywhere.

    PostgreSQL stores ``timestamptz``; MariaDB/MySQL and SQLite store naive UTC with
    microseconds (``DATETIME(6)`` on MySQL) and get the zone back on load.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class LongText(TypeDecorator[str]):
    """Text as long as the API accepts, on every database.

    MariaDB/MySQL's ``TEXT`` holds 65,535 bytes, less than a 65,536-character comment of
    multi-byte characters, so there it is ``MEDIUMTEXT`` (16 MiB); elsewhere it is ``TEXT``.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.MEDIUMTEXT())
        return dialect.type_descriptor(Text())


def exact_string(length: int) -> TypeEngine[str]:
    """A VARCHAR compared character for character on every database.

    MariaDB/MySQL compare strings without regard to case by default (``utf8mb4_general_ci``),
    so an id ``ABC`` would collide with ``abc``; there the column is ``utf8mb4_bin``. That
    collation still ignores trailing spaces: whoever needs them keeps a digest instead.
    """
    exact = mysql.VARCHAR(length, collation=EXACT_COLLATION)
    return String(length).with_variant(exact, "mysql", "mariadb")


EXACT_COLLATION = "utf8mb4_bin"
