"""Small builders for API tests."""

from __future__ import annotations

from typing import Any

import httpx


def org_body(name: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "kind": "sme",
        "sectors": ["diagnostics"],
        "country": "ES",
    }
    body.update(fields)
    return body


async def create_org(http: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await http.post("/v1/organisations", json=org_body(name, **fields))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def link(
    http: httpx.AsyncClient, *org_ids: int, kind: str = "project", year: int = 2022, **fields: Any
) -> dict[str, Any]:
    body = {
        "kind": kind,
        "year": year,
        "participants": [{"organisation_id": i} for i in org_ids],
        **fields,
    }
    response = await http.post("/v1/collaborations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count_orgs(http: httpx.AsyncClient) -> int:
    response = await http.get("/v1/organisations", params={"limit": 1})
    assert response.status_code == 200
    return int(response.json()["total"])
