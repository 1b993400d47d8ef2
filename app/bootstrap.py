"""Opening the service's parts in order (store, schema, model, derived state), shared by the
HTTP lifespan and the command line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread

from app.services.context import ServiceContext
from app.services.derived import DerivedState
from app.settings import Settings
from app.store.database import Database
from app.store.schema import upgrade_schema
from embeddings import BatchingEncoder, Encoder, load_encoder
from matching.scoring import LinearScorer

log = logging.getLogger("multihelix")


@asynccontextmanager
async def open_service(
    settings: Settings, *, encoder: Encoder | None = None
) -> AsyncIterator[ServiceContext]:
    """A ready :class:`ServiceContext`: schema migrated, model loaded, state rebuilt."""
    started = time.perf_counter()
    db = Database(settings.database_url)
    try:
        await upgrade_schema(db)
        model: Encoder = (
            encoder
            if encoder is not None
            else await anyio.to_thread.run_sync(load_encoder, settings.encoder)
        )
        derived = DerivedState(
            model, LinearScorer.load(settings.ranker_model), settings.reference_year
        )
        index_dir = settings.data_dir / "indexes"
        timings = await derived.load(db, index_dir)
        log.info(
            "state rebuilt from the store in %.1f s: %d organisations, %d links (%s)",
            time.perf_counter() - started,
            len(derived.state.catalog),
            derived.state.graph.number_of_links,
            ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
        )
        # Written in the background so that start-up does not wait for the disk; again at a
        # clean shutdown, so the next start can skip the build (IVF training at 100k).
        saving = asyncio.create_task(_save_indexes(derived, db, index_dir))
        try:
            async with BatchingEncoder(model, max_batch=settings.embed_batch_size) as batching:
                yield ServiceContext(settings=settings, db=db, derived=derived, encoder=batching)
        finally:
            await saving
            await _save_indexes(derived, db, index_dir)
    finally:
        await db.dispose()


async def _save_indexes(derived: DerivedState, db: Database, index_dir: Path) -> None:
    """Save the vector indexes; a failure costs only a rebuild at the next start."""
    started = time.perf_counter()
    try:
        if await derived.save_indexes(db, index_dir):
            log.info(
                "vector indexes saved to %s in %.1f s", index_dir, time.perf_counter() - started
            )
    except Exception:
        log.warning("could not save the vector indexes to %s", index_dir, exc_info=True)
