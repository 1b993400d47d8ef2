"""Request/response models of matchmaking events: events, sessions, places, participants,
meeting requests, meetings, schedules, agendas, analytics and feedback."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from app.schemas.common import InputModel, LongText, ShortText, Slug, unique

Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
# Alias: models below have a field called ``date``.
Day = date


def _whole_minutes(value: time) -> time:
    if value.second or value.microsecond:
        raise ValueError("times are whole minutes, e.g. '09:20'")
    if value.tzinfo is not None:
        raise ValueError("times are local to the event's time zone; leave out the offset")
    return value


ClockTime = Annotated[time, AfterValidator(_whole_minutes)]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone name such as 'Europe/Madrid'")
    return value


def _note(value: str) -> str:
    if len(value) > 2000:
        raise ValueError("at most 2000 characters")
    return value


# A message or comment: safe text (LongText) of at most 2000 characters.
Note = Annotated[LongText, AfterValidator(_note)]

TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_zone)]


def minutes(value: time) -> int:
    """Minutes after midnight.

    >>> minutes(time(9, 20))
    560
    """
    return value.hour * 60 + value.minute


def clock(minute: int) -> str:
    """'HH:MM' of minutes after midnight.

    >>> clock(560)
    '09:20'
    """
    return f"{minute // 60:02d}:{minute % 60:02d}"


# -- events ---------------------------------------------------------------------------------
class EventRules(InputModel):
    """Participation rules. Without ``groups`` anyone may meet anyone. With groups, each
    participant belongs to one, and ``allowed_pairs`` lists which groups may meet (a pair of
    the same group allows meetings inside it); no pairs = any group may meet any group."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "groups": ["buyer", "seller"],
                    "allowed_pairs": [["buyer", "seller"]],
                    "max_requests_sent": 15,
                    "max_pending_received": 25,
                    "max_meetings_per_session": 8,
                }
            ]
        }
    )

    groups: list[Slug] = Field(default_factory=list, max_length=20)
    allowed_pairs: list[tuple[Slug, Slug]] = Field(default_factory=list, max_length=200)
    max_requests_sent: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Most requests a participant may have pending or accepted at once.",
    )
    max_pending_received: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Most unanswered requests a participant can receive: once reached, new "
        "requests to it are refused and it drops out of recommendations until it answers. "
        "Keeps big players from drowning in requests.",
    )
    max_meetings_per_session: int | None = Field(default=None, ge=1, le=500)
    cross_preference: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Preference for other sectors and countries in recommendations and meeting "
        "values (as in the partner matches).",
    )

    @model_validator(mode="after")
    def _pairs_name_groups(self) -> EventRules:
        self.groups = unique(self.groups)
        known = set(self.groups)
        for pair in self.allowed_pairs:
            for group in pair:
                if group not in known:
                    raise ValueError(f"allowed_pairs names {group!r}, which is not in groups")
        self.allowed_pairs = unique([tuple(sorted(p)) for p in self.allowed_pairs])
        return self


class BreakIn(InputModel):
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _ordered(self) -> BreakIn:
        if self.end <= self.start:
            raise ValueError("a break must end after it starts")
        return self


class SessionIn(InputModel):
    """One block of meetings on one day, in the event's local time."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Morning",
                    "date": "2026-06-11",
                    "start": "09:00",
                    "end": "12:40",
                    "slot_minutes": 20,
                    "breaks": [{"start": "10:40", "end": "11:00"}],
                }
            ]
        }
    )

    name: ShortText
    date: Day
    start: ClockTime
    end: ClockTime
    slot_minutes: int = Field(ge=5, le=240)
    breaks: list[BreakIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _consistent(self) -> SessionIn:
        start, end = minutes(self.start), minutes(self.end)
        if end <= start:
            raise ValueError("a session must end after it starts (same day)")
        spans = sorted((minutes(b.start), minutes(b.end)) for b in self.breaks)
        for b_start, b_end in spans:
            if b_start < start or b_end > end:
                raise ValueError(
                    f"the break {clock(b_start)}-{clock(b_end)} lies outside the session "
                    f"{clock(start)}-{clock(end)}"
                )
        for (_, first_end), (second_start, _) in pairwise(spans):
            if second_start < first_end:
                raise ValueError("breaks overlap")
        if end - start < self.slot_minutes:
            raise ValueError("the session is shorter than one slot")
        return self


class PlaceIn(InputModel):
    """A table, booth or room; ``count`` > 1 creates that many, numbered ("Table 1", ...)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "Table", "kind": "table", "capacity": 4, "count": 60}]
        }
    )

    name: ShortText
    kind: Literal["table", "booth", "room"] = "table"
    capacity: int = Field(default=4, ge=2, le=100, description="Seats.")
    count: int = Field(default=1, ge=1, le=1000)


