"""``multihelix serve``: one process, or several worker processes on one port.

Every worker keeps its own in-memory state (catalogue, vector indexes, graph) and follows the
others' writes through the store's change feed (app/services/changes.py), so any worker
answers any request. What must happen once per store (migrations, the demo data of an empty
store, the first admin key) runs in the parent before the workers start.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
from typing import Any

import uvicorn
import uvicorn.config
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
    config = uvicorn.Config(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=worker_log_config(),
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
    )
    Workers(config).run()


def worker_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration plus the service's own log (start-up stages, the model
    load, the rerank runs) at INFO, each line with the worker's pid. A worker process starts
    without the command line's logging set-up: without this it logged warnings only."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["service"] = {
        "format": "%(asctime)s %(levelname)s [%(process)d] %(message)s"
    }
    config["handlers"]["service"] = {
        "formatter": "service",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"][log.name] = {"handlers": ["service"], "level": "INFO", "propagate": False}
    return config


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


class Workers(Multiprocess):
    """uvicorn's worker supervisor, with a listening socket of its own for every worker.

    uvicorn binds one socket and shares it: a worker woken by new connections accepts every
    one waiting (uvloop's accept loop), so one worker could take all 16 connections of a
    load test while the other idled (169-176 req/s against 320-360 when they were spread;
    docs/operations.md). Here every worker gets its own socket, bound to the same port with
    ``SO_REUSEPORT``, and Linux spreads new connections over the listening ones by a hash of
    each connection's addresses (macOS and the BSDs would give them all to one).

    - A worker listens only once the app has started (uvicorn creates its server after the
      lifespan start-up), so a worker still loading the store gets no connections.
    - The parent closes its copy of a socket once the worker holding it has started, so a
      socket lives only as long as its worker: when a worker dies, new connections go to
      the others until its replacement listens.

    uvicorn's supervisor reads ``sockets`` once for every worker it starts (at start-up, on
    a restart, on SIGHUP and SIGTTIN), and nowhere else: each read binds a new socket.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        self._host, self._port = config.host, config.port
        self._handed_out: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        sock = reuse_port_socket(self._host, self._port)
        self._port = sock.getsockname()[1]  # port 0 picks a free port once; the rest join it
        self._handed_out.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, _ignored: list[socket.socket]) -> None:
        """``Multiprocess.__init__`` stores the shared sockets it was given; there are none."""

    def _close_handed_out(self) -> None:
        # A started worker holds its own descriptor (the spawn start passes it to the child
        # before ``start`` returns).
        for sock in self._handed_out:
            sock.close()
        self._handed_out.clear()

    def init_processes(self) -> None:
        super().init_processes()
        self._close_handed_out()

    def keep_subprocess_alive(self) -> None:
        super().keep_subprocess_alive()
        self._close_handed_out()

    def restart_all(self) -> None:
        try:
            super().restart_all()
        finally:
            self._close_handed_out()

    def handle_ttin(self) -> None:
        super().handle_ttin()
        self._close_handed_out()


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` with ``SO_REUSEPORT``, not yet listening: IPv6
    for a host with a colon, else IPv4 (as uvicorn picks).

    It is created with ``proto`` IPPROTO_TCP: asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on connections of a socket whose ``proto`` says TCP. Without it, a
    response written in two parts waits for the client's delayed ACK: ~40 ms on Linux.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock
