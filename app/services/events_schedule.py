"""Event schedule use cases: compute a draft (exact CP-SAT, compared with first-come
first-served), publish it, repair it with the fewest moves after changes, and read it back as
the organiser's schedule, a participant's agenda and the organiser's analytics."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread
from sqlalchemy import select

from app.errors import Conflict, NotFound
from app.services.context import ServiceContext
from app.services.events import (
    ACTIVE,
    CANCELLED,
    DRAFT,
    NO_SCHEDULE,
    PARTICIPATE,
    PUBLISHED,
    EventAccess,
    EventBundle,
    Viewer,
    load_bundle,
    own_participant,
    require_manage,
    require_sees_all,
    schedule_state,
    writing,
)
from app.store import events_models as e
from app.store.models import utcnow
from matching.event_matching import meeting_obstacle, pair_scores
from matching.ranker import MatchingState
from matching.scheduling import (
    InfeasibleProblem,
    Meeting,
    Place,
    Problem,
    Schedule,
    Slot,
    greedy_fcfs,
    repair,
    solve_exact,
)

log = logging.getLogger("multihelix")

# A repair triggered by a cancellation or an acceptance runs inside that request.
REPAIR_TIME_LIMIT_S = 5.0
# A schedule computed from a state that changed meanwhile is recomputed this many times.
ATTEMPTS = 3


# -- what the pure code gets ---------------------------------------------------------------
@dataclass(frozen=True)
class MeetingSpec:
    """A meeting to schedule; ``id`` < 0 for must-meets not stored yet."""

    id: int
    parties: tuple[int, int]
    organisations: tuple[int, int]
    must_meet: bool
    size: int
    value: float | None


@dataclass(frozen=True)
class Inputs:
    meetings: tuple[MeetingSpec, ...]  # first-come first-served order
    new_must_meets: tuple[MeetingSpec, ...]
    obsolete: tuple[int, ...]  # must-meet meetings no longer wished for
    slots: tuple[Slot, ...]
    places: tuple[Place, ...]
    availability: dict[int, frozenset[int]]
    session_limit: dict[int, int]
    total_limit: dict[int, int]
    cross_preference: float


def _inputs(bundle: EventBundle) -> Inputs:
    rules = bundle.rules
    mrules = bundle.meeting_rules()
    wished: set[frozenset[int]] = set()
    for p in bundle.participants:
        for org in p.must_meet or ():
            q = bundle.participant_of_org.get(org)
            if q is None or q.id == p.id:
                continue
            if meeting_obstacle(mrules, bundle.attendee(p), bundle.attendee(q)) is None:
                wished.add(frozenset((p.id, q.id)))
    # Any meeting between a pair, even a cancelled one, stops a must-meet from coming back.
    known = {frozenset((mt.a_id, mt.b_id)) for mt in bundle.meetings}
    obsolete = tuple(
        mt.id
        for mt in bundle.meetings
        if mt.status == ACTIVE
        and mt.kind == "must_meet"
        and frozenset((mt.a_id, mt.b_id)) not in wished
    )

    def spec(mid: int, a: int, b: int, value: float | None) -> MeetingSpec:
        pa, pb = bundle.participant_by_id[a], bundle.participant_by_id[b]
        return MeetingSpec(
            id=mid,
            parties=(a, b),
            organisations=(pa.organisation_id, pb.organisation_id),
            must_meet=frozenset((a, b)) in wished,
            size=bundle.seats(a) + bundle.seats(b),
            value=value,
        )

    fresh = [sorted(pair) for pair in wished - known]
    new = tuple(spec(-(i + 1), a, b, None) for i, (a, b) in enumerate(sorted(fresh)))
    accepted_at = {r.id: r.responded_at or r.created_at for r in bundle.requests}
    active = [mt for mt in bundle.meetings if mt.status == ACTIVE and mt.id not in obsolete]
    # First come, first served: must-meets, then accepted requests in the order accepted.
    active.sort(
        key=lambda mt: (
            mt.kind != "must_meet",
            accepted_at.get(mt.request_id or 0, mt.created_at),
            mt.id,
        )
    )
    existing = tuple(spec(mt.id, mt.a_id, mt.b_id, mt.value) for mt in active)
    limit = rules.get("max_meetings_per_session")
    availability = {}
    for p in bundle.participants:
        slots = bundle.slot_ids(p)
        if slots is not None:
            availability[p.id] = slots
    return Inputs(
        meetings=tuple(s for s in new if s.must_meet) + existing,
        new_must_meets=new,
        obsolete=obsolete,
        slots=tuple(Slot(g.id, g.session_id) for g in bundle.slots),
        places=tuple(Place(p.id, p.capacity) for p in bundle.places),
        availability=availability,
        session_limit={p.id: int(limit) for p in bundle.participants} if limit else {},
        total_limit={
            p.id: int(p.max_meetings) for p in bundle.participants if p.max_meetings is not None
        },
        cross_preference=float(rules.get("cross_preference", 0.25)),
    )


@dataclass(frozen=True)
class Planned:
    schedule: Schedule
    fcfs: Schedule | None
    values: dict[int, float]


def _values(state: MatchingState, inputs: Inputs, *, refresh: bool) -> dict[int, float]:
    """Reciprocal match score per meeting (all of them, or only those without one)."""
    todo = [s for s in inputs.meetings if refresh or s.value is None]
    scores = pair_scores(state, [s.organisations for s in todo], inputs.cross_preference)
    values = {s.id: float(s.value) for s in inputs.meetings if s.value is not None}
    values.update({s.id: scores[s.organisations].score for s in todo})
    return values


def _problem(inputs: Inputs, values: dict[int, float]) -> Problem:
    return Problem(
        slots=inputs.slots,
        places=inputs.places,
        meetings=tuple(
            Meeting(s.id, s.parties, values[s.id], must_meet=s.must_meet, size=s.size)
            for s in inputs.meetings
        ),
        availability=inputs.availability,
        session_limit=inputs.session_limit,
        total_limit=inputs.total_limit,
    )


def _plan(state: MatchingState, inputs: Inputs, time_limit_s: float, compare_fcfs: bool) -> Planned:
    """Score the meetings, then schedule them (runs in a worker thread)."""
    values = _values(state, inputs, refresh=True)
    problem = _problem(inputs, values)
    fcfs = greedy_fcfs(problem) if compare_fcfs else None
    return Planned(solve_exact(problem, time_limit_s=time_limit_s), fcfs, values)


def _plan_repair(
    state: MatchingState,
    inputs: Inputs,
    previous: dict[int, tuple[int, int]],
    time_limit_s: float,
) -> Planned:
    values = _values(state, inputs, refresh=False)
    problem = _problem(inputs, values)
    return Planned(repair(problem, previous, time_limit_s=time_limit_s), None, values)


def _stats(
    planned: Planned, inputs: Inputs, time_limit_s: float, previous: dict[str, Any]
) -> dict[str, Any]:
    s = planned.schedule
    stats = {
        "method": s.method,
        "status": s.status,
        "objective": s.objective,
        "best_bound": s.best_bound,
        "bound_source": s.bound_source,
        "gap": s.gap,
        "meetings_total": len(inputs.meetings),
        "meetings_placed": s.meetings_placed,
        "must_meets_total": sum(1 for m in inputs.meetings if m.must_meet),
        "must_meets_placed": s.must_meets_placed,
        "total_value": round(s.total_value, 6),
        "solve_s": round(s.solve_s, 3),
        "time_limit_s": time_limit_s,
        "fcfs_meetings_placed": previous.get("fcfs_meetings_placed"),
        "fcfs_total_value": previous.get("fcfs_total_value"),
    }
    if planned.fcfs is not None:
        stats["fcfs_meetings_placed"] = planned.fcfs.meetings_placed
        stats["fcfs_total_value"] = round(planned.fcfs.total_value, 6)
    return stats


# -- generate, publish, repair --------------------------------------------------------------
def _check_schedulable(bundle: EventBundle) -> None:
    if not bundle.places:
        raise Conflict("the event has no meeting places: add tables or booths first")
    if not bundle.slots:
        raise Conflict("the event has no time slots: add a session first")


async def generate_schedule(
    ctx: ServiceContext, access: EventAccess, *, time_limit_s: float, compare_fcfs: bool
) -> dict[str, Any]:
    """Compute a draft schedule of every active meeting (accepted requests and must-meets)."""
    require_manage(access)
    for _ in range(ATTEMPTS):
        bundle = await load_bundle(ctx, access.event_id)
        if bundle.event.schedule_status == PUBLISHED:
            raise Conflict(
                "the schedule is published; changes are repaired automatically (or POST "
                f"/v1/events/{access.event_id}/schedule/repair)"
            )
        _check_schedulable(bundle)
        inputs = _inputs(bundle)
        try:
            planned = await anyio.to_thread.run_sync(
                partial(_plan, ctx.derived.state, inputs, time_limit_s, compare_fcfs)
            )
        except InfeasibleProblem as exc:
            raise Conflict(str(exc)) from None
        stats = _stats(planned, inputs, time_limit_s, {})
        if await _write(ctx, bundle, inputs, planned, stats, status=DRAFT):
            return await schedule_view(ctx, access)
    raise Conflict("the event kept changing while the schedule was computed; try again")


async def publish_schedule(ctx: ServiceContext, access: EventAccess) -> dict[str, Any]:
    """Make the draft the event's schedule: participants see their agendas from now on."""
    require_manage(access)
    async with writing(ctx) as session:
        event = await session.get(e.Event, access.event_id)
        assert event is not None
        if event.schedule_status == NO_SCHEDULE:
            raise Conflict("there is no draft schedule to publish; compute one first")
        if event.schedule_status == PUBLISHED:
            raise Conflict("the schedule is published already")
        event.schedule_status = PUBLISHED
        event.schedule_published_at = utcnow()
        event.schedule_version += 1
    return await schedule_view(ctx, access)


