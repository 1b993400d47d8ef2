"""Event use cases between participants: recommendations inside the event, meeting requests
(send, accept, decline, cancel) with contact grants on acceptance, meetings, and post-event
feedback recorded as collaboration links."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Forbidden
from app.errors import Conflict, NotFound, Unprocessable
from app.services import events_schedule
from app.services.collaborations import create_collaborations, delete_collaboration
from app.services.context import ServiceContext
from app.services.events import (
    ACTIVE,
    CANCELLED,
    NO_SCHEDULE,
    PARTICIPATE,
    PUBLISHED,
    VIEW,
    EventAccess,
    EventBundle,
    Viewer,
    load_bundle,
    own_participant,
    require_sees_all,
    writing,
)
from app.store import events_models as e
from app.store import models as m
from app.store.models import utcnow
from matching.event_matching import EventMatch, meeting_obstacle, recommend_all

PENDING, ACCEPTED, DECLINED = "pending", "accepted", "declined"
OPEN_REQUESTS = (PENDING, ACCEPTED)

# Collaboration weight per meeting outcome (an ordinary joint project weighs 1).
OUTCOME_WEIGHTS = {
    "no_further_contact": 0.25,
    "knowledge_gain": 0.5,
    "valuable_contact": 1.0,
    "negotiation_started": 1.5,
    "agreement_reached": 2.0,
}


# -- recommendations -----------------------------------------------------------------------
async def recommendations(
    ctx: ServiceContext, access: EventAccess, participant_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Best counterparts for one participant (or, for organisers and staff, for every
    participant when ``participant_id`` is None)."""
    if participant_id is None:
        require_sees_all(access)
    else:
        own_participant(access, participant_id)
    bundle = await load_bundle(ctx, access.event_id)
    if participant_id is not None and participant_id not in bundle.participant_by_id:
        raise NotFound(f"participant {participant_id} does not exist in this event")
    rules = bundle.rules
    attendees = [bundle.attendee(p) for p in bundle.participants]
    excluded = _already_in_touch(bundle)
    full = _full_inboxes(bundle)
    for pid in bundle.participant_by_id:
        excluded.setdefault(pid, set()).update(full - {pid})
    found = await anyio.to_thread.run_sync(
        partial(
            recommend_all,
            ctx.derived.state,
            attendees,
            bundle.meeting_rules(),
            limit=limit,
            for_ids=None if participant_id is None else [participant_id],
            excluded=excluded,
            cross_preference=float(rules.get("cross_preference", 0.25)),
        )
    )
    viewer = await Viewer.build(ctx, access, bundle)
    version = ctx.derived.state.scorer.version
    return [
        {
            "participant_id": pid,
            "model_version": version,
            "items": [_recommendation(viewer, bundle, match) for match in found[pid]],
        }
        for pid in (found if participant_id is None else [participant_id])
    ]


def _recommendation(viewer: Viewer, bundle: EventBundle, match: EventMatch) -> dict[str, Any]:
    other = bundle.participant_by_id[match.participant_id]
    return {
        "participant_id": match.participant_id,
        "organisation": viewer.organisation(match.organisation_id),
        "group": other.group_name,
        "score": match.score,
        "score_for_you": match.score_for_you,
        "score_for_them": match.score_for_them,
        "explanation": match.explanation,
        "features": match.features,
    }


def _already_in_touch(bundle: EventBundle) -> dict[int, set[int]]:
    """Per participant, those it has a request with (any but cancelled) or a meeting with."""
    out: dict[int, set[int]] = {}
    for r in bundle.requests:
        if r.status != CANCELLED:
            out.setdefault(r.sender_id, set()).add(r.recipient_id)
            out.setdefault(r.recipient_id, set()).add(r.sender_id)
    for mt in bundle.meetings:
        if mt.status == ACTIVE:
            out.setdefault(mt.a_id, set()).add(mt.b_id)
            out.setdefault(mt.b_id, set()).add(mt.a_id)
    return out


def _full_inboxes(bundle: EventBundle) -> set[int]:
    limit = bundle.rules.get("max_pending_received")
    if not limit:
        return set()
    pending: dict[int, int] = {}
    for r in bundle.requests:
        if r.status == PENDING:
            pending[r.recipient_id] = pending.get(r.recipient_id, 0) + 1
    return {pid for pid, n in pending.items() if n >= int(limit)}


# -- requests ------------------------------------------------------------------------------
def _request_view(viewer: Viewer, bundle: EventBundle, r: e.EventRequest) -> dict[str, Any]:
    meeting = bundle.meeting_of_request.get(r.id)
    return {
        "id": r.id,
        "event_id": r.event_id,
        "sender": viewer.brief(r.sender_id),
        "recipient": viewer.brief(r.recipient_id),
        "message": r.message,
        "status": r.status,
        "response_message": r.response_message,
        "cancelled_by": r.cancelled_by,
        "meeting_id": meeting.id if meeting is not None else None,
        "created_at": r.created_at,
        "responded_at": r.responded_at,
    }


async def _view_request(
    ctx: ServiceContext, access: EventAccess, request_id: int
) -> dict[str, Any]:
    bundle = await load_bundle(ctx, access.event_id)
    row = next((r for r in bundle.requests if r.id == request_id), None)
    if row is None or not _may_see_request(access, row):
        raise NotFound(f"request {request_id} does not exist in this event")
    viewer = await Viewer.build(ctx, access, bundle)
    return _request_view(viewer, bundle, row)


def _may_see_request(access: EventAccess, r: e.EventRequest) -> bool:
    return access.sees_all or access.participant_id in (r.sender_id, r.recipient_id)


