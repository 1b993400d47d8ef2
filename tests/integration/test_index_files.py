"""Saved vector index files: used when they match the store, rebuilt when they are missing,
corrupt or stale, and never served in either of those cases."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.services.derived import load_organisations, load_vectors, store_fingerprint, to_profile
from app.store.database import Database
from embeddings import Encoder, VectorIndex
from matching.features import VECTOR_SPACES
from tests.api.helpers import create_org, link
from tests.conftest import Service, make_settings


@pytest.fixture
def start(store_url: str, tmp_path: Path, hashing_encoder: Encoder) -> Any:
    """Start (and at the end stop) the app on one store and one data folder."""

    @asynccontextmanager
    async def started() -> AsyncIterator[tuple[Service, httpx.AsyncClient]]:
        app = create_app(make_settings(store_url, tmp_path), encoder=hashing_encoder)
        async with LifespanManager(app, startup_timeout=120) as manager:
            service = Service(app, manager.app)
            async with await service.client("admin") as http:
                yield service, http

    return started


def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "indexes"


async def fill(http: httpx.AsyncClient) -> list[int]:
    ids = []
    for i in range(12):
        org = await create_org(
            http,
            f"Org {i}",
            description=f"organisation number {i} working on topic {i % 3}",
            offers=[f"offer {i}"],
            seeks=[f"need {i % 4}"] if i % 2 else [],
        )
        ids.append(org["id"])
    await link(http, ids[0], ids[1], ids[2])
    return ids


async def matches_of(http: httpx.AsyncClient, ids: list[int]) -> list[Any]:
    out = []
    for org_id in ids[:4]:
        response = await http.get(f"/v1/organisations/{org_id}/matches", params={"limit": 5})
        assert response.status_code == 200
        out.append(
            [(m["organisation"]["id"], round(m["score"], 6)) for m in response.json()["items"]]
        )
    return out


async def assert_indexes_equal_the_store(service: Service) -> None:
    """Every index holds exactly the vectors a rebuild from the store would."""
    ctx = service.ctx
    orgs = await load_organisations(ctx.db)
    vectors = await load_vectors(ctx.db, ctx.encoder_name)
    expected: dict[str, dict[int, np.ndarray]] = {space: {} for space in VECTOR_SPACES}
    for org in orgs:
        _, spaces = to_profile(org, vectors.get(org["id"], {}), ctx.derived.encoder.dim)
        for space, vector in spaces.items():
            expected[space][org["id"]] = vector / np.linalg.norm(vector)
    for space in VECTOR_SPACES:
        index = ctx.derived.state.vectors[space]
        assert sorted(index.ids().tolist()) == sorted(expected[space]), space
        for org_id, vector in expected[space].items():
            assert np.allclose(index.get([org_id])[0], vector, atol=1e-5), (space, org_id)


async def test_saved_indexes_are_used_when_they_match_the_store(
    start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with start() as (_, http):
        ids = await fill(http)
        before = await matches_of(http, ids)
    assert sorted(p.name for p in index_dir(tmp_path).iterdir()) == [
        "offers.mhvi",
        "profile.mhvi",
        "seeks.mhvi",
    ]
    caplog.set_level(logging.INFO, logger="multihelix")
    async with start() as (service, http):
        assert service.ctx.derived.index_sources == dict.fromkeys(VECTOR_SPACES, "file")
        assert await matches_of(http, ids) == before
        await assert_indexes_equal_the_store(service)


async def test_a_corrupt_index_file_is_rebuilt_not_served(
    start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with start() as (_, http):
        ids = await fill(http)
        before = await matches_of(http, ids)
    path = index_dir(tmp_path) / "profile.mhvi"
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data), 97):  # flip bytes in the vectors
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    truncated = index_dir(tmp_path) / "offers.mhvi"
    truncated.write_bytes(truncated.read_bytes()[:50])

    caplog.set_level(logging.INFO)
    async with start() as (service, http):
        sources = service.ctx.derived.index_sources
        assert sources == {"profile": "rebuilt", "offers": "rebuilt", "seeks": "file"}
        assert "checksum mismatch" in caplog.text
        assert await matches_of(http, ids) == before
        await assert_indexes_equal_the_store(service)
    # The rebuilt indexes were saved again: the next start uses them.
    async with start() as (service, _):
        assert service.ctx.derived.index_sources == dict.fromkeys(VECTOR_SPACES, "file")


async def test_a_stale_index_file_is_rebuilt_not_served(
    start: Any, store_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with start() as (_, http):
        ids = await fill(http)
    saved = {p.name: p.read_bytes() for p in index_dir(tmp_path).iterdir()}

    # The store changes while the files stay behind: another organisation, one updated text.
    async with start() as (_, http):
        extra = await create_org(http, "Late", description="arrived later", offers=["late"])
        patched = await http.patch(
            f"/v1/organisations/{ids[0]}", json={"description": "a new description"}
        )
        assert patched.status_code == 200
        expected = await matches_of(http, [*ids, extra["id"]])
    for name, data in saved.items():  # put the old files back, as after a crash
        (index_dir(tmp_path) / name).write_bytes(data)

    caplog.set_level(logging.INFO)
    async with start() as (service, http):
        assert service.ctx.derived.index_sources == dict.fromkeys(VECTOR_SPACES, "rebuilt")
        assert "stale" in caplog.text
        assert extra["id"] in service.ctx.derived.state.vectors["profile"]
        assert await matches_of(http, [*ids, extra["id"]]) == expected
        await assert_indexes_equal_the_store(service)


async def test_a_file_with_the_right_fingerprint_but_wrong_vectors_is_not_served(
    start: Any, store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    """Defence in depth: the ids and a sample of vectors are checked against the store."""
    async with start() as (_, http):
        ids = await fill(http)
        before = await matches_of(http, ids)
    db = Database(store_url)
    try:
        fingerprint = await store_fingerprint(db, hashing_encoder)
    finally:
        await db.dispose()
    path = index_dir(tmp_path) / "profile.mhvi"
    forged = VectorIndex(hashing_encoder.dim)
    rng = np.random.default_rng(1)
    forged.upsert(ids, rng.standard_normal((len(ids), hashing_encoder.dim)).astype(np.float32))
    forged.save(path, fingerprint=fingerprint)
    async with start() as (service, http):
        assert service.ctx.derived.index_sources["profile"] == "rebuilt"
        assert await matches_of(http, ids) == before
        await assert_indexes_equal_the_store(service)


async def test_an_unwritable_data_folder_only_costs_a_rebuild(
    start: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data").mkdir(parents=True, exist_ok=True)
    index_dir(tmp_path).write_text("a file where the folder should be")
    caplog.set_level(logging.INFO)
    async with start() as (_, http):
        ids = await fill(http)
        assert len(await matches_of(http, ids)) == 4
    assert "could not save the vector indexes" in caplog.text
