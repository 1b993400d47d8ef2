"""matchmaking events: sessions, places, participants, delegates, requests, meetings, feedback

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    referred = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete=ondelete
    )


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("venue", sa.String(length=300), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=80), nullable=True),
        sa.Column("owner_key_id", sa.Integer(), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("schedule_status", sa.String(length=20), nullable=False),
        sa.Column("schedule_version", sa.Integer(), nullable=False),
        sa.Column("schedule_stats", sa.JSON(), nullable=True),
        sa.Column("schedule_generated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("schedule_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_tenant", "events", ["tenant"])
    op.create_index("ix_events_owner_key_id", "events", ["owner_key_id"])

    op.create_table(
        "event_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("breaks", sa.JSON(), nullable=False),
        _fk("event_sessions", "event_id", "events.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_sessions")),
    )
    op.create_index("ix_event_sessions_event_id", "event_sessions", ["event_id"])

    op.create_table(
        "event_places",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        _fk("event_places", "event_id", "events.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_places")),
        sa.UniqueConstraint("event_id", "name", name="uq_event_places_event_id_name"),
    )
    op.create_index("ix_event_places_event_id", "event_places", ["event_id"])

    op.create_table(
        "event_participants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(length=80), nullable=True),
        sa.Column("availability", sa.JSON(), nullable=True),
        sa.Column("must_meet", sa.JSON(), nullable=False),
        sa.Column("do_not_meet", sa.JSON(), nullable=False),
        sa.Column("max_meetings", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("event_participants", "event_id", "events.id"),
        _fk("event_participants", "organisation_id", "organisations.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_participants")),
        sa.UniqueConstraint(
            "event_id",
            "organisation_id",
            name="uq_event_participants_event_id_organisation_id",
        ),
    )
    op.create_index("ix_event_participants_event_id", "event_participants", ["event_id"])
    op.create_index(
        "ix_event_participants_organisation_id", "event_participants", ["organisation_id"]
    )

    op.create_table(
        "event_delegates",
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        _fk("event_delegates", "participant_id", "event_participants.id"),
        _fk("event_delegates", "person_id", "persons.id"),
        sa.PrimaryKeyConstraint("participant_id", "person_id", name=op.f("pk_event_delegates")),
    )
    op.create_index("ix_event_delegates_person_id", "event_delegates", ["person_id"])

    op.create_table(
        "event_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("response_message", sa.Text(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        _fk("event_requests", "event_id", "events.id"),
        _fk("event_requests", "sender_id", "event_participants.id"),
        _fk("event_requests", "recipient_id", "event_participants.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_requests")),
    )
    op.create_index("ix_event_requests_event_id", "event_requests", ["event_id"])
    op.create_index("ix_event_requests_sender_id", "event_requests", ["sender_id"])
    op.create_index("ix_event_requests_recipient_id", "event_requests", ["recipient_id"])

    op.create_table(
        "event_meetings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("a_id", sa.Integer(), nullable=False),
        sa.Column("b_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("slot_index", sa.Integer(), nullable=True),
        sa.Column("place_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        _fk("event_meetings", "event_id", "events.id"),
        _fk("event_meetings", "a_id", "event_participants.id"),
        _fk("event_meetings", "b_id", "event_participants.id"),
        _fk("event_meetings", "request_id", "event_requests.id"),
        _fk("event_meetings", "session_id", "event_sessions.id", ondelete="SET NULL"),
        _fk("event_meetings", "place_id", "event_places.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_meetings")),
        sa.UniqueConstraint("request_id", name=op.f("uq_event_meetings_request_id")),
    )
    op.create_index("ix_event_meetings_event_id", "event_meetings", ["event_id"])
    op.create_index("ix_event_meetings_a_id", "event_meetings", ["a_id"])
    op.create_index("ix_event_meetings_b_id", "event_meetings", ["b_id"])

    op.create_table(
        "event_feedback",
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("collaboration_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("event_feedback", "meeting_id", "event_meetings.id"),
        _fk("event_feedback", "participant_id", "event_participants.id"),
        _fk("event_feedback", "collaboration_id", "collaborations.id", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("meeting_id", "participant_id", name=op.f("pk_event_feedback")),
    )


def downgrade() -> None:
    op.drop_table("event_feedback")
    for index in ("ix_event_meetings_b_id", "ix_event_meetings_a_id", "ix_event_meetings_event_id"):
        op.drop_index(index, "event_meetings")
    op.drop_table("event_meetings")
    for index in (
        "ix_event_requests_recipient_id",
        "ix_event_requests_sender_id",
        "ix_event_requests_event_id",
    ):
        op.drop_index(index, "event_requests")
    op.drop_table("event_requests")
    op.drop_index("ix_event_delegates_person_id", "event_delegates")
    op.drop_table("event_delegates")
    op.drop_index("ix_event_participants_organisation_id", "event_participants")
    op.drop_index("ix_event_participants_event_id", "event_participants")
    op.drop_table("event_participants")
    op.drop_index("ix_event_places_event_id", "event_places")
    op.drop_table("event_places")
    op.drop_index("ix_event_sessions_event_id", "event_sessions")
    op.drop_table("event_sessions")
    op.drop_index("ix_events_owner_key_id", "events")
    op.drop_index("ix_events_tenant", "events")
    op.drop_table("events")
