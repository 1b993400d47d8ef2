"""Rate limits per key (429 + Retry-After), bounded ranking work (503 + Retry-After instead of
growing latency) and time limits on ranking."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.limits import EXEMPT_PATHS, TokenBuckets
from app.main import create_app
from app.services import matches as match_service
from embeddings import Encoder
from tests.api.helpers import count_orgs, create_org, org_body
from tests.conftest import Service, make_settings


@pytest.fixture
def limited(store_url: str, tmp_path: Path, hashing_encoder: Encoder) -> Any:
    """Start an app on the fresh store with chosen limit settings; yields it and an admin
    client."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
        settings = make_settings(store_url, tmp_path, **overrides)
        app = create_app(settings, encoder=hashing_encoder)
        async with LifespanManager(app, startup_timeout=120) as manager:
            service = Service(app, manager.app)
            async with await service.client("admin") as http:
                yield service, http

    return start


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another caller has its own bucket
    now[0] = 1.0  # two tokens back after a second
    assert [buckets.take("a") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a") > 0


def test_token_buckets_stay_bounded_in_memory() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_callers=10)
    for i in range(1000):
        buckets.take(f"caller-{i}")
    assert len(buckets._buckets) == 10


async def test_a_key_over_its_rate_gets_429_with_retry_after(limited: Any) -> None:
    async with limited(rate_limit_per_second=0.5, rate_limit_burst=3) as (service, http):
        statuses = [(await http.get("/v1/organisations")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited_response = await http.get("/v1/organisations")
        assert limited_response.status_code == 429
        assert limited_response.headers["content-type"] == "application/problem+json"
        assert 1 <= int(limited_response.headers["retry-after"]) <= 2
        assert limited_response.json()["status"] == 429
        # A write over the limit changes nothing.
        rejected = await http.post("/v1/organisations", json=org_body("Over the limit"))
        assert rejected.status_code == 429
        # Health stays open for probes.
        assert all([(await http.get("/health")).status_code == 200 for _ in range(10)])
        # Another key has its own budget.
        async with await service.client("admin") as other:
            assert (await other.get("/v1/organisations")).json()["total"] == 0


async def test_rate_limit_zero_turns_it_off(limited: Any) -> None:
    async with limited(rate_limit_per_second=0, rate_limit_burst=1) as (_, http):
        statuses = {(await http.get("/v1/vocabulary")).status_code for _ in range(20)}
        assert statuses == {200}


@pytest.fixture
def slow_ranking(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Make every ranking call take ``delay_s`` (in its worker thread, like a heavy query)."""
    settings = {"delay_s": 0.6, "calls": 0.0}
    real = match_service.rank_partners

    def slow(*args: Any, **kwargs: Any) -> Any:
        settings["calls"] += 1
        time.sleep(settings["delay_s"])
        return real(*args, **kwargs)

    monkeypatch.setattr(match_service, "rank_partners", slow)
    return settings


async def test_ranking_beyond_running_and_queued_gets_503_at_once(
    limited: Any, slow_ranking: dict[str, float]
) -> None:
    async with limited(max_concurrent_matches=1, max_queued_matches=1) as (_, http):
        org = await create_org(http, "Busy SME", seeks=["a partner"])
        url = f"/v1/organisations/{org['id']}/matches"
        responses = await asyncio.gather(*(http.get(url) for _ in range(4)))
        statuses = sorted(r.status_code for r in responses)
        # One runs, one waits for the slot, two are turned away without waiting.
        assert statuses == [200, 200, 503, 503]
        for response in responses:
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
                assert response.headers["content-type"] == "application/problem+json"
        assert slow_ranking["calls"] == 2
        # Capacity is back once they finished.
        assert (await http.get(url)).status_code == 200


async def test_ranking_slower_than_the_time_limit_is_503_on_time(
    limited: Any, slow_ranking: dict[str, float]
) -> None:
    slow_ranking["delay_s"] = 1.5
    overrides = {"max_concurrent_matches": 1, "max_queued_matches": 0, "match_timeout_s": 0.3}
    async with limited(**overrides) as (_, http):
        org = await create_org(http, "Slow SME", seeks=["a partner"])
        url = f"/v1/organisations/{org['id']}/matches"
        started = time.perf_counter()
        response = await http.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "longer than 0.3 s" in response.json()["detail"]
        assert elapsed < slow_ranking["delay_s"]  # answered before the ranking finished
        # The abandoned ranking still holds its slot: the bound on ranking work holds...
        assert (await http.get(url)).status_code == 503
        # ... while cheap routes never wait for ranking slots.
        assert await count_orgs(http) == 1
        await asyncio.sleep(slow_ranking["delay_s"] + 0.2)
        slow_ranking["delay_s"] = 0.0
        assert (await http.get(url)).status_code == 200


async def test_openapi_documents_429_on_every_keyed_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path in EXEMPT_PATHS:
                continue
            if "429" not in operation.get("responses", {}):
                missing.append(f"{method.upper()} {path}")
    assert missing == []


async def test_ranking_routes_document_503(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "503" in schema["paths"]["/v1/organisations/{org_id}/matches"]["get"]["responses"]
    assert "503" in schema["paths"]["/v1/search"]["post"]["responses"]


async def test_limits_leave_plain_traffic_alone(service: Service) -> None:
    """Defaults: a normal burst of console traffic never sees 429 or 503."""
    async with await service.client("admin") as http:
        org = await create_org(http, "Everyday SME", seeks=["a partner"])
        urls = [f"/v1/organisations/{org['id']}/matches", "/v1/organisations"] * 8
        statuses = {r.status_code for r in await asyncio.gather(*(http.get(u) for u in urls))}
        assert statuses == {200}


async def test_requests_beyond_running_and_queued_get_503_at_once(
    limited: Any, slow_ranking: dict[str, float]
) -> None:
    """The process-wide bound: a slow request holds the only slot, others are turned away."""
    overrides = {"max_concurrent_requests": 1, "max_queued_requests": 0}
    async with limited(**overrides) as (_, http):
        org = await create_org(http, "Holder", seeks=["a partner"])
        slow = asyncio.create_task(http.get(f"/v1/organisations/{org['id']}/matches"))
        await asyncio.sleep(0.2)
        turned_away = await http.get("/v1/organisations")
        assert turned_away.status_code == 503
        assert turned_away.headers["retry-after"] == "1"
        assert turned_away.headers["content-type"] == "application/problem+json"
        assert (await http.get("/health")).status_code == 200  # probes are never shed
        assert (await slow).status_code == 200
        assert (await http.get("/v1/organisations")).status_code == 200


async def test_a_request_that_waits_too_long_for_its_turn_gets_503(
    limited: Any, slow_ranking: dict[str, float]
) -> None:
    overrides = {"max_concurrent_requests": 1, "max_queued_requests": 5, "queue_timeout_s": 0.2}
    async with limited(**overrides) as (_, http):
        org = await create_org(http, "Holder", seeks=["a partner"])
        slow = asyncio.create_task(http.get(f"/v1/organisations/{org['id']}/matches"))
        await asyncio.sleep(0.1)
        waited = await http.get("/v1/organisations")
        assert waited.status_code == 503
        assert "waited 0.2 s" in waited.json()["detail"]
        assert (await slow).status_code == 200


async def test_a_database_pool_timeout_is_503_not_500(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from app.services import organisations as organisation_service

    async def exhausted(*args: Any, **kwargs: Any) -> Any:
        raise PoolTimeout("QueuePool limit reached, connection timed out")

    async with await service.client("admin") as http:
        monkeypatch.setattr(organisation_service, "list_organisations", exhausted)
        response = await http.get("/v1/organisations")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json()["detail"] == "the store is too busy"
