"""Limits at the HTTP edge: per-key rate limits, overload protection and time limits on expensive
routes, and Idempotency-Key handling whose record commits atomically with the request's write.

Middleware order (outermost first): :class:`RateLimit`, :class:`LoadShedding`, the body guard,
:class:`Idempotency`, :class:`ExpensiveRoutes`, the routes. Starlette puts the middleware added
last outermost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, Conflict
from app.store.database import Database, StoreSession
from app.store.grouping import own_transaction
from app.store.limits_models import IdempotencyRecord
from app.store.models import utcnow

log = logging.getLogger("multihelix")

# Never rate limited: liveness probes and the documentation console.
EXEMPT_PATHS: Final = frozenset(
    {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)

# (method, path pattern) of requests that rank partners: CPU-heavy, so bounded in number and time.
EXPENSIVE_ROUTES: Final = (
    ("GET", re.compile(r"^/v1/organisations/[^/]+/matches$")),
    ("POST", re.compile(r"^/v1/search$")),
)

IDEMPOTENCY_TTL: Final = timedelta(hours=24)
IDEMPOTENT_METHODS: Final = frozenset({"POST", "PATCH"})
# Writes to these tables alone do not make a request "applied" (bookkeeping, not user data).
IDEMPOTENCY_IGNORED_TABLES: Final = frozenset({"idempotency_records", "audit_log"})
# Where a replay after a lost response points to, for a request that created exactly one row.
RESOURCE_LOCATIONS: Final = {
    "organisations": "/v1/organisations/{id}",
    "collaborations": "/v1/collaborations/{id}",
}
_KEY_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
_MAX_STORED_BODY: Final = 8_000_000
_MAX_CREATED_ROWS: Final = 1000
_PURGE_EVERY_S: Final = 3600.0


# -- rate limits ---------------------------------------------------------------------------------


class TokenBuckets:
    """One token bucket per caller: ``rate`` tokens a second, at most ``burst`` saved up.

    >>> now = [0.0]
    >>> buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])
    >>> [buckets.take("k") for _ in range(4)]  # three at once, then wait half a second
    [0.0, 0.0, 0.0, 0.5]
    >>> now[0] = 0.5
    >>> buckets.take("k"), buckets.take("other")
    (0.0, 0.0)
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_callers: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_callers = max_callers
        self._clock = clock
        # caller -> (tokens, time of the last update); insertion order = least recently seen first
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str) -> float:
        """Take a token: 0.0 if the request may go, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[caller] = (tokens, now)
        if len(self._buckets) > self.max_callers:
            # Memory stays bounded whatever keys are sent; an evicted caller starts full again.
            del self._buckets[next(iter(self._buckets))]
        return wait


def caller_of(scope: Scope) -> str:
    """Who a request counts against: its API key (hashed), else its client address."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:32]
    client = scope.get("client")
    return f"addr:{client[0] if client else '-'}"


class RateLimit:
    """429 with ``Retry-After`` once a caller exceeds its token bucket (per process)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        per_second: float,
        burst: int,
        exempt: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.buckets = TokenBuckets(per_second, burst) if per_second > 0 else None
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets is None or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(caller_of(scope))
        if wait > 0:
            await send_problem(
                send,
                429,
                "Too many requests",
                f"this API key may make {self.buckets.rate:g} requests per second "
                f"(bursts of {self.buckets.burst:g}); retry later",
                retry_after=wait,
            )
            return
        await self.app(scope, receive, send)


# -- overload protection and time limits -----------------------------------------------------------


class LoadShedding:
    """Bounds all work in the process: at most ``max_concurrent`` requests run, ``max_queued``
    wait (each at most ``queue_timeout_s``), the rest get 503 with ``Retry-After`` at once.

    Without it an overloaded server queues requests until database connections run out and
    requests fail after the pool's timeout; with it clients are told early to come back. A
    database connection pool timeout that still happens is answered 503 as well, not 500.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        max_queued: int,
        queue_timeout_s: float,
        exempt: Iterable[str] = EXEMPT_PATHS,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.queue_timeout_s = queue_timeout_s
        self.exempt = frozenset(exempt)
        self.running = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        if self.running >= self.max_concurrent and self.waiting >= self.max_queued:
            await send_problem(
                send, 503, "Service overloaded", "too many requests in progress", retry_after=1
            )
            return
        self.waiting += 1
        try:
            async with asyncio.timeout(self.queue_timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            await send_problem(
                send,
                503,
                "Service overloaded",
                f"the request waited {self.queue_timeout_s:g} s for its turn",
                retry_after=1,
            )
            return
        finally:
            self.waiting -= 1
        self.running += 1
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except SQLAlchemyTimeoutError:
            if started:
                raise
            log.warning("%s %s: no database connection in time", scope["method"], scope["path"])
            await send_problem(
                send, 503, "Service overloaded", "the store is too busy", retry_after=1
            )
        finally:
            self.running -= 1
            self._slots.release()


class ExpensiveRoutes:
    """Bounds ranking work: at most ``max_concurrent`` requests run, ``max_queued`` wait, the
    rest get 503 at once; a request that takes longer than ``timeout_s`` (waiting included)
    gets 503 at its deadline.

    Ranking runs in a worker thread that cannot be interrupted, so a timed-out request's work
    goes on in the background, still holding its slot: the bound on concurrent ranking holds
    while clients get a timely answer.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        max_queued: int,
        timeout_s: float,
        routes: Iterable[tuple[str, re.Pattern[str]]] = EXPENSIVE_ROUTES,
    ) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.timeout_s = timeout_s
        self.routes = tuple(routes)
        self.running = 0
        self.waiting = 0
        self._slots: asyncio.Semaphore | None = None
        self._background: set[asyncio.Task[None]] = set()

    def is_expensive(self, scope: Scope) -> bool:
        method, path = scope.get("method"), scope.get("path", "")
        return any(method == m and pattern.match(path) for m, pattern in self.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.is_expensive(scope):
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        if self.running >= self.max_concurrent and self.waiting >= self.max_queued:
            await send_problem(
                send, 503, "Service overloaded", "too many ranking requests queued", retry_after=1
            )
            return
        self.waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            await send_problem(
                send,
                503,
                "Service overloaded",
                f"no ranking slot became free within {self.timeout_s:g} s",
                retry_after=1,
            )
            return
        finally:
            self.waiting -= 1
        self.running += 1

        responded = False
        abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if abandoned:
                return
            responded = True
            await send(message)

        async def run() -> None:
            try:
                await self.app(scope, receive, guarded_send)
            finally:
                self.running -= 1
                assert self._slots is not None
                self._slots.release()

        task = asyncio.create_task(run())
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done:
            task.result()  # re-raise what the route raised, for the error middleware
            return
        if responded:  # the response is already streaming: let it finish
            await task
            return
        abandoned = True
        self._background.add(task)
        task.add_done_callback(self._finished_in_background)
        log.warning(
            "%s %s took longer than %.1f s: answered 503, finishing in the background",
            scope["method"],
            scope["path"],
            self.timeout_s,
        )
        await send_problem(
            send,
            503,
            "Service overloaded",
            f"the request took longer than {self.timeout_s:g} s",
            retry_after=1,
        )

    def _finished_in_background(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("abandoned request failed", exc_info=task.exception())


# -- idempotency ---------------------------------------------------------------------------------


@dataclass
class _IdempotentRequest:
    """The request being served with an Idempotency-Key, seen by the session hooks."""

    scope: str
    key: str
    fingerprint: str
    method: str
    path: str
    recorded: bool = False  # its record committed together with a write
    created: list[list[Any]] = field(default_factory=list)


_current: ContextVar[_IdempotentRequest | None] = ContextVar(
    "multihelix_idempotent_request", default=None
)

_WROTE = "multihelix.idempotency.wrote"
_CREATED = "multihelix.idempotency.created"
_PENDING = "multihelix.idempotency.pending"


def _counts(table_name: str | None) -> bool:
    return table_name is not None and table_name not in IDEMPOTENCY_IGNORED_TABLES


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if _current.get() is None:
        return
    created = session.info.setdefault(_CREATED, [])
    for obj in session.new:
        table = getattr(obj, "__table__", None)
        name = getattr(table, "name", None)
        if not _counts(name):
            continue
        session.info[_WROTE] = True
        keys = list(table.primary_key.columns) if table is not None else []
        if len(keys) == 1 and keys[0].name == "id" and len(created) < _MAX_CREATED_ROWS:
            created.append([name, getattr(obj, "id", None)])
    for obj in (*session.dirty, *session.deleted):
        if _counts(getattr(getattr(obj, "__table__", None), "name", None)):
            session.info[_WROTE] = True


def _do_orm_execute(state: ORMExecuteState) -> None:
    if _current.get() is None or not (state.is_insert or state.is_update or state.is_delete):
        return
    if _counts(getattr(getattr(state.statement, "table", None), "name", None)):
        state.session.info[_WROTE] = True


def _before_commit(session: Session) -> None:
    request = _current.get()
    if request is None or request.recorded:
        return
    if session.new or session.dirty or session.deleted:
        session.flush()  # so that pending rows are seen (and get their ids) before the check
    if not session.info.get(_WROTE):
        return
    now = utcnow()
    record = IdempotencyRecord
    session.execute(
        delete(record).where(
            record.scope == request.scope,
            record.key == request.key,
            record.created_at < now - IDEMPOTENCY_TTL,
        )
    )
    taken = session.execute(
        select(record.fingerprint).where(record.scope == request.scope, record.key == request.key)
    ).first()
    if taken is not None:
        raise Conflict("this Idempotency-Key was used by another request at the same time")
    created = list(session.info.get(_CREATED, []))
    try:
        session.execute(
            insert(record).values(
                scope=request.scope,
                key=request.key,
                fingerprint=request.fingerprint,
                method=request.method,
                path=request.path[:2000],
                state="applied",
                created_rows=created,
                location=_location(request, created),
                created_at=now,
            )
        )
    except IntegrityError:
        # Another process committed the same key first: this write must not happen twice.
        raise Conflict(
            "this Idempotency-Key was used by another request at the same time"
        ) from None
    request.created = created
    session.info[_PENDING] = request


def _after_commit(session: Session) -> None:
    request = session.info.pop(_PENDING, None)
    if request is not None:
        request.recorded = True
    session.info.pop(_WROTE, None)
    session.info.pop(_CREATED, None)


def _after_rollback(session: Session) -> None:
    for name in (_PENDING, _WROTE, _CREATED):
        session.info.pop(name, None)


def _location(request: _IdempotentRequest, created: list[list[Any]]) -> str | None:
    known = [(t, i) for t, i in created if t in RESOURCE_LOCATIONS and i is not None]
    if len(known) == 1:
        table, row_id = known[0]
        return RESOURCE_LOCATIONS[table].format(id=row_id)
    if request.method == "PATCH" and not created:
        return request.path
    return None


def _install_session_hooks() -> None:
    hooks: list[tuple[str, Callable[..., None]]] = [
        ("after_flush", _after_flush),
        ("do_orm_execute", _do_orm_execute),
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ]
    for name, hook in hooks:
        if not event.contains(StoreSession, name, hook):
            event.listen(StoreSession, name, hook)


_install_session_hooks()


class Idempotency:
    """``Idempotency-Key`` on POST and PATCH, scoped per API key, kept 24 hours.

    The same key with the same request replays the first response (status, body,
    ``Location``) without running the route again; with another request it is 409, as is a
    duplicate that arrives while the first is still running. Only requests that changed the
    store are remembered (a 4xx that wrote nothing may simply be retried). The record is
    inserted by a session hook in the transaction of the request's first write, so a crash can
    never leave a write without its record or the reverse; the response is stored before it is
    sent. When the process died between the two, a replay answers 303 See Other to the created
    resource (200 with the created rows when there is no single one) and writes nothing.
    """

    def __init__(self, app: ASGIApp, *, methods: Iterable[str] = IDEMPOTENT_METHODS) -> None:
        self.app = app
        self.methods = frozenset(methods)
        self.in_flight: set[tuple[str, str]] = set()
        self._last_purge = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in self.methods:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(b"idempotency-key")
        authorization = headers.get(b"authorization")
        state_ctx = getattr(getattr(scope.get("app"), "state", None), "ctx", None)
        if raw_key is None or authorization is None or state_ctx is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY_PATTERN.match(key):
            await send_problem(
                send,
                400,
                "Bad request",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            )
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        db: Database = state_ctx.db
        caller = hashlib.sha256(b"idempotency\x00" + authorization).hexdigest()
        path = scope["path"]
        query = scope.get("query_string", b"")
        fingerprint = hashlib.sha256(
            b"\x00".join([scope["method"].encode(), path.encode(), query, body])
        ).hexdigest()
        ident = (caller, key)
        if ident in self.in_flight:
            await send_problem(
                send,
                409,
                "Conflict",
                "a request with this Idempotency-Key is still being processed",
            )
            return
        self.in_flight.add(ident)
        try:
            record = await _load_record(db, caller, key)
            if record is not None:
                if record.fingerprint != fingerprint:
                    await send_problem(
                        send,
                        409,
                        "Conflict",
                        "this Idempotency-Key was already used for a different request",
                    )
                else:
                    await _replay(send, record)
                return
            request = _IdempotentRequest(caller, key, fingerprint, scope["method"], path)
            response = _CapturedResponse()
            token = _current.set(request)
            # Its record goes into its own transaction: no group commit (app/store/grouping.py).
            alone = own_transaction.set(True)
            try:
                await self.app(scope, _replaying(body, receive), response.capture(send))
            finally:
                own_transaction.reset(alone)
                _current.reset(token)
            if request.recorded and response.complete:
                await self._store(db, request, response)
        finally:
            self.in_flight.discard(ident)
        await response.forward(send)

    async def _store(
        self, db: Database, request: _IdempotentRequest, response: _CapturedResponse
    ) -> None:
        """Keep the response for replays, before the client sees it."""
        body = response.body
        record = IdempotencyRecord
        values: dict[str, Any] = {"status_code": response.status}
        if len(body) <= _MAX_STORED_BODY:
            values.update(state="completed", response_headers=response.kept_headers())
            values["response_body"] = body
        now = time.monotonic()
        async with db.write_lock, db.sessions() as session, session.begin():
            await session.execute(
                update(record)
                .where(record.scope == request.scope, record.key == request.key)
                .values(**values)
            )
            if now - self._last_purge > _PURGE_EVERY_S:
                self._last_purge = now
                await session.execute(
                    delete(record).where(record.created_at < utcnow() - IDEMPOTENCY_TTL)
                )


@dataclass
class _CapturedResponse:
    """The route's response, held back until it is stored."""

    start: Message | None = None
    chunks: list[bytes] = field(default_factory=list)
    complete: bool = False
    passthrough: list[Message] = field(default_factory=list)

    @property
    def status(self) -> int:
        return int(self.start["status"]) if self.start is not None else 500

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def capture(self, send: Send) -> Send:
        async def captured(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.start = message
            elif message["type"] == "http.response.body":
                self.chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.complete = True
            else:
                self.passthrough.append(message)

        return captured

    def kept_headers(self) -> list[list[str]]:
        if self.start is None:
            return []
        kept = (b"content-type", b"location")
        return [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in self.start.get("headers", [])
            if name.lower() in kept
        ]

    async def forward(self, send: Send) -> None:
        if self.start is None:
            return
        await send(self.start)
        await send({"type": "http.response.body", "body": self.body, "more_body": False})
        for message in self.passthrough:
            await send(message)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _load_record(db: Database, caller: str, key: str) -> IdempotencyRecord | None:
    async with db.read() as session:
        record = await session.get(IdempotencyRecord, (caller, key))
    if record is None:
        return None
    created = record.created_at
    created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
    if created < datetime.now(UTC) - IDEMPOTENCY_TTL:
        return None
    return record


async def _replay(send: Send, record: IdempotencyRecord) -> None:
    replayed = [(b"idempotent-replayed", b"true")]
    if record.state == "completed" and record.status_code is not None:
        headers = [
            (str(name).encode("latin-1"), str(value).encode("latin-1"))
            for name, value in (record.response_headers or [])
        ]
        await _send(send, record.status_code, headers + replayed, record.response_body or b"")
        return
    # Applied, but the process stopped before the response was stored: report, never redo.
    body: dict[str, Any] = {
        "outcome": "applied",
        "detail": "this request was applied earlier; its response was not kept",
        "location": record.location,
        "created": [{"table": t, "id": i} for t, i in record.created_rows or []],
    }
    headers = [(b"content-type", b"application/json"), *replayed]
    if record.location:
        headers.append((b"location", record.location.encode("latin-1")))
    status = 303 if record.location else 200
    await _send(send, status, headers, json.dumps(body).encode())


# -- responses -----------------------------------------------------------------------------------


async def send_problem(
    send: Send, status: int, title: str, detail: str, *, retry_after: float | None = None
) -> None:
    """An RFC 9457 problem response, sent before any route runs."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await _send(send, status, headers, body.encode())


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
