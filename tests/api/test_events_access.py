"""Who may see and change an event: organisers their own, staff their cluster's (read only),
members the events their organisation takes part in; anything else answers 404."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_org
from tests.api.test_events import FUTURE_DAY, TENANT, event_body, make_world, meet, member
from tests.conftest import Service


def event_paths(eid: int, pid: int) -> list[tuple[str, str, dict[str, object] | None]]:
    """(method, path, JSON body) of a sample of every kind of event route."""
    return [
        ("GET", f"/v1/events/{eid}", None),
        ("PATCH", f"/v1/events/{eid}", {"name": "Taken over"}),
        ("DELETE", f"/v1/events/{eid}", None),
        ("POST", f"/v1/events/{eid}/places", {"items": [{"name": "Extra"}]}),
        ("GET", f"/v1/events/{eid}/participants", None),
        ("GET", f"/v1/events/{eid}/participants/{pid}", None),
        ("GET", f"/v1/events/{eid}/participants/{pid}/recommendations", None),
        ("GET", f"/v1/events/{eid}/participants/{pid}/agenda.ics", None),
        ("GET", f"/v1/events/{eid}/recommendations", None),
        ("GET", f"/v1/events/{eid}/requests", None),
        ("GET", f"/v1/events/{eid}/schedule", None),
        ("POST", f"/v1/events/{eid}/schedule", {"time_limit_s": 1}),
        ("GET", f"/v1/events/{eid}/schedule/grid.html", None),
        ("GET", f"/v1/events/{eid}/analytics", None),
    ]


async def statuses(
    http: httpx.AsyncClient, paths: list[tuple[str, str, dict[str, object] | None]]
) -> dict[str, int]:
    out = {}
    for method, path, body in paths:
        response = await http.request(method, path, json=body)
        out[f"{method} {path.split('/', 4)[-1]}"] = response.status_code
    return out


async def test_other_organisers_and_clusters_get_404_everywhere(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        paths = event_paths(world.event["id"], world.participants["lab"])
        for role, tenant in (("organiser", TENANT), ("organiser", "eurasante"), ("staff", "x")):
            async with await service.client(role, tenant=tenant) as stranger:
                seen = await statuses(stranger, paths)
                for name, code in seen.items():
                    # Staff may never change events: their role is refused before any lookup.
                    role_refused = role == "staff" and not name.startswith("GET")
                    assert code == (403 if role_refused else 404), (role, tenant, name, code)
                assert (await stranger.get("/v1/events")).json()["items"] == []
        async with await service.client("member", organisation_id=world.orgs["lab"]["id"]) as m:
            assert (await m.get(f"/v1/events/{world.event['id']}")).status_code == 200
        async with await service.client("staff", tenant=TENANT) as staff:
            outsider = await create_org(staff, "Not registered")
        async with await service.client("member", organisation_id=outsider["id"]) as m:
            assert (await m.get(f"/v1/events/{world.event['id']}")).status_code == 404
            assert (await m.get("/v1/events")).json()["total"] == 0
        # Nothing was changed by anyone.
        again = (await organiser.get(f"/v1/events/{world.event['id']}")).json()
        assert again["name"] == world.event["name"] and len(again["places"]) == 2


async def test_staff_of_the_cluster_read_but_do_not_change(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
    eid, pid = world.event["id"], world.participants["lab"]
    async with await service.client("staff", tenant=TENANT) as staff:
        seen = await statuses(staff, event_paths(eid, pid))
        assert {name for name, code in seen.items() if code == 200} == {
            name for name in seen if name.startswith("GET")
        }
        assert {name for name, code in seen.items() if code == 403} == {
            name for name in seen if not name.startswith("GET")
        }
        request = await staff.post(
            f"/v1/events/{eid}/requests",
            json={"to_participant_id": world.participants["hosp"]},
        )
        assert request.status_code == 403
        assert (await staff.get("/v1/events")).json()["total"] == 1


async def test_members_act_only_for_their_own_organisation(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
    eid = world.event["id"]
    sent = await meet(service, world, "wear", "hosp", accept=False)
    async with await member(service, world, "lab") as lab:
        own = world.participants["lab"]
        other = world.participants["wear"]
        assert (
            await lab.get(f"/v1/events/{eid}/participants/{own}/recommendations")
        ).status_code == 200
        assert (
            await lab.get(f"/v1/events/{eid}/participants/{other}/recommendations")
        ).status_code == 403
        assert (await lab.get(f"/v1/events/{eid}/participants/{other}/agenda")).status_code == 403
        assert (await lab.get(f"/v1/events/{eid}/recommendations")).status_code == 403
        assert (await lab.get(f"/v1/events/{eid}/analytics")).status_code == 403
        assert (await lab.post(f"/v1/events/{eid}/schedule", json={})).status_code == 403
        assert (await lab.patch(f"/v1/events/{eid}", json={"name": "x"})).status_code == 403
        # Someone else's request is invisible, and cannot be answered or cancelled.
        assert (await lab.get(f"/v1/events/{eid}/requests/{sent['id']}")).status_code == 404
        assert (await lab.post(f"/v1/events/{eid}/requests/{sent['id']}/cancel")).status_code == 404
        assert (await lab.get(f"/v1/events/{eid}/requests")).json()["total"] == 0
        # Sending on another participant's behalf is refused.
        spoof = await lab.post(
            f"/v1/events/{eid}/requests",
            json={"to_participant_id": world.participants["clinic"], "from_participant_id": other},
        )
        assert spoof.status_code == 403
    async with await service.client("admin") as admin:
        assert (await admin.get(f"/v1/events/{eid}/requests")).json()["total"] == 1


async def test_organisers_register_only_organisations_they_can_see(service: Service) -> None:
    async with await service.client("staff", tenant="eurasante") as staff:
        foreign = await create_org(staff, "Lille Bio", country="FR")
    async with await service.client("organiser", tenant=TENANT) as organiser:
        event = (await organiser.post("/v1/events", json=event_body())).json()
        refused = await organiser.post(
            f"/v1/events/{event['id']}/participants",
            json={"items": [{"organisation_id": foreign["id"], "group": "buyer"}]},
        )
        assert refused.status_code == 422
        assert "does not exist" in refused.json()["detail"]
