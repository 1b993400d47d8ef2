"""Idempotency-Key on POST and PATCH: a retried request replays the first response and never
writes twice; the same key for another request is 409."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.store import models as m
from app.store.limits_models import IdempotencyRecord
from tests.api.helpers import count_orgs, create_org, org_body
from tests.conftest import Service


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


async def count_rows(service: Service, model: Any) -> int:
    async with service.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_retried_create_replays_the_first_response(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as http:
        first = await http.post("/v1/organisations", json=org_body("Once"), headers=key("k-1"))
        assert first.status_code == 201
        again = await http.post("/v1/organisations", json=org_body("Once"), headers=key("k-1"))
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["content-type"] == "application/json"
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert await count_orgs(http) == 1
    assert await count_rows(service, IdempotencyRecord) == 1


async def test_the_same_key_for_another_request_is_409_and_changes_nothing(
    service: Service,
) -> None:
    async with await service.client("admin") as http:
        await http.post("/v1/organisations", json=org_body("First"), headers=key("k-2"))
        other = await http.post("/v1/organisations", json=org_body("Second"), headers=key("k-2"))
        assert other.status_code == 409
        assert other.headers["content-type"] == "application/problem+json"
        assert "different request" in other.json()["detail"]
        # Another route with the same key is another request too.
        org_id = (await http.get("/v1/organisations")).json()["items"][0]["id"]
        patch = await http.patch(
            f"/v1/organisations/{org_id}", json={"name": "Renamed"}, headers=key("k-2")
        )
        assert patch.status_code == 409
        names = [o["name"] for o in (await http.get("/v1/organisations")).json()["items"]]
        assert names == ["First"]


async def test_keys_are_scoped_per_api_key(service: Service) -> None:
    async with await service.client("admin") as one, await service.client("admin") as two:
        assert (
            await one.post("/v1/organisations", json=org_body("A"), headers=key("same"))
        ).is_success
        response = await two.post("/v1/organisations", json=org_body("A"), headers=key("same"))
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers
        assert await count_orgs(one) == 2


async def test_a_concurrent_duplicate_is_409_and_writes_once(service: Service) -> None:
    async with await service.client("admin") as http:
        body = org_body("Racer", offers=["assays"], seeks=["investors"])
        responses = await asyncio.gather(
            *(http.post("/v1/organisations", json=body, headers=key("race")) for _ in range(3))
        )
        statuses = sorted(r.status_code for r in responses)
        # One wins; a duplicate arriving while it runs is 409; one arriving after it replays.
        assert statuses[0] == 201 and set(statuses) <= {201, 409} and 409 in statuses
        assert await count_orgs(http) == 1


async def test_a_retried_collaboration_and_patch_write_once(service: Service) -> None:
    async with await service.client("admin") as http:
        a = await create_org(http, "A")
        b = await create_org(http, "B")
        link = {
            "kind": "project",
            "participants": [{"organisation_id": a["id"]}, {"organisation_id": b["id"]}],
        }
        first = await http.post("/v1/collaborations", json=link, headers=key("link"))
        again = await http.post("/v1/collaborations", json=link, headers=key("link"))
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert (await http.get("/v1/collaborations")).json()["total"] == 1

        url = f"/v1/organisations/{a['id']}"
        patched = await http.patch(url, json={"description": "v2"}, headers=key("patch"))
        assert patched.status_code == 200
        await http.patch(url, json={"description": "v3"})  # someone else's later change
        replay = await http.patch(url, json={"description": "v2"}, headers=key("patch"))
        assert replay.json() == patched.json()  # the first response, not a second write
        assert (await http.get(url)).json()["description"] == "v3"
        health = (await http.get("/health")).json()
        assert health["organisations"] == 2 and health["collaboration_links"] == 1


async def test_requests_that_wrote_nothing_are_not_remembered(service: Service) -> None:
    async with await service.client("admin") as http:
        bad = await http.post(
            "/v1/organisations", json={**org_body("X"), "kind": "pirate"}, headers=key("fix-me")
        )
        assert bad.status_code == 422
        assert await count_rows(service, IdempotencyRecord) == 0
        # Nothing was written, so the corrected request may use the same key.
        good = await http.post("/v1/organisations", json=org_body("X"), headers=key("fix-me"))
        assert good.status_code == 201
        assert await count_orgs(http) == 1


async def test_a_rolled_back_write_leaves_no_record(service: Service) -> None:
    async with await service.client("admin") as http:
        await create_org(http, "Holder", external_ids={"pic": "999"})
        body = org_body("Taker", external_ids={"pic": "999"})
        for _ in range(2):
            response = await http.post("/v1/organisations", json=body, headers=key("taken"))
            assert response.status_code == 409
            assert "external id" in response.json()["detail"]
        assert await count_rows(service, IdempotencyRecord) == 0
        assert await count_orgs(http) == 1


async def test_a_write_whose_response_was_lost_is_reported_never_redone(
    service: Service,
) -> None:
    """As after a crash between the commit (write + record) and storing the response."""
    async with await service.client("admin") as http:
        created = await http.post("/v1/organisations", json=org_body("Lost"), headers=key("lost"))
        async with service.ctx.db.sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(
                    state="applied", status_code=None, response_headers=None, response_body=None
                )
            )
        replay = await http.post("/v1/organisations", json=org_body("Lost"), headers=key("lost"))
        assert replay.status_code == 303
        assert replay.headers["location"] == created.headers["location"]
        assert replay.json()["outcome"] == "applied"
        assert await count_orgs(http) == 1
        # A different body with that key is still a conflict.
        other = await http.post("/v1/organisations", json=org_body("Else"), headers=key("lost"))
        assert other.status_code == 409


async def test_records_expire_after_a_day(service: Service) -> None:
    async with await service.client("admin") as http:
        await http.post("/v1/organisations", json=org_body("Old"), headers=key("old"))
        async with service.ctx.db.sessions() as session, session.begin():
            await session.execute(
                update(IdempotencyRecord).values(created_at=datetime.now(UTC) - timedelta(hours=25))
            )
        again = await http.post("/v1/organisations", json=org_body("Old"), headers=key("old"))
        assert again.status_code == 201 and "idempotent-replayed" not in again.headers
        assert await count_orgs(http) == 2
        assert await count_rows(service, IdempotencyRecord) == 1  # the expired one was replaced


async def test_malformed_keys_are_400_and_change_nothing(service: Service) -> None:
    async with await service.client("admin") as http:
        for bad in ("k" * 256, "with space", "é"):
            response = await http.post(
                "/v1/organisations",
                json=org_body("X"),
                headers={"Idempotency-Key": bad.encode()},
            )
            assert response.status_code == 400, bad
            assert response.headers["content-type"] == "application/problem+json"
        assert await count_orgs(http) == 0


async def test_read_only_posts_and_unkeyed_requests_are_untouched(
    service: Service, client: httpx.AsyncClient
) -> None:
    await create_org(client, "Searchable", offers=["imaging"])
    for _ in range(2):
        found = await client.post("/v1/search", json={"text": "imaging"}, headers=key("s"))
        assert found.status_code == 200 and "idempotent-replayed" not in found.headers
    for _ in range(2):
        assert (await client.post("/v1/organisations", json=org_body("Twin"))).status_code == 201
    assert await count_orgs(client) == 3
    assert await count_rows(service, IdempotencyRecord) == 0
    assert await count_rows(service, m.Organisation) == 3