class EventCreate(InputModel):
    """An event with its sessions, places and rules (sessions and places can be added later)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Biocat Partnering Day 2026",
                    "description": "B2B meetings between diagnostics SMEs and hospitals.",
                    "venue": "Barcelona, Disseny Hub",
                    "timezone": "Europe/Madrid",
                    "rules": {
                        "groups": ["buyer", "seller"],
                        "allowed_pairs": [["buyer", "seller"]],
                        "max_requests_sent": 15,
                        "max_meetings_per_session": 8,
                    },
                    "sessions": [
                        {
                            "name": "Morning",
                            "date": "2026-06-11",
                            "start": "09:00",
                            "end": "12:40",
                            "slot_minutes": 20,
                            "breaks": [{"start": "10:40", "end": "11:00"}],
                        }
                    ],
                    "places": [{"name": "Table", "capacity": 4, "count": 30}],
                }
            ]
        }
    )

    name: ShortText
    description: LongText | None = None
    venue: ShortText | None = None
    timezone: TimeZone
    rules: EventRules = Field(default_factory=EventRules)
    sessions: list[SessionIn] = Field(default_factory=list, max_length=50)
    places: list[PlaceIn] = Field(default_factory=list, max_length=200)


class EventUpdate(InputModel):
    """Change the event's texts, time zone or rules (sessions and places have their own
    routes). New rules apply to new requests; a published schedule is repaired."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"rules": {"max_meetings_per_session": 6}}]}
    )

    name: ShortText | None = None
    description: LongText | None = None
    venue: ShortText | None = None
    timezone: TimeZone | None = None
    rules: EventRules | None = None


class SessionsCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "name": "Afternoon",
                            "date": "2026-06-11",
                            "start": "14:00",
                            "end": "17:00",
                            "slot_minutes": 20,
                        }
                    ]
                }
            ]
        }
    )

    items: list[SessionIn] = Field(min_length=1, max_length=50)


class PlacesCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"name": "Booth", "kind": "booth", "count": 5}]}]
        }
    )

    items: list[PlaceIn] = Field(min_length=1, max_length=200)


class BreakRead(BaseModel):
    start: str
    end: str


class SlotRead(BaseModel):
    session_id: int
    index: int = Field(description="Position of the slot in its session, from 0.")
    start: datetime
    end: datetime


class SessionRead(BaseModel):
    id: int
    name: str
    date: Day
    start: str = Field(examples=["09:00"])
    end: str = Field(examples=["12:40"])
    slot_minutes: int
    breaks: list[BreakRead]
    slots: list[SlotRead]


class PlaceRead(BaseModel):
    id: int
    name: str
    kind: str
    capacity: int


class ScheduleStats(BaseModel):
    """How good the schedule is and how it was found."""

    method: str = Field(description="cp-sat (exact) or repair.")
    status: str = Field(description="optimal, feasible (within the gap) or heuristic.")
    objective: int = Field(
        description="Weighted value: match scores in thousandths, at least "
        "1 per meeting, plus 10 000 per must-meet."
    )
    best_bound: float = Field(description="Proven upper bound on the objective.")
    bound_source: str = Field(description="lp-relaxation or cp-sat.")
    gap: float = Field(description="(bound - objective) / bound.")
    meetings_total: int
    meetings_placed: int
    must_meets_total: int
    must_meets_placed: int
    total_value: float = Field(description="Sum of the placed meetings' match scores.")
    solve_s: float
    time_limit_s: float
    fcfs_meetings_placed: int | None = Field(
        default=None, description="What first-come first-served placement would have placed."
    )
    fcfs_total_value: float | None = None


