"""The FastAPI application: factory, lifespan (store, model, derived state, demo data)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from app.audit import AuditMiddleware
from app.bootstrap import open_service
from app.errors import install_error_handlers
from app.limits import ExpensiveRoutes, Idempotency, LoadShedding, RateLimit
from app.middleware import BodyGuard
from app.routers import (
    collaborations,
    consortia,
    events,
    matches,
    meta,
    network,
    organisations,
    privacy,
    rerank,
)
from app.services.context import ServiceContext
from app.services.importer import import_batch, read_json
from app.services.keys import count_api_keys, create_api_key
from app.settings import Settings
from app.store.database import Database
from embeddings import Encoder
from embeddings.encoder import usable_cpus
from embeddings.kernels import warm_up as warm_up_vector_kernels
from graph.kernels import warm_up as warm_up_graph_kernels

log = logging.getLogger("multihelix")

DEMO_DATA = Path(__file__).parent / "demo" / "organisations.json"

DESCRIPTION = """
**MultiHelix** suggests partners for organisations in life-science and health clusters:
who should an SME, university, hospital or patient organisation meet that it does not
know yet, preferably in another sector or country?

It keeps organisations and their existing collaborations as a graph, embeds what each
organisation *offers* and *seeks* with a sentence-embedding model, and ranks partners on
reciprocal offer/seek fit, profile similarity and graph proximity, with a plain-words reason
for every suggestion.

Start with **GET /v1/organisations** to find an organisation's id, then
**GET /v1/organisations/{id}/matches**, or describe a need in **POST /v1/search**.
Errors are RFC 9457 problem documents.
"""

ROUTERS = (
    organisations.router,
    collaborations.router,
    matches.router,
    privacy.router,
    rerank.router,
    events.router,
    network.router,
    consortia.router,
    meta.router,
)

TAGS = [
    {"name": "organisations", "description": "Members and other organisations of the network."},
    {
        "name": "collaborations",
        "description": "Existing collaboration links: projects, publications, supply, ...",
    },
    {"name": "matches", "description": "Ranked, explained partner suggestions and search."},
    {
        "name": "people",
        "description": "Delegates, experts and contact persons, with consent and legal basis.",
    },
    {"name": "privacy", "description": "GDPR erasure and export, and the append-only audit log."},
    {"name": "rerank", "description": "Nightly batch re-ranking runs: status, progress, start."},
    {"name": "network", "description": "Network map, interactive page and ecosystem insights."},
    {"name": "consortia", "description": "Consortium builder for funding calls."},
    {"name": "service", "description": "Health and vocabularies."},
]


def create_app(settings: Settings | None = None, *, encoder: Encoder | None = None) -> FastAPI:
    """Build the app. ``encoder`` lets tests share one loaded model across apps."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = time.perf_counter()
        # Ranking runs many small matrix products at once on request threads; a BLAS thread
        # pool per product makes them wait on each other (10k organisations: 16% of server
        # CPU spent in one 50 x 384 product under load). One BLAS thread per caller; the model
        # keeps torch's own pool.
        threadpool_limits(limits=1, user_api="blas")
        # The compiled kernels compile on first use (a few seconds; a fraction of one with the
        # on-disk cache): here, beside loading the store, not in the first request.
        compiled = asyncio.create_task(asyncio.to_thread(warm_up_kernels))
        async with open_service(settings, encoder=encoder) as ctx:
            await compiled
            if settings.load_demo_data and len(ctx.derived.state.catalog) == 0:
                await load_demo(ctx)
            if await count_api_keys(ctx.db) == 0:
                await announce_first_admin_key(ctx.db)
            app.state.ctx = ctx
            log.info("MultiHelix ready in %.1f s", time.perf_counter() - started)
            try:
                yield
            finally:
                app.state.ctx = None

    app = FastAPI(
        title="MultiHelix",
        version="0.1.0",
        summary="Partner matchmaking for life-science and health clusters.",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # The last added runs first: rate limit, load shedding, body guard, idempotency, ranking
    # limits, then the audit log (innermost: it records what the routes answered).
    app.add_middleware(AuditMiddleware)
    app.add_middleware(
        ExpensiveRoutes,
        max_concurrent=settings.max_concurrent_matches or usable_cpus(),
        max_queued=settings.max_queued_matches,
        timeout_s=settings.match_timeout_s,
    )
    app.add_middleware(Idempotency)
    app.add_middleware(BodyGuard, max_bytes=settings.max_request_bytes)
    app.add_middleware(
        LoadShedding,
        max_concurrent=settings.max_concurrent_requests,
        max_queued=settings.max_queued_requests,
        queue_timeout_s=settings.queue_timeout_s,
    )
    app.add_middleware(
        RateLimit, per_second=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    return app


async def load_demo(ctx: ServiceContext) -> None:
    """Load the fictional demo organisations into an empty store, with progress on the log."""
    started = time.perf_counter()
    log.info("empty store: loading demo data from %s", DEMO_DATA.name)
    batch = read_json(DEMO_DATA)
    report = await import_batch(
        ctx,
        batch,
        is_demo=True,
        progress=lambda msg: log.info("demo data: %s", msg),
        chunk_size=50,
    )
    log.info(
        "demo data loaded in %.1f s: %d organisations, %d collaborations",
        time.perf_counter() - started,
        report.organisations_created,
        report.collaborations_created,
    )


async def announce_first_admin_key(db: Database) -> None:
    """Create the first admin key of an empty store and print it once, like a notebook token."""
    created = await create_api_key(db, role="admin", label="first start")
    print(
        "\n" + "=" * 78 + "\n"
        "  MultiHelix admin API key (shown once; keep it safe, revoke with\n"
        "  `multihelix keys revoke " + created.prefix + "`):\n\n"
        "      " + created.key + "\n\n"
        "  Open /docs, click 'Authorize' and paste it. Make keys for staff, organisers,\n"
        "  members and batch jobs with `multihelix keys create --role ROLE --tenant T`.\n"
        + "=" * 78
        + "\n",
        flush=True,
    )


def warm_up_kernels() -> None:
    warm_up_vector_kernels()
    warm_up_graph_kernels()
