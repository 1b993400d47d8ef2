"""Matchmaking events through the API: an event run end to end, recommendations, requests
with contact reveal, CSV registration, agendas and grids, analytics and feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.store import models as m
from tests.api.helpers import create_org
from tests.conftest import Service

TENANT = "biocat"
PAST_DAY = "2025-03-11"  # feedback needs meetings that took place
FUTURE_DAY = "2031-06-11"


def event_body(day: str = FUTURE_DAY, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Biocat Partnering Day",
        "venue": "Barcelona",
        "timezone": "Europe/Madrid",
        "rules": {"groups": ["buyer", "seller"], "allowed_pairs": [["buyer", "seller"]]},
        "sessions": [
            {
                "name": "Morning",
                "date": day,
                "start": "09:00",
                "end": "10:20",
                "slot_minutes": 20,
                "breaks": [{"start": "09:40", "end": "10:00"}],
            }
        ],
        "places": [{"name": "Table", "capacity": 4, "count": 2}],
    }
    body.update(fields)
    return body


async def add_person(service: Service, org_id: int, name: str, *, consent: str = "given") -> int:
    """A delegate, stored directly (the people API belongs to another piece of work)."""
    async with service.ctx.db.sessions() as session, session.begin():
        person = m.Person(
            organisation_id=org_id,
            tenant=TENANT,
            full_name=name,
            job_title="Head of BD",
            email=f"{name.split()[0].lower()}@example.org",
            phone="+34 600 000 000",
            expertise=[],
            consent_state=consent,
            legal_basis="consent",
            source="event registration form",
        )
        session.add(person)
        await session.flush()
        return int(person.id)


@dataclass
class World:
    """An event with two sellers and two buyers, each with one delegate."""

    event: dict[str, Any]
    orgs: dict[str, dict[str, Any]]
    participants: dict[str, int]
    persons: dict[str, int]


async def make_world(service: Service, organiser: httpx.AsyncClient, day: str) -> World:
    async with await service.client("staff", tenant=TENANT) as staff:
        orgs = {
            "lab": await create_org(
                staff,
                "PathoVision",
                sectors=["diagnostics"],
                seeks=["clinical validation site for a diagnostic"],
                offers=["AI image analysis for pathology"],
            ),
            "wear": await create_org(
                staff,
                "Wearatech",
                sectors=["medtech"],
                country="FR",
                seeks=["hospital to validate a wearable ECG monitor"],
                offers=["wearable ECG monitor"],
            ),
            "hosp": await create_org(
                staff,
                "Hospital Clínic Nord",
                kind="hospital_or_care_provider",
                sectors=["diagnostics"],
                offers=["clinical validation site for a diagnostic"],
                seeks=["AI image analysis for pathology"],
            ),
            "clinic": await create_org(
                staff,
                "Cardio Clinic",
                kind="hospital_or_care_provider",
                sectors=["medtech"],
                country="SE",
                offers=["hospital to validate a wearable ECG monitor"],
                seeks=["wearable ECG monitor"],
            ),
        }
    persons = {
        key: await add_person(service, org["id"], f"{org['name'].split()[0]} Delegate")
        for key, org in orgs.items()
    }
    created = await organiser.post("/v1/events", json=event_body(day))
    assert created.status_code == 201, created.text
    event = created.json()
    groups = {"lab": "seller", "wear": "seller", "hosp": "buyer", "clinic": "buyer"}
    registered = await organiser.post(
        f"/v1/events/{event['id']}/participants",
        json={
            "items": [
                {"organisation_id": org["id"], "group": groups[key], "delegates": [persons[key]]}
                for key, org in orgs.items()
            ]
        },
    )
    assert registered.status_code == 201, registered.text
    by_org = {p["organisation"]["id"]: p["id"] for p in registered.json()["items"]}
    participants = {key: by_org[org["id"]] for key, org in orgs.items()}
    return World(event, orgs, participants, persons)


@pytest.fixture
async def organiser(service: Service) -> Any:
    async with await service.client("organiser", tenant=TENANT) as http:
        yield http


async def member(service: Service, world: World, key: str) -> httpx.AsyncClient:
    return await service.client("member", organisation_id=world.orgs[key]["id"])


async def meet(
    service: Service, world: World, sender: str, recipient: str, *, accept: bool = True
) -> dict[str, Any]:
    """``sender`` asks ``recipient`` for a meeting, which ``recipient`` accepts."""
    base = f"/v1/events/{world.event['id']}/requests"
    async with await member(service, world, sender) as http:
        sent = await http.post(
            base,
            json={"to_participant_id": world.participants[recipient], "message": "Shall we?"},
        )
        assert sent.status_code == 201, sent.text
    if not accept:
        return dict(sent.json())
    async with await member(service, world, recipient) as http:
        accepted = await http.post(f"{base}/{sent.json()['id']}/accept")
        assert accepted.status_code == 200, accepted.text
    return dict(accepted.json()["request"])


# -- events, sessions, places --------------------------------------------------------------
async def test_event_has_sessions_cut_into_slots_around_breaks(
    organiser: httpx.AsyncClient,
) -> None:
    created = await organiser.post("/v1/events", json=event_body())
    assert created.status_code == 201, created.text
    event = created.json()
    assert created.headers["location"] == f"/v1/events/{event['id']}"
    (session,) = event["sessions"]
    starts = [slot["start"][11:16] for slot in session["slots"]]
    assert starts == ["09:00", "09:20", "10:00"]  # 09:40-10:00 is a break
    assert session["slots"][0]["start"].endswith("+02:00")  # Madrid summer time
    assert [p["name"] for p in event["places"]] == ["Table 1", "Table 2"]
    assert event["schedule"]["status"] == "none" and event["participants"] == 0

    listed = (await organiser.get("/v1/events")).json()
    assert [e["id"] for e in listed["items"]] == [event["id"]]
    assert listed["items"][0]["first_day"] == FUTURE_DAY


async def test_sessions_and_places_can_be_added_later(organiser: httpx.AsyncClient) -> None:
    event = (await organiser.post("/v1/events", json=event_body(places=[]))).json()
    afternoon = {
        "name": "Afternoon",
        "date": FUTURE_DAY,
        "start": "14:00",
        "end": "15:00",
        "slot_minutes": 30,
    }
    added = await organiser.post(f"/v1/events/{event['id']}/sessions", json={"items": [afternoon]})
    assert added.status_code == 201, added.text
    assert [s["name"] for s in added.json()["sessions"]] == ["Morning", "Afternoon"]
    places = await organiser.post(
        f"/v1/events/{event['id']}/places",
        json={"items": [{"name": "Booth", "kind": "booth", "capacity": 6, "count": 3}]},
    )
    assert places.status_code == 201
    assert [p["name"] for p in places.json()["places"]] == ["Booth 1", "Booth 2", "Booth 3"]


# -- participants --------------------------------------------------------------------------
async def test_csv_registration_is_all_or_nothing(
    service: Service, organiser: httpx.AsyncClient
) -> None:
    async with await service.client("staff", tenant=TENANT) as staff:
        a = await create_org(staff, "Alpha")
        b = await create_org(staff, "Beta")
    person = await add_person(service, a["id"], "Ana Alpha")
    event = (await organiser.post("/v1/events", json=event_body())).json()
    url = f"/v1/events/{event['id']}/participants/csv"
    session_id = event["sessions"][0]["id"]

    bad = (
        "organisation_id,group,delegates,sessions\n"
        f"{a['id']},seller,{person},{session_id}\n"
        f"{b['id']},astronaut,,\n"
        "x,buyer,,\n"
    )
    refused = await organiser.post(url, json={"csv": bad})
    assert refused.status_code == 422, refused.text
    assert [e["loc"][-1] for e in refused.json()["errors"]] == ["line 4"]
    # The astronaut group is caught against the event's rules, before anything is written.
    bad_group = f"organisation_id,group\n{a['id']},seller\n{b['id']},astronaut\n"
    assert (await organiser.post(url, json={"csv": bad_group})).status_code == 422
    listed = await organiser.get(f"/v1/events/{event['id']}/participants")
    assert listed.json()["total"] == 0

    good = (
        "organisation_id,group,delegates,sessions,do_not_meet\n"
        f"{a['id']},seller,{person},{session_id},{b['id']}\n"
        f"{b['id']},buyer,,,\n"
    )
    created = await organiser.post(url, json={"csv": good})
    assert created.status_code == 201, created.text
    first, second = created.json()["items"]
    assert first["delegates"][0]["full_name"] == "Ana Alpha"
    assert first["availability"] == [{"session_id": session_id, "start": "09:00", "end": "10:20"}]
    assert first["do_not_meet"] == [b["id"]] and second["group"] == "buyer"
    again = await organiser.post(url, json={"csv": good})
    assert again.status_code == 409  # already registered


async def test_members_see_no_other_participants_wishes(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        await organiser.patch(
            f"/v1/events/{world.event['id']}/participants/{world.participants['hosp']}",
            json={"do_not_meet": [world.orgs["wear"]["id"]]},
        )
    async with await member(service, world, "lab") as http:
        items = (await http.get(f"/v1/events/{world.event['id']}/participants")).json()["items"]
    by_id = {p["id"]: p for p in items}
    assert by_id[world.participants["hosp"]]["do_not_meet"] is None
    assert by_id[world.participants["lab"]]["do_not_meet"] == []
    # Contact details of other organisations' delegates stay hidden before any meeting.
    hosp_delegate = by_id[world.participants["hosp"]]["delegates"][0]
    assert hosp_delegate["full_name"] and hosp_delegate["email"] is None
    assert by_id[world.participants["lab"]]["delegates"][0]["email"] == "pathovision@example.org"


# -- recommendations -----------------------------------------------------------------------
async def test_recommendations_are_reciprocal_and_respect_the_rules(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        await organiser.patch(
            f"/v1/events/{world.event['id']}/participants/{world.participants['clinic']}",
            json={"do_not_meet": [world.orgs["lab"]["id"]]},
        )
        everyone = await organiser.get(f"/v1/events/{world.event['id']}/recommendations")
    assert everyone.status_code == 200, everyone.text
    assert {r["participant_id"] for r in everyone.json()["items"]} == set(
        world.participants.values()
    )
    async with await member(service, world, "lab") as http:
        url = f"/v1/events/{world.event['id']}/participants/{world.participants['lab']}"
        body = (await http.get(f"{url}/recommendations")).json()
    ids = [item["participant_id"] for item in body["items"]]
    # Sellers meet buyers only; the clinic asked not to meet the lab.
    assert ids == [world.participants["hosp"]]
    top = body["items"][0]
    assert top["group"] == "buyer"
    assert top["score"] == pytest.approx((top["score_for_you"] * top["score_for_them"]) ** 0.5)
    assert any("Both sides gain" in reason for reason in top["explanation"])
    assert any("clinical validation site" in reason for reason in top["explanation"])

    # Once asked, a counterpart is no longer recommended.
    await meet(service, world, "lab", "hosp", accept=False)
    async with await member(service, world, "lab") as http:
        again = (await http.get(f"{url}/recommendations")).json()
    assert again["items"] == []


# -- requests ------------------------------------------------------------------------------
async def test_accepting_reveals_contacts_both_ways(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
    base = f"/v1/events/{world.event['id']}/requests"
    async with await member(service, world, "lab") as lab:
        sent = await lab.post(
            base,
            json={"to_participant_id": world.participants["hosp"], "message": "20 minutes?"},
        )
        assert sent.status_code == 201, sent.text
        request = sent.json()
        assert request["status"] == "pending" and request["message"] == "20 minutes?"
        assert request["recipient"]["delegates"][0]["email"] is None
        # Only the recipient may accept.
        assert (await lab.post(f"{base}/{request['id']}/accept")).status_code == 403
    async with await member(service, world, "hosp") as hosp:
        answered = await hosp.post(
            f"{base}/{request['id']}/accept", json={"message": "Happy to meet."}
        )
        assert answered.status_code == 200, answered.text
        body = answered.json()
        assert body["request"]["status"] == "accepted" and body["schedule_repair"] is None
        assert body["request"]["meeting_id"] is not None
        assert body["request"]["sender"]["delegates"][0]["email"] == "pathovision@example.org"
    async with await member(service, world, "lab") as lab:
        seen = (await lab.get(f"{base}/{request['id']}")).json()
        assert seen["recipient"]["delegates"][0]["email"] == "hospital@example.org"
        assert seen["response_message"] == "Happy to meet."
        # A third participant still sees nothing.
    async with await member(service, world, "wear") as wear:
        assert (await wear.get(f"{base}/{request['id']}")).status_code == 404


async def test_decline_and_cancel(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
    base = f"/v1/events/{world.event['id']}/requests"
    declined = await meet(service, world, "wear", "clinic", accept=False)
    async with await member(service, world, "clinic") as clinic:
        answer = await clinic.post(f"{base}/{declined['id']}/decline", json={"message": "No fit."})
        assert answer.json()["request"]["status"] == "declined"
    async with await member(service, world, "wear") as wear:
        again = await wear.post(
            base, json={"to_participant_id": world.participants["clinic"], "message": "Please?"}
        )
        assert again.status_code == 409  # declined once is enough
    accepted = await meet(service, world, "lab", "hosp")
    async with await member(service, world, "lab") as lab:
        cancelled = await lab.post(f"{base}/{accepted['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["request"]["cancelled_by"] == "sender"
        meetings = (await lab.get(f"/v1/events/{world.event['id']}/meetings")).json()
        assert [mt["status"] for mt in meetings["items"]] == ["cancelled"]


# -- schedule, agenda, grid, analytics -----------------------------------------------------
async def test_schedule_publish_agenda_grid_and_analytics(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        eid = world.event["id"]
        await meet(service, world, "lab", "hosp")
        await meet(service, world, "wear", "clinic")
        await meet(service, world, "wear", "hosp")
        await organiser.patch(
            f"/v1/events/{eid}/participants/{world.participants['lab']}",
            json={"must_meet": [world.orgs["clinic"]["id"]]},
        )
        made = await organiser.post(f"/v1/events/{eid}/schedule", json={"time_limit_s": 5})
        assert made.status_code == 200, made.text
        draft = made.json()
        stats = draft["schedule"]["stats"]
        assert draft["schedule"]["status"] == "draft"
        # Three accepted meetings and one must-meet, 3 slots x 2 tables: all fit.
        assert stats["meetings_total"] == 4 and stats["meetings_placed"] == 4
        assert stats["must_meets_placed"] == 1 and stats["fcfs_meetings_placed"] == 4
        assert stats["gap"] == 0 and stats["status"] == "optimal"
        assert draft["standby"] == []
        slots = [(mt["slot"]["start"], mt["place"]["id"]) for mt in draft["meetings"]]
        assert len(set(slots)) == 4  # no place used twice at once

        # Participants see no draft.
        async with await member(service, world, "wear") as wear:
            url = f"/v1/events/{eid}/participants/{world.participants['wear']}/agenda"
            hidden = (await wear.get(url)).json()
            assert hidden["schedule_status"] == "draft" and hidden["items"] == []
        published = await organiser.post(f"/v1/events/{eid}/schedule/publish")
        assert published.json()["schedule"]["status"] == "published"
        again = await organiser.post(f"/v1/events/{eid}/schedule", json={"time_limit_s": 5})
        assert again.status_code == 409

        grid = await organiser.get(f"/v1/events/{eid}/schedule/grid.csv")
        assert grid.headers["content-type"].startswith("text/csv")
        rows = grid.text.strip().split("\r\n")
        assert rows[0] == "session,start,end,Table 1,Table 2" and len(rows) == 4
        assert "PathoVision × Hospital Clínic Nord" in grid.text
        page = await organiser.get(f"/v1/events/{eid}/schedule/grid.html")
        assert page.headers["content-type"].startswith("text/html")
        assert "<table>" in page.text and "Wearatech × Cardio Clinic" in page.text
        assert "http" not in page.text.split("<body>")[0]  # no external assets

        figures = (await organiser.get(f"/v1/events/{eid}/analytics")).json()
    assert figures["requests"] == {
        "sent": 3,
        "pending": 0,
        "accepted": 3,
        "declined": 0,
        "cancelled": 0,
    }
    assert figures["meetings"]["scheduled"] == 4 and figures["acceptance_rate"] == 1.0
    assert figures["participants_without_meeting"] == []
    assert 0 < figures["cross_country_share"] <= 1

    async with await member(service, world, "wear") as wear:
        agenda = (await wear.get(url)).json()
        assert [item["counterpart"]["organisation"]["name"] for item in agenda["items"]] in (
            ["Cardio Clinic", "Hospital Clínic Nord"],
            ["Hospital Clínic Nord", "Cardio Clinic"],
        )
        assert agenda["items"][0]["start"] < agenda["items"][1]["start"]
        # Accepted meetings reveal contacts in the agenda too.
        assert agenda["items"][0]["counterpart"]["delegates"][0]["email"]
        as_csv = await wear.get(url + ".csv")
        assert as_csv.text.startswith("start,end,session,place,counterpart")
        assert len(as_csv.text.strip().split("\r\n")) == 3
        ics = await wear.get(url + ".ics")
        assert ics.headers["content-type"].startswith("text/calendar")
        assert_valid_ics(ics.text, events=2)
        assert "SUMMARY:Meeting with Cardio Clinic" in ics.text
        # Another participant's agenda is not theirs to read.
        other = f"/v1/events/{eid}/participants/{world.participants['lab']}/agenda"
        assert (await wear.get(other)).status_code == 403
        assert (await wear.get(f"/v1/events/{eid}/schedule")).status_code == 403


def assert_valid_ics(text: str, *, events: int) -> None:
    """RFC 5545 basics: CRLF lines of at most 75 octets, balanced components, UTC times."""
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in lines)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == events
    starts = [line for line in lines if line.startswith("DTSTART:")]
    assert len(starts) == events and all(s.endswith("Z") for s in starts)
    assert sum(1 for line in lines if line.startswith("UID:")) == events


async def test_cancellation_after_publishing_is_repaired_from_the_standby_list(
    service: Service,
) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        eid = world.event["id"]
        # One table only: 3 slots for 4 meetings, so one waits on the standby list.
        table_2 = next(p["id"] for p in world.event["places"] if p["name"] == "Table 2")
        assert (await organiser.delete(f"/v1/events/{eid}/places/{table_2}")).status_code == 204
        first = await meet(service, world, "lab", "hosp")
        await meet(service, world, "wear", "clinic")
        await meet(service, world, "wear", "hosp")
        await meet(service, world, "lab", "clinic")
        draft = (await organiser.post(f"/v1/events/{eid}/schedule", json={})).json()
        assert draft["schedule"]["stats"]["meetings_placed"] == 3
        (waiting,) = draft["standby"]
        await organiser.post(f"/v1/events/{eid}/schedule/publish")
        placed_before = {mt["meeting_id"]: mt["slot"]["start"] for mt in draft["meetings"]}
        victim = next(mid for mid in placed_before if mid != waiting["meeting_id"])
        request_id = next(
            r["id"]
            for r in (await organiser.get(f"/v1/events/{eid}/requests")).json()["items"]
            if r["meeting_id"] == victim
        )
    async with await service.client("organiser", tenant=TENANT) as other_key:
        # Another organiser key of the same cluster does not see this event.
        assert (await other_key.get(f"/v1/events/{eid}")).status_code == 404
    party = "lab" if victim == first["meeting_id"] else None
    async with await service.client("admin") as admin:
        cancelled = await admin.post(f"/v1/events/{eid}/requests/{request_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    repair = cancelled.json()["schedule_repair"]
    assert repair["freed"] == 1 and repair["added"] == 1 and repair["moved"] == 0
    assert repair["dropped"] == 0 and repair["standby"] == 0
    async with await service.client("admin") as admin:
        after = (await admin.get(f"/v1/events/{eid}/schedule")).json()
    placed_after = {mt["meeting_id"]: mt["slot"]["start"] for mt in after["meetings"]}
    assert victim not in placed_after and waiting["meeting_id"] in placed_after
    for mid, start in placed_before.items():  # the others did not move
        if mid != victim:
            assert placed_after[mid] == start
    assert after["schedule"]["last_repair"]["trigger"] == f"request {request_id} cancelled"
    assert party in ("lab", None)


# -- feedback ------------------------------------------------------------------------------
async def test_feedback_becomes_a_weighted_collaboration_link(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, PAST_DAY)
        eid = world.event["id"]
        accepted = await meet(service, world, "lab", "hosp")
        meeting_id = accepted["meeting_id"]
        url = f"/v1/events/{eid}/meetings/{meeting_id}/feedback"
        early = await organiser.post(
            url, json={"outcome": "valuable_contact", "participant_id": world.participants["lab"]}
        )
        assert early.status_code == 409  # not scheduled yet
        await organiser.post(f"/v1/events/{eid}/schedule", json={"time_limit_s": 5})
        await organiser.post(f"/v1/events/{eid}/schedule/publish")

    async with await member(service, world, "lab") as lab:
        given = await lab.post(url, json={"outcome": "knowledge_gain", "comment": "Useful."})
        assert given.status_code == 201, given.text
        first = given.json()
        assert first["weight"] == 0.5 and first["collaboration_id"]
        assert (await lab.post(url, json={"outcome": "agreement_reached"})).status_code == 409
    async with await service.client("admin") as admin:
        link = (await admin.get(f"/v1/collaborations/{first['collaboration_id']}")).json()
        assert link["kind"] == "event_meeting" and link["weight"] == 0.5
    async with await member(service, world, "hosp") as hosp:
        better = await hosp.post(url, json={"outcome": "negotiation_started"})
        assert better.status_code == 201
        second = better.json()
    # One link per meeting, carrying the better outcome; the graph now joins the two.
    assert second["weight"] == 1.5 and second["collaboration_id"] != first["collaboration_id"]
    async with await service.client("admin") as admin:
        assert (
            await admin.get(f"/v1/collaborations/{first['collaboration_id']}")
        ).status_code == 404
        links = await admin.get(
            "/v1/collaborations", params={"organisation_id": world.orgs["lab"]["id"]}
        )
        assert [c["weight"] for c in links.json()["items"]] == [1.5]
        feedback = (await admin.get(url)).json()
        assert {f["collaboration_id"] for f in feedback} == {second["collaboration_id"]}
        matches = await admin.get(
            f"/v1/organisations/{world.orgs['lab']['id']}/matches",
            params={"include_existing": True},
        )
        flagged = {
            i["organisation"]["id"]: i["is_existing_partner"] for i in matches.json()["items"]
        }
        assert flagged[world.orgs["hosp"]["id"]] is True


# -- privacy -------------------------------------------------------------------------------
async def test_withdrawn_delegates_never_appear(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        accepted = await meet(service, world, "lab", "hosp")
        async with service.ctx.db.sessions() as session, session.begin():
            await session.execute(
                update(m.Person)
                .where(m.Person.id == world.persons["hosp"])
                .values(consent_state="withdrawn")
            )
        eid = world.event["id"]
        pages = [
            await organiser.get(f"/v1/events/{eid}/participants"),
            await organiser.get(f"/v1/events/{eid}/requests/{accepted['id']}"),
            await organiser.get(f"/v1/events/{eid}/meetings"),
        ]
    for page in pages:
        assert page.status_code == 200
        assert "Hospital Delegate" not in page.text and "hospital@example.org" not in page.text
    # Grants were made while the person was listed; a withdrawn person gets none later.
    async with service.ctx.db.sessions() as session:
        grants = await session.scalar(select(func.count()).select_from(m.ContactGrant))
    assert grants == 2


async def test_changes_after_publishing_move_only_what_they_must(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        eid = world.event["id"]
        await meet(service, world, "lab", "hosp")
        await meet(service, world, "wear", "clinic")
        await meet(service, world, "wear", "hosp")
        draft = (await organiser.post(f"/v1/events/{eid}/schedule", json={})).json()
        await organiser.post(f"/v1/events/{eid}/schedule/publish")
        before = {mt["meeting_id"]: mt for mt in draft["meetings"]}
        lab_meeting = next(
            mt for mt in draft["meetings"] if world.participants["lab"] in mt["parties"]
        )
        # The lab can no longer come at the time of its meeting: only that meeting moves.
        session_id = world.event["sessions"][0]["id"]
        taken = lab_meeting["slot"]["start"][11:16]
        free = next(
            s["start"][11:16]
            for s in world.event["sessions"][0]["slots"]
            if s["start"][11:16] != taken
        )
        end = {"09:00": "09:20", "09:20": "09:40", "10:00": "10:20"}[free]
        changed = await organiser.patch(
            f"/v1/events/{eid}/participants/{world.participants['lab']}",
            json={"availability": [{"session_id": session_id, "start": free, "end": end}]},
        )
        assert changed.status_code == 200, changed.text
        after = (await organiser.get(f"/v1/events/{eid}/schedule")).json()
        repair = after["schedule"]["last_repair"]
        assert repair["trigger"] == f"participant {world.participants['lab']} changed"
        assert repair["moved"] >= 1 and repair["dropped"] == 0
        placed = {mt["meeting_id"]: mt for mt in after["meetings"]}
        assert placed[lab_meeting["meeting_id"]]["slot"]["start"][11:16] == free
        unmoved = [
            mid
            for mid, mt in before.items()
            if (placed[mid]["slot"], placed[mid]["place"]) == (mt["slot"], mt["place"])
        ]
        assert len(unmoved) == len(before) - repair["moved"]

        # A participant withdrawing frees its slots; the repair says so.
        gone = await organiser.delete(
            f"/v1/events/{eid}/participants/{world.participants['clinic']}"
        )
        assert gone.status_code == 204
        final = (await organiser.get(f"/v1/events/{eid}/schedule")).json()
        assert final["schedule"]["last_repair"]["freed"] == 1
        assert len(final["meetings"]) == 2
