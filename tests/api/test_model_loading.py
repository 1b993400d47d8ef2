"""The service answers once the store is read; the embedding model loads after, in the
background (app/bootstrap.py). What a client sees while it loads, and if it cannot load."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

import embeddings.encoder as encoder_module
from app.main import create_app
from embeddings.encoder import Encoder, HashingEncoder, LoadingEncoder
from tests.api.helpers import count_orgs, org_body
from tests.conftest import Service, make_settings


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set it to let the model finish loading (the hashing encoder stands in for the model)."""
    loading_may_end = threading.Event()

    def slow_load(name: str) -> Encoder:
        assert loading_may_end.wait(30), "the test never let the model load"
        return HashingEncoder()

    monkeypatch.setattr(encoder_module, "load_encoder", slow_load)
    return loading_may_end


@contextlib.asynccontextmanager
async def started(store_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    encoder = LoadingEncoder("hashing", on_demand=True)  # open_service starts the load
    app = create_app(make_settings(store_url, tmp_path), encoder=encoder)
    async with LifespanManager(app, startup_timeout=60) as manager:
        yield Service(app, manager.app)


async def test_requests_are_answered_while_the_model_loads_and_text_writes_wait_for_it(
    store_url: str, tmp_path: Path, release: threading.Event
) -> None:
    async with started(store_url, tmp_path) as service, await service.client("admin") as http:
        health = (await http.get("/health")).json()
        assert health["status"] == "ok"
        assert health["model"] == {"status": "loading", "load_s": None}
        assert await count_orgs(http) == 0

        creating = asyncio.create_task(
            http.post("/v1/organisations", json=org_body("Nanoxis", offers=["nanosensors"]))
        )
        await asyncio.sleep(0.3)
        assert not creating.done()  # its texts wait for the model
        assert (await http.get("/v1/organisations")).status_code == 200  # reads do not

        release.set()
        created = await asyncio.wait_for(creating, 30)
        assert created.status_code == 201, created.text
        health = (await http.get("/health")).json()
        assert health["model"]["status"] == "ready"
        assert health["model"]["load_s"] >= 0.3
        org_id = created.json()["id"]
        matches = await http.get(f"/v1/organisations/{org_id}/matches")
        assert matches.status_code == 200
        search = await http.post("/v1/search", json={"text": "nanosensors"})
        assert search.status_code == 200, search.text


async def test_a_model_that_cannot_load_leaves_the_service_up_and_text_writes_refused(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_load(name: str) -> Encoder:
        raise OSError("model files missing")

    monkeypatch.setattr(encoder_module, "load_encoder", broken_load)
    async with started(store_url, tmp_path) as service, await service.client("admin") as http:
        for _ in range(100):  # the load fails in its thread, just after start-up
            health = (await http.get("/health")).json()
            if health["model"]["status"] == "failed":
                break
            await asyncio.sleep(0.05)
        assert health["status"] == "degraded"
        assert "model files missing" in health["model"]["error"]

        body = org_body("Nanoxis", description="Nanosensors for point-of-care tests.")
        created = await http.post("/v1/organisations", json=body)
        assert created.status_code == 503
        assert created.headers["content-type"] == "application/problem+json"
        assert "could not be loaded" in created.json()["detail"]
        assert await count_orgs(http) == 0  # nothing written
        named = await http.post("/v1/organisations", json=org_body("Nanoxis"))
        assert named.status_code == 201  # a name alone has nothing to embed
        search = await http.post("/v1/search", json={"text": "nanosensors"})
        assert search.status_code == 503
        assert (await http.get("/v1/vocabulary")).status_code == 200
