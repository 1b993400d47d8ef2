"""state changes: the change feed processes sharing a store follow

Revision ID: 0009
Revises: 0001

Existing stores start with an empty feed: a process reads the whole store at start-up and
follows the entries written after that.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "state_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("collaboration_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_state_changes")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_state_changes_at", "state_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_state_changes_at", "state_changes")
    op.drop_table("state_changes")
