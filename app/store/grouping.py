"""Group commit: concurrent writes of one kind share a transaction, a commit and what follows.

Each write transaction pays fixed costs besides its rows: the writer lock, a commit (an fsync
with ``synchronous=FULL``), and, in the service, catching the in-memory state up and reading
the result back. Sixteen clients registering organisations one at a time paid them sixteen
times for what one transaction could hold, on the same two cores the model needs.

``GroupCommit.submit`` queues a write and waits. One task at a time drains the queue: it takes
every write waiting (up to ``max_items`` of their rows), runs them in one transaction, commits,
runs ``finish`` once for the group (catch up, read back), and hands each caller its own result.
Writes that arrive meanwhile form the next group, so a lone write waits for nothing and a busy
store groups by itself.

Each write stays all or nothing on its own: when a group's transaction fails, every write in it
is tried again alone, so only the one at fault gets the error (a duplicate external id, say)
and the others commit.

A write made while :data:`own_transaction` is set (a request with an ``Idempotency-Key``,
whose record session hooks write into the request's own transaction, app/limits.py) runs alone
in the caller's task.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.store.database import Database

log = logging.getLogger("multihelix")

Item = TypeVar("Item")
Written = TypeVar("Written")
Result = TypeVar("Result")

own_transaction: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "multihelix_own_transaction", default=False
)
"""True while serving a request whose writes must commit in a transaction of their own."""


@dataclass(slots=True)
class _Waiting(Generic[Item, Result]):
    item: Item
    size: int
    future: asyncio.Future[Result] = field(repr=False)


class GroupCommit(Generic[Item, Written, Result]):
    """Writes of one kind, committed in groups.

    ``write(session, items)`` adds the items' rows inside the open transaction and returns one
    value per item (e.g. the new ids); ``finish(written)`` runs after the commit, once per
    group, and returns one result per item. ``size(item)`` counts an item's rows against
    ``max_items`` (a group always takes at least one write, whatever its size).
    """

    def __init__(
        self,
        db: Database,
        write: Callable[[AsyncSession, Sequence[Item]], Awaitable[list[Written]]],
        finish: Callable[[list[Written]], Awaitable[list[Result]]],
        *,
        size: Callable[[Item], int] = lambda _item: 1,
        max_items: int = 500,
    ) -> None:
        self.db = db
        self._write = write
        self._finish = finish
        self._size = size
        self.max_items = max_items
        self._waiting: list[_Waiting[Item, Result]] = []
        self._draining: asyncio.Task[None] | None = None
        self.groups = 0  # transactions committed, for tests and benchmarks

    async def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; its result once the group finished.

        Raises what writing ``item`` alone raised. A caller cancelled while waiting does not
        withdraw its write: it may still commit.
        """
        if own_transaction.get():
            (result,) = await self._commit([item])
            return result
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(item, self._size(item), future))
        if self._draining is None or self._draining.done():
            # A fresh context: the group must not run under one caller's context variables.
            self._draining = asyncio.create_task(
                self._drain(), name="group-commit", context=contextvars.Context()
            )
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            group = self._take()
            try:
                await self._settle_group(group)
            except BaseException as error:
                # Cancelled (the loop is closing) or a bug: nobody may be left waiting.
                for waiting in (*group, *self._waiting):
                    _settle(waiting.future, error=error)
                self._waiting = []
                raise

    async def _settle_group(self, group: list[_Waiting[Item, Result]]) -> None:
        written = await self._written(group)
        if not written:
            return
        try:
            # Committed: a failure from here on is reported, never written again.
            results = await self._finish([one for _, one in written])
        except Exception as error:
            for waiting, _ in written:
                _settle(waiting.future, error=error)
            return
        for (waiting, _), result in zip(written, results, strict=True):
            _settle(waiting.future, result=result)

    async def _written(
        self, group: list[_Waiting[Item, Result]]
    ) -> list[tuple[_Waiting[Item, Result], Written]]:
        """Commit the group in one transaction or, when that fails, each write alone; the
        committed writes with what ``write`` returned for them. The callers of the others
        get their errors."""
        try:
            written = await self._transaction([waiting.item for waiting in group])
        except Exception as error:
            if len(group) == 1:
                _settle(group[0].future, error=error)
                return []
            log.info("a group of %d writes failed; writing each alone", len(group))
            alone = []
            for waiting in group:
                try:
                    (one,) = await self._transaction([waiting.item])
                except Exception as failure:
                    _settle(waiting.future, error=failure)
                else:
                    alone.append((waiting, one))
            return alone
        return list(zip(group, written, strict=True))

    def _take(self) -> list[_Waiting[Item, Result]]:
        taken, rows = 0, 0
        for waiting in self._waiting:
            if taken and rows + waiting.size > self.max_items:
                break
            taken += 1
            rows += waiting.size
        group, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return group

    async def _commit(self, items: list[Item]) -> list[Result]:
        return await self._finish(await self._transaction(items))

    async def _transaction(self, items: list[Item]) -> list[Written]:
        db = self.db
        async with db.write_lock, db.sessions() as session, session.begin():
            written = await self._write(session, items)
        self.groups += 1
        return written


def _settle(
    future: asyncio.Future[Result],
    *,
    result: Result | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the caller was cancelled
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
