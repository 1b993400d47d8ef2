"""The Alembic migrations build exactly the schema the SQLAlchemy models describe."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.store.database import Database
from app.store.models import Base
from app.store.schema import upgrade_schema

STORE = Path(__file__).resolve().parents[2] / "app" / "store"


async def test_migrations_match_the_models(store_url: str) -> None:
    for module in sorted(STORE.glob("*_models.py")):
        importlib.import_module(f"app.store.{module.stem}")
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