class RepairSummary(BaseModel):
    """What a repair changed."""

    trigger: str = Field(examples=["request 17 cancelled"])
    status: str
    gap: float
    moved: int = Field(description="Meetings already placed whose slot or place changed.")
    dropped: int = Field(description="Meetings already placed that lost their place.")
    added: int = Field(description="Meetings newly placed (new or from the standby list).")
    freed: int = Field(description="Placed meetings removed (cancelled) since the last run.")
    meetings_placed: int
    standby: int
    solve_s: float
    at: datetime


class ScheduleState(BaseModel):
    status: Literal["none", "draft", "published"]
    version: int
    generated_at: datetime | None
    published_at: datetime | None
    stats: ScheduleStats | None
    last_repair: RepairSummary | None


class EventRead(BaseModel):
    id: int
    name: str
    description: str | None
    venue: str | None
    timezone: str
    tenant: str | None
    rules: EventRules
    sessions: list[SessionRead]
    places: list[PlaceRead]
    participants: int
    schedule: ScheduleState
    created_at: datetime
    updated_at: datetime


class EventSummary(BaseModel):
    id: int
    name: str
    venue: str | None
    timezone: str
    tenant: str | None
    first_day: date | None
    participants: int
    schedule_status: str


class EventList(BaseModel):
    items: list[EventSummary]
    total: int
    limit: int
    offset: int


# -- participants ---------------------------------------------------------------------------
class AvailabilityIn(InputModel):
    """Attends this session, from ``start`` until ``end`` (default: all of it)."""

    session_id: Id
    start: ClockTime | None = None
    end: ClockTime | None = None


class ParticipantIn(InputModel):
    """An organisation taking part, its delegates (person ids, of that organisation) and its
    wishes. ``availability`` None = every session; ``must_meet``/``do_not_meet`` hold
    organisation ids."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": 12,
                    "group": "seller",
                    "delegates": [3],
                    "availability": [{"session_id": 1, "start": "09:00", "end": "11:00"}],
                    "must_meet": [40],
                    "do_not_meet": [7],
                }
            ]
        }
    )

    organisation_id: Id
    group: Slug | None = None
    delegates: list[Id] = Field(default_factory=list, max_length=10)
    availability: list[AvailabilityIn] | None = Field(default=None, max_length=100)
    must_meet: list[Id] = Field(default_factory=list, max_length=50)
    do_not_meet: list[Id] = Field(default_factory=list, max_length=500)
    max_meetings: int | None = Field(default=None, ge=0, le=1000)

    @field_validator("delegates", "must_meet", "do_not_meet")
    @classmethod
    def _dedupe(cls, values: list[int]) -> list[int]:
        return unique(values)

    @model_validator(mode="after")
    def _no_contradiction(self) -> ParticipantIn:
        both = set(self.must_meet) & set(self.do_not_meet)
        if both:
            raise ValueError(f"organisations {sorted(both)} are in must_meet and do_not_meet")
        if self.organisation_id in self.must_meet or self.organisation_id in self.do_not_meet:
            raise ValueError("an organisation cannot list itself")
        return self


class ParticipantsCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [{"organisation_id": 12, "group": "seller", "delegates": [3]}]}]
        }
    )

    items: list[ParticipantIn] = Field(min_length=1, max_length=2000)


class ParticipantsCsv(InputModel):
    """Participants as CSV text (UTF-8, comma-separated, header row). Columns:
    ``organisation_id`` (required), ``group``, ``delegates`` (person ids), ``sessions`` (ids of
    the sessions attended; empty = all), ``must_meet``, ``do_not_meet`` (organisation ids),
    ``max_meetings``; lists separated by ``;``. The file is checked whole: any bad row -> 422
    listing every bad row, nothing registered."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "csv": "organisation_id,group,delegates,sessions,must_meet,do_not_meet\n"
                    "12,seller,3;4,1,40,\n40,buyer,,,,7\n"
                }
            ]
        }
    )

    csv: str = Field(min_length=1, max_length=1_000_000)