async def create_request(
    ctx: ServiceContext, access: EventAccess, body: dict[str, Any]
) -> dict[str, Any]:
    """Send a meeting request after checking the event's rules, quotas and wishes."""
    if access.level == VIEW:
        raise Forbidden("staff may read an event's requests but not send them")
    sender_id = body.get("from_participant_id")
    if access.level == PARTICIPATE:
        if sender_id not in (None, access.participant_id):
            raise Forbidden("a member key sends requests for its own organisation only")
        sender_id = access.participant_id
    elif sender_id is None:
        raise Unprocessable(
            "from_participant_id: organisers send requests on a participant's behalf"
        )
    assert sender_id is not None
    recipient_id = int(body["to_participant_id"])
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        sender = bundle.participant_by_id.get(int(sender_id))
        recipient = bundle.participant_by_id.get(recipient_id)
        if sender is None:
            raise Unprocessable(f"participant {sender_id} is not registered for this event")
        if recipient is None:
            raise Unprocessable(f"participant {recipient_id} is not registered for this event")
        if sender.id == recipient.id:
            raise Unprocessable("a participant cannot ask itself for a meeting")
        _check_may_meet(bundle, sender, recipient)
        for r in bundle.requests:
            if {r.sender_id, r.recipient_id} == {sender.id, recipient.id}:
                if r.status in OPEN_REQUESTS:
                    raise Conflict(f"request {r.id} between them is already {r.status}")
                if r.status == DECLINED and r.sender_id == sender.id:
                    raise Conflict(f"participant {recipient.id} declined request {r.id} already")
        if any(
            mt.status == ACTIVE and {mt.a_id, mt.b_id} == {sender.id, recipient.id}
            for mt in bundle.meetings
        ):
            raise Conflict("they already have a meeting (a must-meet)")
        rules = bundle.rules
        sent = sum(
            1 for r in bundle.requests if r.sender_id == sender.id and r.status in OPEN_REQUESTS
        )
        if rules.get("max_requests_sent") and sent >= int(rules["max_requests_sent"]):
            raise Conflict(
                f"participant {sender.id} has used its quota of {rules['max_requests_sent']} "
                "requests (pending or accepted); cancel one first"
            )
        if recipient.id in _full_inboxes(bundle):
            raise Conflict(
                f"participant {recipient.id} has {rules['max_pending_received']} unanswered "
                "requests already; try later or ask someone else"
            )
        row = e.EventRequest(
            event_id=access.event_id,
            sender_id=sender.id,
            recipient_id=recipient.id,
            message=body.get("message") or "",
            status=PENDING,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        request_id = row.id
    return await _view_request(ctx, access, request_id)


def _check_may_meet(bundle: EventBundle, a: e.EventParticipant, b: e.EventParticipant) -> None:
    obstacle = meeting_obstacle(bundle.meeting_rules(), bundle.attendee(a), bundle.attendee(b))
    if obstacle is None:
        return
    if obstacle.startswith("the rules"):
        raise Unprocessable(f"participants {a.id} and {b.id} may not meet: {obstacle}")
    raise Conflict(f"participants {a.id} and {b.id} may not meet: {obstacle}")


async def get_request(ctx: ServiceContext, access: EventAccess, request_id: int) -> dict[str, Any]:
    return await _view_request(ctx, access, request_id)


async def list_requests(
    ctx: ServiceContext,
    access: EventAccess,
    *,
    status: str | None,
    participant_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Requests the caller may see (members: those it sent or received), newest first."""
    bundle = await load_bundle(ctx, access.event_id)
    rows = [
        r
        for r in reversed(bundle.requests)
        if _may_see_request(access, r)
        and (status is None or r.status == status)
        and (participant_id is None or participant_id in (r.sender_id, r.recipient_id))
    ]
    viewer = await Viewer.build(ctx, access, bundle)
    return [_request_view(viewer, bundle, r) for r in rows[offset : offset + limit]], len(rows)


async def answer_request(
    ctx: ServiceContext,
    access: EventAccess,
    request_id: int,
    action: str,
    message: str | None,
) -> dict[str, Any]:
    """accept | decline | cancel a request; a change to a published schedule is repaired."""
    if access.level == VIEW:
        raise Forbidden("staff may read an event's requests but not answer them")
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        row = next((r for r in bundle.requests if r.id == request_id), None)
        if row is None or not _may_see_request(access, row):
            raise NotFound(f"request {request_id} does not exist in this event")
        recipient_only = access.level == PARTICIPATE and action in ("accept", "decline")
        if recipient_only and access.participant_id != row.recipient_id:
            raise Forbidden("only the recipient may accept or decline a request")
        now = utcnow()
        freed = meeting_cancelled = False
        if action in ("accept", "decline"):
            if row.status != PENDING:
                raise Conflict(
                    f"request {request_id} is {row.status}; only pending ones can be {action}ed"
                )
        elif row.status not in OPEN_REQUESTS:
            raise Conflict(f"request {request_id} is {row.status} already")
        if action == "accept":
            sender = bundle.participant_by_id[row.sender_id]
            recipient = bundle.participant_by_id[row.recipient_id]
            _check_may_meet(bundle, sender, recipient)
            row.status = ACCEPTED
            session.add(
                e.EventMeeting(
                    event_id=access.event_id,
                    a_id=row.sender_id,
                    b_id=row.recipient_id,
                    request_id=row.id,
                    kind="request",
                    status=ACTIVE,
                    created_at=now,
                )
            )
            await grant_contacts(session, bundle, sender, recipient)
        elif action == "decline":
            row.status = DECLINED
        else:
            was_accepted = row.status == ACCEPTED
            row.status = CANCELLED
            row.cancelled_by = _actor(access, row)
            if was_accepted:
                freed = _cancel_meeting_row(bundle.meeting_of_request[row.id], now)
                meeting_cancelled = True
        row.responded_at = now
        if message is not None:
            row.response_message = message
        if action == "accept" or meeting_cancelled:
            _touch_schedule(bundle.event)
        repair_needed = bundle.event.schedule_status == PUBLISHED and (action == "accept" or freed)
    repair = None
    if repair_needed:
        repair = await events_schedule.repair_if_published(
            ctx, access.event_id, trigger=f"request {request_id} {_past(action)}"
        )
    return {"request": await _view_request(ctx, access, request_id), "schedule_repair": repair}


def _past(action: str) -> str:
    return {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}[action]


def _actor(access: EventAccess, r: e.EventRequest) -> str:
    if access.participant_id == r.sender_id:
        return "sender"
    if access.participant_id == r.recipient_id:
        return "recipient"
    return "organiser"


def _cancel_meeting_row(meeting: e.EventMeeting, now: datetime) -> bool:
    """Cancel a meeting; True if that freed a place in the schedule."""
    freed = meeting.session_id is not None
    meeting.status = CANCELLED
    meeting.cancelled_at = now
    meeting.session_id = meeting.slot_index = meeting.place_id = None
    return freed


def _touch_schedule(event: e.Event) -> None:
    # Every change to the set of meetings bumps the version, so a schedule computed from an
    # older state is never written over it.
    event.schedule_version += 1


async def grant_contacts(
    session: AsyncSession,
    bundle: EventBundle,
    a: e.EventParticipant,
    b: e.EventParticipant,
) -> None:
    """Let each organisation see the other's delegates' contact details (withdrawn people are
    not in the bundle, so they are never granted)."""
    wanted = {(person.id, b.organisation_id) for person in bundle.delegates.get(a.id, [])}
    wanted |= {(person.id, a.organisation_id) for person in bundle.delegates.get(b.id, [])}
    if not wanted:
        return
    existing = await session.execute(
        select(m.ContactGrant.person_id, m.ContactGrant.organisation_id).where(
            m.ContactGrant.person_id.in_({p for p, _ in wanted})
        )
    )
    have = {(p, o) for p, o in existing.all()}
    reason = f"meeting accepted at event {bundle.event.id} ({bundle.event.name})"[:200]
    for person_id, org_id in sorted(wanted - have):
        session.add(m.ContactGrant(person_id=person_id, organisation_id=org_id, reason=reason))


# -- meetings ------------------------------------------------------------------------------
def meeting_view(viewer: Viewer, bundle: EventBundle, mt: e.EventMeeting) -> dict[str, Any]:
    slot = bundle.placed_slot(mt)
    place = bundle.place_by_id.get(mt.place_id) if mt.place_id is not None else None
    return {
        "id": mt.id,
        "event_id": mt.event_id,
        "kind": mt.kind,
        "status": mt.status,
        "request_id": mt.request_id,
        "value": mt.value,
        "parties": [viewer.brief(mt.a_id), viewer.brief(mt.b_id)],
        "slot": viewer.slot(slot),
        "place": {"id": place.id, "name": place.name} if place is not None else None,
        "standby": mt.status == ACTIVE
        and slot is None
        and bundle.event.schedule_status != NO_SCHEDULE,
    }


def _may_see_meeting(access: EventAccess, mt: e.EventMeeting) -> bool:
    return access.sees_all or access.participant_id in (mt.a_id, mt.b_id)


async def list_meetings(
    ctx: ServiceContext,
    access: EventAccess,
    *,
    status: str | None,
    participant_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    bundle = await load_bundle(ctx, access.event_id)
    rows = [
        mt
        for mt in bundle.meetings
        if _may_see_meeting(access, mt)
        and (status is None or mt.status == status)
        and (participant_id is None or participant_id in (mt.a_id, mt.b_id))
    ]
    viewer = await Viewer.build(ctx, access, bundle)
    return [meeting_view(viewer, bundle, mt) for mt in rows[offset : offset + limit]], len(rows)


async def get_meeting(ctx: ServiceContext, access: EventAccess, meeting_id: int) -> dict[str, Any]:
    bundle = await load_bundle(ctx, access.event_id)
    mt = _find_meeting(bundle, access, meeting_id)
    viewer = await Viewer.build(ctx, access, bundle)
    return meeting_view(viewer, bundle, mt)


def _find_meeting(bundle: EventBundle, access: EventAccess, meeting_id: int) -> e.EventMeeting:
    mt = next((x for x in bundle.meetings if x.id == meeting_id), None)
    if mt is None or not _may_see_meeting(access, mt):
        raise NotFound(f"meeting {meeting_id} does not exist in this event")
    return mt


async def cancel_meeting(
    ctx: ServiceContext, access: EventAccess, meeting_id: int
) -> dict[str, Any]:
    """Cancel a meeting (and its request); a published schedule is repaired."""
    if access.level == VIEW:
        raise Forbidden("staff may read an event's meetings but not cancel them")
    async with writing(ctx) as session:
        bundle = await load_bundle(ctx, access.event_id, session=session)
        mt = _find_meeting(bundle, access, meeting_id)
        if mt.status != ACTIVE:
            raise Conflict(f"meeting {meeting_id} is cancelled already")
        now = utcnow()
        freed = _cancel_meeting_row(mt, now)
        if mt.request_id is not None:
            request = next(r for r in bundle.requests if r.id == mt.request_id)
            request.status = CANCELLED
            request.responded_at = now
            request.cancelled_by = _actor(access, request)
        _touch_schedule(bundle.event)
        repair_needed = freed and bundle.event.schedule_status == PUBLISHED
    repair = None
    if repair_needed:
        repair = await events_schedule.repair_if_published(
            ctx, access.event_id, trigger=f"meeting {meeting_id} cancelled"
        )
    return {"meeting": await get_meeting(ctx, access, meeting_id), "schedule_repair": repair}


# -- feedback ------------------------------------------------------------------------------
async def record_feedback(
    ctx: ServiceContext, access: EventAccess, meeting_id: int, body: dict[str, Any]
) -> dict[str, Any]:
    """One side's outcome of a meeting that took place, as a weighted collaboration link. A
    meeting gets one link: the higher of the two sides' outcomes."""
    if access.level == VIEW:
        raise Forbidden("staff may read an event but not give feedback for its participants")
    bundle = await load_bundle(ctx, access.event_id)
    mt = _find_meeting(bundle, access, meeting_id)
    if access.level == PARTICIPATE:
        if body.get("participant_id") not in (None, access.participant_id):
            raise Forbidden("a member key gives feedback for its own organisation only")
        participant_id = access.participant_id
    else:
        participant_id = body.get("participant_id")
        if participant_id not in (mt.a_id, mt.b_id):
            raise Unprocessable(
                f"participant_id: name one of the meeting's parties ({mt.a_id} or {mt.b_id})"
            )
    assert participant_id is not None
    slot = bundle.placed_slot(mt)
    if mt.status != ACTIVE or slot is None or bundle.event.schedule_status != PUBLISHED:
        raise Conflict(f"meeting {meeting_id} is not in the published schedule")
    start, _ = bundle.when(slot)
    if start > datetime.now(UTC):
        raise Conflict(f"meeting {meeting_id} has not taken place yet (starts {start.isoformat()})")
    async with ctx.db.read() as session:
        given = (
            await session.scalars(
                select(e.EventFeedback).where(e.EventFeedback.meeting_id == meeting_id)
            )
        ).all()
    if any(f.participant_id == participant_id for f in given):
        raise Conflict(
            f"participant {participant_id} gave feedback on meeting {meeting_id} already"
        )
    weight = OUTCOME_WEIGHTS[str(body["outcome"])]
    other = next((f for f in given if f.collaboration_id is not None), None)
    replaced: int | None = None
    made: int | None = None
    if other is not None and OUTCOME_WEIGHTS[other.outcome] >= weight:
        collaboration_id: int | None = other.collaboration_id
    else:
        created = await create_collaborations(ctx, [_link(bundle, mt, slot.day.year, weight)])
        collaboration_id = made = int(created[0]["id"])
        replaced = other.collaboration_id if other is not None else None
    try:
        async with writing(ctx) as session:
            row = e.EventFeedback(
                meeting_id=meeting_id,
                participant_id=participant_id,
                outcome=str(body["outcome"]),
                comment=body.get("comment"),
                collaboration_id=collaboration_id,
                created_at=utcnow(),
            )
            session.add(row)
            if replaced is not None:
                # One link per meeting: the other side's feedback now points at the new one.
                for f in await session.scalars(
                    select(e.EventFeedback).where(e.EventFeedback.meeting_id == meeting_id)
                ):
                    f.collaboration_id = collaboration_id
            await session.flush()
            created_at = row.created_at
    except IntegrityError:
        # The same side's feedback arrived twice at once: undo the link this call made.
        await _drop_link(ctx, made)
        raise Conflict(
            f"participant {participant_id} gave feedback on meeting {meeting_id} already"
        ) from None
    if replaced is not None:
        await _drop_link(ctx, replaced)
    return {
        "meeting_id": meeting_id,
        "participant_id": participant_id,
        "outcome": body["outcome"],
        "weight": weight,
        "comment": body.get("comment"),
        "collaboration_id": collaboration_id,
        "created_at": created_at,
    }


def _link(bundle: EventBundle, mt: e.EventMeeting, year: int, weight: float) -> dict[str, Any]:
    a = bundle.participant_by_id[mt.a_id]
    b = bundle.participant_by_id[mt.b_id]
    return {
        "kind": "event_meeting",
        "year": year,
        "weight": weight,
        "reference": f"event-{bundle.event.id}-meeting-{mt.id}",
        "title": f"Meeting at {bundle.event.name}"[:300],
        "participants": [
            {"organisation_id": a.organisation_id, "role": "participant"},
            {"organisation_id": b.organisation_id, "role": "participant"},
        ],
    }


async def _drop_link(ctx: ServiceContext, collaboration_id: int | None) -> None:
    if collaboration_id is None:
        return
    with contextlib.suppress(NotFound):
        await delete_collaboration(ctx, collaboration_id)


async def list_feedback(
    ctx: ServiceContext, access: EventAccess, meeting_ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Feedback on the event's meetings (members: on their own meetings)."""
    bundle = await load_bundle(ctx, access.event_id)
    visible = {mt.id for mt in bundle.meetings if _may_see_meeting(access, mt)}
    if meeting_ids is not None:
        visible &= set(meeting_ids)
    async with ctx.db.read() as session:
        rows = (
            await session.scalars(
                select(e.EventFeedback)
                .where(e.EventFeedback.meeting_id.in_(visible))
                .order_by(e.EventFeedback.meeting_id, e.EventFeedback.participant_id)
            )
        ).all()
    return [
        {
            "meeting_id": f.meeting_id,
            "participant_id": f.participant_id,
            "outcome": f.outcome,
            "weight": OUTCOME_WEIGHTS[f.outcome],
            "comment": f.comment,
            "collaboration_id": f.collaboration_id,
            "created_at": f.created_at,
        }
        for f in rows
    ]
