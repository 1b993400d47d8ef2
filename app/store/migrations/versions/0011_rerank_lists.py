"""re-ranking lists: one row per stored list instead of one per partner

Revision ID: 0011
Revises: 0010

``rerank_subjects`` (one row per organisation and run) and ``rerank_matches`` (one row per
partner, indexed by partner) become ``rerank_lists``: one row per organisation and run with
its partners, scores and score components packed. A run at 100k organisations and K = 50
wrote 5M rows, each also going into the partner index at a random place (31 µs per row on
SQLite with two runs stored); it now writes 100k. Existing lists are carried over as they
are, erased partners included (a list that lost one stays unserved).
"""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 2_000  # lists converted per round trip

_LIST_COLUMNS = (
    "run_id",
    "organisation_id",
    "partners",
    "items",
    "own_marker",
    "marker",
    "cutoff",
    "computed_at",
    "scores",
    "components",
)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "rerank_lists",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("partners", sa.LargeBinary(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("own_marker", sa.String(length=32), nullable=False),
        sa.Column("marker", sa.String(length=32), nullable=False),
        sa.Column("cutoff", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scores", sa.LargeBinary(), nullable=False),
        sa.Column("components", sa.LargeBinary(), nullable=False),
        _fk("rerank_lists", "run_id", "rerank_runs.id"),
        _fk("rerank_lists", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint("run_id", "organisation_id", name=op.f("pk_rerank_lists")),
    )
    op.create_index("ix_rerank_lists_organisation_id", "rerank_lists", ["organisation_id"])
    _pack_stored_lists(op.get_bind())
    op.drop_index("ix_rerank_matches_organisation_id", "rerank_matches")
    op.drop_index("ix_rerank_matches_candidate_id", "rerank_matches")
    op.drop_table("rerank_matches")
    op.drop_index("ix_rerank_subjects_organisation_id", "rerank_subjects")
    op.drop_table("rerank_subjects")


def _pack_stored_lists(conn: sa.Connection) -> None:
    """Every (run, organisation) of ``rerank_subjects`` with its ``rerank_matches`` rows packed
    in rank order, a batch of lists at a time (each batch read whole before it is written)."""
    lists = sa.table("rerank_lists", *(sa.column(c) for c in _LIST_COLUMNS))
    columns = "organisation_id, own_marker, marker, cutoff, items, computed_at"
    for run_id, subjects in _batches(conn, "rerank_subjects", columns):
        first, last = subjects[0][0], subjects[-1][0]
        found: dict[int, list[tuple[int, float, bytes]]] = {}
        for org_id, cand, score, blob in conn.execute(
            sa.text(
                "SELECT organisation_id, candidate_id, score, components FROM rerank_matches"
                " WHERE run_id = :run AND organisation_id BETWEEN :first AND :last"
                " ORDER BY organisation_id, rank"
            ),
            {"run": run_id, "first": first, "last": last},
        ):
            found.setdefault(org_id, []).append((cand, score, bytes(blob)))
        rows = []
        for org_id, own_marker, marker, cutoff, items, computed_at in subjects:
            entries = found.get(org_id, [])
            rows.append(
                {
                    "run_id": run_id,
                    "organisation_id": org_id,
                    "partners": np.array([e[0] for e in entries], dtype="<i8").tobytes(),
                    "items": items,
                    "own_marker": own_marker,
                    "marker": marker,
                    "cutoff": cutoff,
                    "computed_at": computed_at,
                    "scores": np.array([e[1] for e in entries], dtype="<f8").tobytes(),
                    "components": b"".join(e[2] for e in entries),
                }
            )
        conn.execute(sa.insert(lists), rows)


def _batches(
    conn: sa.Connection, table: str, columns: str
) -> Iterator[tuple[int, Sequence[Any]]]:
    """Per run stored in ``table``, its rows' ``columns`` (organisation_id first) in
    organisation order, ``_BATCH`` at a time: each batch is read whole before the caller
    writes, so reading and writing never share an open cursor."""
    runs = conn.execute(sa.text(f"SELECT DISTINCT run_id FROM {table}")).scalars().all()
    for run_id in runs:
        after = -1
        while batch := conn.execute(
            sa.text(
                f"SELECT {columns} FROM {table} WHERE run_id = :run AND organisation_id > :after"
                " ORDER BY organisation_id LIMIT :n"
            ),
            {"run": run_id, "after": after, "n": _BATCH},
        ).all():
            yield run_id, batch
            after = batch[-1][0]


def downgrade() -> None:
    op.create_table(
        "rerank_subjects",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("own_marker", sa.String(length=32), nullable=False),
        sa.Column("marker", sa.String(length=32), nullable=False),
        sa.Column("cutoff", sa.Float(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        _fk("rerank_subjects", "run_id", "rerank_runs.id"),
        _fk("rerank_subjects", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint("run_id", "organisation_id", name=op.f("pk_rerank_subjects")),
    )
    op.create_index("ix_rerank_subjects_organisation_id", "rerank_subjects", ["organisation_id"])
    op.create_table(
        "rerank_matches",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("components", sa.LargeBinary(), nullable=False),
        _fk("rerank_matches", "run_id", "rerank_runs.id"),
        _fk("rerank_matches", "organisation_id", "organisations.id"),
        _fk("rerank_matches", "candidate_id", "organisations.id"),
        sa.PrimaryKeyConstraint(
            "run_id", "organisation_id", "rank", name=op.f("pk_rerank_matches")
        ),
    )
    op.create_index("ix_rerank_matches_candidate_id", "rerank_matches", ["candidate_id"])
    op.create_index("ix_rerank_matches_organisation_id", "rerank_matches", ["organisation_id"])
    _unpack_stored_lists(op.get_bind())
    op.drop_index("ix_rerank_lists_organisation_id", "rerank_lists")
    op.drop_table("rerank_lists")


def _unpack_stored_lists(conn: sa.Connection) -> None:
    """The reverse of ``_pack_stored_lists``; ranks are numbered again from 1. Partners
    deleted since a list was stored are left out (the old table's foreign key)."""
    subjects = sa.table(
        "rerank_subjects",
        *(sa.column(c) for c in ("run_id", "organisation_id", "own_marker", "marker")),
        *(sa.column(c) for c in ("cutoff", "items", "computed_at")),
    )
    matches = sa.table(
        "rerank_matches",
        *(sa.column(c) for c in ("run_id", "organisation_id", "rank", "candidate_id")),
        *(sa.column(c) for c in ("score", "components")),
    )
    existing = set(conn.execute(sa.text("SELECT id FROM organisations")).scalars())
    columns = (
        "organisation_id, partners, items, own_marker, marker, cutoff, computed_at, scores,"
        " components"
    )
    for run_id, batch in _batches(conn, "rerank_lists", columns):
        subject_rows, match_rows = [], []
        for org_id, partners, items, own_marker, marker, cutoff, at, scores, comps in batch:
            subject_rows.append(
                {
                    "run_id": run_id,
                    "organisation_id": org_id,
                    "own_marker": own_marker,
                    "marker": marker,
                    "cutoff": cutoff,
                    "items": items,
                    "computed_at": at,
                }
            )
            ids = np.frombuffer(partners, dtype="<i8")
            values = np.frombuffer(scores, dtype="<f8")
            width = len(comps) // len(ids) if len(ids) else 0
            for rank, (cand, score) in enumerate(
                zip(ids.tolist(), values.tolist(), strict=True), 1
            ):
                if cand in existing:
                    match_rows.append(
                        {
                            "run_id": run_id,
                            "organisation_id": org_id,
                            "rank": rank,
                            "candidate_id": cand,
                            "score": score,
                            "components": comps[(rank - 1) * width : rank * width],
                        }
                    )
        conn.execute(sa.insert(subjects), subject_rows)
        if match_rows:
            conn.execute(sa.insert(matches), match_rows)
