"""Bad input gets a clear 4xx problem response and changes nothing; never a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.helpers import count_orgs, create_org, org_body

BAD_ORG_BODIES = [
    pytest.param({**org_body("X"), "unknown": 1}, id="unknown-field"),
    pytest.param({**org_body("X"), "maturity": "high"}, id="wrong-type"),
    pytest.param({**org_body("X"), "maturity": 10}, id="out-of-range"),
    pytest.param({**org_body("X"), "maturity": 10**40}, id="huge-int"),
    pytest.param({**org_body("X"), "country": "ZZ"}, id="bad-country"),
    pytest.param({**org_body("X"), "sectors": ["astrology"]}, id="unknown-sector"),
    pytest.param({**org_body("X"), "kind": "pirate"}, id="unknown-kind"),
    pytest.param(org_body("nul\x00byte"), id="nul-byte"),
    pytest.param(org_body("x" * 1_000), id="long-name"),
    pytest.param({**org_body("X"), "offers": ["o"] * 11}, id="too-many-offers"),
    pytest.param({**org_body("X"), "description": "d" * 6_000}, id="long-description"),
    pytest.param(org_body(""), id="empty-name"),
    pytest.param({**org_body("X"), "website": "javascript:alert(1)"}, id="bad-url"),
    pytest.param({"name": "X"}, id="missing-fields"),
    pytest.param([], id="not-an-object"),
]


@pytest.mark.parametrize("body", BAD_ORG_BODIES)
async def test_bad_organisation_bodies_are_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/v1/organisations", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["status"] == 422 and problem["detail"] and problem["errors"]
    assert await count_orgs(client) == 0


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b'{"name": "X", "kind": "sme", "sectors": [], "country": "ES", "maturity": NaN}',
            id="nan",
        ),
        pytest.param(
            b'{"name": "X", "kind": "sme", "sectors": [], "country": "ES", "maturity": Infinity}',
            id="inf",
        ),
        pytest.param(
            b'{"name": "\\ud800", "kind": "sme", "sectors": [], "country": "ES"}',
            id="lone-surrogate",
        ),
        pytest.param(b'{"name": ', id="truncated-json"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-json"),
        pytest.param(b"\xff\xfe garbage", id="not-utf8"),
    ],
)
async def test_malformed_json_is_4xx(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/organisations", content=raw, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await count_orgs(client) == 0


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/organisations",
        content=json.dumps(org_body("X")),
        headers={"content-type": "text/plain"},
    )
    assert response.status_code == 415
    assert await count_orgs(client) == 0


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    body = org_body("X", description="a" * 3_000_000)
    response = await client.post("/v1/organisations", json=body)
    assert response.status_code == 413
    assert await count_orgs(client) == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/organisations/0",
        "/v1/organisations/99999999999999999999",
        "/v1/organisations/abc",
        "/v1/organisations/1/matches?limit=0",
        "/v1/organisations/1/matches?limit=1000000",
        "/v1/organisations/1/matches?cross_preference=nan",
        "/v1/organisations/1/matches?cross_preference=2",
        "/v1/organisations/1/matches?country=Spain",
        "/v1/organisations?limit=100000",
        "/v1/organisations?offset=-1",
        "/v1/organisations?sector=astrology",
        "/v1/collaborations?organisation_id=-5",
    ],
)
async def test_bad_paths_and_queries_are_4xx(client: httpx.AsyncClient, path: str) -> None:
    await create_org(client, "Someone")
    response = await client.get(path)
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            {"kind": "project", "participants": [{"organisation_id": 1}]}, id="one-participant"
        ),
        pytest.param(
            {"kind": "party", "participants": [{"organisation_id": 1}, {"organisation_id": 2}]},
            id="bad-kind",
        ),
        pytest.param(
            {
                "kind": "project",
                "weight": -1,
                "participants": [{"organisation_id": 1}, {"organisation_id": 2}],
            },
            id="negative-weight",
        ),
        pytest.param(
            {
                "kind": "project",
                "year": 3000,
                "participants": [{"organisation_id": 1}, {"organisation_id": 2}],
            },
            id="future-year",
        ),
        pytest.param(
            {
                "kind": "project",
                "participants": [{"organisation_id": 2**63}, {"organisation_id": 2}],
            },
            id="huge-id",
        ),
    ],
)
async def test_bad_collaboration_bodies_are_422(client: httpx.AsyncClient, body: object) -> None:
    await create_org(client, "A")
    await create_org(client, "B")
    response = await client.post("/v1/collaborations", json=body)
    assert response.status_code == 422, response.text
    assert (await client.get("/v1/collaborations")).json()["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"text": ""}, id="empty"),
        pytest.param({"text": "x" * 5_000}, id="too-long"),
        pytest.param({"text": "ok text", "limit": 0}, id="limit-0"),
        pytest.param({"text": "ok text", "on_behalf_of": 12345}, id="unknown-org"),
        pytest.param(
            {"text": "'; DROP TABLE organisations; --", "countries": ["XX"]}, id="bad-country"
        ),
    ],
)
async def test_bad_searches_are_4xx(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post("/v1/search", json=body)
    assert response.status_code in (404, 422), response.text


async def test_injection_strings_are_stored_as_plain_text(client: httpx.AsyncClient) -> None:
    nasty = "Robert'); DROP TABLE organisations;-- <script>alert(1)</script>"
    org = await create_org(client, nasty)
    assert (await client.get(f"/v1/organisations/{org['id']}")).json()["name"] == nasty
    listed = (await client.get("/v1/organisations", params={"q": "Robert'); DROP"})).json()
    assert listed["total"] == 1
