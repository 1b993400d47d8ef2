"""Event use cases: who may see and manage an event, events with their sessions and places,
participants (one by one, in bulk, from CSV), and the loaded view of an event the other event
services (requests, schedule, outputs) share."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Forbidden
from app.errors import Conflict, NotFound, Unprocessable
from app.schemas.events import ParticipantIn, clock, minutes
from app.services.context import ServiceContext
from app.services.keys import Principal, Role
from app.services.people import granted_ids, listed_condition, sees_contact
from app.store import events_models as e
from app.store import models as m
from app.store.models import utcnow
from matching.event_matching import Attendee, MeetingRules
from matching.scheduling import session_slots

MANAGE = "manage"  # admin, or the organiser key that owns the event
VIEW = "view"  # staff of the event's tenant
PARTICIPATE = "participate"  # a member key whose organisation takes part

NO_SCHEDULE, DRAFT, PUBLISHED = "none", "draft", "published"
MAX_PLACES = 2000
MAX_SESSIONS = 50
ACTIVE, CANCELLED = "active", "cancelled"


# -- access --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EventAccess:
    """What the caller may do with one event; ``participant_id`` for member keys."""

    event_id: int
    level: str
    principal: Principal
    participant_id: int | None = None

    @property
    def manages(self) -> bool:
        return self.level == MANAGE

    @property
    def sees_all(self) -> bool:
        """Organisers and the tenant's staff see every participant's wishes and requests."""
        return self.level in (MANAGE, VIEW)


async def event_access(ctx: ServiceContext, principal: Principal, event_id: int) -> EventAccess:
    """The caller's access to an event; an event it may not see answers 404 like a missing
    one (another organiser's, another tenant's, or one a member's organisation is not in)."""
    async with ctx.db.read() as session:
        row = await session.get(e.Event, event_id)
        participant_id = None
        if row is not None and principal.role is Role.member:
            participant_id = await session.scalar(
                select(e.EventParticipant.id).where(
                    e.EventParticipant.event_id == event_id,
                    e.EventParticipant.organisation_id == principal.organisation_id,
                )
            )
    level = None
    if row is not None:
        owner = principal.role is Role.organiser and row.owner_key_id == principal.key_id
        if principal.is_admin or owner:
            level = MANAGE
        elif principal.role is Role.staff and row.tenant and row.tenant == principal.tenant:
            level = VIEW
        elif principal.role is Role.member and participant_id is not None:
            level = PARTICIPATE
    if level is None:
        raise NotFound(f"event {event_id} does not exist")
    return EventAccess(event_id, level, principal, participant_id)


def require_manage(access: EventAccess) -> None:
    if not access.manages:
        raise Forbidden("only the event's organiser may change it")


def require_sees_all(access: EventAccess) -> None:
    if not access.sees_all:
        raise Forbidden("only the event's organiser and its cluster's staff may see this")


@asynccontextmanager
async def writing(ctx: ServiceContext) -> AsyncIterator[AsyncSession]:
    """One write transaction under the store's writer lock."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        yield session


# -- the loaded event ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GridSlot:
    """A slot of the event: ``id`` is its chronological position over all sessions."""

    id: int
    session_id: int
    index: int
    day: date
    start_minute: int
    end_minute: int


@dataclass
class EventBundle:
    """An event with everything the event services read, loaded in one go."""

    event: e.Event
    sessions: list[e.EventSession]
    places: list[e.EventPlace]
    participants: list[e.EventParticipant]
    delegates: dict[int, list[m.Person]]  # participant id -> listed persons, in order
    organisations: dict[int, dict[str, Any]]
    meetings: list[e.EventMeeting] = field(default_factory=list)
    requests: list[e.EventRequest] = field(default_factory=list)
    slots: list[GridSlot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sessions.sort(key=lambda s: (s.day, s.start_minute, s.id))
        self.slots = []
        for s in self.sessions:
            for i, (start, end) in enumerate(
                session_slots(s.start_minute, s.end_minute, s.slot_minutes, _pairs(s.breaks))
            ):
                self.slots.append(GridSlot(len(self.slots), s.id, i, s.day, start, end))
        self.slot_at = {(g.session_id, g.index): g for g in self.slots}
        self.session_by_id = {s.id: s for s in self.sessions}
        self.place_by_id = {p.id: p for p in self.places}
        self.participant_by_id = {p.id: p for p in self.participants}
        self.participant_of_org = {p.organisation_id: p for p in self.participants}
        self.meeting_of_request = {
            mt.request_id: mt for mt in self.meetings if mt.request_id is not None
        }

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.event.timezone)

    @property
    def rules(self) -> dict[str, Any]:
        return dict(self.event.rules or {})

    def meeting_rules(self) -> MeetingRules:
        pairs = self.rules.get("allowed_pairs") or []
        return MeetingRules(frozenset((str(a), str(b)) for a, b in pairs))

    def when(self, slot: GridSlot) -> tuple[datetime, datetime]:
        """Local, zone-aware start and end of a slot."""
        midnight = datetime.combine(slot.day, datetime.min.time(), tzinfo=self.zone)
        # Wall-clock arithmetic: add minutes to local midnight, then re-attach the zone so
        # days with a DST change still put 09:00 at 09:00.
        start = (midnight.replace(tzinfo=None) + timedelta(minutes=slot.start_minute)).replace(
            tzinfo=self.zone
        )
        end = (midnight.replace(tzinfo=None) + timedelta(minutes=slot.end_minute)).replace(
            tzinfo=self.zone
        )
        return start, end

    def slot_ids(self, participant: e.EventParticipant) -> frozenset[int] | None:
        """Slots a participant can attend (None: all)."""
        if participant.availability is None:
            return None
        ids: set[int] = set()
        for window in participant.availability:
            for g in self.slots:
                if (
                    g.session_id == window["session_id"]
                    and g.start_minute >= window["from_minute"]
                    and g.end_minute <= window["until_minute"]
                ):
                    ids.add(g.id)
        return frozenset(ids)

    def attendee(self, participant: e.EventParticipant) -> Attendee:
        return Attendee(
            participant_id=participant.id,
            organisation_id=participant.organisation_id,
            group=participant.group_name,
            do_not_meet=frozenset(participant.do_not_meet or ()),
            slots=self.slot_ids(participant),
        )

    def seats(self, participant_id: int) -> int:
        """Seats a participant takes at a table: its delegates, at least one."""
        return max(1, len(self.delegates.get(participant_id, ())))

    def placed_slot(self, meeting: e.EventMeeting) -> GridSlot | None:
        if meeting.session_id is None or meeting.slot_index is None:
            return None
        return self.slot_at.get((meeting.session_id, meeting.slot_index))


def _pairs(breaks: Iterable[Sequence[int]] | None) -> list[tuple[int, int]]:
    return [(int(b[0]), int(b[1])) for b in breaks or ()]


async def load_bundle(
    ctx: ServiceContext, event_id: int, *, session: AsyncSession | None = None
) -> EventBundle:
    """The event with sessions, places, participants, delegates, organisations, meetings and
    requests (in a given session, e.g. a write transaction, or a fresh read)."""
    if session is None:
        async with ctx.db.read() as fresh:
            return await load_bundle(ctx, event_id, session=fresh)
    event = await session.get(e.Event, event_id)
    if event is None:
        raise NotFound(f"event {event_id} does not exist")

    async def rows(model: Any, *order: Any) -> list[Any]:
        query = select(model).where(model.event_id == event_id).order_by(*order)
        return list((await session.scalars(query)).all())

    sessions = await rows(e.EventSession, e.EventSession.id)
    places = await rows(e.EventPlace, e.EventPlace.id)
    participants = await rows(e.EventParticipant, e.EventParticipant.id)
    meetings = await rows(e.EventMeeting, e.EventMeeting.id)
    requests = await rows(e.EventRequest, e.EventRequest.id)
    delegates: dict[int, list[m.Person]] = defaultdict(list)
    if participants:
        found = await session.execute(
            select(e.EventDelegate.participant_id, m.Person)
            .join(m.Person, m.Person.id == e.EventDelegate.person_id)
            .join(e.EventParticipant, e.EventParticipant.id == e.EventDelegate.participant_id)
            .where(e.EventParticipant.event_id == event_id, listed_condition())
            .order_by(e.EventDelegate.participant_id, e.EventDelegate.position)
        )
        for participant_id, person in found.all():
            delegates[participant_id].append(person)
    organisations = await _organisations(session, [p.organisation_id for p in participants])
    return EventBundle(
        event=event,
        sessions=sessions,
        places=places,
        participants=participants,
        delegates=dict(delegates),
        organisations=organisations,
        meetings=meetings,
        requests=requests,
    )


async def _organisations(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    org = m.Organisation
    found = await session.execute(
        select(org.id, org.name, org.kind, org.country, org.tenant).where(org.id.in_(ids))
    )
    out = {
        r.id: {
            "id": r.id,
            "name": r.name,
            "kind": r.kind,
            "country": r.country,
            "tenant": r.tenant,
            "sectors": [],
        }
        for r in found.all()
    }
    sectors = await session.execute(
        select(m.OrganisationSector.organisation_id, m.OrganisationSector.sector)
        .where(m.OrganisationSector.organisation_id.in_(ids))
        .order_by(m.OrganisationSector.organisation_id, m.OrganisationSector.position)
    )
    for org_id, sector in sectors.all():
        out[org_id]["sectors"].append(sector)
    return out


# -- views ---------------------------------------------------------------------------------
class Viewer:
    """Renders participants and delegates for one caller: contact details only where the
    people rules allow them, wishes only for organisers and the participant itself."""

    def __init__(self, access: EventAccess, bundle: EventBundle, granted: set[int]) -> None:
        self.access = access
        self.bundle = bundle
        self.granted = granted

    @classmethod
    async def build(cls, ctx: ServiceContext, access: EventAccess, bundle: EventBundle) -> Viewer:
        person_ids = [p.id for people in bundle.delegates.values() for p in people]
        async with ctx.db.read() as session:
            granted = await granted_ids(session, access.principal, person_ids)
        return cls(access, bundle, granted)

    def delegates(self, participant_id: int) -> list[dict[str, Any]]:
        out = []
        for person in self.bundle.delegates.get(participant_id, ()):
            shown = sees_contact(self.access.principal, person, granted=person.id in self.granted)
            out.append(
                {
                    "person_id": person.id,
                    "full_name": person.full_name,
                    "job_title": person.job_title,
                    "email": person.email if shown else None,
                    "phone": person.phone if shown else None,
                }
            )
        return out

    def organisation(self, org_id: int) -> dict[str, Any]:
        org = self.bundle.organisations.get(org_id)
        if org is None:
            return {
                "id": org_id,
                "name": "(removed)",
                "kind": "other",
                "country": "",
                "sectors": [],
            }
        return {k: org[k] for k in ("id", "name", "kind", "country", "sectors")}

    def brief(self, participant_id: int) -> dict[str, Any]:
        p = self.bundle.participant_by_id[participant_id]
        return {
            "participant_id": p.id,
            "organisation": self.organisation(p.organisation_id),
            "group": p.group_name,
            "delegates": self.delegates(p.id),
        }

    def participant(self, p: e.EventParticipant) -> dict[str, Any]:
        private = self.access.sees_all or p.id == self.access.participant_id
        availability = None
        if private and p.availability is not None:
            availability = [
                {
                    "session_id": w["session_id"],
                    "start": clock(w["from_minute"]),
                    "end": clock(w["until_minute"]),
                }
                for w in p.availability
            ]
        return {
            "id": p.id,
            "event_id": p.event_id,
            "organisation": self.organisation(p.organisation_id),
            "group": p.group_name,
            "delegates": self.delegates(p.id),
            "availability": availability,
            "must_meet": list(p.must_meet or []) if private else None,
            "do_not_meet": list(p.do_not_meet or []) if private else None,
            "max_meetings": p.max_meetings if private else None,
        }

    def slot(self, slot: GridSlot | None) -> dict[str, Any] | None:
        if slot is None:
            return None
        start, end = self.bundle.when(slot)
        return {"session_id": slot.session_id, "index": slot.index, "start": start, "end": end}


def event_view(bundle: EventBundle) -> dict[str, Any]:
    ev = bundle.event
    stats = dict(ev.schedule_stats or {})
    last_repair = stats.pop("last_repair", None)
    sessions = []
    for s in bundle.sessions:
        own = [g for g in bundle.slots if g.session_id == s.id]
        sessions.append(
            {
                "id": s.id,
                "name": s.name,
                "date": s.day,
                "start": clock(s.start_minute),
                "end": clock(s.end_minute),
                "slot_minutes": s.slot_minutes,
                "breaks": [{"start": clock(a), "end": clock(b)} for a, b in _pairs(s.breaks)],
                "slots": [_slot_read(bundle, g) for g in own],
            }
        )
    return {
        "id": ev.id,
        "name": ev.name,
        "description": ev.description,
        "venue": ev.venue,
        "timezone": ev.timezone,
        "tenant": ev.tenant,
        "rules": ev.rules or {},
        "sessions": sessions,
        "places": [
            {"id": p.id, "name": p.name, "kind": p.kind, "capacity": p.capacity}
            for p in bundle.places
        ],
        "participants": len(bundle.participants),
        "schedule": schedule_state(ev, stats or None, last_repair),
        "created_at": ev.created_at,
        "updated_at": ev.updated_at,
    }


def _slot_read(bundle: EventBundle, g: GridSlot) -> dict[str, Any]:
    start, end = bundle.when(g)
    return {"session_id": g.session_id, "index": g.index, "start": start, "end": end}


def schedule_state(
    ev: e.Event, stats: dict[str, Any] | None, last_repair: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "status": ev.schedule_status,
        "version": ev.schedule_version,
        "generated_at": ev.schedule_generated_at,
        "published_at": ev.schedule_published_at,
        "stats": stats,
        "last_repair": last_repair,
    }


# -- events --------------------------------------------------------------------------------
async def create_event(
    ctx: ServiceContext, principal: Principal, body: dict[str, Any]
) -> dict[str, Any]:
    """Create an event owned by the calling key (and its tenant)."""
    sessions = [_session_values(s) for s in body.get("sessions") or []]
    _check_no_overlap(sessions, [])
    places = _expand_places(body.get("places") or [])
    _check_place_names(places, [])
    now = utcnow()
    async with writing(ctx) as session:
        event = e.Event(
            name=body["name"],
            description=body.get("description"),
            venue=body.get("venue"),
            timezone=body["timezone"],
            tenant=principal.tenant,
            owner_key_id=principal.key_id,
            rules=body.get("rules") or {},
            schedule_status=NO_SCHEDULE,
            schedule_version=0,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        await session.flush()
        for values in sessions:
            session.add(e.EventSession(event_id=event.id, **values))
        for place in places:
            session.add(e.EventPlace(event_id=event.id, **place))
        await session.flush()
        event_id = event.id
    return event_view(await load_bundle(ctx, event_id))


async def get_event(ctx: ServiceContext, access: EventAccess) -> dict[str, Any]:
    return event_view(await load_bundle(ctx, access.event_id))


async def list_events(
    ctx: ServiceContext, principal: Principal, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Events the caller may see: its own (organiser), its tenant's (staff), those its
    organisation takes part in (member), all (admin)."""
    ev = e.Event
    conditions: list[Any] = []
    if principal.role is Role.organiser:
        conditions.append(ev.owner_key_id == principal.key_id)
    elif principal.role is Role.staff:
        conditions.append(ev.tenant == principal.tenant)
    elif principal.role is Role.member:
        conditions.append(
            ev.id.in_(
                select(e.EventParticipant.event_id).where(
                    e.EventParticipant.organisation_id == principal.organisation_id
                )
            )
        )
    elif not principal.is_admin:
        conditions.append(ev.id.is_(None))
    counts = (
        select(e.EventParticipant.event_id, func.count().label("n"))
        .group_by(e.EventParticipant.event_id)
        .subquery()
    )
    first_day = (
        select(e.EventSession.event_id, func.min(e.EventSession.day).label("day"))
        .group_by(e.EventSession.event_id)
        .subquery()
    )
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(ev).where(*conditions))
        rows = (
            await session.execute(
                select(ev, func.coalesce(counts.c.n, 0), first_day.c.day)
                .outerjoin(counts, counts.c.event_id == ev.id)
                .outerjoin(first_day, first_day.c.event_id == ev.id)
                .where(*conditions)
                .order_by(ev.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
    items = [
        {
            "id": row.id,
            "name": row.name,
            "venue": row.venue,
            "timezone": row.timezone,
            "tenant": row.tenant,
            "first_day": day,
            "participants": int(n),
            "schedule_status": row.schedule_status,
        }
        for row, n, day in rows
    ]
    return items, int(total or 0)


async def update_event(
    ctx: ServiceContext, access: EventAccess, changes: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Apply changes; returns the event and whether a published schedule needs a repair."""
    require_manage(access)
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        event = bundle.event
        if "rules" in changes and changes["rules"] is not None:
            _check_rules_fit(bundle, changes["rules"])
        for key in ("name", "description", "venue", "timezone", "rules"):
            if key in changes and (changes[key] is not None or key in ("description", "venue")):
                setattr(event, key, changes[key])
        event.updated_at = utcnow()
    needs_repair = "rules" in changes and bundle.event.schedule_status == PUBLISHED
    return event_view(await load_bundle(ctx, access.event_id)), needs_repair


def _check_rules_fit(bundle: EventBundle, rules: dict[str, Any]) -> None:
    groups = set(rules.get("groups") or [])
    misfits = sorted(
        {p.group_name for p in bundle.participants if p.group_name and p.group_name not in groups}
    )
    if misfits:
        raise Conflict(
            f"participants are registered in groups {misfits}, which the new rules drop; "
            "move them first"
        )


async def delete_event(ctx: ServiceContext, access: EventAccess) -> None:
    require_manage(access)
    async with writing(ctx) as session:
        await session.execute(delete(e.Event).where(e.Event.id == access.event_id))


# -- sessions and places --------------------------------------------------------------------
def _session_values(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": body["name"],
        "day": date.fromisoformat(str(body["date"])),
        "start_minute": minutes(_time(body["start"])),
        "end_minute": minutes(_time(body["end"])),
        "slot_minutes": int(body["slot_minutes"]),
        "breaks": [
            [minutes(_time(b["start"])), minutes(_time(b["end"]))] for b in body.get("breaks") or []
        ],
    }


def _time(value: Any) -> time:
    return value if isinstance(value, time) else time.fromisoformat(str(value))


def _check_no_overlap(new: list[dict[str, Any]], stored: list[e.EventSession]) -> None:
    """Sessions may not overlap: within the request (422) or with stored ones (409)."""
    for i, a in enumerate(new):
        for b in new[i + 1 :]:
            if _overlap(a, b):
                raise Unprocessable(f"sessions {a['name']!r} and {b['name']!r} overlap")
        for s in stored:
            other = {"day": s.day, "start_minute": s.start_minute, "end_minute": s.end_minute}
            if _overlap(a, other):
                raise Conflict(f"session {a['name']!r} overlaps session {s.id} ({s.name!r})")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(
        a["day"] == b["day"]
        and a["start_minute"] < b["end_minute"]
        and b["start_minute"] < a["end_minute"]
    )


def _expand_places(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        count = int(item.get("count", 1))
        for i in range(count):
            name = f"{item['name']} {i + 1}" if count > 1 else item["name"]
            out.append(
                {"name": name, "kind": item.get("kind", "table"), "capacity": item["capacity"]}
            )
    return out


def _check_place_names(new: list[dict[str, Any]], stored: list[e.EventPlace]) -> None:
    names = [p["name"] for p in new]
    taken = {p.name for p in stored}
    duplicated = sorted({n for n in names if names.count(n) > 1 or n in taken})
    if len(new) + len(stored) > MAX_PLACES:
        raise Unprocessable(f"an event holds at most {MAX_PLACES} places")
    if duplicated:
        raise Conflict(f"place names must be unique in the event: {duplicated[:10]}")


async def _schedule_changed(session: AsyncSession, event: e.Event) -> None:
    """Sessions or places changed: a draft no longer fits, so it is dropped; a published
    schedule may not change under the participants' feet."""
    if event.schedule_status == PUBLISHED:
        raise Conflict(
            "the schedule is published: sessions and places are fixed (cancel meetings or "
            "change availability instead; the schedule is repaired)"
        )
    if event.schedule_status == DRAFT:
        await session.execute(
            update(e.EventMeeting)
            .where(e.EventMeeting.event_id == event.id)
            .values(session_id=None, slot_index=None, place_id=None)
        )
        event.schedule_status = NO_SCHEDULE
        event.schedule_stats = None
        event.schedule_version += 1
    event.updated_at = utcnow()


async def add_sessions(
    ctx: ServiceContext, access: EventAccess, items: list[dict[str, Any]]
) -> dict[str, Any]:
    require_manage(access)
    values = [_session_values(s) for s in items]
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        _check_no_overlap(values, bundle.sessions)
        if len(bundle.sessions) + len(values) > MAX_SESSIONS:
            raise Unprocessable(f"an event holds at most {MAX_SESSIONS} sessions")
        await _schedule_changed(session, bundle.event)
        for v in values:
            session.add(e.EventSession(event_id=access.event_id, **v))
    return event_view(await load_bundle(ctx, access.event_id))


async def delete_session(ctx: ServiceContext, access: EventAccess, session_id: int) -> None:
    require_manage(access)
    async with writing(ctx) as session:
        row = await session.get(e.EventSession, session_id)
        if row is None or row.event_id != access.event_id:
            raise NotFound(f"session {session_id} does not exist in event {access.event_id}")
        event = await session.get(e.Event, access.event_id)
        assert event is not None
        await _schedule_changed(session, event)
        participants = (
            await session.scalars(
                select(e.EventParticipant).where(e.EventParticipant.event_id == access.event_id)
            )
        ).all()
        for p in participants:
            if p.availability is not None and any(
                w["session_id"] == session_id for w in p.availability
            ):
                p.availability = [w for w in p.availability if w["session_id"] != session_id]
        await session.delete(row)


async def add_places(
    ctx: ServiceContext, access: EventAccess, items: list[dict[str, Any]]
) -> dict[str, Any]:
    require_manage(access)
    places = _expand_places(items)
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        _check_place_names(places, bundle.places)
        await _schedule_changed(session, bundle.event)
        for place in places:
            session.add(e.EventPlace(event_id=access.event_id, **place))
    return event_view(await load_bundle(ctx, access.event_id))


async def delete_place(ctx: ServiceContext, access: EventAccess, place_id: int) -> None:
    require_manage(access)
    async with writing(ctx) as session:
        row = await session.get(e.EventPlace, place_id)
        if row is None or row.event_id != access.event_id:
            raise NotFound(f"place {place_id} does not exist in event {access.event_id}")
        event = await session.get(e.Event, access.event_id)
        assert event is not None
        await _schedule_changed(session, event)
        await session.delete(row)


# -- participants --------------------------------------------------------------------------
async def register_participants(
    ctx: ServiceContext, access: EventAccess, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Register participants atomically (all or none), after checking every one."""
    require_manage(access)
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        checked = await _check_participants(session, access.principal, bundle, items, None)
        rows = []
        for item, values in zip(items, checked, strict=True):
            row = e.EventParticipant(event_id=access.event_id, created_at=utcnow(), **values)
            session.add(row)
            rows.append((row, item.get("delegates") or []))
        await session.flush()
        for row, delegates in rows:
            for position, person_id in enumerate(delegates):
                session.add(
                    e.EventDelegate(participant_id=row.id, person_id=person_id, position=position)
                )
        ids = [row.id for row, _ in rows]
    bundle = await load_bundle(ctx, access.event_id)
    viewer = await Viewer.build(ctx, access, bundle)
    return [viewer.participant(bundle.participant_by_id[i]) for i in ids]


def parse_participants_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a participants CSV as participant bodies; every bad row is reported at once.

    >>> text = "organisation_id,group,delegates,sessions\\n12,seller,3;4,1\\n"
    >>> row = parse_participants_csv(text)[0]
    >>> row["organisation_id"], row["group"], row["delegates"], row["availability"]
    (12, 'seller', [3, 4], [{'session_id': 1, 'start': None, 'end': None}])
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in reader.fieldnames or []]
        raws = list(reader)
    except csv.Error as exc:  # e.g. a field longer than the csv module's limit
        raise Unprocessable(f"the CSV cannot be read: {exc}") from None
    known = {
        "organisation_id",
        "group",
        "delegates",
        "sessions",
        "must_meet",
        "do_not_meet",
        "max_meetings",
    }
    if "organisation_id" not in header:
        raise Unprocessable("the CSV needs a header row with an organisation_id column")
    unknown = [h for h in header if h not in known]
    if unknown:
        raise Unprocessable(f"unknown CSV columns: {unknown}; known: {sorted(known)}")
    items: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(raws, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if None in raw:
            errors.append({"loc": ["csv", f"line {number}"], "msg": "too many fields"})
            continue
        if not any(row.values()):
            continue
        try:
            body: dict[str, Any] = {"organisation_id": row["organisation_id"]}
            if row.get("group"):
                body["group"] = row["group"]
            for key in ("delegates", "must_meet", "do_not_meet"):
                if row.get(key):
                    body[key] = _id_list(row[key])
            if row.get("sessions"):
                body["availability"] = [{"session_id": i} for i in _id_list(row["sessions"])]
            if row.get("max_meetings"):
                body["max_meetings"] = row["max_meetings"]
            items.append(ParticipantIn.model_validate(body).model_dump(mode="json"))
        except (ValueError, ValidationError) as exc:
            message = (
                "; ".join(str(err["msg"]) for err in exc.errors())
                if isinstance(exc, ValidationError)
                else str(exc)
            )
            errors.append({"loc": ["csv", f"line {number}"], "msg": message[:300]})
    if errors:
        raise Unprocessable(
            f"{len(errors)} CSV rows are invalid; nothing was registered", errors=errors[:50]
        )
    if not items:
        raise Unprocessable("the CSV has no participant rows")
    if len(items) > 2000:
        raise Unprocessable("at most 2000 participants per file")
    return items


def _id_list(value: str) -> list[int]:
    out = []
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"{part!r} is not an id")
        out.append(int(part))
    return out


async def _check_participants(
    session: AsyncSession,
    principal: Principal,
    bundle: EventBundle,
    items: Sequence[dict[str, Any]],
    existing: e.EventParticipant | None,
) -> list[dict[str, Any]]:
    """Validate participant bodies against the store and the event; the column values."""
    rules = bundle.rules
    groups = set(rules.get("groups") or [])
    org_ids = {int(i["organisation_id"]) for i in items}
    for item in items:
        org_ids.update(item.get("must_meet") or [])
        org_ids.update(item.get("do_not_meet") or [])
    visible = await _visible_organisations(session, principal, org_ids)
    person_ids = {pid for item in items for pid in item.get("delegates") or []}
    persons = {
        p.id: p
        for p in (await session.scalars(select(m.Person).where(m.Person.id.in_(person_ids)))).all()
    }
    registered = {p.organisation_id for p in bundle.participants}
    if existing is not None:
        registered.discard(existing.organisation_id)
    seen: set[int] = set()
    out = []
    for n, item in enumerate(items):
        where = f"items[{n}]"
        org_id = int(item["organisation_id"])
        if org_id not in visible:
            raise Unprocessable(f"{where}: organisation {org_id} does not exist")
        if org_id in seen:
            raise Unprocessable(f"{where}: organisation {org_id} is listed twice")
        seen.add(org_id)
        if org_id in registered:
            raise Conflict(f"{where}: organisation {org_id} is already registered")
        group = item.get("group")
        if groups and group not in groups:
            raise Unprocessable(f"{where}: group must be one of {sorted(groups)}")
        if not groups and group is not None:
            raise Unprocessable(f"{where}: the event has no groups (set them in its rules)")
        for person_id in item.get("delegates") or []:
            person = persons.get(person_id)
            if person is None or person.organisation_id != org_id:
                raise Unprocessable(
                    f"{where}: person {person_id} is not a person of organisation {org_id}"
                )
            if person.consent_state == "withdrawn":
                raise Unprocessable(f"{where}: person {person_id} has withdrawn consent")
        for key in ("must_meet", "do_not_meet"):
            missing = [i for i in item.get(key) or [] if i not in visible]
            if missing:
                raise Unprocessable(f"{where}: {key} names unknown organisations {missing}")
        out.append(
            {
                "organisation_id": org_id,
                "group_name": group,
                "availability": _availability(bundle, item.get("availability"), where),
                "must_meet": list(item.get("must_meet") or []),
                "do_not_meet": list(item.get("do_not_meet") or []),
                "max_meetings": item.get("max_meetings"),
            }
        )
    return out


def _availability(
    bundle: EventBundle, windows: Sequence[dict[str, Any]] | None, where: str
) -> list[dict[str, int]] | None:
    if windows is None:
        return None
    out = []
    for w in windows:
        s = bundle.session_by_id.get(int(w["session_id"]))
        if s is None:
            raise Unprocessable(f"{where}: session {w['session_id']} is not in this event")
        start = minutes(_time(w["start"])) if w.get("start") else s.start_minute
        end = minutes(_time(w["end"])) if w.get("end") else s.end_minute
        if start < s.start_minute or end > s.end_minute:
            raise Unprocessable(
                f"{where}: {clock(start)}-{clock(end)} lies outside session {s.id} "
                f"({clock(s.start_minute)}-{clock(s.end_minute)})"
            )
        if end <= start:
            raise Unprocessable(f"{where}: availability must end after it starts")
        out.append({"session_id": s.id, "from_minute": start, "until_minute": end})
    return out


async def _visible_organisations(
    session: AsyncSession, principal: Principal, ids: Iterable[int]
) -> set[int]:
    """Organisations the caller may put into an event: its tenant's and network-wide ones."""
    org = m.Organisation
    conditions: list[Any] = [org.id.in_(list(ids))]
    if not principal.is_admin:
        conditions.append(
            (org.tenant == principal.tenant) | org.tenant.is_(None)
            if principal.tenant
            else org.tenant.is_(None)
        )
    return set((await session.scalars(select(org.id).where(*conditions))).all())


async def update_participant(
    ctx: ServiceContext, access: EventAccess, participant_id: int, changes: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Change a participant; returns it and whether a published schedule needs a repair."""
    require_manage(access)
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        row = bundle.participant_by_id.get(participant_id)
        if row is None:
            raise NotFound(f"participant {participant_id} does not exist in this event")
        current = {
            "organisation_id": row.organisation_id,
            "group": row.group_name,
            "delegates": [p.id for p in bundle.delegates.get(row.id, [])],
            "availability": None
            if row.availability is None
            else [
                {
                    "session_id": w["session_id"],
                    "start": clock(w["from_minute"]),
                    "end": clock(w["until_minute"]),
                }
                for w in row.availability
            ],
            "must_meet": list(row.must_meet or []),
            "do_not_meet": list(row.do_not_meet or []),
            "max_meetings": row.max_meetings,
        }
        merged = {**current, **changes}
        try:
            checked_body = ParticipantIn.model_validate(merged).model_dump(mode="json")
        except ValidationError as exc:
            raise Unprocessable(
                "the participant would be invalid: " + str(exc.errors()[0]["msg"])
            ) from None
        (values,) = await _check_participants(
            session, access.principal, bundle, [checked_body], row
        )
        if values["group_name"] != row.group_name:
            active = [
                mt for mt in bundle.meetings if mt.status == ACTIVE and row.id in (mt.a_id, mt.b_id)
            ]
            if active:
                raise Conflict(
                    f"participant {row.id} has {len(active)} active meetings; cancel them "
                    "before changing its group"
                )
        for key, value in values.items():
            setattr(row, key, value)
        if "delegates" in changes:
            await session.execute(
                delete(e.EventDelegate).where(e.EventDelegate.participant_id == row.id)
            )
            for position, person_id in enumerate(checked_body.get("delegates") or []):
                session.add(
                    e.EventDelegate(participant_id=row.id, person_id=person_id, position=position)
                )
        published = bundle.event.schedule_status == PUBLISHED
    bundle = await load_bundle(ctx, access.event_id)
    viewer = await Viewer.build(ctx, access, bundle)
    return viewer.participant(bundle.participant_by_id[participant_id]), published


async def delete_participant(ctx: ServiceContext, access: EventAccess, participant_id: int) -> bool:
    """Remove a participant with its requests and meetings; True if a published schedule
    needs a repair."""
    require_manage(access)
    async with writing(ctx) as session:
        row = await session.get(e.EventParticipant, participant_id)
        if row is None or row.event_id != access.event_id:
            raise NotFound(f"participant {participant_id} does not exist in this event")
        event = await session.get(e.Event, access.event_id)
        assert event is not None
        # Its delegates, requests, meetings and feedback go with it (foreign keys cascade).
        await session.delete(row)
        event.schedule_version += 1
        return event.schedule_status == PUBLISHED


async def list_participants(
    ctx: ServiceContext, access: EventAccess, *, group: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    bundle = await load_bundle(ctx, access.event_id)
    viewer = await Viewer.build(ctx, access, bundle)
    chosen = [p for p in bundle.participants if group is None or p.group_name == group]
    return [viewer.participant(p) for p in chosen[offset : offset + limit]], len(chosen)


async def get_participant(
    ctx: ServiceContext, access: EventAccess, participant_id: int
) -> dict[str, Any]:
    bundle = await load_bundle(ctx, access.event_id)
    row = bundle.participant_by_id.get(participant_id)
    if row is None:
        raise NotFound(f"participant {participant_id} does not exist in this event")
    viewer = await Viewer.build(ctx, access, bundle)
    return viewer.participant(row)


def own_participant(access: EventAccess, participant_id: int) -> None:
    """Members act only for their own organisation's participant."""
    if access.level == PARTICIPATE and participant_id != access.participant_id:
        raise Forbidden("a member key acts only for its own organisation")
