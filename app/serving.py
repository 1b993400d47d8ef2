"""``multihelix serve``: one process, or several worker processes on one port.

Every worker keeps its own in-memory state (catalogue, vector indexes, graph) and follows the
others' writes through the store's change feed (app/services/changes.py), so any worker
answers any request. What must happen once per store (migrations, the demo data of an empty
store, the first admin key) runs in the parent before the workers start.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from sqlalchemy import select
from uvicorn.supervisors import Multiprocess

from app.bootstrap import open_service
from app.main import announce_first_admin_key, create_app, load_demo
from app.services.keys import count_api_keys
from app.settings import Settings
from app.store import models as m
from app.store.database import Database
from app.store.schema import upgrade_schema

log = logging.getLogger("multihelix")

# uvicorn's supervisor restarts a worker that misses its 5 s health check; a worker loading
# the model and a large store is busy for longer than that (100k organisations: ~30 s).
WORKER_START_TIMEOUT_S = 600


def serve(host: str, port: int, workers: int = 1) -> None:
    """Serve the API until interrupted."""
    if workers <= 1:
        uvicorn.run(create_app(), host=host, port=port, log_level="info")
        return
    asyncio.run(prepare_store(Settings()))
    config = _TcpConfig(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


async def prepare_store(settings: Settings) -> None:
    """Migrate the store, fill an empty one with the demo data, and create the first admin
    key, before several workers start (each would otherwise race to do it)."""
    db = Database(settings.database_url)
    try:
        await upgrade_schema(db)
        if settings.load_demo_data and await _has_no_organisations(db):
            async with open_service(settings) as ctx:
                await load_demo(ctx)
        if await count_api_keys(db) == 0:
            await announce_first_admin_key(db)
    finally:
        await db.dispose()


async def _has_no_organisations(db: Database) -> bool:
    async with db.read() as session:
        return await session.scalar(select(m.Organisation.id).limit(1)) is None


class _TcpConfig(uvicorn.Config):
    """Binds the shared listening socket as a TCP socket (``proto`` IPPROTO_TCP).

    uvicorn binds it with ``proto`` 0, and asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections of a socket whose ``proto`` says TCP. Without it, a
    response written in two parts waits for the client's delayed ACK: ~40 ms on Linux.
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            # Re-wrapping the same descriptor reads its protocol from the kernel (SO_PROTOCOL).
            sock = socket.socket(fileno=sock.detach())
        return sock