async def repair_schedule(
    ctx: ServiceContext, access: EventAccess, *, time_limit_s: float
) -> dict[str, Any]:
    """Repair a draft or published schedule now (e.g. after availability changes)."""
    require_manage(access)
    summary = await _repair(ctx, access.event_id, "requested by the organiser", time_limit_s, False)
    if summary is None:
        raise Conflict("there is no schedule to repair; compute one first")
    return await schedule_view(ctx, access)


async def repair_if_published(
    ctx: ServiceContext, event_id: int, *, trigger: str
) -> dict[str, Any] | None:
    """Repair a published schedule after a change; the summary, or None if there is none."""
    try:
        return await _repair(ctx, event_id, trigger, REPAIR_TIME_LIMIT_S, True)
    except Conflict:
        log.warning("event %s: schedule repair after %s kept being overtaken", event_id, trigger)
        return None


async def _repair(
    ctx: ServiceContext, event_id: int, trigger: str, time_limit_s: float, only_published: bool
) -> dict[str, Any] | None:
    for _ in range(ATTEMPTS):
        bundle = await load_bundle(ctx, event_id)
        status = bundle.event.schedule_status
        if status == NO_SCHEDULE or (only_published and status != PUBLISHED):
            return None
        _check_schedulable(bundle)
        inputs = _inputs(bundle)
        previous: dict[int, tuple[int, int]] = {}
        for mt in bundle.meetings:
            slot = bundle.placed_slot(mt)
            if mt.status == ACTIVE and slot is not None and mt.place_id in bundle.place_by_id:
                previous[mt.id] = (slot.id, int(mt.place_id))
        try:
            planned = await anyio.to_thread.run_sync(
                partial(_plan_repair, ctx.derived.state, inputs, previous, time_limit_s)
            )
        except InfeasibleProblem as exc:
            raise Conflict(str(exc)) from None
        old = dict(bundle.event.schedule_stats or {})
        s = planned.schedule
        placed_now = {p.meeting for p in s.placements}
        summary = {
            "trigger": trigger,
            "status": s.status,
            "gap": s.gap,
            "moved": s.moved,
            "dropped": s.dropped,
            "added": len(placed_now - set(previous)),
            "freed": max(0, int(old.get("meetings_placed", 0)) - len(previous)),
            "meetings_placed": s.meetings_placed,
            "standby": len(s.unplaced),
            "solve_s": round(s.solve_s, 3),
            "at": utcnow().isoformat(),
        }
        stats = _stats(planned, inputs, time_limit_s, old)
        stats["last_repair"] = summary
        if await _write(ctx, bundle, inputs, planned, stats, status=status):
            return summary
    raise Conflict("the event kept changing while the schedule was repaired; try again")


