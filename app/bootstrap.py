"""Opening the service's parts in order (store, schema, model, derived state), shared by the
HTTP lifespan and the command line."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
        timings = await derived.load(db)
        log.info(
            "state rebuilt from the store in %.1f s: %d organisations, %d links (%s)",
            time.perf_counter() - started,
            len(derived.state.catalog),
            derived.state.graph.number_of_links,
            ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
        )
        async with BatchingEncoder(model, max_batch=settings.embed_batch_size) as batching:
            yield ServiceContext(settings=settings, db=db, derived=derived, encoder=batching)
    finally:
        await db.dispose()
