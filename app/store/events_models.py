"""SQLAlchemy models of brokerage events: sessions, places, participants and their delegates,
meeting requests, meetings with their place in the schedule, and post-event feedback."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow
from app.store.types import UTCDateTime


class Event(Base):
    """A matchmaking event owned by the organiser key that created it (and its tenant). The
    schedule's state lives here too: none -> draft -> published."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    venue: Mapped[str | None] = mapped_column(String(300))
    # IANA time zone name: sessions are given in local time, calendars get UTC.
    timezone: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    # No foreign key: the key may be revoked, the event stays its organiser's.
    owner_key_id: Mapped[int | None] = mapped_column(Integer, index=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    schedule_status: Mapped[str] = mapped_column(String(20), default="none")
    # Bumped on every change of placements, so a repair computed meanwhile is not written.
    schedule_version: Mapped[int] = mapped_column(Integer, default=0)
    schedule_stats: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    schedule_generated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    schedule_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EventSession(Base):
    """A block of meetings on one day, cut into slots of ``slot_minutes`` around breaks."""

    __tablename__ = "event_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    day: Mapped[date] = mapped_column(Date)
    # Minutes after local midnight.
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    # [[start_minute, end_minute], ...]
    breaks: Mapped[list[list[int]]] = mapped_column(JSON, default=list)


class EventPlace(Base):
    """A table, booth or room that hosts one meeting per slot."""

    __tablename__ = "event_places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    capacity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("event_id", "name", name="uq_event_places_event_id_name"),)


class EventParticipant(Base):
    """An organisation taking part in an event, with its group and wishes."""

    __tablename__ = "event_participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    group_name: Mapped[str | None] = mapped_column(String(80))
    # [{"session_id": 1, "from_minute": 540, "until_minute": 720}, ...]; None = every slot.
    availability: Mapped[list[dict[str, int]] | None] = mapped_column(JSON)
    # Organisation ids.
    must_meet: Mapped[list[int]] = mapped_column(JSON, default=list)
    do_not_meet: Mapped[list[int]] = mapped_column(JSON, default=list)
    max_meetings: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "event_id", "organisation_id", name="uq_event_participants_event_id_organisation_id"
        ),
    )


class EventDelegate(Base):
    """A person attending for a participant (persons belong to the people/privacy work)."""

    __tablename__ = "event_delegates"

    participant_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class EventRequest(Base):
    """A meeting request: pending -> accepted | declined | cancelled."""

    __tablename__ = "event_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    sender_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), index=True
    )
    recipient_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    response_message: Mapped[str | None] = mapped_column(Text)
    cancelled_by: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EventMeeting(Base):
    """A meeting to hold: from an accepted request, or from a must-meet wish. Its slot and
    place are the schedule; none while it is unscheduled or on standby."""

    __tablename__ = "event_meetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    a_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), index=True
    )
    b_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_requests.id", ondelete="CASCADE"), unique=True
    )
    # request | must_meet
    kind: Mapped[str] = mapped_column(String(20))
    # active | cancelled
    status: Mapped[str] = mapped_column(String(20), default="active")
    # Reciprocal match score, refreshed at each scheduling run.
    value: Mapped[float | None] = mapped_column(Float)
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_sessions.id", ondelete="SET NULL"), index=True
    )
    slot_index: Mapped[int | None] = mapped_column(Integer)
    place_id: Mapped[int | None] = mapped_column(
        ForeignKey("event_places.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class EventFeedback(Base):
    """One side's outcome of a meeting, recorded as a collaboration link."""

    __tablename__ = "event_feedback"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("event_meetings.id", ondelete="CASCADE"), primary_key=True
    )
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("event_participants.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    outcome: Mapped[str] = mapped_column(String(30))
    comment: Mapped[str | None] = mapped_column(Text)
    collaboration_id: Mapped[int | None] = mapped_column(
        ForeignKey("collaborations.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
