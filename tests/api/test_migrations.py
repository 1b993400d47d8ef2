"""The Alembic migrations build exactly the schema the SQLAlchemy models describe."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, UniqueConstraint, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.store import models as m
from app.store.database import Database
from app.store.models import Base
from app.store.rerank_models import RerankRun
from app.store.schema import alembic_config, upgrade_schema

STORE = Path(__file__).resolve().parents[2] / "app" / "store"


def import_every_model() -> None:
    """Register every table module's models on ``Base.metadata``."""
    for module in sorted(STORE.glob("*_models.py")):
        importlib.import_module(f"app.store.{module.stem}")


async def test_migrations_match_the_models(store_url: str) -> None:
    import_every_model()
    db = Database(store_url)
    await upgrade_schema(db)
    await upgrade_schema(db)  # idempotent
    await db.dispose()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    engine = create_async_engine(store_url)
    async with engine.connect() as connection:
        differences = await connection.run_sync(diff)
    await engine.dispose()
    assert differences == []


def test_every_foreign_key_leads_an_index() -> None:
    """Deleting a row looks up the rows referring to it (cascade, set null); without an index
    leading with the referring columns, that lookup reads the whole table (1.3 s per deleted
    organisation with 100k organisations and two stored re-ranking runs)."""
    import_every_model()
    unindexed = []
    for table in Base.metadata.sorted_tables:
        leading = [[c.name for c in table.primary_key.columns]]
        leading += [[c.name for c in index.columns] for index in table.indexes]
        leading += [
            [c.name for c in unique.columns]
            for unique in table.constraints
            if isinstance(unique, UniqueConstraint)
        ]
        for key in table.foreign_key_constraints:
            columns = [c.name for c in key.columns]
            if not any(names[: len(columns)] == columns for names in leading):
                unindexed.append(f"{table.name}({', '.join(columns)})")
    assert unindexed == []


async def test_stored_lists_survive_the_move_to_one_row_per_list_and_back(store_url: str) -> None:
    """Migration 0011 packs each run's per-partner rows into one row per list (and its
    downgrade unpacks them): same partners, order, scores and components; a list that lost a
    partner to erasure keeps the count it was computed with, so it stays unserved."""
    import_every_model()
    comps = [np.array([i, 0.5, -i], dtype="<f8").tobytes() for i in range(4)]

    def steps(connection: Connection) -> tuple[list[Any], ...]:
        config = alembic_config(connection)
        command.upgrade(config, "0010")
        orgs = [
            connection.execute(
                insert(m.Organisation)
                .values(name=f"Org {i}", kind="sme", country="ES")
                .returning(m.Organisation.id)
            ).scalar_one()
            for i in range(4)
        ]
        run = connection.execute(
            insert(RerankRun)
            .values(status="published", engine="local", top_k=3, chunk_size=2)
            .returning(RerankRun.id)
        ).scalar_one()
        now = datetime(2026, 11, 22, tzinfo=UTC)
        subject = {"run_id": run, "own_marker": "o", "marker": "m", "cutoff": None}
        connection.execute(
            text(
                "INSERT INTO rerank_subjects (run_id, organisation_id, own_marker, marker,"
                " cutoff, items, computed_at) VALUES"
                " (:run_id, :organisation_id, :own_marker, :marker, :cutoff, :items, :at)"
            ),
            [
                {**subject, "organisation_id": orgs[0], "items": 3, "at": now},
                {**subject, "organisation_id": orgs[1], "items": 2, "at": now},  # one erased
                {**subject, "organisation_id": orgs[2], "items": 0, "at": now},
            ],
        )
        connection.execute(
            text(
                "INSERT INTO rerank_matches (run_id, organisation_id, rank, candidate_id, score,"
                " components) VALUES (:run, :org, :rank, :cand, :score, :comps)"
            ),
            [
                {
                    "run": run,
                    "org": orgs[0],
                    "rank": 1,
                    "cand": orgs[3],
                    "score": 0.9,
                    "comps": comps[3],
                },
                {
                    "run": run,
                    "org": orgs[0],
                    "rank": 2,
                    "cand": orgs[1],
                    "score": 0.7,
                    "comps": comps[1],
                },
                {
                    "run": run,
                    "org": orgs[0],
                    "rank": 3,
                    "cand": orgs[2],
                    "score": 0.5,
                    "comps": comps[2],
                },
                {
                    "run": run,
                    "org": orgs[1],
                    "rank": 2,
                    "cand": orgs[0],
                    "score": 0.4,
                    "comps": comps[0],
                },
            ],
        )
        old = "SELECT organisation_id, rank, candidate_id, score, components FROM rerank_matches"
        before = [tuple(r) for r in connection.execute(text(f"{old} ORDER BY 1, 2"))]
        command.upgrade(config, "0011")
        packed = [
            tuple(r)
            for r in connection.execute(
                text(
                    "SELECT organisation_id, partners, items, scores, components"
                    " FROM rerank_lists ORDER BY organisation_id"
                )
            )
        ]
        command.downgrade(config, "0010")
        after = [tuple(r) for r in connection.execute(text(f"{old} ORDER BY 1, 2"))]
        return orgs, before, packed, after

    db = Database(store_url)
    async with db.engine.begin() as connection:
        orgs, before, packed, after = await connection.run_sync(steps)
    await db.dispose()

    def ids(*values: int) -> bytes:
        return np.array(values, dtype="<i8").tobytes()

    assert [(o, bytes(p), n) for o, p, n, _, _ in packed] == [
        (orgs[0], ids(orgs[3], orgs[1], orgs[2]), 3),
        (orgs[1], ids(orgs[0]), 2),
        (orgs[2], b"", 0),
    ]
    assert np.frombuffer(packed[0][3], dtype="<f8").tolist() == [0.9, 0.7, 0.5]
    assert bytes(packed[0][4]) == comps[3] + comps[1] + comps[2]
    # Back: the same rows, ranks numbered again from 1 (the erased partner's gap closes).
    renumbered = [r if r[0] != orgs[1] else (r[0], 1, *r[2:]) for r in before]
    assert [(*r[:4], bytes(r[4])) for r in after] == renumbered
