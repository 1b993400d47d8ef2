"""Engine and session factory: SQLite tuned for durability (WAL, synchronous=FULL), or
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

POOL_CONNECTIONS = 40  # at most, per process and database
POOL_IDLE = 10  # kept open when idle


class StoreSession(Session):
    """The sync session behind every store session: commit hooks (e.g. the idempotency
    record written in the same transaction as a request's first write, app/limits.py) listen
    on this class, so they never see sessions of other engines."""


class Database:
    """The store's engine plus the one writer lock.

    SQLite allows one writer at a time; taking an asyncio lock around every write transaction
    serialises writers inside the process instead of letting them fight over the file lock
    (writers of other processes wait on the file lock itself, ``busy_timeout``). The
    in-memory state follows the commits through the change feed (app/services/changes.py).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        if not self.is_sqlite or (parsed.database and parsed.database != ":memory:"):
            # Connections open on demand up to POOL_CONNECTIONS, enough for every request the
            # service handles at once (settings.max_concurrent_requests) to hold one.
            kwargs.update(pool_size=POOL_IDLE, max_overflow=POOL_CONNECTIONS - POOL_IDLE)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=StoreSession
        )
        self.write_lock = asyncio.Lock()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it is acknowledged, so acknowledged writes survive a crash.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