async def _write(
    ctx: ServiceContext,
    bundle: EventBundle,
    inputs: Inputs,
    planned: Planned,
    stats: dict[str, Any],
    *,
    status: str,
) -> bool:
    """Store a computed schedule unless the event changed since it was loaded."""
    placements = {p.meeting: p for p in planned.schedule.placements}
    slot_of = {g.id: g for g in bundle.slots}
    async with writing(ctx) as session:
        event = await session.get(e.Event, bundle.event.id)
        if event is None:
            raise NotFound(f"event {bundle.event.id} does not exist")
        if event.schedule_version != bundle.event.schedule_version:
            return False
        now = utcnow()
        ids: dict[int, int] = {}
        for spec in inputs.new_must_meets:
            if not spec.must_meet:
                continue
            row = e.EventMeeting(
                event_id=event.id,
                a_id=spec.parties[0],
                b_id=spec.parties[1],
                kind="must_meet",
                status=ACTIVE,
                created_at=now,
            )
            session.add(row)
            await session.flush()
            ids[spec.id] = row.id
        meetings = {
            mt.id: mt
            for mt in await session.scalars(
                select(e.EventMeeting).where(e.EventMeeting.event_id == event.id)
            )
        }
        for mid in inputs.obsolete:
            mt = meetings[mid]
            mt.status = CANCELLED
            mt.cancelled_at = now
            mt.session_id = mt.slot_index = mt.place_id = None
        for spec in inputs.meetings:
            mt = meetings[ids.get(spec.id, spec.id)]
            mt.value = planned.values[spec.id]
            placement = placements.get(spec.id)
            if placement is None:
                mt.session_id = mt.slot_index = mt.place_id = None
            else:
                slot = slot_of[placement.slot]
                mt.session_id, mt.slot_index = slot.session_id, slot.index
                mt.place_id = placement.place
        event.schedule_status = status
        event.schedule_stats = stats
        event.schedule_version += 1
        if status == DRAFT:
            event.schedule_generated_at = now
    return True


