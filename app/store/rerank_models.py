"""SQLAlchemy models of batch re-ranking: versioned runs, their committed chunks, every
organisation's stored list (one row per list), and the one row holding the published pointer
and the lease."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow
from app.store.types import UTCDateTime


class RerankRun(Base):
    """One run: its parameters and input snapshot, fixed at the start, and its progress.

    status: running -> published, or failed. Only the run the pointer in
    :class:`RerankState` names is served; the previous published run stays until pruned.
    """

    __tablename__ = "rerank_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    engine: Mapped[str] = mapped_column(String(10))
    top_k: Mapped[int] = mapped_column(Integer)
    only_changed: Mapped[bool] = mapped_column(default=False)
    # The published run an --only-changed run copies unaffected lists from.
    base_run_id: Mapped[int | None] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Hash of every input the run ranks from; a resumed run must see the same one.
    snapshot_marker: Mapped[str | None] = mapped_column(String(64))
    # What every stored list's marker also hashes: model, encoder, features, parameters.
    context_marker: Mapped[str | None] = mapped_column(String(64))
    # The organisations to rank, in order (int64, zlib): chunk i is plan[i*size:(i+1)*size].
    plan: Mapped[bytes | None] = mapped_column(LargeBinary)
    chunk_size: Mapped[int] = mapped_column(Integer)
    total_chunks: Mapped[int] = mapped_column(Integer, default=0)
    done_chunks: Mapped[int] = mapped_column(Integer, default=0)
    total_subjects: Mapped[int] = mapped_column(Integer, default=0)
    done_subjects: Mapped[int] = mapped_column(Integer, default=0)
    copied_subjects: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str | None] = mapped_column(String(120))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RerankChunk(Base):
    """A committed chunk: its lists were written in the same transaction as this row."""

    __tablename__ = "rerank_chunks"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("rerank_runs.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    subjects: Mapped[int] = mapped_column(Integer)
    committed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RerankList(Base):
    """One organisation's stored list in a run: the input marker it was computed from and its
    partners, best first, packed (little-endian int64 ids, float64 scores, float64 components
    row by row in the order of the run's ``parameters["components"]``).

    One row per list, not per partner: a run at 100k organisations writes 100k rows, not 5M,
    and no index over partners. Who lists a given partner is read by scanning ``partners``
    (erasure, ``--only-changed`` planning), which comes first so that it sits in the row's
    first page. Erasure blanks a partner's entry in place (id 0, zeros); a list holding a blanked
    or deleted partner is not served. ``items`` is the length the list was computed with: a
    list carried over by migration 0011 that had lost rows is shorter, and is not served either.
    """

    __tablename__ = "rerank_lists"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("rerank_runs.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    partners: Mapped[bytes] = mapped_column(LargeBinary)
    items: Mapped[int] = mapped_column(Integer)
    # Hash of its own inputs (profile, texts, vectors, partners) and of its list's inputs.
    own_marker: Mapped[str] = mapped_column(String(32))
    marker: Mapped[str] = mapped_column(String(32))
    # Lowest score in the pool the list was diversified from (None: every candidate was).
    cutoff: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    scores: Mapped[bytes] = mapped_column(LargeBinary)
    components: Mapped[bytes] = mapped_column(LargeBinary)
    # Every organisation the ranking scored (ascending ids as zlib-compressed uint32 gaps;
    # None when everyone is scored) and the best score that missed the pool (None: none did):
    # what --only-changed checks the list against (matching.batch.verify_chunk).
    candidates: Mapped[bytes | None] = mapped_column(LargeBinary)
    next_score: Mapped[float | None] = mapped_column(Float)


class RerankState(Base):
    """The single row (id 1): which run is published, and who holds the lease to run one."""

    __tablename__ = "rerank_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    published_run_id: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_run_id: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
