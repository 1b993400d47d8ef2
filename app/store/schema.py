"""Schema migrations (Alembic), applied at start-up and by ``multihelix migrate``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from app.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade_schema(database: Database) -> None:
    """Bring the store's schema to the newest revision (idempotent)."""

    def _upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "heads")

    async with database.engine.begin() as connection:
        await connection.run_sync(_upgrade)
