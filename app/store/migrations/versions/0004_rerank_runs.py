"""batch re-ranking: runs, committed chunks, stored lists, published pointer and lease

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "rerank_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("engine", sa.String(length=10), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("only_changed", sa.Boolean(), nullable=False),
        sa.Column("base_run_id", sa.Integer(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("model_versions", sa.JSON(), nullable=False),
        sa.Column("snapshot_marker", sa.String(length=64), nullable=True),
        sa.Column("context_marker", sa.String(length=64), nullable=True),
        sa.Column("plan", sa.LargeBinary(), nullable=True),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("total_chunks", sa.Integer(), nullable=False),
        sa.Column("done_chunks", sa.Integer(), nullable=False),
        sa.Column("total_subjects", sa.Integer(), nullable=False),
        sa.Column("done_subjects", sa.Integer(), nullable=False),
        sa.Column("copied_subjects", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=120), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rerank_runs")),
    )
    op.create_index("ix_rerank_runs_status", "rerank_runs", ["status"])
    op.create_table(
        "rerank_chunks",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("subjects", sa.Integer(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        _fk("rerank_chunks", "run_id", "rerank_runs.id"),
        sa.PrimaryKeyConstraint("run_id", "chunk_index", name=op.f("pk_rerank_chunks")),
    )
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
    op.create_table(
        "rerank_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("published_run_id", sa.Integer(), nullable=True),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_run_id", sa.Integer(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rerank_state")),
    )


def downgrade() -> None:
    op.drop_table("rerank_state")
    op.drop_index("ix_rerank_matches_candidate_id", "rerank_matches")
    op.drop_table("rerank_matches")
    op.drop_table("rerank_subjects")
    op.drop_table("rerank_chunks")
    op.drop_index("ix_rerank_runs_status", "rerank_runs")
    op.drop_table("rerank_runs")
