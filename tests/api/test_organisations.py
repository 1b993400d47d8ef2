"""Organisations through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.api.helpers import count_orgs, create_org, org_body


async def test_create_then_read_returns_every_field(client: httpx.AsyncClient) -> None:
    body = org_body(
        "PathoVision Analytics SL",
        sectors=["diagnostics", "ai_and_data"],
        country="es",
        region="Catalonia",
        clusters=["Biocat", "ai4diag"],
        description="Deep-learning grading of tumour biopsies.",
        offers=["AI image analysis for pathology"],
        seeks=["clinical validation site for a diagnostic"],
        keywords=["digital pathology"],
        maturity=6,
        website="https://pathovision.example",
        external_ids={"pic": "912345678"},
    )
    created = await client.post("/v1/organisations", json=body)
    assert created.status_code == 201
    org = created.json()
    assert created.headers["location"] == f"/v1/organisations/{org['id']}"

    fetched = (await client.get(f"/v1/organisations/{org['id']}")).json()
    assert fetched["country"] == "ES"
    assert fetched["clusters"] == ["biocat", "ai4diag"]
    assert fetched["sectors"] == ["diagnostics", "ai_and_data"]
    assert fetched["offers"] == ["AI image analysis for pathology"]
    assert fetched["external_ids"] == {"pic": "912345678"}
    assert fetched["maturity"] == 6
    assert fetched["created_at"] == fetched["updated_at"]


async def test_lookup_by_external_id(client: httpx.AsyncClient) -> None:
    org = await create_org(client, "Nordic Biobank AB", country="SE", external_ids={"pic": "1"})
    found = await client.get("/v1/organisations/by-external-id/pic/1")
    assert found.status_code == 200 and found.json()["id"] == org["id"]
    assert (await client.get("/v1/organisations/by-external-id/pic/2")).status_code == 404


async def test_duplicate_external_id_is_409_and_stores_nothing(client: httpx.AsyncClient) -> None:
    await create_org(client, "First", external_ids={"pic": "999"})
    again = await client.post(
        "/v1/organisations", json=org_body("Second", external_ids={"pic": "999"})
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert await count_orgs(client) == 1


async def test_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await create_org(client, f"Spanish {i}", country="ES", sectors=["pharma"])
    await create_org(client, "Danish medtech", country="DK", sectors=["medtech"], clusters=["dlsc"])
    await create_org(client, "Danish uni", country="DK", kind="university", sectors=["biotech"])

    page = (await client.get("/v1/organisations", params={"country": "ES", "limit": 2})).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    second = (
        await client.get("/v1/organisations", params={"country": "ES", "limit": 2, "offset": 2})
    ).json()
    assert {o["id"] for o in page["items"]}.isdisjoint({o["id"] for o in second["items"]})

    by_sector = (await client.get("/v1/organisations", params={"sector": "medtech"})).json()
    assert [o["name"] for o in by_sector["items"]] == ["Danish medtech"]
    by_kind = (
        await client.get("/v1/organisations", params=[("kind", "university"), ("country", "DK")])
    ).json()
    assert [o["name"] for o in by_kind["items"]] == ["Danish uni"]
    by_cluster = (await client.get("/v1/organisations", params={"cluster": "dlsc"})).json()
    assert by_cluster["total"] == 1
    by_name = (await client.get("/v1/organisations", params={"q": "danish"})).json()
    assert by_name["total"] == 2


async def test_patch_changes_only_sent_fields(client: httpx.AsyncClient) -> None:
    org = await create_org(client, "Medtech One", offers=["wearable ECG"], maturity=4)
    patched = await client.patch(
        f"/v1/organisations/{org['id']}", json={"seeks": ["hospital for a clinical study"]}
    )
    assert patched.status_code == 200
    body = patched.json()
    assert body["seeks"] == ["hospital for a clinical study"]
    assert body["offers"] == ["wearable ECG"] and body["maturity"] == 4
    assert body["updated_at"] > body["created_at"]

    cleared = await client.patch(f"/v1/organisations/{org['id']}", json={"maturity": None})
    assert cleared.json()["maturity"] is None


async def test_patch_cannot_clear_required_fields(client: httpx.AsyncClient) -> None:
    org = await create_org(client, "Keeps its name")
    response = await client.patch(f"/v1/organisations/{org['id']}", json={"name": None})
    assert response.status_code == 422
    assert (await client.get(f"/v1/organisations/{org['id']}")).json()["name"] == "Keeps its name"


async def test_delete_removes_it_everywhere(client: httpx.AsyncClient) -> None:
    a = await create_org(client, "A", offers=["GMP manufacturing"])
    b = await create_org(client, "B", seeks=["GMP manufacturing partner"])
    assert (await client.delete(f"/v1/organisations/{a['id']}")).status_code == 204
    assert (await client.get(f"/v1/organisations/{a['id']}")).status_code == 404
    assert (await client.delete(f"/v1/organisations/{a['id']}")).status_code == 404
    matches = (await client.get(f"/v1/organisations/{b['id']}/matches")).json()
    assert all(m["organisation"]["id"] != a["id"] for m in matches["items"])
    health = (await client.get("/health")).json()
    assert health["organisations"] == 1


async def test_bulk_create_is_all_or_nothing(client: httpx.AsyncClient) -> None:
    good = {"items": [org_body(f"Bulk {i}") for i in range(3)]}
    created = await client.post("/v1/organisations/bulk", json=good)
    assert created.status_code == 201 and len(created.json()["items"]) == 3

    bad = {"items": [org_body("Fine"), org_body("Broken", country="ZZ")]}
    assert (await client.post("/v1/organisations/bulk", json=bad)).status_code == 422
    dup = {
        "items": [
            org_body("X", external_ids={"pic": "7"}),
            org_body("Y", external_ids={"pic": "7"}),
        ]
    }
    assert (await client.post("/v1/organisations/bulk", json=dup)).status_code == 409
    assert await count_orgs(client) == 3
