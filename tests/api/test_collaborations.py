"""Collaboration links through the HTTP API."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_org, link


async def test_project_with_many_partners_is_one_collaboration(client: httpx.AsyncClient) -> None:
    orgs = [await create_org(client, f"Partner {i}") for i in range(5)]
    collab = await link(
        client, *(o["id"] for o in orgs), reference="HORIZON-101", title="Rare cancer AI"
    )
    assert [p["organisation_id"] for p in collab["participants"]] == [o["id"] for o in orgs]
    assert collab["participants"][0]["name"] == "Partner 0"

    health = (await client.get("/health")).json()
    assert health["collaboration_links"] == 10  # 5 partners -> 10 pairs

    listed = (
        await client.get("/v1/collaborations", params={"organisation_id": orgs[3]["id"]})
    ).json()
    assert listed["total"] == 1 and listed["items"][0]["reference"] == "HORIZON-101"


async def test_delete_collaboration_unlinks_the_graph(client: httpx.AsyncClient) -> None:
    a, b = await create_org(client, "A"), await create_org(client, "B")
    collab = await link(client, a["id"], b["id"], kind="supply")
    assert (await client.get("/health")).json()["collaboration_links"] == 1
    assert (await client.delete(f"/v1/collaborations/{collab['id']}")).status_code == 204
    assert (await client.get("/health")).json()["collaboration_links"] == 0
    assert (await client.get(f"/v1/collaborations/{collab['id']}")).status_code == 404


async def test_links_to_missing_organisations_are_rejected(client: httpx.AsyncClient) -> None:
    a = await create_org(client, "A")
    body = {
        "kind": "project",
        "participants": [{"organisation_id": a["id"]}, {"organisation_id": 999}],
    }
    response = await client.post("/v1/collaborations", json=body)
    assert response.status_code == 422
    assert "999" in response.json()["detail"]
    assert (await client.get("/v1/collaborations")).json()["total"] == 0


async def test_self_link_is_rejected(client: httpx.AsyncClient) -> None:
    a = await create_org(client, "A")
    body = {
        "kind": "project",
        "participants": [{"organisation_id": a["id"]}, {"organisation_id": a["id"]}],
    }
    response = await client.post("/v1/collaborations", json=body)
    assert response.status_code == 422
    assert (await client.get("/v1/collaborations")).json()["total"] == 0


async def test_deleting_a_partner_drops_two_party_links(client: httpx.AsyncClient) -> None:
    a, b, c = [await create_org(client, n) for n in "ABC"]
    await link(client, a["id"], b["id"])
    trio = await link(client, a["id"], b["id"], c["id"])
    await client.delete(f"/v1/organisations/{a['id']}")
    remaining = (await client.get("/v1/collaborations")).json()
    assert [x["id"] for x in remaining["items"]] == [trio["id"]]
    assert (await client.get("/health")).json()["collaboration_links"] == 1
