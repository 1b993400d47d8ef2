"""Opening the service's parts (store, schema, derived state, model), shared by the HTTP lifespan
and the command line; the model loads once the state is read, while requests are served."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.services.context import ServiceContext
from app.services.derived import DerivedState, freeze_loaded_objects
from app.settings import Settings
from app.store.database import Database
from app.store.schema import upgrade_schema
from embeddings import BatchingEncoder, Encoder
from embeddings.encoder import LoadingEncoder
from matching.scoring import LinearScorer

log = logging.getLogger("multihelix")


@asynccontextmanager
async def open_service(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    follow: bool = True,
    model_on_demand: bool = False,
) -> AsyncIterator[ServiceContext]:
    """A ready :class:`ServiceContext`: schema migrated, state rebuilt, model loading.

    The model (importing torch, reading the weights) starts loading in a thread once the state
    is read, and the context is handed out without waiting for it: requests that embed no
    text are answered at once, and those that do wait for the model (``BatchingEncoder``
    queues their texts). Loading it alongside the store instead made both slower: the two
    compete for the interpreter lock, and on the 100k store the service was ready 10 s later
    (docs/operations.md, "Start-up"). A failed load leaves the service up: /health says so
    and text writes are refused (503).

    With ``follow`` (the service), the state also takes other processes' writes as they land
    (app/services/changes.py); without (a re-ranking run on the command line), it changes only
    with this process's own writes. With ``model_on_demand`` (the re-ranking command), the
    model loads only when a text is first embedded."""
    started = time.perf_counter()
    model: Encoder = (
        encoder if encoder is not None else LoadingEncoder(settings.encoder, on_demand=True)
    )
    db = Database(settings.database_url)
    try:
        t0 = time.perf_counter()
        await upgrade_schema(db)
        timings = {"schema": time.perf_counter() - t0}
        derived = DerivedState(
            model, LinearScorer.load(settings.ranker_model), settings.reference_year
        )
        index_dir = settings.data_dir / "indexes"
        timings.update(await derived.load(db, index_dir, defer_training=True))
        log.info(
            "state rebuilt from the store in %.1f s: %d organisations, %d links (%s)",
            time.perf_counter() - started,
            len(derived.state.catalog),
            derived.state.graph.number_of_links,
            ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
        )
        freeze_loaded_objects()
        if isinstance(model, LoadingEncoder) and not model_on_demand:
            model.add_done_callback(_log_model_load)
            model.start()
        # IVF layouts that had to be rebuilt are trained while requests are served (exact
        # scans answer meanwhile); the indexes are then written in the background, and again
        # at a clean shutdown, so the next start can skip both.
        training = (
            asyncio.create_task(derived.train_deferred(db)) if derived.deferred_spaces else None
        )
        saving = asyncio.create_task(_save_after(training, derived, db, index_dir))
        # Other processes' writes (app/services/changes.py); one's own apply as they commit.
        following = (
            asyncio.create_task(derived.follow(db, settings.state_sync_interval_s))
            if follow
            else None
        )
        try:
            async with BatchingEncoder(model, max_batch=settings.embed_batch_size) as batching:
                yield ServiceContext(settings=settings, db=db, derived=derived, encoder=batching)
        finally:
            if following is not None:
                following.cancel()
            if training is not None:
                training.cancel()  # a stop does not wait for k-means; the next start trains
            await saving
            await _save_indexes(derived, db, index_dir)
    finally:
        await db.dispose()


def _log_model_load(model: LoadingEncoder) -> None:
    if model.status == "ready":
        log.info("model loaded in %.1f s, after the state", model.load_s or 0.0)
    else:
        log.error("%s: texts cannot be embedded until a restart", model.error)


async def _save_after(
    training: asyncio.Task[None] | None, derived: DerivedState, db: Database, index_dir: Path
) -> None:
    """Save the vector indexes once the deferred IVF training is over."""
    if training is not None:
        try:
            await training
        except asyncio.CancelledError:
            return
        except Exception:
            log.warning("IVF training failed: exact scans keep serving", exc_info=True)
            return
    await _save_indexes(derived, db, index_dir)


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
