"""Access control: every route declares its access; roles and tenants are enforced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import update

from app.main import ROUTERS, create_app
from app.services import keys
from app.services.keys import create_api_key, revoke_api_key
from app.store import models as m
from tests.api.helpers import org_body
from tests.conftest import Service


def _declared(dependant: object) -> bool:
    calls = [getattr(dependant, "call", None)]
    calls += [getattr(d, "call", None) for d in getattr(dependant, "dependencies", [])]
    if any(_marked(c) for c in calls):
        return True
    return any(_declared(d) for d in getattr(dependant, "dependencies", []))


def _marked(call: object) -> bool:
    return hasattr(call, "__multihelix_roles__") or hasattr(call, "__multihelix_public__")


def test_every_route_declares_its_access() -> None:
    checked: list[str] = []
    undeclared = []
    for router in ROUTERS:
        router_level = any(_marked(dep.dependency) for dep in router.dependencies)
        for route in router.routes:
            assert isinstance(route, APIRoute)
            name = f"{sorted(route.methods)} {route.path}"
            checked.append(route.path_format)  # the path without convertors, as OpenAPI shows it
            if not (router_level or _declared(route.dependant)):
                undeclared.append(name)
    assert undeclared == []
    # Every operation the app serves was walked.
    served = {path for path in create_app().openapi()["paths"]}
    assert served == set(checked)


async def test_openapi_offers_bearer_authorisation(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer mh_00000000_secret", "Basic abc"])
async def test_missing_or_bad_keys_are_401(service: Service, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi), base_url="http://test", headers=headers
    ) as anon:
        response = await anon.get("/v1/organisations")
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert (await anon.post("/v1/organisations", json=org_body("X"))).status_code == 401
        assert (await anon.get("/health")).status_code == 200


async def test_revoked_and_expired_keys_are_401(service: Service) -> None:
    created = await create_api_key(service.ctx.db, role="admin")
    headers = {"Authorization": f"Bearer {created.key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi), base_url="http://test", headers=headers
    ) as http:
        assert (await http.get("/v1/organisations")).status_code == 200
        await revoke_api_key(service.ctx.db, created.prefix)
        assert (await http.get("/v1/organisations")).status_code == 401

    expiring = await create_api_key(service.ctx.db, role="admin", expires_in_days=1)
    async with service.ctx.db.sessions() as session, session.begin():
        await session.execute(
            update(m.ApiKey)
            .where(m.ApiKey.id == expiring.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi),
        base_url="http://test",
        headers={"Authorization": f"Bearer {expiring.key}"},
    ) as http:
        assert (await http.get("/v1/organisations")).status_code == 401


async def test_tenants_see_their_own_and_network_records_only(service: Service) -> None:
    async with await service.client("admin") as admin:
        shared = (await admin.post("/v1/organisations", json=org_body("Shared"))).json()
    async with await service.client("staff", tenant="biocat") as biocat:
        mine = (await biocat.post("/v1/organisations", json=org_body("Biocat SME"))).json()
        assert mine["tenant"] == "biocat"
    async with await service.client("staff", tenant="eurasante") as other:
        theirs = await other.post("/v1/organisations", json=org_body("Eurasanté SME", country="FR"))
        theirs_id = theirs.json()["id"]
        names = {o["name"] for o in (await other.get("/v1/organisations")).json()["items"]}
        assert names == {"Shared", "Eurasanté SME"}
        # Another tenant's object answers 404, exactly like a missing one.
        for path in (f"/v1/organisations/{mine['id']}", f"/v1/organisations/{mine['id']}/matches"):
            assert (await other.get(path)).status_code == 404
        assert (
            await other.patch(f"/v1/organisations/{mine['id']}", json={"name": "x"})
        ).status_code == 404
        assert (await other.delete(f"/v1/organisations/{mine['id']}")).status_code == 404
        # Network-wide records can be read but not changed by a cluster's staff.
        assert (await other.get(f"/v1/organisations/{shared['id']}")).status_code == 200
        assert (
            await other.patch(f"/v1/organisations/{shared['id']}", json={"name": "x"})
        ).status_code == 403
        # Links only between organisations the caller can see.
        body = {
            "kind": "project",
            "participants": [{"organisation_id": theirs_id}, {"organisation_id": mine["id"]}],
        }
        assert (await other.post("/v1/collaborations", json=body)).status_code == 422
    async with await service.client("admin") as admin:
        assert (await admin.get(f"/v1/organisations/{mine['id']}")).json()["name"] == "Biocat SME"


async def test_member_reads_and_edits_only_its_own_organisation(service: Service) -> None:
    async with await service.client("admin") as admin:
        own = (await admin.post("/v1/organisations", json=org_body("Own"))).json()
        other = (await admin.post("/v1/organisations", json=org_body("Other"))).json()
    async with await service.client("member", organisation_id=own["id"]) as member:
        assert (await member.get(f"/v1/organisations/{own['id']}")).status_code == 200
        assert (await member.get(f"/v1/organisations/{own['id']}/matches")).status_code == 200
        assert (await member.get(f"/v1/organisations/{other['id']}")).status_code == 404
        listed = (await member.get("/v1/organisations")).json()
        assert [o["id"] for o in listed["items"]] == [own["id"]]
        patched = await member.patch(
            f"/v1/organisations/{own['id']}", json={"seeks": ["investors"]}
        )
        assert patched.status_code == 200
        # Roles without the right get 403 where the object is known to the caller.
        assert (await member.delete(f"/v1/organisations/{own['id']}")).status_code == 403
        assert (await member.post("/v1/organisations", json=org_body("New"))).status_code == 403


async def test_organiser_and_batch_keys_cannot_write_organisations(service: Service) -> None:
    for role, tenant in (("organiser", "biocat"), ("batch", None)):
        async with await service.client(role, tenant=tenant) as http:
            assert (await http.get("/v1/organisations")).status_code == 200
            assert (await http.post("/v1/organisations", json=org_body("X"))).status_code == 403


async def test_a_key_revoked_elsewhere_stops_working_within_the_trust_period(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verified keys are remembered for VERIFIED_FOR_SECONDS; a revocation written by another
    process (here: straight into the store) takes effect when that period ends."""
    created = await create_api_key(service.ctx.db, role="batch")
    clock = [1_000.0]
    monkeypatch.setattr(keys.time, "monotonic", lambda: clock[0])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi),
        base_url="http://test",
        headers={"Authorization": f"Bearer {created.key}"},
    ) as http:
        assert (await http.get("/v1/organisations")).status_code == 200
        async with service.ctx.db.sessions() as session, session.begin():
            await session.execute(
                update(m.ApiKey)
                .where(m.ApiKey.id == created.id)
                .values(revoked_at=datetime.now(UTC))
            )
        assert (await http.get("/v1/organisations")).status_code == 200  # still trusted
        clock[0] += keys.VERIFIED_FOR_SECONDS + 0.01
        assert (await http.get("/v1/organisations")).status_code == 401
        assert (await http.get("/v1/organisations")).status_code == 401  # failures not kept
