"""A `multihelix rerank` killed with SIGKILL mid-run resumes from its last committed chunk and
publishes exactly what an uninterrupted run over the same store publishes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from asgi_lifespan import LifespanManager

from app.main import create_app
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    entry = Path(sys.executable).parent / "multihelix"
    base = [str(entry)] if entry.exists() else [sys.executable, "-m", "scripts.cli"]
    return [*base, "rerank", "--top", "20", "--chunk-size", "4", "--no-progress"]


def _env(store: Path, data: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MULTIHELIX_DATABASE_URL": f"sqlite+aiosqlite:///{store}",
        "MULTIHELIX_DATA_DIR": str(data),
        "MULTIHELIX_ENCODER": "hashing",
        "MULTIHELIX_LOAD_DEMO_DATA": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


async def _fill(store: Path, tmp_path: Path) -> None:
    """The ~300 demo organisations and their collaborations, embedded by the hashing encoder."""
    url = f"sqlite+aiosqlite:///{store}"
    app = create_app(make_settings(url, tmp_path, load_demo_data=True))
    async with LifespanManager(app, startup_timeout=300):
        pass


def _query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute(sql).fetchall()


def _published(store: Path) -> list[Any]:
    (run_id,) = _query(store, "SELECT published_run_id FROM rerank_state WHERE id = 1")[0]
    return _query(
        store,
        "SELECT organisation_id, partners, items, own_marker, marker, cutoff, scores, components"
        f" FROM rerank_lists WHERE run_id = {int(run_id)} ORDER BY organisation_id",
    )


def _committed_chunks(store: Path) -> int:
    try:
        return int(_query(store, "SELECT count(*) FROM rerank_chunks")[0][0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    store = tmp_path / "killed.sqlite3"
    asyncio.run(_fill(store, tmp_path))
    twin = tmp_path / "uninterrupted.sqlite3"
    shutil.copyfile(store, twin)
    (n_orgs,) = _query(store, "SELECT count(*) FROM organisations")[0]
    assert n_orgs > 200

    process = subprocess.Popen(
        _command(),
        cwd=REPO,
        env=_env(store, tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while _committed_chunks(store) < 3:
        assert process.poll() is None, process.communicate()[0].decode()[-2000:]
        assert time.monotonic() < deadline, "the run never committed a chunk"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    (status, done), *_ = _query(store, "SELECT status, done_chunks FROM rerank_runs")
    assert status == "running" and done >= 3
    assert _query(store, "SELECT published_run_id FROM rerank_state") in ([], [(None,)])

    resumed = subprocess.run(
        _command(), cwd=REPO, env=_env(store, tmp_path / "data"), capture_output=True, timeout=600
    )
    output = resumed.stdout.decode()
    assert resumed.returncode == 0, output + resumed.stderr.decode()[-3000:]
    assert "resumed" in output and "published" in output

    plain = subprocess.run(
        _command(), cwd=REPO, env=_env(twin, tmp_path / "data2"), capture_output=True, timeout=600
    )
    assert plain.returncode == 0, plain.stderr.decode()[-3000:]
    assert "resumed" not in plain.stdout.decode()

    killed = _published(store)
    assert len(killed) == n_orgs and sum(items for _, _, items, *_ in killed) > 0
    assert killed == _published(twin)
    # Exactly one run, now published: the resumed one, not a second run started over.
    assert _query(store, "SELECT status FROM rerank_runs") == [("published",)]
