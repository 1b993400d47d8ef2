"""Shared fixtures: apps on a fresh store (SQLite file, or PostgreSQL when configured) and
in-process HTTP clients. Unit and API tests use the tiny hashing encoder; integration tests
use the real model, loaded once per session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from app.services.keys import create_api_key
from app.settings import Settings
from embeddings import Encoder, load_encoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PG_URL = os.environ.get("MULTIHELIX_TEST_POSTGRES_URL")


def _store_params() -> list[Any]:
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]


@pytest.fixture(params=_store_params())
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: an SQLite file, or a wiped PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide MULTIHELIX_TEST_POSTGRES_URL (a real PostgreSQL)")
        pytest.skip("MULTIHELIX_TEST_POSTGRES_URL is not set")
    import asyncio

    asyncio.run(_wipe_postgres(PG_URL))
    yield PG_URL


async def _wipe_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
def hashing_encoder() -> Encoder:
    return load_encoder("hashing")


@pytest.fixture(scope="session")
def real_encoder() -> Encoder:
    """The real all-MiniLM-L6-v2, loaded once for the whole test session."""
    return load_encoder("minilm")


def make_settings(url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "data_dir": tmp_path / "data",
        "encoder": "hashing",
        "load_demo_data": False,
    }
    values.update(overrides)
    return Settings(**values)


class Service:
    """A running app with a way to mint clients for any role."""

    def __init__(self, app: Any, asgi: Any) -> None:
        self.app = app
        self.asgi = asgi

    @property
    def ctx(self) -> Any:
        return self.app.state.ctx

    async def client(
        self,
        role: str = "admin",
        *,
        tenant: str | None = None,
        organisation_id: int | None = None,
    ) -> httpx.AsyncClient:
        created = await create_api_key(
            self.ctx.db, role=role, tenant=tenant, organisation_id=organisation_id
        )
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.asgi),
            base_url="http://test",
            headers={"Authorization": f"Bearer {created.key}"},
        )


@pytest.fixture
async def service(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[Service]:
    """An app on an empty store (hashing encoder), started and stopped around the test."""
    app = create_app(make_settings(store_url, tmp_path), encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        yield Service(app, manager.app)


@pytest.fixture
async def client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app on an empty store."""
    async with await service.client("admin") as http:
        yield http
