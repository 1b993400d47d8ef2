"""Concurrent creates and audit entries commit in groups (app/store/grouping.py): fewer
transactions than requests, each request still all or none on its own, and Idempotency-Key
requests alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from app.services.organisations import create_organisations
from app.store import models as m
from app.store.grouping import GroupCommit, own_transaction
from tests.api.helpers import count_orgs, org_body
from tests.conftest import Service


def _creates(service: Service) -> GroupCommit[Any, Any, Any]:
    return service.ctx._groups["organisations.create"]


async def test_concurrent_creates_share_transactions_and_each_reads_its_own(
    service: Service, client: httpx.AsyncClient
) -> None:
    bodies = [org_body(f"Grouped {i}", external_ids={"pic": f"9{i:08d}"}) for i in range(24)]
    responses = await asyncio.gather(*(client.post("/v1/organisations", json=b) for b in bodies))

    assert [r.status_code for r in responses] == [201] * 24
    created = [r.json() for r in responses]
    assert [c["name"] for c in created] == [b["name"] for b in bodies]
    assert [c["external_ids"] for c in created] == [b["external_ids"] for b in bodies]
    assert len({c["id"] for c in created}) == 24
    assert _creates(service).groups < 24  # some requests shared a commit
    for c in created:  # matchable as soon as the response is there
        assert c["id"] in service.ctx.derived.state.catalog
    assert await count_orgs(client) == 24
    # Their audit entries were appended in groups too, one entry per request.
    audit = (await client.get("/v1/audit", params={"limit": 100})).json()
    created_ids = {c["id"] for c in created}
    assert {e["subject_id"] for e in audit["items"] if e["method"] == "POST"} == created_ids
    assert service.ctx._groups["audit.append"].groups < 24


async def test_a_conflicting_request_in_a_group_fails_alone(
    service: Service, client: httpx.AsyncClient
) -> None:
    taken = await client.post(
        "/v1/organisations", json=org_body("First", external_ids={"pic": "1"})
    )
    assert taken.status_code == 201
    bodies = [org_body(f"Fine {i}") for i in range(10)]
    bodies.insert(5, org_body("Clash", external_ids={"pic": "1"}))
    before = _creates(service).groups

    responses = await asyncio.gather(*(client.post("/v1/organisations", json=b) for b in bodies))

    statuses = [r.status_code for r in responses]
    assert statuses == [201] * 5 + [409] + [201] * 5
    assert "external id" in responses[5].json()["detail"]
    assert await count_orgs(client) == 11
    async with service.ctx.db.read() as session:
        clashes = await session.scalar(
            select(func.count()).select_from(m.Organisation).where(m.Organisation.name == "Clash")
        )
    assert clashes == 0
    # The group failed and its members were written again one by one.
    assert _creates(service).groups - before > 2


async def test_two_requests_with_one_new_external_id_give_one_201_and_one_409(
    client: httpx.AsyncClient,
) -> None:
    body = org_body("Twin", external_ids={"pic": "777"})
    responses = await asyncio.gather(*(client.post("/v1/organisations", json=body) for _ in "ab"))

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert await count_orgs(client) == 1


async def test_a_failure_after_the_commit_is_reported_and_never_written_twice(
    service: Service, client: httpx.AsyncClient
) -> None:
    ctx = service.ctx
    await create_organisations(ctx, [org_body("Seed")])
    creates = _creates(service)
    finish = creates._finish
    failed = 0

    async def failing_finish(written: list[Any]) -> list[Any]:
        nonlocal failed
        failed += 1
        raise RuntimeError("the read-back failed")

    creates._finish = failing_finish
    try:
        results = await asyncio.gather(
            *(create_organisations(ctx, [org_body(f"Once {i}")]) for i in range(6)),
            return_exceptions=True,
        )
    finally:
        creates._finish = finish
    assert all(isinstance(r, RuntimeError) for r in results)
    assert 1 <= failed < 6  # once per group, not once per request
    assert await count_orgs(client) == 7  # committed once each, not retried


async def test_own_transaction_writes_alone_in_the_callers_context(
    service: Service, client: httpx.AsyncClient
) -> None:
    ctx = service.ctx
    await create_organisations(ctx, [org_body("Seed")])
    before = _creates(service).groups
    token = own_transaction.set(True)
    try:
        results = await asyncio.gather(
            *(create_organisations(ctx, [org_body(f"Alone {i}")]) for i in range(4))
        )
    finally:
        own_transaction.reset(token)
    assert [r[0]["name"] for r in results] == [f"Alone {i}" for i in range(4)]
    assert _creates(service).groups - before == 4


async def test_bulk_requests_stay_all_or_none_beside_single_ones(
    service: Service, client: httpx.AsyncClient
) -> None:
    good_bulk = {"items": [org_body(f"Bulk {i}") for i in range(3)]}
    bad_bulk = {
        "items": [
            org_body("Bad A", external_ids={"pic": "5"}),
            org_body("Bad B", external_ids={"pic": "5"}),
        ]
    }
    clash_bulk = {"items": [org_body("Clash A"), org_body("Clash B", external_ids={"pic": "6"})]}
    await client.post("/v1/organisations", json=org_body("Holder", external_ids={"pic": "6"}))

    responses = await asyncio.gather(
        client.post("/v1/organisations/bulk", json=good_bulk),
        client.post("/v1/organisations/bulk", json=bad_bulk),
        client.post("/v1/organisations/bulk", json=clash_bulk),
        *(client.post("/v1/organisations", json=org_body(f"Single {i}")) for i in range(4)),
    )

    assert [r.status_code for r in responses] == [201, 409, 409, 201, 201, 201, 201]
    names = {o["name"] for o in (await client.get("/v1/organisations")).json()["items"]}
    assert names == {"Holder", "Bulk 0", "Bulk 1", "Bulk 2"} | {f"Single {i}" for i in range(4)}