# -- reading it back -----------------------------------------------------------------------
async def schedule_view(ctx: ServiceContext, access: EventAccess) -> dict[str, Any]:
    """The whole schedule for organisers and staff: placed meetings and the standby list."""
    require_sees_all(access)
    bundle = await load_bundle(ctx, access.event_id)
    viewer = await Viewer.build(ctx, access, bundle)
    stats = dict(bundle.event.schedule_stats or {})
    last_repair = stats.pop("last_repair", None)
    active = [mt for mt in bundle.meetings if mt.status == ACTIVE]
    placed = [mt for mt in active if bundle.placed_slot(mt) is not None]
    placed.sort(key=lambda mt: (_slot_key(bundle, mt), mt.place_id or 0))
    standby = [mt for mt in active if bundle.placed_slot(mt) is None]
    standby.sort(key=lambda mt: (mt.kind != "must_meet", -(mt.value or 0.0), mt.id))

    def item(mt: e.EventMeeting) -> dict[str, Any]:
        place = bundle.place_by_id.get(mt.place_id) if mt.place_id is not None else None
        return {
            "meeting_id": mt.id,
            "kind": mt.kind,
            "value": mt.value,
            "parties": [mt.a_id, mt.b_id],
            "slot": viewer.slot(bundle.placed_slot(mt)),
            "place": {"id": place.id, "name": place.name} if place is not None else None,
        }

    return {
        "event_id": access.event_id,
        "schedule": schedule_state(bundle.event, stats or None, last_repair),
        "meetings": [item(mt) for mt in placed],
        "standby": [item(mt) for mt in standby]
        if bundle.event.schedule_status != NO_SCHEDULE
        else [],
    }


def _slot_key(bundle: EventBundle, mt: e.EventMeeting) -> int:
    slot = bundle.placed_slot(mt)
    return slot.id if slot is not None else 1 << 30


@dataclass(frozen=True)
class AgendaEntry:
    meeting: e.EventMeeting
    counterpart: int
    start: datetime
    end: datetime
    session: str
    place: str | None


async def agenda(
    ctx: ServiceContext, access: EventAccess, participant_id: int
) -> tuple[dict[str, Any], EventBundle, list[AgendaEntry]]:
    """A participant's agenda (JSON view, plus what the CSV and calendar renderers need).
    Participants see it once the schedule is published; organisers and staff see drafts."""
    own_participant(access, participant_id)
    bundle = await load_bundle(ctx, access.event_id)
    if participant_id not in bundle.participant_by_id:
        raise NotFound(f"participant {participant_id} does not exist in this event")
    viewer = await Viewer.build(ctx, access, bundle)
    status = bundle.event.schedule_status
    shown = status == PUBLISHED or (status == DRAFT and access.level != PARTICIPATE)
    entries: list[AgendaEntry] = []
    standby: list[int] = []
    for mt in bundle.meetings:
        if mt.status != ACTIVE or participant_id not in (mt.a_id, mt.b_id):
            continue
        slot = bundle.placed_slot(mt)
        if slot is None or not shown:
            standby.append(mt.id)
            continue
        start, end = bundle.when(slot)
        place = bundle.place_by_id.get(mt.place_id) if mt.place_id is not None else None
        entries.append(
            AgendaEntry(
                meeting=mt,
                counterpart=mt.b_id if mt.a_id == participant_id else mt.a_id,
                start=start,
                end=end,
                session=bundle.session_by_id[slot.session_id].name,
                place=place.name if place is not None else None,
            )
        )
    entries.sort(key=lambda x: (x.start, x.meeting.id))
    view = {
        "event_id": bundle.event.id,
        "event_name": bundle.event.name,
        "timezone": bundle.event.timezone,
        "participant": viewer.brief(participant_id),
        "schedule_status": status,
        "items": [
            {
                "meeting_id": x.meeting.id,
                "start": x.start,
                "end": x.end,
                "session": x.session,
                "place": x.place,
                "counterpart": viewer.brief(x.counterpart),
                "kind": x.meeting.kind,
            }
            for x in entries
        ],
        "standby": standby if status != NO_SCHEDULE else [],
    }
    return view, bundle, entries


