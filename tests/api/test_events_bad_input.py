"""Bad event input gets a clear 4xx/409 problem and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import create_org
from tests.api.test_events import FUTURE_DAY, TENANT, World, event_body, make_world, meet, member
from tests.conftest import Service


def session_body(start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": f"S {start}",
        "date": FUTURE_DAY,
        "start": start,
        "end": end,
        "slot_minutes": 20,
        **fields,
    }


async def count_events(http: httpx.AsyncClient) -> int:
    return int((await http.get("/v1/events")).json()["total"])


BAD_EVENTS = [
    pytest.param(
        {"sessions": [session_body("09:00", "11:00"), session_body("10:00", "12:00")]},
        id="overlapping-sessions",
    ),
    pytest.param(
        {"sessions": [session_body("09:00", "11:00", breaks=[{"start": "08:00", "end": "09:20"}])]},
        id="break-outside-session",
    ),
    pytest.param({"sessions": [session_body("11:00", "09:00")]}, id="session-ends-before-start"),
    pytest.param({"sessions": [session_body("09:00", "09:10")]}, id="shorter-than-a-slot"),
    pytest.param({"sessions": [session_body("09:00:30", "10:00")]}, id="seconds-in-time"),
    pytest.param({"sessions": [session_body("9h", "10:00")]}, id="not-a-time"),
    pytest.param({"timezone": "Mars/Olympus"}, id="unknown-time-zone"),
    pytest.param(
        {"rules": {"groups": ["buyer"], "allowed_pairs": [["buyer", "seller"]]}},
        id="pair-names-unknown-group",
    ),
    pytest.param({"places": [{"name": "T", "capacity": 1}]}, id="one-seat-table"),
    pytest.param({"places": [{"name": "T"}, {"name": "T"}]}, id="duplicate-place-names"),
    pytest.param({"colour": "red"}, id="unknown-field"),
]


@pytest.mark.parametrize("changes", BAD_EVENTS)
async def test_bad_events_are_refused(service: Service, changes: dict[str, Any]) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        response = await organiser.post("/v1/events", json=event_body(**changes))
        assert response.status_code in (409, 422), response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
        assert await count_events(organiser) == 0


async def test_session_overlapping_a_stored_one_is_409(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        event = (await organiser.post("/v1/events", json=event_body())).json()
        clash = await organiser.post(
            f"/v1/events/{event['id']}/sessions",
            json={"items": [session_body("10:00", "11:00")]},
        )
        assert clash.status_code == 409
        assert "overlaps" in clash.json()["detail"]
        again = (await organiser.get(f"/v1/events/{event['id']}")).json()
        assert [s["name"] for s in again["sessions"]] == ["Morning"]


@pytest.fixture
async def organiser(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with await service.client("organiser", tenant=TENANT) as http:
        yield http


@pytest.fixture
async def world(service: Service, organiser: httpx.AsyncClient) -> World:
    return await make_world(service, organiser, FUTURE_DAY)


async def participants(service: Service, world: World) -> list[dict[str, Any]]:
    async with await service.client("admin") as admin:
        page = await admin.get(f"/v1/events/{world.event['id']}/participants")
        return list(page.json()["items"])


async def requests(service: Service, world: World) -> list[dict[str, Any]]:
    async with await service.client("admin") as admin:
        page = await admin.get(f"/v1/events/{world.event['id']}/requests")
        return list(page.json()["items"])


async def test_bad_participants_are_refused(
    service: Service, organiser: httpx.AsyncClient, world: World
) -> None:
    before = await participants(service, world)
    session_id = world.event["sessions"][0]["id"]
    async with await service.client("staff", tenant=TENANT) as staff:
        newcomer = await create_org(staff, "Newcomer")
    async with await service.client("staff", tenant="eurasante") as staff:
        foreign = await create_org(staff, "Other cluster's", country="FR")
    bad_items = [
        # Availability outside the session (09:00-10:20).
        {
            "organisation_id": newcomer["id"],
            "group": "buyer",
            "availability": [{"session_id": session_id, "start": "08:00", "end": "10:00"}],
        },
        {
            "organisation_id": newcomer["id"],
            "group": "buyer",
            "availability": [{"session_id": 999}],
        },
        {"organisation_id": newcomer["id"], "group": "investor"},
        {"organisation_id": newcomer["id"]},  # the event has groups
        {"organisation_id": newcomer["id"], "group": "buyer", "delegates": [world.persons["lab"]]},
        {"organisation_id": foreign["id"], "group": "buyer"},  # another cluster's organisation
        {"organisation_id": newcomer["id"], "group": "buyer", "must_meet": [newcomer["id"]]},
    ]
    url = f"/v1/events/{world.event['id']}/participants"
    for item in bad_items:
        refused = await organiser.post(url, json={"items": [item]})
        assert refused.status_code == 422, (item, refused.text)
    # One bad item refuses the whole batch.
    batch = [{"organisation_id": newcomer["id"], "group": "buyer"}, bad_items[0]]
    assert (await organiser.post(url, json={"items": batch})).status_code == 422
    # Registering an organisation twice conflicts.
    twice = [{"organisation_id": world.orgs["lab"]["id"], "group": "seller"}]
    assert (await organiser.post(url, json={"items": twice})).status_code == 409
    unknown_column = await organiser.post(url + "/csv", json={"csv": "organisation_id,x\n1,2\n"})
    assert unknown_column.status_code == 422
    assert await participants(service, world) == before


async def test_bad_requests_are_refused(
    service: Service, organiser: httpx.AsyncClient, world: World
) -> None:
    other_event = (await organiser.post("/v1/events", json=event_body())).json()
    await organiser.patch(
        f"/v1/events/{world.event['id']}/participants/{world.participants['clinic']}",
        json={"do_not_meet": [world.orgs["lab"]["id"]]},
    )
    url = f"/v1/events/{world.event['id']}/requests"
    cases = [
        ({"to_participant_id": 10_000}, 422),  # not a participant
        ({"to_participant_id": world.participants["lab"]}, 422),  # oneself
        ({"to_participant_id": world.participants["wear"]}, 422),  # seller to seller
        ({"to_participant_id": world.participants["clinic"]}, 409),  # do-not-meet
        ({"to_participant_id": world.participants["hosp"], "extra": 1}, 422),
        ({"to_participant_id": world.participants["hosp"], "message": "x" * 2001}, 422),
    ]
    async with await member(service, world, "lab") as lab:
        for body, expected in cases:
            response = await lab.post(url, json=body)
            assert response.status_code == expected, (body, response.text)
        # Another event's id answers 404 for a member who does not take part in it.
        foreign = f"/v1/events/{other_event['id']}/requests"
        assert (await lab.post(foreign, json={"to_participant_id": 1})).status_code == 404
    assert await requests(service, world) == []


async def test_quotas_are_enforced(
    service: Service, organiser: httpx.AsyncClient, world: World
) -> None:
    changed = await organiser.patch(
        f"/v1/events/{world.event['id']}",
        json={
            "rules": {
                "groups": ["buyer", "seller"],
                "allowed_pairs": [["buyer", "seller"]],
                "max_requests_sent": 1,
                "max_pending_received": 1,
            }
        },
    )
    assert changed.status_code == 200, changed.text
    await meet(service, world, "lab", "hosp", accept=False)
    url = f"/v1/events/{world.event['id']}/requests"
    async with await member(service, world, "lab") as lab:
        over_quota = await lab.post(url, json={"to_participant_id": world.participants["clinic"]})
        assert over_quota.status_code == 409 and "quota" in over_quota.json()["detail"]
    async with await member(service, world, "wear") as wear:
        inbox_full = await wear.post(url, json={"to_participant_id": world.participants["hosp"]})
        assert inbox_full.status_code == 409 and "unanswered" in inbox_full.json()["detail"]
    assert len(await requests(service, world)) == 1


async def test_accepting_a_cancelled_request_is_409(service: Service, world: World) -> None:
    sent = await meet(service, world, "lab", "hosp", accept=False)
    base = f"/v1/events/{world.event['id']}/requests/{sent['id']}"
    async with await member(service, world, "lab") as lab:
        assert (await lab.post(f"{base}/cancel")).status_code == 200
        assert (await lab.post(f"{base}/cancel")).status_code == 409
    async with await member(service, world, "hosp") as hosp:
        refused = await hosp.post(f"{base}/accept")
        assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]
        assert (await hosp.post(f"{base}/decline")).status_code == 409
        assert (await hosp.get(base)).json()["status"] == "cancelled"
        meetings = await hosp.get(f"/v1/events/{world.event['id']}/meetings")
        assert meetings.json()["total"] == 0


async def test_scheduling_needs_places_and_slots(
    service: Service, organiser: httpx.AsyncClient, world: World
) -> None:
    await meet(service, world, "lab", "hosp")
    eid = world.event["id"]
    for place in world.event["places"]:
        await organiser.delete(f"/v1/events/{eid}/places/{place['id']}")
    refused = await organiser.post(f"/v1/events/{eid}/schedule", json={})
    assert refused.status_code == 409 and "no meeting places" in refused.json()["detail"]
    assert (await organiser.post(f"/v1/events/{eid}/schedule/publish")).status_code == 409
    assert (await organiser.post(f"/v1/events/{eid}/schedule/repair")).status_code == 409
    state = (await organiser.get(f"/v1/events/{eid}/schedule")).json()
    assert state["schedule"]["status"] == "none" and state["meetings"] == []
    meetings = (await organiser.get(f"/v1/events/{eid}/meetings")).json()["items"]
    assert [mt["slot"] for mt in meetings] == [None]
    bad_limit = await organiser.post(f"/v1/events/{eid}/schedule", json={"time_limit_s": 0})
    assert bad_limit.status_code == 422


async def test_feedback_needs_a_valid_outcome(service: Service, world: World) -> None:
    accepted = await meet(service, world, "lab", "hosp")
    url = f"/v1/events/{world.event['id']}/meetings/{accepted['meeting_id']}/feedback"
    async with await member(service, world, "lab") as lab:
        assert (await lab.post(url, json={"outcome": "great"})).status_code == 422
        # Not scheduled (and in the future): nothing to give feedback on yet.
        assert (await lab.post(url, json={"outcome": "knowledge_gain"})).status_code == 409
        assert (await lab.get(url)).json() == []
