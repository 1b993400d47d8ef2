"""/v1/events: matchmaking (brokerage) events: sessions, places, participants,
recommendations, meeting requests, the optimal B2B schedule, agendas, analytics, feedback.

Who may do what (admin may do everything; "own" = the organiser key that created the event;
"tenant" = staff of the event's cluster; "participant" = a member key whose organisation is
registered for the event). An event the caller may not see answers 404, exactly like a
missing one (another organiser's event included); 403 only where the caller can see it.

| route                                             | organiser | staff  | member            |
|---------------------------------------------------|-----------|--------|-------------------|
| POST /v1/events                                   | yes       | 403    | 403               |
| GET /v1/events, GET /v1/events/{id}               | own       | tenant | participant       |
| PATCH, DELETE /v1/events/{id}; sessions; places   | own       | 403    | 403               |
| POST, PATCH, DELETE participants (JSON, CSV)      | own       | 403    | 403               |
| GET participants                                  | own       | tenant | participant (*)   |
| GET .../participants/{p}/recommendations          | own       | tenant | its own p         |
| GET /v1/events/{id}/recommendations (everyone)    | own       | tenant | 403               |
| POST requests; accept / decline / cancel          | own (**)  | 403    | participant (***) |
| GET requests, meetings                            | own       | tenant | its own           |
| POST meetings/{m}/cancel, meetings/{m}/feedback   | own (**)  | 403    | its own meetings  |
| POST schedule, schedule/publish, schedule/repair  | own       | 403    | 403               |
| GET schedule, grid.csv, grid.html, analytics      | own       | tenant | 403               |
| GET .../participants/{p}/agenda(.csv, .ics)       | own       | tenant | its own, published|

(*) other participants' wishes (availability, must/do-not-meet) are hidden from members.
(**) on a participant's behalf (``from_participant_id`` / ``participant_id``).
(***) only the recipient accepts or declines; either side cancels.
Delegates' email and phone show only to staff of the person's cluster, to the person's own
organisation, and to organisations that accepted a meeting with them; people who withdrew
consent never appear.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import HTMLResponse, PlainTextResponse

from app.auth import require
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.common import Slug
from app.schemas.events import (
    AgendaRead,
    AllRecommendations,
    EventAnalytics,
    EventCreate,
    EventList,
    EventRead,
    EventUpdate,
    FeedbackCreate,
    FeedbackRead,
    MeetingChange,
    MeetingList,
    MeetingRead,
    ParticipantList,
    ParticipantRead,
    ParticipantsCreate,
    ParticipantsCreated,
    ParticipantsCsv,
    ParticipantUpdate,
    PlacesCreate,
    RecommendationList,
    RequestAnswer,
    RequestChange,
    RequestCreate,
    RequestList,
    RequestRead,
    ScheduleCreate,
    ScheduleRead,
    ScheduleRepair,
    SessionsCreate,
)
from app.services import events as service
from app.services import events_meetings as meetings
from app.services import events_outputs as outputs
from app.services import events_schedule as schedule
from app.services.context import ServiceContext
from app.services.events import EventAccess
from app.services.keys import Principal, Role

router = APIRouter(prefix="/v1/events", tags=["events"])

EventId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Event id.")]
ParticipantId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Participant id.")]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]

Organiser = Annotated[Principal, Depends(require(Role.organiser))]
Reader = Annotated[Principal, Depends(require(Role.organiser, Role.staff, Role.member))]
Actor = Annotated[Principal, Depends(require(Role.organiser, Role.member))]
Overseer = Annotated[Principal, Depends(require(Role.organiser, Role.staff))]

CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV (UTF-8, comma-separated)."}
}
ICS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "iCalendar (RFC 5545)."}
}
HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}, "description": "A printable HTML page."}
}


# -- events --------------------------------------------------------------------------------
@router.post(
    "",
    response_model=EventRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409, 413, 415, 422),
)
async def create_event(
    ctx: Ctx, principal: Organiser, body: EventCreate, response: Response
) -> dict[str, Any]:
    """Create an event with its sessions (date, start, end, slot length, breaks), meeting
    places (tables, booths, rooms with seats) and participation rules (groups, who may meet
    whom, request quotas, meetings per session). It belongs to the calling organiser key.
    Overlapping sessions answer 422 (409 against stored ones)."""
    created = await service.create_event(ctx, principal, body.model_dump(mode="json"))
    response.headers["Location"] = f"/v1/events/{created['id']}"
    return created


@router.get("", response_model=EventList, responses=errors(401, 403, 422))
async def list_events(
    ctx: Ctx, principal: Reader, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    """Events the key may see: an organiser's own, its cluster's for staff, those a member's
    organisation takes part in."""
    items, total = await service.list_events(ctx, principal, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{event_id}", response_model=EventRead, responses=errors(401, 403, 404, 422))
async def get_event(ctx: Ctx, principal: Reader, event_id: EventId) -> dict[str, Any]:
    """One event with its sessions (and their slots), places, rules and schedule state."""
    access = await service.event_access(ctx, principal, event_id)
    return await service.get_event(ctx, access)


@router.patch(
    "/{event_id}", response_model=EventRead, responses=errors(401, 403, 404, 409, 413, 415, 422)
)
async def update_event(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: EventUpdate
) -> dict[str, Any]:
    """Change name, description, venue, time zone or rules. New rules apply to new
    requests; a published schedule is repaired to respect new meeting limits."""
    access = await service.event_access(ctx, principal, event_id)
    updated, repair = await service.update_event(
        ctx, access, body.model_dump(mode="json", exclude_unset=True)
    )
    if repair:
        await schedule.repair_if_published(ctx, event_id, trigger="rules changed")
        return await service.get_event(ctx, access)
    return updated


@router.delete(
    "/{event_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_event(ctx: Ctx, principal: Organiser, event_id: EventId) -> Response:
    """Delete an event with its participants, requests and meetings (collaboration links
    recorded from feedback stay: they happened)."""
    access = await service.event_access(ctx, principal, event_id)
    await service.delete_event(ctx, access)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{event_id}/sessions",
    response_model=EventRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def add_sessions(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: SessionsCreate
) -> dict[str, Any]:
    """Add sessions. A session overlapping another answers 409; a draft schedule is dropped
    (compute it again); a published one answers 409."""
    access = await service.event_access(ctx, principal, event_id)
    return await service.add_sessions(ctx, access, [s.model_dump() for s in body.items])


@router.delete(
    "/{event_id}/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 422),
)
async def delete_session(
    ctx: Ctx, principal: Organiser, event_id: EventId, session_id: ItemId
) -> Response:
    """Remove a session (not once the schedule is published: 409)."""
    access = await service.event_access(ctx, principal, event_id)
    await service.delete_session(ctx, access, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{event_id}/places",
    response_model=EventRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def add_places(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: PlacesCreate
) -> dict[str, Any]:
    """Add tables, booths or rooms (``count`` makes numbered copies). Names are unique."""
    access = await service.event_access(ctx, principal, event_id)
    return await service.add_places(ctx, access, [p.model_dump() for p in body.items])


@router.delete(
    "/{event_id}/places/{place_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 422),
)
async def delete_place(
    ctx: Ctx, principal: Organiser, event_id: EventId, place_id: ItemId
) -> Response:
    """Remove a place (not once the schedule is published: 409)."""
    access = await service.event_access(ctx, principal, event_id)
    await service.delete_place(ctx, access, place_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- participants --------------------------------------------------------------------------
@router.post(
    "/{event_id}/participants",
    response_model=ParticipantsCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def register_participants(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: ParticipantsCreate
) -> dict[str, Any]:
    """Register organisations (of the organiser's cluster or network-wide) with their
    delegates (person ids of that organisation), group, availability per session and
    must-meet / do-not-meet lists. All or none."""
    access = await service.event_access(ctx, principal, event_id)
    items = [item.model_dump(mode="json") for item in body.items]
    return {"items": await service.register_participants(ctx, access, items)}


@router.post(
    "/{event_id}/participants/csv",
    response_model=ParticipantsCreated,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def register_participants_csv(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: ParticipantsCsv
) -> dict[str, Any]:
    """Bulk registration from CSV text sent inside JSON (columns in the body's schema). The
    file is checked whole; a 422 lists every bad line and registers nobody."""
    access = await service.event_access(ctx, principal, event_id)
    items = service.parse_participants_csv(body.csv)
    return {"items": await service.register_participants(ctx, access, items)}


@router.get(
    "/{event_id}/participants", response_model=ParticipantList, responses=errors(401, 403, 404, 422)
)
async def list_participants(
    ctx: Ctx,
    principal: Reader,
    event_id: EventId,
    group: Annotated[Slug | None, Query(description="Only this group.")] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The event's participants with their delegates (contact details as allowed)."""
    access = await service.event_access(ctx, principal, event_id)
    items, total = await service.list_participants(
        ctx, access, group=group, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/{event_id}/participants/{participant_id:int}",
    response_model=ParticipantRead,
    responses=errors(401, 403, 404, 422),
)
async def get_participant(
    ctx: Ctx, principal: Reader, event_id: EventId, participant_id: ParticipantId
) -> dict[str, Any]:
    """One participant."""
    access = await service.event_access(ctx, principal, event_id)
    return await service.get_participant(ctx, access, participant_id)


@router.patch(
    "/{event_id}/participants/{participant_id:int}",
    response_model=ParticipantRead,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def update_participant(
    ctx: Ctx,
    principal: Organiser,
    event_id: EventId,
    participant_id: ParticipantId,
    body: ParticipantUpdate,
) -> dict[str, Any]:
    """Change group, delegates, availability, wishes or meeting limit. A published schedule
    is repaired (e.g. meetings in slots the participant can no longer attend move)."""
    access = await service.event_access(ctx, principal, event_id)
    updated, repair = await service.update_participant(
        ctx, access, participant_id, body.model_dump(mode="json", exclude_unset=True)
    )
    if repair:
        await schedule.repair_if_published(
            ctx, event_id, trigger=f"participant {participant_id} changed"
        )
    return updated


@router.delete(
    "/{event_id}/participants/{participant_id:int}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 422),
)
async def delete_participant(
    ctx: Ctx, principal: Organiser, event_id: EventId, participant_id: ParticipantId
) -> Response:
    """Withdraw a participant with its requests and meetings; a published schedule is
    repaired (standby meetings move into the freed slots)."""
    access = await service.event_access(ctx, principal, event_id)
    if await service.delete_participant(ctx, access, participant_id):
        await schedule.repair_if_published(
            ctx, event_id, trigger=f"participant {participant_id} withdrew"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- recommendations -----------------------------------------------------------------------
@router.get(
    "/{event_id}/participants/{participant_id:int}/recommendations",
    response_model=RecommendationList,
    responses=errors(401, 403, 404, 422),
)
async def participant_recommendations(
    ctx: Ctx,
    principal: Reader,
    event_id: EventId,
    participant_id: ParticipantId,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Whom this participant should meet at the event: other participants it may meet under
    the rules (groups, do-not-meet, a common time slot), not asked yet and not drowning in
    requests, ranked by the reciprocal score (geometric mean of the partner ranker's score in
    both directions: both sides must gain), with reasons."""
    access = await service.event_access(ctx, principal, event_id)
    (found,) = await meetings.recommendations(ctx, access, participant_id, limit)
    return found


@router.get(
    "/{event_id}/recommendations",
    response_model=AllRecommendations,
    responses=errors(401, 403, 404, 422),
)
async def all_recommendations(
    ctx: Ctx,
    principal: Overseer,
    event_id: EventId,
    limit: Annotated[int, Query(ge=1, le=50)] = 5,
) -> dict[str, Any]:
    """Recommendations for every participant at once (for organisers preparing the day)."""
    access = await service.event_access(ctx, principal, event_id)
    found = await meetings.recommendations(ctx, access, None, limit)
    return {"model_version": ctx.derived.state.scorer.version, "items": found}


# -- requests ------------------------------------------------------------------------------
@router.post(
    "/{event_id}/requests",
    response_model=RequestRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def create_request(
    ctx: Ctx, principal: Actor, event_id: EventId, body: RequestCreate, response: Response
) -> dict[str, Any]:
    """Ask another participant for a meeting, with a message. Refused with 422 for a
    non-participant, oneself or a pair the group rules forbid; with 409 for a do-not-meet
    wish, no common slot, a request between them already open or declined, the sender's
    quota used up, or the recipient's inbox full."""
    access = await service.event_access(ctx, principal, event_id)
    created = await meetings.create_request(ctx, access, body.model_dump(mode="json"))
    response.headers["Location"] = f"/v1/events/{event_id}/requests/{created['id']}"
    return created


@router.get(
    "/{event_id}/requests", response_model=RequestList, responses=errors(401, 403, 404, 422)
)
async def list_requests(
    ctx: Ctx,
    principal: Reader,
    event_id: EventId,
    status_: Annotated[
        Literal["pending", "accepted", "declined", "cancelled"] | None, Query(alias="status")
    ] = None,
    participant_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Requests, newest first (a member sees those it sent or received)."""
    access = await service.event_access(ctx, principal, event_id)
    items, total = await meetings.list_requests(
        ctx, access, status=status_, participant_id=participant_id, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/{event_id}/requests/{request_id}",
    response_model=RequestRead,
    responses=errors(401, 403, 404, 422),
)
async def get_request(
    ctx: Ctx, principal: Reader, event_id: EventId, request_id: ItemId
) -> dict[str, Any]:
    """One request; the delegates' contact details show once it is accepted."""
    access = await service.event_access(ctx, principal, event_id)
    return await meetings.get_request(ctx, access, request_id)


# The answers to a request share one shape and differ only in the action, which is the last
# word of the path: one route per action (its own operation and description in the OpenAPI
# schema), each made by the same factory.
REQUEST_ANSWERS = {
    "accept": """Accept a pending request (the recipient): it becomes a meeting, both organisations
    may now see each other's delegates' contact details, and a published schedule is
    repaired to fit it in. Accepting a cancelled or declined request answers 409.""",
    "decline": """Decline a pending request (the recipient), with an optional note.""",
    "cancel": """Withdraw a pending request or cancel an accepted meeting (either side). A published
    schedule is repaired with the fewest moves and a standby meeting takes the freed slot;
    ``schedule_repair`` says how many meetings moved.""",
}


def _answer_route(action: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def answer(
        ctx: Ctx,
        principal: Actor,
        event_id: EventId,
        request_id: ItemId,
        body: RequestAnswer | None = None,
    ) -> dict[str, Any]:
        access = await service.event_access(ctx, principal, event_id)
        message = body.message if body is not None else None
        return await meetings.answer_request(ctx, access, request_id, action, message)

    answer.__name__ = answer.__qualname__ = f"{action}_request"
    answer.__doc__ = REQUEST_ANSWERS[action]
    return answer


for _action in REQUEST_ANSWERS:
    router.post(
        f"/{{event_id}}/requests/{{request_id}}/{_action}",
        response_model=RequestChange,
        responses=errors(401, 403, 404, 409, 413, 415, 422),
    )(_answer_route(_action))


# -- meetings and feedback -----------------------------------------------------------------
@router.get(
    "/{event_id}/meetings", response_model=MeetingList, responses=errors(401, 403, 404, 422)
)
async def list_meetings(
    ctx: Ctx,
    principal: Reader,
    event_id: EventId,
    status_: Annotated[Literal["active", "cancelled"] | None, Query(alias="status")] = None,
    participant_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Meetings (accepted requests and must-meets) with their slot and place once scheduled."""
    access = await service.event_access(ctx, principal, event_id)
    items, total = await meetings.list_meetings(
        ctx, access, status=status_, participant_id=participant_id, limit=limit, offset=offset
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/{event_id}/meetings/{meeting_id}",
    response_model=MeetingRead,
    responses=errors(401, 403, 404, 422),
)
async def get_meeting(
    ctx: Ctx, principal: Reader, event_id: EventId, meeting_id: ItemId
) -> dict[str, Any]:
    """One meeting."""
    access = await service.event_access(ctx, principal, event_id)
    return await meetings.get_meeting(ctx, access, meeting_id)


@router.post(
    "/{event_id}/meetings/{meeting_id}/cancel",
    response_model=MeetingChange,
    responses=errors(401, 403, 404, 409, 422),
)
async def cancel_meeting(
    ctx: Ctx, principal: Actor, event_id: EventId, meeting_id: ItemId
) -> dict[str, Any]:
    """Cancel a meeting (a must-meet too; it does not come back); a published schedule is
    repaired."""
    access = await service.event_access(ctx, principal, event_id)
    return await meetings.cancel_meeting(ctx, access, meeting_id)


@router.post(
    "/{event_id}/meetings/{meeting_id}/feedback",
    response_model=FeedbackRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def give_feedback(
    ctx: Ctx, principal: Actor, event_id: EventId, meeting_id: ItemId, body: FeedbackCreate
) -> dict[str, Any]:
    """After the meeting: its outcome (no further contact / knowledge gain / valuable contact
    / negotiation started / agreement reached), once per side. It is recorded as an
    ``event_meeting`` collaboration link of weight 0.25 / 0.5 / 1 / 1.5 / 2 (one link per
    meeting, the higher side's outcome), so the graph and future matches learn from it.
    Before the meeting's slot, or for an unscheduled meeting: 409."""
    access = await service.event_access(ctx, principal, event_id)
    return await meetings.record_feedback(ctx, access, meeting_id, body.model_dump(mode="json"))


@router.get(
    "/{event_id}/meetings/{meeting_id}/feedback",
    response_model=list[FeedbackRead],
    responses=errors(401, 403, 404, 422),
)
async def list_feedback(
    ctx: Ctx, principal: Reader, event_id: EventId, meeting_id: ItemId
) -> list[dict[str, Any]]:
    """Feedback given on a meeting."""
    access = await service.event_access(ctx, principal, event_id)
    await meetings.get_meeting(ctx, access, meeting_id)
    return await meetings.list_feedback(ctx, access, [meeting_id])


# -- schedule ------------------------------------------------------------------------------
@router.post(
    "/{event_id}/schedule",
    response_model=ScheduleRead,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def generate_schedule(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: ScheduleCreate | None = None
) -> dict[str, Any]:
    """Compute a draft schedule: every accepted and must-meet meeting gets a slot and a
    place so that nobody is double-booked and availability, breaks, place seats and
    per-session / per-participant limits hold, maximising total value (reciprocal match
    scores; must-meets first) with an exact solver (OR-Tools CP-SAT, LP bound) under the
    time limit. ``schedule.stats`` reports the proven bound and gap, and what first-come
    first-served would have placed. Meetings that do not fit form the standby list. No
    places or no slots: 409; a published schedule: 409 (it is repaired instead)."""
    access = await service.event_access(ctx, principal, event_id)
    options = body or ScheduleCreate()
    return await schedule.generate_schedule(
        ctx, access, time_limit_s=options.time_limit_s, compare_fcfs=options.compare_fcfs
    )


@router.get(
    "/{event_id}/schedule", response_model=ScheduleRead, responses=errors(401, 403, 404, 422)
)
async def get_schedule(ctx: Ctx, principal: Overseer, event_id: EventId) -> dict[str, Any]:
    """The schedule (draft or published) with its figures and the standby list."""
    access = await service.event_access(ctx, principal, event_id)
    return await schedule.schedule_view(ctx, access)


@router.post(
    "/{event_id}/schedule/publish",
    response_model=ScheduleRead,
    responses=errors(401, 403, 404, 409, 422),
)
async def publish_schedule(ctx: Ctx, principal: Organiser, event_id: EventId) -> dict[str, Any]:
    """Publish the reviewed draft: participants see their agendas; from now on changes are
    repaired with the fewest moves."""
    access = await service.event_access(ctx, principal, event_id)
    return await schedule.publish_schedule(ctx, access)


@router.post(
    "/{event_id}/schedule/repair",
    response_model=ScheduleRead,
    responses=errors(401, 403, 404, 409, 413, 415, 422),
)
async def repair_schedule(
    ctx: Ctx, principal: Organiser, event_id: EventId, body: ScheduleRepair | None = None
) -> dict[str, Any]:
    """Repair the schedule now with the fewest moves (cancellations and acceptances trigger
    this by themselves once published). ``schedule.last_repair`` says what moved."""
    access = await service.event_access(ctx, principal, event_id)
    options = body or ScheduleRepair()
    return await schedule.repair_schedule(ctx, access, time_limit_s=options.time_limit_s)


@router.get(
    "/{event_id}/schedule/grid.csv",
    response_class=PlainTextResponse,
    responses={**errors(401, 403, 404, 422), **CSV},
)
async def grid_csv(ctx: Ctx, principal: Overseer, event_id: EventId) -> Response:
    """The whole grid: one row per slot, one column per place."""
    access = await service.event_access(ctx, principal, event_id)
    text = await outputs.grid_csv(ctx, access)
    return _download(text, "text/csv", f"event-{event_id}-grid.csv")


@router.get(
    "/{event_id}/schedule/grid.html",
    response_class=HTMLResponse,
    responses={**errors(401, 403, 404, 422), **HTML},
)
async def grid_html(ctx: Ctx, principal: Overseer, event_id: EventId) -> Response:
    """The whole grid as a printable page (A4 landscape, one session per page, no external
    assets)."""
    access = await service.event_access(ctx, principal, event_id)
    return HTMLResponse(await outputs.grid_html(ctx, access))


@router.get(
    "/{event_id}/analytics", response_model=EventAnalytics, responses=errors(401, 403, 404, 422)
)
async def get_analytics(ctx: Ctx, principal: Overseer, event_id: EventId) -> dict[str, Any]:
    """Requests sent / accepted / declined, meetings per participant, shares of cross-sector
    and cross-country meetings, and the participants left without a meeting."""
    access = await service.event_access(ctx, principal, event_id)
    return await schedule.analytics(ctx, access)


# -- agendas -------------------------------------------------------------------------------
@router.get(
    "/{event_id}/participants/{participant_id:int}/agenda",
    response_model=AgendaRead,
    responses=errors(401, 403, 404, 422),
)
async def get_agenda(
    ctx: Ctx, principal: Reader, event_id: EventId, participant_id: ParticipantId
) -> dict[str, Any]:
    """A participant's meetings in time order, with counterpart and place."""
    access = await service.event_access(ctx, principal, event_id)
    view, _, _ = await schedule.agenda(ctx, access, participant_id)
    return view


class AgendaFile(NamedTuple):
    """A participant's agenda as a file of one type."""

    render: Callable[[ServiceContext, EventAccess, int], Awaitable[str]]
    media_type: str
    openapi: dict[int | str, dict[str, Any]]
    description: str


# By extension. Like the request answers: one route each, made by the same factory.
AGENDA_FILES = {
    "csv": AgendaFile(outputs.agenda_csv, "text/csv", CSV, "The agenda as CSV."),
    "ics": AgendaFile(
        outputs.agenda_ics,
        "text/calendar",
        ICS,
        """The agenda as an iCalendar file to import into a calendar (times in UTC; a new
    schedule version updates the same events).""",
    ),
}


def _agenda_file_route(extension: str) -> Callable[..., Awaitable[Response]]:
    kind = AGENDA_FILES[extension]

    async def agenda_file(
        ctx: Ctx, principal: Reader, event_id: EventId, participant_id: ParticipantId
    ) -> Response:
        access = await service.event_access(ctx, principal, event_id)
        text = await kind.render(ctx, access, participant_id)
        filename = f"event-{event_id}-agenda-{participant_id}.{extension}"
        return _download(text, kind.media_type, filename)

    agenda_file.__name__ = agenda_file.__qualname__ = f"get_agenda_{extension}"
    agenda_file.__doc__ = kind.description
    return agenda_file


for _extension, _file in AGENDA_FILES.items():
    router.get(
        f"/{{event_id}}/participants/{{participant_id:int}}/agenda.{_extension}",
        response_class=PlainTextResponse,
        responses={**errors(401, 403, 404, 422), **_file.openapi},
    )(_agenda_file_route(_extension))


def _download(text: str, media_type: str, filename: str) -> Response:
    return Response(
        content=text.encode(),
        media_type=f"{media_type}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