class ParticipantUpdate(InputModel):
    """Change a participant's group, delegates or wishes; a published schedule is repaired."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"availability": [{"session_id": 1}], "max_meetings": 6}]}
    )

    group: Slug | None = None
    delegates: list[Id] | None = Field(default=None, max_length=10)
    availability: list[AvailabilityIn] | None = Field(default=None, max_length=100)
    must_meet: list[Id] | None = Field(default=None, max_length=50)
    do_not_meet: list[Id] | None = Field(default=None, max_length=500)
    max_meetings: int | None = Field(default=None, ge=0, le=1000)


class DelegateRead(BaseModel):
    """A delegate; email and phone only for those allowed to see them (the person's cluster
    staff, its own organisation, organisations it accepted a meeting with)."""

    person_id: int
    full_name: str
    job_title: str | None
    email: str | None
    phone: str | None


class OrganisationBrief(BaseModel):
    id: int
    name: str
    kind: str
    country: str
    sectors: list[str]


class AvailabilityRead(BaseModel):
    session_id: int
    start: str
    end: str


class ParticipantRead(BaseModel):
    """A participant. Wishes (availability, must/do-not-meet) are shown to organisers and to
    the participant itself only."""

    id: int
    event_id: int
    organisation: OrganisationBrief
    group: str | None
    delegates: list[DelegateRead]
    availability: list[AvailabilityRead] | None
    must_meet: list[int] | None
    do_not_meet: list[int] | None
    max_meetings: int | None


class ParticipantList(BaseModel):
    items: list[ParticipantRead]
    total: int
    limit: int
    offset: int


class ParticipantsCreated(BaseModel):
    items: list[ParticipantRead]


# -- recommendations ------------------------------------------------------------------------
class EventRecommendation(BaseModel):
    participant_id: int
    organisation: OrganisationBrief
    group: str | None
    score: float = Field(ge=0, le=1, description="Reciprocal score: geometric mean of both.")
    score_for_you: float = Field(description="The ranker's score of them for you.")
    score_for_them: float = Field(description="The ranker's score of you for them.")
    explanation: list[str]
    features: dict[str, float] = Field(description="Features from your side (as in matches).")


class RecommendationList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "participant_id": 5,
                    "model_version": "ranker-v1",
                    "items": [
                        {
                            "participant_id": 9,
                            "organisation": {
                                "id": 42,
                                "name": "Hospital Clínic Nord",
                                "kind": "hospital_or_care_provider",
                                "country": "ES",
                                "sectors": ["diagnostics"],
                            },
                            "group": "buyer",
                            "score": 0.71,
                            "score_for_you": 0.78,
                            "score_for_them": 0.65,
                            "explanation": [
                                'Offers "clinical validation site", which matches your need '
                                '"clinical validation site for a diagnostic".',
                                "Both sides gain: a match score of 0.78 from your side and "
                                "0.65 from theirs.",
                            ],
                            "features": {"offer_fit": 0.83, "need_fit": 0.61},
                        }
                    ],
                }
            ]
        }
    )

    participant_id: int
    model_version: str
    items: list[EventRecommendation]


class AllRecommendations(BaseModel):
    model_version: str
    items: list[RecommendationList]


# -- requests and meetings ------------------------------------------------------------------
class RequestCreate(InputModel):
    """Ask for a meeting. A member key asks for its own organisation (leave out
    ``from_participant_id``); organisers ask on a participant's behalf."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_participant_id": 9,
                    "message": "We look for a clinical validation site for our AI pathology "
                    "tool; 20 minutes to see if your oncology unit fits?",
                }
            ]
        }
    )

    to_participant_id: Id
    from_participant_id: Id | None = None
    message: Note = ""


class RequestAnswer(InputModel):
    """An optional note with an answer or a cancellation."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"message": "Happy to meet."}]})

    message: Note | None = None


class ParticipantBrief(BaseModel):
    participant_id: int
    organisation: OrganisationBrief
    group: str | None
    delegates: list[DelegateRead]


class RequestStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"


class RequestRead(BaseModel):
    """A meeting request; delegates' contact details appear once it is accepted."""

    id: int
    event_id: int
    sender: ParticipantBrief
    recipient: ParticipantBrief
    message: str
    status: RequestStatus
    response_message: str | None
    cancelled_by: str | None
    meeting_id: int | None
    created_at: datetime
    responded_at: datetime | None


class RequestList(BaseModel):
    items: list[RequestRead]
    total: int
    limit: int
    offset: int


class PlaceBrief(BaseModel):
    id: int
    name: str


class MeetingRead(BaseModel):
    """A meeting; ``slot``/``place`` are set once scheduled, ``standby`` when a schedule
    exists but it did not fit (it moves in when a slot frees up)."""

    id: int
    event_id: int
    kind: Literal["request", "must_meet"]
    status: Literal["active", "cancelled"]
    request_id: int | None
    value: float | None = Field(description="Reciprocal match score.")
    parties: list[ParticipantBrief]
    slot: SlotRead | None
    place: PlaceBrief | None
    standby: bool


