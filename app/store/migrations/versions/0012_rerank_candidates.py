"""re-ranking lists: each list's candidates and the best score that missed its pool

Revision ID: 0012
Revises: 0011

``rerank_lists.candidates`` holds every organisation a list's ranking scored (ascending ids,
stored as zlib-compressed uint32 gaps; NULL when every organisation is scored), and
``next_score`` the best score outside the pool the list was diversified from. An incremental
run (``--only-changed``) checks a stored list against them instead of trusting that it still
stands (``matching.batch.verify_chunk``). Lists stored before have neither: an incremental run
based on them ranks every organisation once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rerank_lists", sa.Column("candidates", sa.LargeBinary(), nullable=True))
    op.add_column("rerank_lists", sa.Column("next_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rerank_lists") as batch:
        batch.drop_column("next_score")
        batch.drop_column("candidates")