async def analytics(ctx: ServiceContext, access: EventAccess) -> dict[str, Any]:
    """Requests sent/answered, meetings per participant, cross-sector and cross-country
    shares, and who has no meeting."""
    require_sees_all(access)
    bundle = await load_bundle(ctx, access.event_id)
    counts = {"sent": len(bundle.requests)}
    for status in ("pending", "accepted", "declined", "cancelled"):
        counts[status] = sum(1 for r in bundle.requests if r.status == status)
    answered = counts["accepted"] + counts["declined"]
    active = [mt for mt in bundle.meetings if mt.status == ACTIVE]
    scheduled = [mt for mt in active if bundle.placed_slot(mt) is not None]
    has_schedule = bundle.event.schedule_status != NO_SCHEDULE
    counted = scheduled if has_schedule else active
    per: dict[int, dict[str, Any]] = {}
    for p in bundle.participants:
        org = bundle.organisations.get(p.organisation_id, {})
        per[p.id] = {
            "participant_id": p.id,
            "organisation_id": p.organisation_id,
            "name": org.get("name", "(removed)"),
            "requests_sent": 0,
            "requests_received": 0,
            "accepted": 0,
            "declined": 0,
            "meetings": 0,
            "scheduled": 0,
        }
    for r in bundle.requests:
        per[r.sender_id]["requests_sent"] += 1
        per[r.recipient_id]["requests_received"] += 1
        if r.status == "accepted":
            per[r.recipient_id]["accepted"] += 1
        elif r.status == "declined":
            per[r.recipient_id]["declined"] += 1
    for mt in active:
        for pid in (mt.a_id, mt.b_id):
            per[pid]["meetings"] += 1
    for mt in scheduled:
        for pid in (mt.a_id, mt.b_id):
            per[pid]["scheduled"] += 1
    key = "scheduled" if has_schedule else "meetings"
    load = [float(row[key]) for row in per.values()]
    return {
        "event_id": access.event_id,
        "participants": len(bundle.participants),
        "requests": counts,
        "acceptance_rate": counts["accepted"] / answered if answered else None,
        "unanswered_share": counts["pending"] / counts["sent"] if counts["sent"] else None,
        "meetings": {
            "active": len(active),
            "scheduled": len(scheduled),
            "standby": len(active) - len(scheduled) if has_schedule else 0,
            "must_meet": sum(1 for mt in active if mt.kind == "must_meet"),
        },
        "meetings_per_participant": {
            "min": min(load),
            "median": statistics.median(load),
            "mean": statistics.fmean(load),
            "max": max(load),
        }
        if load
        else None,
        "cross_sector_share": _share(bundle, counted, _cross_sector),
        "cross_country_share": _share(bundle, counted, _cross_country),
        "participants_without_meeting": [row for row in per.values() if row[key] == 0],
        "per_participant": list(per.values()),
    }


def _orgs(bundle: EventBundle, mt: e.EventMeeting) -> tuple[dict[str, Any], dict[str, Any]]:
    a = bundle.participant_by_id[mt.a_id].organisation_id
    b = bundle.participant_by_id[mt.b_id].organisation_id
    return bundle.organisations.get(a, {}), bundle.organisations.get(b, {})


def _cross_sector(a: dict[str, Any], b: dict[str, Any]) -> bool:
    sa, sb = set(a.get("sectors") or ()), set(b.get("sectors") or ())
    return bool(sa and sb and not (sa & sb))


def _cross_country(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a.get("country") and b.get("country") and a["country"] != b["country"])


def _share(bundle: EventBundle, meetings: Sequence[e.EventMeeting], test: Any) -> float | None:
    if not meetings:
        return None
    return sum(1 for mt in meetings if test(*_orgs(bundle, mt))) / len(meetings)
