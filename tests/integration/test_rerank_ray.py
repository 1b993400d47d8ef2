"""The Ray engine ranks the same chunks on a local 2-CPU Ray cluster and publishes exactly
the lists the local engine does."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from app.main import create_app
from app.services.rerank import RunOptions, run_rerank
from app.store.rerank_models import RerankList
from embeddings import Encoder
from tests.api.test_rerank import make_network
from tests.conftest import Service, make_settings

pytestmark = [pytest.mark.ray]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster with 2 CPUs (the CI machine's), shut down after the module."""
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the 'ray' extra for the Ray engine tests")
        pytest.skip("ray is not installed (pip install multihelix[ray])")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
async def sqlite_service(tmp_path: Path, hashing_encoder: Encoder) -> AsyncIterator[Service]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    app = create_app(make_settings(url, tmp_path), encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        yield Service(app, manager.app)


async def _lists(service: Service, run_id: int) -> list[tuple[Any, ...]]:
    async with service.ctx.db.read() as session:
        rows = await session.execute(
            select(
                RerankList.organisation_id,
                RerankList.partners,
                RerankList.scores,
                RerankList.components,
                RerankList.marker,
                RerankList.cutoff,
            )
            .where(RerankList.run_id == run_id)
            .order_by(RerankList.organisation_id)
        )
        return [tuple(r) for r in rows.all()]


async def test_ray_engine_publishes_what_the_local_engine_does(
    ray_cluster: Any, sqlite_service: Service
) -> None:
    async with await sqlite_service.client("admin") as http:
        ids = await make_network(http, n=30)
    local = await run_rerank(sqlite_service.ctx, RunOptions(top_k=10, chunk_size=4))
    on_ray = await run_rerank(
        sqlite_service.ctx, RunOptions(top_k=10, chunk_size=4, engine="ray", ray_workers=2)
    )
    assert on_ray.status == "published" and on_ray.ranked == len(ids)
    assert await _lists(sqlite_service, on_ray.run_id) == await _lists(sqlite_service, local.run_id)
    async with await sqlite_service.client("admin") as http:
        run = (await http.get(f"/v1/rerank/runs/{on_ray.run_id}")).json()
        assert run["engine"] == "ray" and run["is_current"]
        served = (await http.get(f"/v1/organisations/{ids[3]}/matches")).json()
    assert served["source"] == "batch"
    assert served["run_id"] == on_ray.run_id
