"""Column types of the store that hold a meaning the databases disagree on: points in time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive value is taken to be UTC already.

    >>> from datetime import timedelta, timezone
    >>> as_utc(datetime(2026, 11, 21, 11, 0, tzinfo=timezone(timedelta(hours=1)))).isoformat()
    '2026-11-21T10:00:00+00:00'
    >>> as_utc(datetime(2026, 11, 21, 10, 0)).isoformat()
    '2026-11-21T10:00:00+00:00'
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: written as UTC, always read back timezone-aware in UTC.

    PostgreSQL keeps the instant (``timestamptz``), but SQLite has no time zone type:
    SQLAlchemy writes the wall-clock digits without the offset and reads naive values back.
    Converting to UTC on the way in keeps SQLite's digits meaning UTC (and its text ordering
    chronological); tagging UTC on the way out gives every reader, and so every API response,
    an offset on both databases. The DDL is ``DateTime(timezone=True)``'s, so the migrations
    are unchanged.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)