class MeetingList(BaseModel):
    items: list[MeetingRead]
    total: int
    limit: int
    offset: int


class RequestChange(BaseModel):
    """The changed request and, when a published schedule had to change, what the repair did."""

    request: RequestRead
    schedule_repair: RepairSummary | None


class MeetingChange(BaseModel):
    meeting: MeetingRead
    schedule_repair: RepairSummary | None


# -- schedule -------------------------------------------------------------------------------
class ScheduleCreate(InputModel):
    """Compute a draft schedule of every accepted and must-meet meeting."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"time_limit_s": 20}]})

    time_limit_s: float = Field(default=20.0, ge=1, le=120, allow_inf_nan=False)
    compare_fcfs: bool = Field(
        default=True, description="Also compute first-come first-served placement to compare."
    )


class ScheduleRepair(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"time_limit_s": 10}]})

    time_limit_s: float = Field(default=10.0, ge=1, le=120, allow_inf_nan=False)


class ScheduledMeeting(BaseModel):
    meeting_id: int
    kind: str
    value: float | None
    parties: list[int] = Field(description="Participant ids.")
    slot: SlotRead | None
    place: PlaceBrief | None


class ScheduleRead(BaseModel):
    event_id: int
    schedule: ScheduleState
    meetings: list[ScheduledMeeting] = Field(description="Placed meetings, by time and place.")
    standby: list[ScheduledMeeting] = Field(description="Not placed, most valuable first.")


class AgendaItem(BaseModel):
    meeting_id: int
    start: datetime
    end: datetime
    session: str
    place: str | None
    counterpart: ParticipantBrief
    kind: str


class AgendaRead(BaseModel):
    """One participant's meetings in time order (empty until the schedule is published, for
    participants; organisers also see drafts)."""

    event_id: int
    event_name: str
    timezone: str
    participant: ParticipantBrief
    schedule_status: str
    items: list[AgendaItem]
    standby: list[int] = Field(description="Meetings of this participant not placed (yet).")


# -- analytics and feedback -----------------------------------------------------------------
class ParticipantActivity(BaseModel):
    participant_id: int
    organisation_id: int
    name: str
    requests_sent: int
    requests_received: int
    accepted: int
    declined: int
    meetings: int = Field(description="Active meetings (accepted or must-meet).")
    scheduled: int


class Distribution(BaseModel):
    min: float
    median: float
    mean: float
    max: float


class EventAnalytics(BaseModel):
    """Organiser figures: how requests went, who meets whom, who is left out."""

    event_id: int
    participants: int
    requests: dict[str, int] = Field(
        description="sent (all), pending, accepted, declined, cancelled."
    )
    acceptance_rate: float | None = Field(description="Accepted / answered requests.")
    unanswered_share: float | None = Field(description="Share of requests still pending.")
    meetings: dict[str, int] = Field(description="active, scheduled, standby, must_meet.")
    meetings_per_participant: Distribution | None
    cross_sector_share: float | None = Field(
        description="Share of meetings (scheduled if a schedule exists, else active) between "
        "organisations with no sector in common."
    )
    cross_country_share: float | None
    participants_without_meeting: list[ParticipantActivity]
    per_participant: list[ParticipantActivity]


class Outcome(StrEnum):
    no_further_contact = "no_further_contact"
    knowledge_gain = "knowledge_gain"
    valuable_contact = "valuable_contact"
    negotiation_started = "negotiation_started"
    agreement_reached = "agreement_reached"


class FeedbackCreate(InputModel):
    """How a meeting went, from one side. Recorded as an ``event_meeting`` collaboration link
    weighted by the outcome (0.25 / 0.5 / 1 / 1.5 / 2), so the graph and future matches learn.
    Organisers recording on a party's behalf name it in ``participant_id``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"outcome": "negotiation_started", "comment": "Pilot in Q3."}]
        }
    )

    outcome: Outcome
    comment: Note | None = None
    participant_id: Id | None = None


class FeedbackRead(BaseModel):
    meeting_id: int
    participant_id: int
    outcome: Outcome
    weight: float
    comment: str | None
    collaboration_id: int | None
    created_at: datetime
