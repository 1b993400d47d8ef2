"""A real ``multihelix serve`` process on a loopback port, for tests that need one: crash
(kill -9) tests and schema fuzzing. Also fresh PostgreSQL databases and store counts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parents[2]
MULTIHELIX = Path(sys.executable).parent / "multihelix"
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment of a test server: hashing encoder, no demo data, the given store."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MULTIHELIX_DATABASE_URL": database_url,
        "MULTIHELIX_DATA_DIR": str(data_dir),
        "MULTIHELIX_ENCODER": "hashing",
        "MULTIHELIX_LOAD_DEMO_DATA": "false",
    }
    env.update({f"MULTIHELIX_{k.upper()}": v for k, v in settings.items()})
    return env


def create_admin_key(env: dict[str, str]) -> str:
    """``multihelix keys create --role admin``: the key is the first line it prints."""
    done = subprocess.run(
        [str(MULTIHELIX), "keys", "create", "--role", "admin", "--label", "test"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.splitlines()[0].strip()


class LiveServer:
    """``multihelix serve`` as a child process in its own session, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args  # more ``multihelix serve`` options, e.g. "--workers", "2"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(MULTIHELIX),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready in {START_TIMEOUT_S:.0f} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a power cut or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not stop in time."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


@contextlib.contextmanager
def running(env: dict[str, str], log_path: Path, *args: str) -> Iterator[LiveServer]:
    server = LiveServer(env, log_path, *args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def fresh_postgres_database(base_url: str, name: str) -> AsyncIterator[str]:
    """A new, empty database ``name`` on the test PostgreSQL server (dropped afterwards), so
    that a server subprocess never shares a database with the in-process tests."""
    admin_url = make_url(base_url).set(database="postgres")
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with contextlib.suppress(Exception):
            async with engine.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()


async def store_counts(database_url: str) -> dict[str, Any]:
    """What /health should report, computed from the store's tables directly."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            organisations = (
                await conn.execute(text("SELECT count(*) FROM organisations"))
            ).scalar()
            collaborations = (
                await conn.execute(text("SELECT count(*) FROM collaborations"))
            ).scalar()
            per_field = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT field, count(DISTINCT organisation_id) FROM embeddings "
                            "GROUP BY field"
                        )
                    )
                ).all()
            )
            rows = (
                await conn.execute(
                    text("SELECT collaboration_id, organisation_id FROM collaboration_participants")
                )
            ).all()
            records = (
                await conn.execute(text("SELECT count(*) FROM idempotency_records"))
            ).scalar()
    finally:
        await engine.dispose()
    members: dict[int, set[int]] = {}
    for collab_id, org_id in rows:
        members.setdefault(collab_id, set()).add(org_id)
    pairs = {
        (a, b)
        for group in members.values()
        if len(group) >= 2
        for a in group
        for b in group
        if a < b
    }
    return {
        "organisations": organisations,
        "collaborations": collaborations,
        "collaboration_links": len(pairs),
        "vectors": {
            "profile": per_field.get("profile", 0),
            "offers": per_field.get("offer", 0),
            "seeks": per_field.get("seek", 0),
        },
        "idempotency_records": records,
    }
