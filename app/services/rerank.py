"""Batch re-ranking runs: every organisation's top partners computed with the API's ranking
code, committed chunk by chunk under a lease, published atomically, resumed after a crash,
served to the matches endpoint while fresh, exported for organisers, erased on request.

A run's life: take the lease -> bring stale embeddings up to date -> load the store into a
private snapshot and hash it (the input snapshot marker) -> plan which organisations to rank
-> rank chunk after chunk (locally or on Ray), each committed with its lists, its chunk row and
the lease renewal in one transaction -> copy the unaffected lists (``only_changed``) and flip
the published pointer in one transaction -> prune old runs -> release the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import ctypes
import hashlib
import json
import logging
import math
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
import weakref
import zlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    Float,
    LargeBinary,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from threadpoolctl import threadpool_limits

from app.errors import Conflict, NotFound, Unprocessable
from app.services.changes import record_changes
from app.services.context import ServiceContext
from app.services.derived import (
    DerivedState,
    EmbeddingItem,
    embedding_items,
    load_organisations,
)
from app.store import models as m
from app.store.database import Database
from app.store.models import utcnow
from app.store.rerank_models import (
    RerankChunk,
    RerankList,
    RerankRun,
    RerankState,
)
from matching import batch as batch_ranker
from matching import ranker
from matching.batch import BatchState, ChunkResult
from matching.ranker import MatchingState, MatchQuery, ScoredMatch

log = logging.getLogger("multihelix")

DEFAULT_TOP_K = 50
MAX_TOP_K = 100
DEFAULT_CHUNK_SIZE = 500
# A lease outlives a slow chunk by far; a crashed holder on another machine blocks for this long.
LEASE_TTL = timedelta(minutes=10)
KEEP_PUBLISHED = 2
ENGINES = ("local", "ray")
_STATE_ID = 1
_IN_BATCH = 5_000  # ids per IN (...) list: well below SQLite's variable limit


@dataclass(frozen=True)
class RunOptions:
    top_k: int = DEFAULT_TOP_K
    only_changed: bool = False
    engine: str = "local"
    ray_address: str | None = None
    ray_workers: int | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    # Chunks the local engine ranks at once (LocalEngine: more than one in forked worker
    # processes). One for runs started over HTTP: ranked in a thread of the server, which is
    # never forked; the command line uses every core.
    workers: int = 1

    def validate(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise Unprocessable(f"top must be between 1 and {MAX_TOP_K}")
        if not 1 <= self.workers <= 256:
            raise Unprocessable("workers must be between 1 and 256")
        if not 1 <= self.chunk_size <= 100_000:
            raise Unprocessable("chunk size must be between 1 and 100000")
        if self.engine not in ENGINES:
            raise Unprocessable(f"engine must be one of {', '.join(ENGINES)}")
        if self.engine == "ray" and not ray_available():
            raise Unprocessable("the ray engine needs the optional 'ray' extra installed")

    def query(self) -> MatchQuery:
        # Explanations are rebuilt when a list is served: they are text, and cost more to
        # store than to recompute for the few items shown.
        return MatchQuery(limit=self.top_k, explain=False)


@dataclass(frozen=True)
class Progress:
    run_id: int
    done_chunks: int
    total_chunks: int
    done_subjects: int
    total_subjects: int
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


# -- reading runs ---------------------------------------------------------------------------
async def list_runs(db: Database, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(RerankRun))
        rows = (
            await session.scalars(
                select(RerankRun).order_by(RerankRun.id.desc()).limit(limit).offset(offset)
            )
        ).all()
        current = await _published_id(session)
    return [_run_view(r, current) for r in rows], int(total or 0)


async def get_run(db: Database, run_id: int) -> dict[str, Any]:
    async with db.read() as session:
        row = await session.get(RerankRun, run_id)
        if row is None:
            raise NotFound(f"re-ranking run {run_id} does not exist")
        current = await _published_id(session)
    return _run_view(row, current)


_INTERNAL_PARAMETERS = frozenset({"components", "popular_band", "verify_from"})
"""Kept with a run for later runs, not shown: the stored component names, the degree order
its popular candidates came from (``batch.popular_band``), and where its plan's checked part
starts (``_Plan``)."""


def _run_view(row: RerankRun, current: int | None) -> dict[str, Any]:
    total = row.total_subjects
    return {
        "id": row.id,
        "status": row.status,
        "is_current": row.id == current,
        "engine": row.engine,
        "top_k": row.top_k,
        "only_changed": row.only_changed,
        "base_run_id": row.base_run_id,
        "parameters": {
            k: v for k, v in (row.parameters or {}).items() if k not in _INTERNAL_PARAMETERS
        },
        "model_versions": row.model_versions or {},
        "snapshot_marker": row.snapshot_marker,
        "started_at": row.started_at,
        "updated_at": row.updated_at,
        "finished_at": row.finished_at if row.finished_at else None,
        "requested_by": row.requested_by,
        "error": row.error,
        "progress": {
            "done_chunks": row.done_chunks,
            "total_chunks": row.total_chunks,
            "done_organisations": row.done_subjects,
            "total_organisations": total,
            "copied_organisations": row.copied_subjects,
            "fraction": (row.done_subjects / total) if total else (1.0 if row.finished_at else 0.0),
        },
    }


async def _published_id(session: AsyncSession) -> int | None:
    return await session.scalar(
        select(RerankState.published_run_id).where(RerankState.id == _STATE_ID)
    )


# -- the lease ------------------------------------------------------------------------------
def new_owner() -> str:
    """Who holds a lease: host and process (so a dead holder on this host is detected)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _holder_is_gone(owner: str) -> bool:
    """True when ``owner`` was a process on this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def _state_row(session: AsyncSession) -> RerankState:
    """The single state row, locked for the transaction (created on first use)."""
    row = await session.scalar(
        select(RerankState).where(RerankState.id == _STATE_ID).with_for_update()
    )
    if row is None:
        row = RerankState(id=_STATE_ID)
        session.add(row)
        await session.flush()
    return row


def _lease_is_held(state: RerankState, owner: str | None, now: datetime) -> bool:
    if state.lease_owner is None or state.lease_owner == owner:
        return False
    if state.lease_expires_at is not None and state.lease_expires_at <= now:
        return False
    return not _holder_is_gone(state.lease_owner)


async def begin_run(
    db: Database, options: RunOptions, *, owner: str, requested_by: str | None
) -> tuple[int, bool]:
    """Take the lease and return (run id, resumed): the interrupted run with the same
    options when there is one, else a new run. Conflict (409) when another run holds it."""
    options.validate()
    now = datetime.now(UTC)
    for attempt in range(2):
        try:
            async with db.write_lock, db.sessions() as session, session.begin():
                state = await _state_row(session)
                if _lease_is_held(state, owner, now):
                    raise Conflict(
                        f"re-ranking run {state.lease_run_id} is running; try again when it "
                        "has finished",
                        errors=[{"running_run_id": state.lease_run_id}],
                    )
                interrupted = await session.scalar(
                    select(RerankRun)
                    .where(
                        RerankRun.status == "running",
                        RerankRun.top_k == options.top_k,
                        RerankRun.only_changed == options.only_changed,
                        RerankRun.chunk_size == options.chunk_size,
                    )
                    .order_by(RerankRun.id.desc())
                    .limit(1)
                )
                # Runs left running with other options can never finish: close them.
                await session.execute(
                    update(RerankRun)
                    .where(
                        RerankRun.status == "running",
                        RerankRun.id != (interrupted.id if interrupted else -1),
                    )
                    .values(status="failed", error="interrupted; superseded by a later run")
                )
                if interrupted is not None:
                    run_id, resumed = interrupted.id, True
                    interrupted.engine = options.engine
                    interrupted.updated_at = now
                else:
                    run = RerankRun(
                        status="running",
                        engine=options.engine,
                        top_k=options.top_k,
                        only_changed=options.only_changed,
                        parameters={},
                        model_versions={},
                        chunk_size=options.chunk_size,
                        total_chunks=0,
                        done_chunks=0,
                        total_subjects=0,
                        done_subjects=0,
                        copied_subjects=0,
                        requested_by=requested_by,
                        started_at=now,
                        updated_at=now,
                    )
                    session.add(run)
                    await session.flush()
                    run_id, resumed = run.id, False
                state.lease_owner = owner
                state.lease_run_id = run_id
                state.lease_expires_at = now + LEASE_TTL
            return run_id, resumed
        except IntegrityError:
            if attempt:  # two processes created the state row at once; the loser retries
                raise
    raise AssertionError("unreachable")


class LeaseLost(RuntimeError):
    """Another process took the lease over (ours had expired): stop without writing."""


async def _check_and_renew(session: AsyncSession, owner: str, run_id: int) -> None:
    state = await _state_row(session)
    if state.lease_owner != owner or state.lease_run_id != run_id:
        raise LeaseLost(f"the lease of run {run_id} was taken over by {state.lease_owner}")
    state.lease_expires_at = datetime.now(UTC) + LEASE_TTL


async def _release(db: Database, owner: str) -> None:
    async with db.write_lock, db.sessions() as session, session.begin():
        state = await _state_row(session)
        if state.lease_owner == owner:
            state.lease_owner = None
            state.lease_run_id = None
            state.lease_expires_at = None


# -- running --------------------------------------------------------------------------------
@dataclass
class RunReport:
    run_id: int
    resumed: bool
    status: str
    ranked: int = 0
    copied: int = 0
    skipped_chunks: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


async def run_rerank(
    ctx: ServiceContext,
    options: RunOptions,
    *,
    requested_by: str | None = None,
    progress: ProgressCallback | None = None,
    private_state: bool = True,
) -> RunReport:
    """Take the lease and run (or resume) one re-ranking run to its publication.

    ``private_state=False`` ranks from ``ctx.derived`` directly: right for a process that
    serves nothing else (the command line), where nothing writes to it during the run.
    """
    owner = new_owner()
    run_id, resumed = await begin_run(ctx.db, options, owner=owner, requested_by=requested_by)
    return await execute_run(
        ctx,
        run_id,
        options,
        owner=owner,
        resumed=resumed,
        progress=progress,
        private_state=private_state,
    )


_BACKGROUND: set[asyncio.Task[Any]] = set()  # keeps started runs referenced until they end


async def start_background_run(
    ctx: ServiceContext, options: RunOptions, *, requested_by: str | None
) -> dict[str, Any]:
    """Take the lease now (so a conflict is the caller's 409) and run in the background."""
    owner = new_owner()
    run_id, resumed = await begin_run(ctx.db, options, owner=owner, requested_by=requested_by)

    async def work() -> None:
        try:
            await execute_run(ctx, run_id, options, owner=owner, resumed=resumed)
        except Exception:
            log.exception("re-ranking run %d failed", run_id)

    task = asyncio.create_task(work(), name=f"rerank-{run_id}")
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    return await get_run(ctx.db, run_id)


async def execute_run(
    ctx: ServiceContext,
    run_id: int,
    options: RunOptions,
    *,
    owner: str,
    resumed: bool = False,
    progress: ProgressCallback | None = None,
    private_state: bool = True,
) -> RunReport:
    """Run ``run_id`` (whose lease ``owner`` holds) to publication; see the module docstring."""
    report = RunReport(run_id=run_id, resumed=resumed, status="running")
    started = time.perf_counter()
    try:
        t0 = time.perf_counter()
        await refresh_embeddings(ctx)
        report.seconds["embeddings"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        state = ctx.derived.state
        if private_state:
            derived = DerivedState(ctx.derived.encoder, state.scorer, ctx.settings.reference_year)
            await derived.load(ctx.db)
            state = derived.state
        report.seconds["load"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        snapshot = await anyio.to_thread.run_sync(_snapshot_inputs, state, options)
        report.seconds["fingerprints"] = time.perf_counter() - t0

        run_id = await _fix_snapshot(ctx, run_id, options, snapshot, owner)
        report.run_id = run_id

        t0 = time.perf_counter()
        plan = await _plan(ctx, run_id, options, state, snapshot)
        report.seconds["plan"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        ranked, skipped = await _rank_chunks(
            ctx, run_id, options, state, snapshot, plan, owner, progress, started
        )
        report.ranked, report.skipped_chunks = ranked, skipped
        report.seconds["rank"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        report.copied = await _publish(ctx.db, run_id, plan.base_run_id, owner)
        report.seconds["publish"] = time.perf_counter() - t0
        report.status = "published"
        t0 = time.perf_counter()
        await prune_runs(ctx.db)
        report.seconds["prune"] = time.perf_counter() - t0
    except (LeaseLost, asyncio.CancelledError, KeyboardInterrupt):
        raise  # left "running": the next invocation resumes it
    except BaseException as exc:
        await _fail(ctx.db, report.run_id, f"{type(exc).__name__}: {exc}")
        report.status = "failed"
        raise
    finally:
        with contextlib.suppress(Exception):
            await _release(ctx.db, owner)
    report.seconds["total"] = time.perf_counter() - started
    return report


async def _fail(db: Database, run_id: int, error: str) -> None:
    with contextlib.suppress(Exception):
        async with db.write_lock, db.sessions() as session, session.begin():
            await session.execute(
                update(RerankRun)
                .where(RerankRun.id == run_id, RerankRun.status == "running")
                .values(status="failed", error=error[:2000], updated_at=utcnow())
            )


# -- embeddings -----------------------------------------------------------------------------
async def refresh_embeddings(ctx: ServiceContext, *, batch_size: int = 500) -> int:
    """Embed again only the texts whose stored vector is missing or was made from other text
    (or by another model); returns how many organisations changed."""
    encoder_name = ctx.encoder_name
    emb = m.Embedding.__table__
    async with ctx.db.read() as session:
        stored: dict[int, set[tuple[str, int, str]]] = {}
        result = await session.stream(
            select(emb.c.organisation_id, emb.c.field, emb.c.position, emb.c.content_hash)
            .where(emb.c.model == encoder_name)
            .execution_options(yield_per=50_000)
        )
        async for chunk in result.partitions():  # one await per 50,000 rows, not per row
            for org_id, fld, pos, digest in chunk:
                stored.setdefault(org_id, set()).add((fld, pos, digest))
    orgs = await load_organisations(ctx.db)
    stale: list[tuple[dict[str, Any], list[EmbeddingItem]]] = []
    for org in orgs:
        items = embedding_items(org, encoder_name)
        if {(i.field, i.position, i.content_hash) for i in items} != stored.get(org["id"], set()):
            stale.append((org, items))
    for start in range(0, len(stale), batch_size):
        group = stale[start : start + batch_size]
        vectors = await ctx.embed([it for _, items in group for it in items])
        async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
            ids = [org["id"] for org, _ in group]
            await session.execute(delete(m.Embedding).where(m.Embedding.organisation_id.in_(ids)))
            present = set(
                (
                    await session.scalars(
                        select(m.Organisation.id).where(m.Organisation.id.in_(ids))
                    )
                ).all()
            )
            for org, items in group:
                if org["id"] not in present:
                    continue
                for it in items:
                    session.add(
                        m.Embedding(
                            organisation_id=org["id"],
                            field=it.field,
                            position=it.position,
                            model=encoder_name,
                            content_hash=it.content_hash,
                            vector=np.ascontiguousarray(vectors[it], dtype=np.float32).tobytes(),
                        )
                    )
            await record_changes(session, organisations=present)
        await ctx.derived.catch_up(ctx.db)
    if stale:
        log.info("re-ranking: embedded the texts of %d organisations again", len(stale))
    return len(stale)


# -- the snapshot ---------------------------------------------------------------------------
@dataclass
class _Snapshot:
    own: dict[int, str]  # per organisation: its own inputs' fingerprint
    marker: str  # the whole input
    context: str  # what every list also depends on: model, encoder, parameters, regime
    components: tuple[str, ...] | None = None


def context_marker(state: MatchingState, top_k: int) -> str:
    """Hash of what every stored list depends on besides the organisations themselves."""
    scorer = state.scorer
    regime = "exhaustive" if len(state.catalog) <= ranker.EXHAUSTIVE_LIMIT else "candidates"
    defaults = MatchQuery(limit=top_k)
    text = json.dumps(
        {
            "scorer": [
                scorer.version,
                list(scorer.features),
                list(scorer.transforms),
                scorer.mean.tolist(),
                scorer.scale.tolist(),
                scorer.coef.tolist(),
                scorer.intercept,
                sorted(scorer.preference_weights.items()),
            ],
            "encoder": getattr(state.vectors["profile"], "dim", 0),
            "limits": [
                ranker.EXHAUSTIVE_LIMIT,
                ranker.TEXT_CANDIDATES,
                ranker.GRAPH_CANDIDATES,
                ranker.POPULAR_CANDIDATES,
            ],
            "query": [top_k, defaults.cross_preference, defaults.diversity],
            "regime": regime,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _snapshot_inputs(state: MatchingState, options: RunOptions) -> _Snapshot:
    ids = state.catalog.all_ids().tolist()
    own = batch_ranker.own_fingerprints(state, ids)
    context = context_marker(state, options.top_k)
    digest = hashlib.sha256(context.encode())
    for org_id in sorted(own):
        digest.update(f"{org_id}:{own[org_id]};".encode())
    return _Snapshot(own=own, marker=digest.hexdigest(), context=context)


async def _fix_snapshot(
    ctx: ServiceContext, run_id: int, options: RunOptions, snap: _Snapshot, owner: str
) -> int:
    """Record the run's snapshot marker, or check that a resumed run still sees the same
    inputs. If the store changed since the run started, its committed chunks describe
    another snapshot: it is closed as failed and a new run starts (under the same lease)."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        await _check_and_renew(session, owner, run_id)
        run = await session.get(RerankRun, run_id)
        assert run is not None
        if run.snapshot_marker is None:
            run.snapshot_marker = snap.marker
            run.context_marker = snap.context
            run.model_versions = {
                "ranker": ctx.derived.state.scorer.version,
                "encoder": ctx.encoder_name,
            }
            return run_id
        if run.snapshot_marker == snap.marker:
            return run_id
        run.status = "failed"
        run.error = "inputs changed while it was interrupted; a new run started over"
        run.updated_at = utcnow()
        fresh = RerankRun(
            status="running",
            engine=options.engine,
            top_k=options.top_k,
            only_changed=options.only_changed,
            parameters={},
            model_versions={
                "ranker": ctx.derived.state.scorer.version,
                "encoder": ctx.encoder_name,
            },
            snapshot_marker=snap.marker,
            context_marker=snap.context,
            chunk_size=options.chunk_size,
            total_chunks=0,
            done_chunks=0,
            total_subjects=0,
            done_subjects=0,
            copied_subjects=0,
            requested_by=run.requested_by,
        )
        session.add(fresh)
        await session.flush()
        state = await _state_row(session)
        state.lease_run_id = fresh.id
        log.info(
            "re-ranking run %d: inputs changed since it started; run %d starts over",
            run_id,
            fresh.id,
        )
        return fresh.id


# -- planning -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    """What a run works on, stored with it so that a resumed run works on the same: ``ids``
    in order; the first ``verify_from`` are ranked, the rest checked against their lists in
    the base run and ranked only where those may differ (``batch.verify_chunk``). Lists of
    organisations not in ``ids``, and checked ones that stand, are copied from the base run."""

    ids: np.ndarray
    base_run_id: int | None
    verify_from: int


async def _plan(
    ctx: ServiceContext,
    run_id: int,
    options: RunOptions,
    state: MatchingState,
    snap: _Snapshot,
) -> _Plan:
    async with ctx.db.read() as session:
        run = await session.get(RerankRun, run_id)
        assert run is not None
        if run.plan is not None:
            ids = np.frombuffer(zlib.decompress(run.plan), dtype=np.int64)
            verify_from = int((run.parameters or {}).get("verify_from", len(ids)))
            return _Plan(ids, run.base_run_id, verify_from)
        base = None
        note = None
        if options.only_changed:
            current = await _published_id(session)
            base = await session.get(RerankRun, current) if current is not None else None
            if base is None:
                note = "no published run to start from: ranked every organisation"
            elif base.context_marker != snap.context or base.top_k != options.top_k:
                note = f"run {base.id} used other model or parameters: ranked every organisation"
                base = None
            elif "popular_band" not in (base.parameters or {}):
                note = f"run {base.id} did not record its popular candidates: ranked every one"
                base = None
    all_ids = np.array(sorted(snap.own), dtype=np.int64)
    if base is None:
        plan, verify_from = all_ids, len(all_ids)
    else:
        plan, verify_from = await _affected(
            ctx, state, snap, base.id, (base.parameters or {})["popular_band"], all_ids
        )
    parameters: dict[str, Any] = {
        "top_k": options.top_k,
        "chunk_size": options.chunk_size,
        "only_changed": options.only_changed,
        "cross_preference": options.query().cross_preference,
        "diversity": options.query().diversity,
        "organisations": len(all_ids),
        "popular_band": batch_ranker.popular_band(state),
        "verify_from": verify_from,
    }
    if note:
        parameters["note"] = note
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        run = await session.get(RerankRun, run_id)
        assert run is not None
        run.plan = zlib.compress(plan.astype(np.int64).tobytes())
        run.base_run_id = base.id if base is not None else None
        run.total_subjects = len(plan)
        run.total_chunks = len(_chunks(plan, verify_from, options.chunk_size))
        run.parameters = {**(run.parameters or {}), **parameters}
        run.updated_at = utcnow()
    return _Plan(plan, base.id if base is not None else None, verify_from)


def _chunks(ids: np.ndarray, verify_from: int, size: int) -> list[tuple[int, np.ndarray, bool]]:
    """(chunk index, ids, checked against the base run?): the ranked part, then the checked
    part, each cut into chunks of ``size``."""
    out: list[tuple[int, np.ndarray, bool]] = []
    for part, checked in ((ids[:verify_from], False), (ids[verify_from:], True)):
        for start in range(0, len(part), size):
            out.append((len(out), part[start : start + size], checked))
    return out


async def _affected(
    ctx: ServiceContext,
    state: MatchingState,
    snap: _Snapshot,
    base_id: int,
    base_band: list[int],
    all_ids: np.ndarray,
) -> tuple[np.ndarray, int]:
    """The plan of an incremental run on ``base_id``: (organisations, how many of them, first,
    are ranked outright; the rest are checked against their stored lists).

    Ranked outright: those whose own inputs changed (or are new), and those within two hops of
    a changed link (their common partners, degrees and walks move).

    Where candidates come from searches (above ``EXHAUSTIVE_LIMIT``), every other organisation
    is checked: its candidates are gathered again and its stored list kept only if ranking now
    gives it (``batch.verify_chunk``). Nearest neighbours are not symmetric, and a changed
    organisation that leaves a subject's neighbours lets one in that was never scored, so no
    cheaper search from the changed side finds every list that moves (docs/rerank.md).

    Where everyone is scored, the candidates are everyone and the rest is exact without that
    check: those with a changed organisation on their list, those a changed organisation now
    scores into the pool of, and those whose popular candidates moved (``base_band``: the base
    run's degree order) in a way that can change their list."""
    lists: Any = RerankList.__table__
    async with ctx.db.read() as session:
        base = (
            await session.execute(
                select(
                    lists.c.organisation_id,
                    lists.c.own_marker,
                    lists.c.cutoff,
                    lists.c.partners,
                    lists.c.candidates.is_not(None).label("checkable"),
                ).where(lists.c.run_id == base_id)
            )
        ).all()
    stored = {r.organisation_id: r.own_marker for r in base}
    changed = sorted(o for o, fp in snap.own.items() if stored.get(o) != fp)
    relinked = [o for o in changed if batch_ranker.links_changed(stored.get(o), snap.own[o])]
    known = set(snap.own)
    if not changed:
        return np.zeros(0, dtype=np.int64), 0
    if len(all_ids) > ranker.EXHAUSTIVE_LIMIT:
        uncheckable = {r.organisation_id for r in base if not r.checkable}
        near = batch_ranker.within_two_hops(state.snapshot(), relinked)
        ranked = set(changed) | uncheckable | near
        first = sorted(o for o in ranked if o in known)
        rest = sorted(known - set(first))
        return np.array(first + rest, dtype=np.int64), len(first)

    affected: set[int] = set(changed)
    # Popular candidates come from the degree order: a changed link can move an organisation
    # into or out of them for subjects anywhere in the network.
    unknown, newly_popular, no_longer = await anyio.to_thread.run_sync(
        batch_ranker.popular_shifts, state, base_band, all_ids.tolist()
    )
    affected.update(unknown)
    # One pass over the stored lists: those holding a changed organisation (its score moved) or
    # one that stopped being a popular candidate for them (it may have left their candidates).
    listed = batch_ranker.ListedPartners.from_packed(
        [r.organisation_id for r in base], [r.partners for r in base]
    )
    affected.update(listed.holding(changed).tolist())
    affected.update(
        subject for subject, gone in no_longer.items() if set(listed.of(subject)) & gone
    )
    cutoffs = {r.organisation_id: r.cutoff for r in base}
    del base
    entering = await anyio.to_thread.run_sync(
        batch_ranker.reached_by_changes,
        state,
        snap.own,
        changed,
        relinked,
        cutoffs,
        newly_popular,
    )
    affected.update(entering)
    plan = np.array(sorted(o for o in affected if o in known), dtype=np.int64)
    return plan, len(plan)


async def _changed_since(db: Database, run_id: int, own: dict[int, str]) -> np.ndarray:
    """The organisations whose own fingerprint differs from the one ``run_id`` stored (or that
    it has no list for), ascending."""
    lists: Any = RerankList.__table__
    async with db.read() as session:
        rows = await session.execute(
            select(lists.c.organisation_id, lists.c.own_marker).where(lists.c.run_id == run_id)
        )
        stored: dict[int, str] = {o: marker for o, marker in rows.tuples()}
    return np.array(sorted(o for o, fp in own.items() if stored.get(o) != fp), dtype=np.int64)


# -- ranking chunks -------------------------------------------------------------------------
WorkFor = Callable[[np.ndarray, bool], Awaitable[batch_ranker.VerifyWork | None]]


class Engine(ABC):
    """Runs the per-chunk ranking somewhere: in this process or on a Ray cluster."""

    @abstractmethod
    def results(
        self, chunks: list[tuple[int, np.ndarray, bool]], work_for: WorkFor
    ) -> AsyncIterator[tuple[int, ChunkResult]]:
        """Yield (chunk index, result) as chunks finish, in any order. A chunk is (index,
        organisation ids, checked?); ``work_for(ids, checked)`` gives what
        ``batch.work_chunk`` needs besides them, read just before the chunk is handed out."""

    async def close(self) -> None:
        return None


class LocalEngine(Engine):
    """Chunks ranked on this machine, ``workers`` at a time: one in a thread of this process,
    more in as many worker processes forked from it.

    Ranking is pure and reads a read-only ``BatchState``. Forked workers get it by
    inheritance: the arrays are shared with this process page by page (copy-on-write) and
    never pickled; only the chunk's ids go out and its ``ChunkResult`` comes back. Threads of
    one process would share one interpreter lock, which the Python between the compiled
    parts holds about half the time, so they level off below two cores' worth whatever the
    machine (100k organisations, 2 cores: threads 436 organisations/s, two processes 552; see
    docs/measurements.md, "Eighth session (2026-11-22): threads and processes"). Each worker
    runs its matrix products and faiss searches on one thread.

    Forking needs ``fork`` (Linux); elsewhere the chunks run in threads of this process.
    Results come in completion order.
    """

    def __init__(self, batch: BatchState, query: MatchQuery, *, workers: int = 1) -> None:
        self.batch = batch
        self.query = query
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        if self.workers > 1 and _CAN_FORK:
            # With fork, the initializer's arguments reach the children by inheritance.
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_start_rank_worker,
                initargs=(batch, query),
            )

    def _rank(self, ids: np.ndarray, work: batch_ranker.VerifyWork | None) -> ChunkResult:
        with threadpool_limits(limits=1, user_api="blas"):
            return batch_ranker.work_chunk(self.batch, ids.tolist(), self.query, work)

    async def results(
        self, chunks: list[tuple[int, np.ndarray, bool]], work_for: WorkFor
    ) -> AsyncIterator[tuple[int, ChunkResult]]:
        waiting = list(reversed(chunks))
        running: dict[asyncio.Future[ChunkResult], int] = {}
        limiter = anyio.CapacityLimiter(self.workers)
        loop = asyncio.get_running_loop()
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    index, ids, checked = waiting.pop()
                    work = await work_for(ids, checked)
                    future: asyncio.Future[ChunkResult] = (
                        loop.run_in_executor(self._pool, _rank_in_worker, ids, work)
                        if self._pool is not None
                        else asyncio.ensure_future(
                            anyio.to_thread.run_sync(self._rank, ids, work, limiter=limiter)
                        )
                    )
                    running[future] = index
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for future in sorted(finished, key=running.__getitem__):
                    yield running.pop(future), future.result()
        finally:
            for future in running:
                future.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await anyio.to_thread.run_sync(lambda: pool.shutdown(wait=True, cancel_futures=True))


_CAN_FORK = sys.platform == "linux"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_worker_state: tuple[BatchState, MatchQuery] | None = None


def _start_rank_worker(batch: BatchState, query: MatchQuery) -> None:
    """In a forked worker: keep the inherited state; one thread for BLAS and faiss; end with
    the parent, so a run killed with SIGKILL leaves no workers ranking on."""
    global _worker_state
    _worker_state = batch, query
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before the line above
            os._exit(1)
    threadpool_limits(limits=1, user_api="blas")
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass


def _rank_in_worker(ids: np.ndarray, work: batch_ranker.VerifyWork | None) -> ChunkResult:
    assert _worker_state is not None, "not a forked rank worker"
    batch, query = _worker_state
    return batch_ranker.work_chunk(batch, ids.tolist(), query, work)


class RayEngine(Engine):
    """The same chunks on a Ray cluster: one actor per worker holds the batch state (sent
    once through the object store) and ranks the chunks it is handed; results come back as
    they finish and are committed here, in this process, like the local engine's."""

    def __init__(
        self,
        batch: BatchState,
        query: MatchQuery,
        *,
        address: str | None,
        workers: int | None,
        cpus_per_worker: float = 0.5,
    ) -> None:
        import ray

        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
                self._started_here = True
        cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
        count = workers or max(1, int(cpus))
        # Fractional CPUs per actor: actors that reserve every CPU leave none for the tasks
        # Ray itself schedules (object transfers, readers) and the pool hangs.
        actor = ray.remote(num_cpus=cpus_per_worker)(_RankActor)
        shared = ray.put(batch)
        self._actors: list[Any] = [actor.remote(shared, query) for _ in range(count)]

    async def results(
        self, chunks: list[tuple[int, np.ndarray, bool]], work_for: WorkFor
    ) -> AsyncIterator[tuple[int, ChunkResult]]:
        ray = self._ray
        pending: dict[Any, int] = {}
        queue = list(chunks)
        idle: list[Any] = list(self._actors)
        busy: dict[Any, Any] = {}
        while queue or pending:
            while queue and idle:
                index, ids, checked = queue.pop(0)
                work = await work_for(ids, checked)
                worker = idle.pop()
                ref = worker.rank.remote(ids.tolist(), work)
                pending[ref] = index
                busy[ref] = worker
            ready, _ = await anyio.to_thread.run_sync(
                lambda: ray.wait(list(pending), num_returns=1)
            )
            for ref in ready:
                index = pending.pop(ref)
                idle.append(busy.pop(ref))
                result = await anyio.to_thread.run_sync(ray.get, ref)
                yield index, result

    async def close(self) -> None:
        for worker in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(worker)
        if self._started_here:
            await anyio.to_thread.run_sync(self._ray.shutdown)


class _RankActor:
    """Holds one copy of the batch state per Ray worker process."""

    def __init__(self, batch: BatchState, query: MatchQuery) -> None:
        self.batch = batch
        self.query = query

    def rank(self, ids: list[int], work: batch_ranker.VerifyWork | None = None) -> ChunkResult:
        return batch_ranker.work_chunk(self.batch, ids, self.query, work)


async def _rank_chunks(
    ctx: ServiceContext,
    run_id: int,
    options: RunOptions,
    state: MatchingState,
    snap: _Snapshot,
    plan: _Plan,
    owner: str,
    progress: ProgressCallback | None,
    started: float,
) -> tuple[int, int]:
    async with ctx.db.read() as session:
        done = set(
            (
                await session.scalars(
                    select(RerankChunk.chunk_index).where(RerankChunk.run_id == run_id)
                )
            ).all()
        )
        run = await session.get(RerankRun, run_id)
        assert run is not None
        done_subjects = run.done_subjects
    chunks = _chunks(plan.ids, plan.verify_from, options.chunk_size)
    n_chunks, n_subjects = len(chunks), len(plan.ids)
    todo = [chunk for chunk in chunks if chunk[0] not in done]
    if progress is not None:
        progress(Progress(run_id, len(done), n_chunks, done_subjects, n_subjects, 0.0))
    if not todo:
        return 0, len(done)
    changed = np.zeros(0, dtype=np.int64)
    if plan.base_run_id is not None and any(checked for *_, checked in todo):
        changed = await _changed_since(ctx.db, plan.base_run_id, snap.own)

    async def work_for(ids: np.ndarray, checked: bool) -> batch_ranker.VerifyWork | None:
        if not checked or plan.base_run_id is None:
            return None
        stored = await _stored_lists(ctx.db, plan.base_run_id, ids.tolist())
        return batch_ranker.VerifyWork(stored, changed)

    batch = await anyio.to_thread.run_sync(batch_ranker.prepare, state)
    query = options.query()
    engine: Engine
    if options.engine == "ray":
        engine = await anyio.to_thread.run_sync(
            lambda: RayEngine(
                batch, query, address=options.ray_address, workers=options.ray_workers
            )
        )
    else:
        engine = LocalEngine(batch, query, workers=options.workers)
    ranked = 0
    done_chunks = len(done)
    try:
        async for index, result in engine.results(todo, work_for):
            rows = await anyio.to_thread.run_sync(_chunk_rows, run_id, state, snap, result)
            await _commit_chunk(ctx.db, run_id, index, rows, result, owner, plan.base_run_id)
            ranked += len(result.subjects)
            done_chunks += 1
            done_subjects += len(result.subjects) + result.kept
            if progress is not None:
                progress(
                    Progress(
                        run_id,
                        done_chunks,
                        n_chunks,
                        done_subjects,
                        n_subjects,
                        time.perf_counter() - started,
                    )
                )
    finally:
        await engine.close()
    return ranked, len(done)


@dataclass
class _ChunkRows:
    lists: list[dict[str, Any]]  # rerank_lists rows
    referenced: list[int]  # every subject and listed partner
    components: tuple[str, ...]
    # Checked lists that stand although their candidates moved: stored again from the base
    # run with the candidates they have now (``ChunkResult.restated``).
    restated: list[dict[str, Any]] = field(default_factory=list)


def _chunk_rows(
    run_id: int, state: MatchingState, snap: _Snapshot, result: ChunkResult
) -> _ChunkRows:
    snapshot = state.snapshot()
    now = utcnow()
    rows = []
    lists = result.lists()
    for org_id, cutoff, scored, next_score in zip(
        result.subjects.tolist(),
        result.cutoffs.tolist(),
        result.candidates,
        result.next_scores.tolist(),
        strict=True,
    ):
        cands, scores, components = lists[org_id]
        rows.append(
            {
                "run_id": run_id,
                "organisation_id": org_id,
                **_packed(cands, scores, components),
                "items": len(cands),
                "own_marker": snap.own.get(org_id, "-"),
                "marker": batch_ranker.subject_marker(
                    snapshot, org_id, snap.own, cands.tolist(), snap.context
                ),
                "cutoff": cutoff if math.isfinite(cutoff) else None,
                "candidates": _packed_candidates(scored),
                "next_score": next_score if math.isfinite(next_score) else None,
                "computed_at": now,
            }
        )
    restated: list[dict[str, Any]] = [
        {
            "subject": org_id,
            "new_candidates": _packed_candidates(candidates),
            "new_next": next_bound if math.isfinite(next_bound) else None,
        }
        for org_id, candidates, next_bound in result.restated
    ]
    referenced = sorted(
        set(result.subjects.tolist())
        | set(result.candidate.tolist())
        | {org_id for org_id, _, _ in result.restated}
    )
    return _ChunkRows(rows, referenced, result.names, restated)


# An erased or deleted partner's entry in a stored list: id, score and components zeroed (no
# organisation has id 0). A list holding one is never served; the export leaves it out.
_BLANK_ID = 0


def _blanked(row: dict[str, Any], gone: set[int]) -> dict[str, Any]:
    """A ``rerank_lists`` row's packed arrays with the entries of the partners in ``gone``
    zeroed, every array keeping its length."""
    partners, scores, components = _unpacked(row["partners"], row["scores"], row["components"])
    hit = np.isin(partners, np.fromiter(gone, dtype=np.int64, count=len(gone)))
    if not hit.any():
        return row
    partners[hit], scores[hit], components[hit] = _BLANK_ID, 0.0, 0.0
    return {**row, **_packed(partners, scores, components)}


def _packed(
    partners: npt.ArrayLike, scores: npt.ArrayLike, components: npt.ArrayLike
) -> dict[str, bytes]:
    """A list's packed ``rerank_lists`` columns: little-endian int64 ids, float64 scores and
    float64 component rows (:func:`_unpacked` reads them back)."""
    return {
        "partners": np.ascontiguousarray(partners, dtype="<i8").tobytes(),
        "scores": np.ascontiguousarray(scores, dtype="<f8").tobytes(),
        "components": np.ascontiguousarray(components, dtype="<f8").tobytes(),
    }


def _unpacked(
    partners: bytes, scores: bytes, components: bytes
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(partner ids, scores, component rows) of packed columns, as new writable arrays."""
    ids, values = _unpacked_ranking(partners, scores)
    flat = np.frombuffer(components, dtype="<f8").astype(np.float64)
    return ids, values, flat.reshape(len(ids), -1 if len(ids) else 0)


def _unpacked_ranking(
    partners: bytes, scores: bytes
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(partner ids, scores) of packed columns, without the components."""
    ids = np.frombuffer(partners, dtype="<i8").astype(np.int64)
    return ids, np.frombuffer(scores, dtype="<f8").astype(np.float64)


def _packed_candidates(ids: npt.NDArray[np.int64]) -> bytes | None:
    """A list's candidates for ``rerank_lists.candidates``: ascending ids as zlib-compressed
    uint32 gaps (about a third of the raw size); None for none (everyone was scored).

    >>> ids = np.array([3, 7, 1000], dtype=np.int64)
    >>> _unpacked_candidates(_packed_candidates(ids)).tolist(), _packed_candidates(ids[:0])
    ([3, 7, 1000], None)
    """
    if len(ids) == 0:
        return None
    gaps = np.diff(np.asarray(ids, dtype=np.int64), prepend=0)
    return zlib.compress(gaps.astype("<u4").tobytes(), 1)


def _unpacked_candidates(packed: bytes) -> npt.NDArray[np.int64]:
    gaps = np.frombuffer(zlib.decompress(packed), dtype="<u4")
    return np.cumsum(gaps, dtype=np.int64)


async def _stored_lists(
    db: Database, run_id: int, org_ids: Sequence[int]
) -> dict[int, batch_ranker.StoredList]:
    """The lists of ``org_ids`` in ``run_id`` that recorded their candidates, as
    ``verify_chunk`` reads them."""
    lists: Any = RerankList.__table__
    out: dict[int, batch_ranker.StoredList] = {}
    async with db.read() as session:
        for start in range(0, len(org_ids), _IN_BATCH):
            rows = await session.execute(
                select(
                    lists.c.organisation_id,
                    lists.c.candidates,
                    lists.c.partners,
                    lists.c.scores,
                    lists.c.cutoff,
                    lists.c.next_score,
                ).where(
                    lists.c.run_id == run_id,
                    lists.c.organisation_id.in_(list(org_ids[start : start + _IN_BATCH])),
                    lists.c.candidates.is_not(None),
                )
            )
            for row in rows:
                listed, scores = _unpacked_ranking(row.partners, row.scores)
                out[row.organisation_id] = batch_ranker.StoredList(
                    candidates=_unpacked_candidates(row.candidates),
                    listed=listed,
                    scores=scores,
                    cutoff=-math.inf if row.cutoff is None else float(row.cutoff),
                    next_score=-math.inf if row.next_score is None else float(row.next_score),
                )
    return out


def _restate_statement() -> Any:
    """A base run's list stored into a new run, with the candidates it has now."""
    lists: Any = RerankList.__table__
    new_values = {
        "run_id": bindparam("new_run"),
        "candidates": bindparam("new_candidates", type_=LargeBinary),
        "next_score": bindparam("new_next", type_=Float),
    }
    columns = [c.name for c in lists.columns]
    return insert(lists).from_select(
        columns,
        select(
            *[
                new_values[c.name].label(c.name) if c.name in new_values else c
                for c in lists.columns
            ]
        ).where(
            lists.c.run_id == bindparam("base_run"), lists.c.organisation_id == bindparam("subject")
        ),
    )


_RESTATE = _restate_statement()


async def _commit_chunk(
    db: Database,
    run_id: int,
    index: int,
    rows: _ChunkRows,
    result: ChunkResult,
    owner: str,
    base_run_id: int | None = None,
) -> None:
    """Write a chunk's lists, its chunk row, the progress and the lease renewal at once."""
    for attempt in range(3):
        try:
            async with db.write_lock, db.sessions() as session, session.begin():
                await _check_and_renew(session, owner, run_id)
                # Organisations deleted (or erased) since the snapshot have nothing left to
                # list or be listed.
                present: set[int] = set()
                for start in range(0, len(rows.referenced), _IN_BATCH):
                    part = rows.referenced[start : start + _IN_BATCH]
                    present.update(
                        (
                            await session.scalars(
                                select(m.Organisation.id).where(m.Organisation.id.in_(part))
                            )
                        ).all()
                    )
                gone = set(rows.referenced) - present
                lists = [
                    _blanked(r, gone) if gone else r
                    for r in rows.lists
                    if r["organisation_id"] in present
                ]
                if lists:
                    await session.execute(insert(RerankList), lists)
                restated = [
                    {**r, "new_run": run_id, "base_run": base_run_id}
                    for r in rows.restated
                    if r["subject"] in present
                ]
                if restated and base_run_id is not None:
                    await session.execute(_RESTATE, restated)
                session.add(RerankChunk(run_id=run_id, chunk_index=index, subjects=len(lists)))
                run = await session.get(RerankRun, run_id)
                assert run is not None
                run.copied_subjects += len(restated)
                run.done_chunks += 1
                run.done_subjects += len(result.subjects) + result.kept
                run.updated_at = utcnow()
                if "components" not in (run.parameters or {}) and result.subject.size:
                    run.parameters = {**(run.parameters or {}), "components": list(rows.components)}
            return
        except IntegrityError:
            # An organisation was deleted between the check and the insert (PostgreSQL);
            # the next attempt leaves it out.
            if attempt == 2:
                raise


# -- publishing -----------------------------------------------------------------------------
async def _publish(db: Database, run_id: int, base_run_id: int | None, owner: str) -> int:
    """Copy the lists this run did not recompute from its base run, then flip the pointer:
    one transaction, so readers see the old run or the whole new one."""
    async with db.write_lock, db.sessions() as session, session.begin():
        await _check_and_renew(session, owner, run_id)
        copied = 0
        if base_run_id is not None:
            copied = await _copy_unranked(session, base_run_id, run_id)
        run = await session.get(RerankRun, run_id)
        assert run is not None
        now = utcnow()
        run.status = "published"
        copied += run.copied_subjects  # and those stored again with their chunk
        run.copied_subjects = copied
        run.finished_at = now
        run.updated_at = now
        state = await _state_row(session)
        state.published_run_id = run_id
    _published_runs.pop(db, None)
    return copied


async def _copy_unranked(session: AsyncSession, base_run_id: int, run_id: int) -> int:
    """Copy the base run's lists of every organisation this run did not rank."""
    lists: Any = RerankList.__table__
    ranked = lists.alias("ranked")
    result = await session.execute(
        insert(lists).from_select(
            [c.name for c in lists.columns],
            select(
                *[literal(run_id).label(c.name) if c.name == "run_id" else c for c in lists.columns]
            ).where(
                lists.c.run_id == base_run_id,
                ~exists().where(
                    ranked.c.run_id == run_id, ranked.c.organisation_id == lists.c.organisation_id
                ),
            ),
        )
    )
    base = await session.get(RerankRun, base_run_id)
    run = await session.get(RerankRun, run_id)
    assert run is not None
    if base is not None and "components" not in (run.parameters or {}):
        names = (base.parameters or {}).get("components")
        if names:
            run.parameters = {**(run.parameters or {}), "components": names}
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_runs(db: Database, keep: int = KEEP_PUBLISHED) -> list[int]:
    """Delete all but the ``keep`` newest published runs, and failed runs older than them."""
    async with db.read() as session:
        published = (
            await session.scalars(
                select(RerankRun.id)
                .where(RerankRun.status == "published")
                .order_by(RerankRun.id.desc())
            )
        ).all()
        current = await _published_id(session)
    kept = set(published[:keep]) | ({current} if current is not None else set())
    if not kept:
        return []
    # Failed runs stay for inspection until they are older than every run kept.
    oldest_kept = min(kept) if len(published) >= keep else 0
    async with db.read() as session:
        doomed = (
            await session.scalars(
                select(RerankRun.id).where(
                    RerankRun.id.not_in(kept),
                    or_(
                        RerankRun.status == "published",
                        and_(RerankRun.status == "failed", RerankRun.id < oldest_kept),
                    ),
                )
            )
        ).all()
    for run_id in doomed:
        # Lists first, explicitly (SQLite's cascade is row by row); each run in its own
        # transaction.
        async with db.write_lock, db.sessions() as session, session.begin():
            await session.execute(delete(RerankList).where(RerankList.run_id == run_id))
            await session.execute(delete(RerankChunk).where(RerankChunk.run_id == run_id))
            await session.execute(delete(RerankRun).where(RerankRun.id == run_id))
    return list(doomed)


# -- serving --------------------------------------------------------------------------------
@dataclass
class ServedList:
    run_id: int
    computed_at: datetime
    matches: list[ScoredMatch]


def is_servable(query: MatchQuery) -> bool:
    """Only the default query (any limit) can come from a run."""
    defaults = MatchQuery(limit=query.limit)
    return (
        query.filter.is_empty
        and query.cross_preference == defaults.cross_preference
        and query.diversity == defaults.diversity
        and query.include_existing == defaults.include_existing
        and query.explain
    )


@dataclass(frozen=True, slots=True)
class _PublishedRun:
    run_id: int
    top_k: int
    context_marker: str
    names: tuple[str, ...]


PUBLISHED_RUN_SECONDS = 2.0
"""How long the match endpoint trusts the published-run pointer it read: one store read per
period instead of one per request. A run published by this process is seen at once; one
published by another (``multihelix rerank``) within this time. A pruned run is never served:
its lists are gone, so the request ranks live."""

_published_runs: weakref.WeakKeyDictionary[Database, tuple[float, _PublishedRun | None]] = (
    weakref.WeakKeyDictionary()
)


async def _published_run(db: Database) -> _PublishedRun | None:
    """The published run's identity and parameters (see ``PUBLISHED_RUN_SECONDS``)."""
    found = _published_runs.get(db)
    if found is not None and time.monotonic() < found[0]:
        return found[1]
    published: _PublishedRun | None = None
    async with db.read() as session:
        run_id = await _published_id(session)
        run = await session.get(RerankRun, run_id) if run_id is not None else None
        if run is not None and run.context_marker is not None:
            published = _PublishedRun(
                run_id=run.id,
                top_k=run.top_k,
                context_marker=run.context_marker,
                names=tuple((run.parameters or {}).get("components") or ()),
            )
    _published_runs[db] = (time.monotonic() + PUBLISHED_RUN_SECONDS, published)
    return published


async def serve_from_latest(ctx: ServiceContext, org_id: int, limit: int) -> ServedList | None:
    """The organisation's list from the published run, if its first ``limit`` items are what
    ranking ``limit`` gives (see ``is_prefix``) and the list is fresh (its input marker equals
    the one of the current inputs)."""
    run = await _published_run(ctx.db)
    if run is None or not batch_ranker.is_prefix(limit, run.top_k):
        return None
    run_id, names = run.run_id, run.names
    async with ctx.db.read() as session:
        stored = await session.get(RerankList, (run_id, org_id))
    if stored is None:
        return None
    cands, scores, components = unpack_list(stored)
    if len(cands) != stored.items or (len(cands) and components.shape[1] != len(names)):
        return None  # carried over by migration 0011 after losing a partner: not whole
    state = ctx.derived.state

    def check_and_build() -> list[ScoredMatch] | None:
        if context_marker(state, run.top_k) != run.context_marker:
            return None
        listed = cands.tolist()
        own = batch_ranker.cached_own_fingerprints(state, [org_id, *listed])
        if any(c not in own for c in listed):
            return None  # a partner deleted since the run, or erased (blanked to id 0)
        marker = batch_ranker.subject_marker(
            state.snapshot(), org_id, own, listed, run.context_marker or ""
        )
        if marker != stored.marker:
            return None
        return batch_ranker.to_matches(
            state, org_id, names, cands[:limit], scores[:limit], components[:limit]
        )

    matches = await anyio.to_thread.run_sync(check_and_build)
    if matches is None:
        return None
    return ServedList(run_id=run_id, computed_at=stored.computed_at, matches=matches)


def unpack_list(
    stored: RerankList,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """A stored list's (partner ids, scores, component rows), best first."""
    return _unpacked(stored.partners, stored.scores, stored.components)


# -- export ---------------------------------------------------------------------------------
EXPORT_FORMATS = ("csv", "parquet")


async def export_run(
    db: Database, run_id: int | None, path: Path, *, fmt: str | None = None
) -> tuple[int, int]:
    """Write a run (default: the published one) as CSV or Parquet: one row per suggested
    partner with names, country, kind, score and every score component. Returns (run, rows)."""
    fmt = fmt or ("parquet" if path.suffix.lower() == ".parquet" else "csv")
    if fmt not in EXPORT_FORMATS:
        raise Unprocessable(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    async with db.read() as session:
        if run_id is None:
            run_id = await _published_id(session)
            if run_id is None:
                raise NotFound("no re-ranking run has been published yet")
        run = await session.get(RerankRun, run_id)
        if run is None:
            raise NotFound(f"re-ranking run {run_id} does not exist")
        names = list((run.parameters or {}).get("components") or [])
        org = m.Organisation.__table__
        info = {
            r.id: (r.name, r.country, r.kind)
            for r in (
                await session.execute(select(org.c.id, org.c.name, org.c.country, org.c.kind))
            ).all()
        }
        stored = (
            await session.scalars(
                select(RerankList)
                .where(RerankList.run_id == run_id)
                .order_by(RerankList.organisation_id)
            )
        ).all()
    # One row per (organisation, rank); partners deleted since the run are left out.
    rows = [
        (stored_list.organisation_id, rank, cand, score, values)
        for stored_list in stored
        for rank, (cand, score, values) in enumerate(
            zip(*(a.tolist() for a in unpack_list(stored_list)), strict=True), 1
        )
        if cand in info
    ]
    header = [
        "run_id",
        "organisation_id",
        "organisation_name",
        "rank",
        "partner_id",
        "partner_name",
        "partner_country",
        "partner_kind",
        "score",
        *names,
    ]

    def records() -> Iterable[list[Any]]:
        for subject, rank, cand, score, values in rows:
            s_info = info.get(subject, ("", "", ""))
            c_info = info.get(cand, ("", "", ""))
            yield [
                run_id,
                subject,
                s_info[0],
                rank,
                cand,
                c_info[0],
                c_info[1],
                c_info[2],
                score,
                *values,
            ]

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            with open(path, "w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file)
                writer.writerow(header)
                writer.writerows(records())
            return
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise Unprocessable(
                "Parquet export needs pyarrow (the 'ray' extra installs it)"
            ) from None
        columns: list[Any] = list(zip(*records(), strict=True)) if rows else [[] for _ in header]
        table = pa.table({name: list(col) for name, col in zip(header, columns, strict=True)})
        pq.write_table(table, path)

    await anyio.to_thread.run_sync(write)
    return run_id, len(rows)


# -- erasure --------------------------------------------------------------------------------
async def erase_from_runs(session: AsyncSession, organisation_id: int) -> int:
    """Delete an organisation's stored lists and blank its entry (id, score, components) in
    every list naming it, in every run, within the caller's transaction; returns how many
    lists went or changed. Such a list is no longer served (the API ranks live).

    There is no index over partners: the store searches the packed ids for the organisation's
    8 bytes and blanks a hit aligned to a whole id in place, without the rows leaving the
    store (a blanked entry keeps every array's length, so the row keeps its size). A first hit
    straddling two ids (rare: it needs ids with zero low bytes) is checked here.
    """
    own = await session.execute(
        delete(RerankList).where(RerankList.organisation_id == organisation_id)
    )
    needle = {"needle": np.array([organisation_id], dtype="<i8").tobytes()}
    blank = text(_BLANK_IN_PLACE[session.get_bind().dialect.name]).bindparams(**needle)
    changed = _rowcount(await session.execute(blank))
    straddling = (
        await session.execute(
            select(
                RerankList.run_id,
                RerankList.organisation_id,
                RerankList.partners,
                RerankList.scores,
                RerankList.components,
            ).where(text(_NAMING[session.get_bind().dialect.name]).bindparams(**needle))
        )
    ).all()
    for row in straddling:
        before = {"partners": row.partners, "scores": row.scores, "components": row.components}
        after = _blanked(before, {organisation_id})
        if after is not before:
            await session.execute(
                update(RerankList)
                .where(
                    RerankList.run_id == row.run_id,
                    RerankList.organisation_id == row.organisation_id,
                )
                .values(after)
            )
            changed += 1
    return _rowcount(own) + changed


# The byte-string operations erasure needs, per dialect (positions count from 1).
_BYTES_SQL = {
    "sqlite": {
        "find": "instr(partners, :needle)",
        "head": "substr({col}, 1, {n})",
        "tail": "substr({col}, {n})",
        "zeros": "zeroblob({n})",
        # SQLite's || yields text; the cast takes its bytes back as a blob, NULs included.
        "joined": "CAST({parts} AS BLOB)",
    },
    "postgresql": {
        "find": "position(:needle in partners)",
        "head": "substring({col} from 1 for {n})",
        "tail": "substring({col} from {n})",
        "zeros": "decode(repeat('00', {n}), 'hex')",
        "joined": "{parts}",
    },
}


def _blank_in_place_sql(dialect: str) -> str:
    """UPDATE blanking the entry of the id ``:needle`` (8 bytes) in every list where its first
    byte match is aligned to a whole id: k is that match's byte position, w the width of a
    component row in bytes."""
    sql = _BYTES_SQL[dialect]
    k = sql["find"]

    def zeroed(col: str, start: str, width: str) -> str:
        """``col`` with ``width`` bytes after its first ``start`` set to zero."""
        parts = " || ".join(
            (
                sql["head"].format(col=col, n=start),
                sql["zeros"].format(n=width),
                sql["tail"].format(col=col, n=f"{start} + {width} + 1"),
            )
        )
        return sql["joined"].format(parts=parts)

    w = "(length(components) / (length(partners) / 8))"
    return (
        "UPDATE rerank_lists SET "
        f"partners = {zeroed('partners', f'({k} - 1)', '8')}, "
        f"scores = {zeroed('scores', f'({k} - 1)', '8')}, "
        f"components = {zeroed('components', f'(({k} - 1) / 8) * {w}', w)} "
        f"WHERE {k} > 0 AND ({k} - 1) % 8 = 0"
    )


_BLANK_IN_PLACE = {dialect: _blank_in_place_sql(dialect) for dialect in _BYTES_SQL}
_NAMING = {dialect: f"{sql['find']} > 0" for dialect, sql in _BYTES_SQL.items()}


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "DEFAULT_TOP_K",
    "RunOptions",
    "erase_from_runs",
    "export_run",
    "get_run",
    "list_runs",
    "run_rerank",
    "serve_from_latest",
    "start_background_run",
]
