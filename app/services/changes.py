"""The change feed: how every process serving one store learns of the writes of the others.

Each process keeps the catalogue, the vector indexes and the collaboration graph in memory,
derived from the store (app/services/derived.py). A write that changes what they derive
from records, in its own transaction, *which* organisations and collaborations it touched
(:func:`record_changes`): one ``state_changes`` row each, numbered in commit order. Every
process applies the rows after the last one it applied by reading those records again
(``DerivedState.catch_up``): right after its own writes (so a caller reads what it wrote) and
every ``MULTIHELIX_STATE_SYNC_INTERVAL_S`` for the writes of other processes: the other
workers of ``multihelix serve --workers N``, other machines on the same PostgreSQL, a
``multihelix import`` running beside the service.

Reading the record again, instead of shipping the change, makes applying an entry
idempotent and order-free: whatever happened before, the state ends as the store is.

Numbers are handed out in commit order: SQLite has one writer at a time, and on PostgreSQL
the insert takes a transaction-level advisory lock, held until the commit, before it draws
its number. A reader therefore never sees entry n + 1 committed before entry n, and never
skips one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import models as m
from app.store.database import Database
from app.store.models import utcnow

# pg_advisory_xact_lock key of the feed ("MHSC"); any other 64-bit number would do.
_PG_LOCK_KEY: Final = 0x4D48_5343
# Entries older than this are pruned; a process that has not caught up for half of it reads
# the whole store again instead (it may have missed pruned entries).
KEEP_FOR: Final = timedelta(hours=24)
# Entries read (and applied) per round.
READ_CHUNK: Final = 5_000


@dataclass(frozen=True, slots=True)
class Changes:
    """What a run of entries touched, the number of the last entry, and whether more
    entries may follow (the run was as long as asked for)."""

    last_seq: int
    organisations: frozenset[int]
    collaborations: frozenset[int]
    more: bool


async def record_changes(
    session: AsyncSession,
    *,
    organisations: Iterable[int] = (),
    collaborations: Iterable[int] = (),
) -> None:
    """Append one entry per organisation and per collaboration a write created, changed or
    deleted, inside the write's transaction (call it last, just before the commit)."""
    org_ids = sorted(set(organisations))
    collab_ids = sorted(set(collaborations))
    if not org_ids and not collab_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    now = utcnow()
    rows = [{"organisation_id": i, "collaboration_id": None, "at": now} for i in org_ids] + [
        {"organisation_id": None, "collaboration_id": i, "at": now} for i in collab_ids
    ]
    await session.execute(insert(m.StateChange), rows)


async def last_seq(session: AsyncSession) -> int:
    """The number of the newest entry (0 for an empty feed)."""
    return int(await session.scalar(select(func.coalesce(func.max(m.StateChange.seq), 0))) or 0)


async def read_changes(db: Database, after: int, limit: int = READ_CHUNK) -> Changes | None:
    """The next ``limit`` entries after ``after``, or None if there are none."""
    table = m.StateChange.__table__
    async with db.read() as session:
        rows: Sequence[tuple[int, int | None, int | None]] = (
            await session.execute(
                select(table.c.seq, table.c.organisation_id, table.c.collaboration_id)
                .where(table.c.seq > after)
                .order_by(table.c.seq)
                .limit(limit)
            )
        ).all()
    if not rows:
        return None
    return Changes(
        last_seq=rows[-1][0],
        organisations=frozenset(r[1] for r in rows if r[1] is not None),
        collaborations=frozenset(r[2] for r in rows if r[2] is not None),
        more=len(rows) == limit,
    )


async def prune_changes(db: Database) -> int:
    """Delete entries older than :data:`KEEP_FOR`, always keeping the newest (it carries the
    count on, and the indexes' fingerprint names it). Returns how many went."""
    change = m.StateChange
    cutoff = utcnow() - KEEP_FOR
    async with db.write_lock, db.sessions() as session, session.begin():
        newest = await last_seq(session)
        result = await session.execute(
            delete(change).where(change.at < cutoff, change.seq < newest)
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
