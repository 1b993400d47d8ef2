"""Unsupported methods: a method a known path does not serve is a 405 problem document whose
Allow header lists exactly the methods the path does serve, and it changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from embeddings import Encoder
from tests.api.helpers import count_orgs, create_org, org_body
from tests.conftest import Service, make_settings

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@pytest.fixture
async def unlimited(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client without a rate limit: the walk below sends some 300 requests at once."""
    settings = make_settings(store_url, tmp_path, rate_limit_per_second=0)
    app = create_app(settings, encoder=hashing_encoder)
    async with (
        LifespanManager(app, startup_timeout=120) as manager,
        await Service(app, manager.app).client("admin") as http,
    ):
        yield http


async def test_every_path_answers_an_unsupported_method_with_405_and_its_allow_header(
    unlimited: httpx.AsyncClient,
) -> None:
    client = unlimited
    paths = (await client.get("/openapi.json")).json()["paths"]
    wrong = []
    for template, operations in paths.items():
        declared = {method.upper() for method in operations}
        url = re.sub(r"\{[^}]+\}", "1", template)
        for method in METHODS:
            if method in declared:
                continue
            response = await client.request(method, url)
            allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            if (
                response.status_code != 405
                or allow != declared
                or response.headers["content-type"] != "application/problem+json"
                or response.json()["status"] != 405
            ):
                wrong.append(
                    f"{method} {url}: {response.status_code} Allow={sorted(allow)} "
                    f"(declared {sorted(declared)})"
                )
    assert wrong == []


async def test_patch_on_the_bulk_route_is_405_not_an_invalid_id(
    client: httpx.AsyncClient,
) -> None:
    await create_org(client, "Existing")
    for method in ("PATCH", "GET", "DELETE"):
        response = await client.request(
            method, "/v1/organisations/bulk", json={"items": [org_body("Sneaky")]}
        )
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == "POST"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Method not allowed"
        assert "POST" in response.json()["detail"]
    assert await count_orgs(client) == 1


async def test_an_id_route_lists_all_its_methods_in_allow(client: httpx.AsyncClient) -> None:
    org = await create_org(client, "Kept")
    response = await client.put(f"/v1/organisations/{org['id']}", json=org_body("Replaced"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PATCH, DELETE"
    assert (await client.get(f"/v1/organisations/{org['id']}")).json()["name"] == "Kept"


async def test_a_word_where_an_id_belongs_is_not_found(client: httpx.AsyncClient) -> None:
    await create_org(client, "Someone")
    response = await client.get("/v1/organisations/someone")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_participants_csv_route_is_not_taken_for_a_participant_id(
    service: Service,
) -> None:
    async with await service.client("organiser", tenant="biocat") as organiser:
        for method in ("GET", "PATCH", "DELETE"):
            response = await organiser.request(method, "/v1/events/1/participants/csv")
            assert response.status_code == 405, response.text
            assert response.headers["allow"] == "POST"
