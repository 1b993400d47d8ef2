"""Start-up reads the store in bulk: the state it builds is the one the write path builds
organisation by organisation, bit for bit, whatever odd rows the store holds."""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import delete, insert

import app.services.derived as derived_module
from app.bootstrap import open_service
from app.main import create_app
from app.services.derived import (
    DerivedState,
)
from app.store import models as m
from app.store.bulk import ITEM_FIELDS, read_vectors
from app.store.database import Database
from app.store.schema import upgrade_schema
from embeddings import Encoder, HashingEncoder, VectorIndex
from embeddings.encoder import LoadingEncoder, encoder_identity
from matching.features import VECTOR_SPACES
from matching.scoring import LinearScorer
from tests.api.helpers import create_org, link
from tests.conftest import Service, make_settings
from tests.integration.states import assert_same_state


async def fill_store(store_url: str, tmp_path: Path, encoder: Encoder) -> list[int]:
    """Organisations of every shape and some collaborations, written through the API."""
    app = create_app(make_settings(store_url, tmp_path), encoder=encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        service = Service(app, manager.app)
        async with await service.client("admin") as http:
            ids = []
            for i in range(24):
                fields: dict[str, object] = {}
                if i % 6 != 5:  # every sixth has only a name: no profile vector
                    fields["description"] = f"organisation {i} working on topic {i % 4}"
                    fields["offers"] = [f"offer {i} {j}" for j in range(i % 4)]
                    fields["seeks"] = [f"need {i % 5} {j}" for j in range(i % 3)]
                    fields["clusters"] = ["biocat", "ai4diag"][: i % 3]
                org = await create_org(http, f"Org {i}", **fields)
                ids.append(org["id"])
            await link(http, ids[0], ids[1], ids[2], year=2020)
            await link(http, ids[1], ids[2], kind="publication", year=2024)
            await link(http, *ids[5:12], year=2016)
            await link(http, ids[3], ids[20], kind="supply")
    return ids


async def reference_state(db: Database, encoder: Encoder) -> DerivedState:
    """The state as the write path makes it: every change-feed entry the writes recorded,
    applied one after the other from an empty state."""
    derived = DerivedState(encoder, LinearScorer.load(None), None)
    assert await derived.catch_up(db) > 0
    return derived


async def test_the_bulk_start_up_state_equals_the_write_paths_state(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    ids = await fill_store(store_url, tmp_path, hashing_encoder)
    db = Database(store_url)
    try:
        emb = m.Embedding.__table__
        async with db.engine.begin() as connection:
            # Rows start-up must leave out as the write path does: an item beyond the
            # organisation's list, a vector of another model; and a gap in a list.
            stray = np.ones(hashing_encoder.dim, dtype=np.float32).tobytes()
            await connection.execute(
                insert(emb),
                [
                    {
                        "organisation_id": ids[3],
                        "field": "offer",
                        "position": 7,
                        "model": hashing_encoder.name,
                        "content_hash": "stale",
                        "vector": stray,
                    },
                    {
                        "organisation_id": ids[4],
                        "field": "seek",
                        "position": 5,
                        "model": "another-model",
                        "content_hash": "other",
                        "vector": stray,
                    },
                ],
            )
            await connection.execute(
                delete(emb).where(
                    emb.c.organisation_id == ids[7], emb.c.field == "offer", emb.c.position == 1
                )
            )
        expected = await reference_state(db, hashing_encoder)
        loaded = DerivedState(hashing_encoder, LinearScorer.load(None), None)
        await loaded.load(db)
    finally:
        await db.dispose()

    assert sorted(loaded.state.catalog.all_ids().tolist()) == sorted(ids)
    assert_same_state(loaded, expected)
    assert loaded.state.graph.link(ids[1], ids[2]) == expected.state.graph.link(ids[1], ids[2])


async def test_vectors_of_the_wrong_length_are_left_out_with_a_warning(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await fill_store(store_url, tmp_path, hashing_encoder)
    db = Database(store_url)
    try:
        emb = m.Embedding.__table__
        async with db.engine.begin() as connection:
            await connection.execute(
                insert(emb).values(
                    organisation_id=ids[0],
                    field="seek",
                    position=9,
                    model=hashing_encoder.name,
                    content_hash="short",
                    vector=b"\x00" * 12,
                )
            )
        caplog.set_level(logging.WARNING)
        async with db.read() as session:
            stored = await read_vectors(
                session, hashing_encoder.name, hashing_encoder.dim, ITEM_FIELDS
            )
    finally:
        await db.dispose()
    assert "ignoring 1 stored" in caplog.text
    assert stored.matrix.shape[1] == hashing_encoder.dim
    assert not np.any((stored.organisation_ids == ids[0]) & (stored.positions == 9))
    order = np.lexsort((stored.positions, stored.fields, stored.organisation_ids))
    assert np.array_equal(order, np.arange(len(order)))  # sorted by organisation, field, position


async def test_open_service_reads_the_store_then_loads_the_named_model(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    ids = await fill_store(store_url, tmp_path, hashing_encoder)
    settings = make_settings(store_url, tmp_path, encoder="hashing")
    async with open_service(settings) as ctx:
        model = ctx.derived.encoder
        assert isinstance(model, LoadingEncoder) and model.status in ("loading", "ready")
        assert ctx.encoder.encoder is model  # texts to embed wait for the load
        assert isinstance(await model.loaded(), HashingEncoder)  # the named model
        assert ctx.encoder.lanes == 1
        rows = await ctx.encoder.encode(["digital pathology"])
        assert np.array_equal(rows, hashing_encoder.encode(["digital pathology"]))
        assert sorted(ctx.derived.state.catalog.all_ids().tolist()) == sorted(ids)
        # The loaded state is exempt from full garbage collections (150 ms at 100k
        # organisations, on some request's time): its objects are in no collected generation.
        profile = ctx.derived.state.catalog.get(ids[0])
        assert gc.is_tracked(profile)
        assert not any(obj is profile for obj in gc.get_objects())
    # Its indexes were saved at the first start (the store was filled with another data dir
    # above, so this start built them): the next start uses the files.
    async with open_service(settings) as ctx:
        assert ctx.derived.index_sources == dict.fromkeys(VECTOR_SPACES, "file")


def test_the_real_models_name_and_dim_are_known_before_it_loads(real_encoder: Encoder) -> None:
    """Start-up reads the store with these while the model loads."""
    assert encoder_identity("minilm") == (real_encoder.name, real_encoder.dim)


async def clustered_store(store_url: str, n: int, dim: int) -> Database:
    """``n`` organisations with profile vectors around 40 topics (enough for an IVF layout)."""
    db = Database(store_url)
    await upgrade_schema(db)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, n)] + 0.3 * rng.standard_normal((n, dim))
    now = datetime.now(UTC)
    orgs = [
        {
            "id": i,
            "name": f"Org {i}",
            "kind": "sme",
            "country": "ES",
            "offers": [],
            "seeks": [],
            "keywords": [],
            "is_demo": False,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(1, n + 1)
    ]
    rows = [
        {
            "organisation_id": i,
            "field": "profile",
            "position": 0,
            "model": f"hashing-{dim}",
            "content_hash": str(i),
            "vector": vectors[i - 1].astype(np.float32).tobytes(),
        }
        for i in range(1, n + 1)
    ]
    async with db.engine.begin() as connection:
        await connection.execute(insert(m.Organisation.__table__), orgs)
        await connection.execute(insert(m.Embedding.__table__), rows)
    return db


async def test_a_large_index_is_served_exactly_while_its_ivf_layout_trains(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = HashingEncoder(32)
    n = VectorIndex(encoder.dim).exact_threshold + 500
    db = await clustered_store(store_url, n, encoder.dim)
    try:
        derived = DerivedState(encoder, LinearScorer.load(None), None)
        await derived.load(db, tmp_path / "indexes", defer_training=True)
        scan = derived.state.vectors["profile"]
        assert derived.deferred_spaces == {"profile"}
        assert (scan.kind, len(scan)) == ("flat", n)
        assert not await derived.save_indexes(db, tmp_path / "indexes")  # never a scan on disk
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(derived.layouts_trained(), timeout=0.05)

        newcomer = {
            "id": n + 1,
            "name": "Newcomer",
            "kind": "sme",
            "sectors": [],
            "country": "ES",
            "offers": [],
            "seeks": [],
        }
        newcomer_vector = scan.get([7])[0]  # close to organisation 7
        training = derived_module._in_daemon_thread

        async def writes_during_training(function: Any, *args: Any) -> Any:
            # The content was copied; these writes land before the trained index is swapped in.
            async with derived.applying:
                derived.put_organisations([(newcomer, {("profile", 0): newcomer_vector})])
                derived.drop_organisations([3])
            return await training(function, *args)

        monkeypatch.setattr(derived_module, "_in_daemon_thread", writes_during_training)
        await derived.train_deferred(db)
    finally:
        await db.dispose()

    trained = derived.state.vectors["profile"]
    assert trained is not scan and trained.kind == "ivf"
    assert derived.deferred_spaces == set()
    await asyncio.wait_for(derived.layouts_trained(), timeout=1)
    expected_ids = np.sort(scan.ids())  # the scan took the writes as they came
    assert np.array_equal(np.sort(trained.ids()), expected_ids)
    assert n + 1 in expected_ids and 3 not in expected_ids
    untouched = expected_ids[expected_ids <= n]
    assert np.array_equal(trained.get(untouched), scan.get(untouched))
    assert np.allclose(trained.get([n + 1]), scan.get([n + 1]), rtol=0, atol=1e-6)
    found, _ = trained.search(newcomer_vector, k=2)
    assert set(found.tolist()) == {7, n + 1}


@pytest.mark.parametrize(
    "stored",
    [
        datetime(2026, 3, 1, 12, 30, 5, 123456),  # a driver that returns naive UTC
        datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),  # ... aware UTC
        datetime.fromisoformat("2026-03-01T13:30:05.123456+01:00"),  # ... another offset
        "2026-03-01 12:30:05.123456",  # ... the text SQLite holds
    ],
)
def test_the_fingerprint_names_one_instant_one_way(stored: object) -> None:
    """Index files saved before the store returned aware timestamps still match after."""
    assert derived_module._utc_text(stored) == "2026-03-01T12:30:05.123456"
