"""Several processes on one store (``multihelix serve --workers N``, replicas on one
PostgreSQL, an import beside the service) follow each other's writes through the change feed:
every copy of the in-memory state ends as the store is."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import DEMO_DATA, create_app
from app.services.changes import KEEP_FOR, last_seq, record_changes
from app.services.derived import DerivedState
from app.services.importer import read_json
from app.serving import reuse_port_socket
from app.store import models as m
from app.store.database import Database
from embeddings import Encoder
from matching.scoring import LinearScorer
from tests.api.helpers import create_org, link
from tests.conftest import Service, make_settings
from tests.integration.live_server import create_admin_key, running, server_env
from tests.integration.states import assert_same_state

SYNC_S = 0.05


async def store_seq(db: Database) -> int:
    async with db.read() as session:
        return await last_seq(session)


async def caught_up(service: Service, timeout_s: float = 10.0) -> None:
    """Until the service's follower has applied every entry of the feed."""
    deadline = time.monotonic() + timeout_s
    target = await store_seq(service.ctx.db)
    while service.ctx.derived.applied_seq < target:
        assert time.monotonic() < deadline, "the follower did not catch up"
        await asyncio.sleep(SYNC_S)


async def fresh_state(db: Database, encoder: Encoder) -> DerivedState:
    """The state a process starting now would build from the store."""
    derived = DerivedState(encoder, LinearScorer.load(None), None)
    await derived.load(db)
    return derived


async def matched_ids(http: httpx.AsyncClient, org_id: int) -> set[int]:
    response = await http.get(f"/v1/organisations/{org_id}/matches", params={"limit": 50})
    assert response.status_code == 200, response.text
    return {item["organisation"]["id"] for item in response.json()["items"]}


async def test_two_processes_follow_each_others_writes(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    apps = [
        create_app(
            make_settings(store_url, tmp_path / name, state_sync_interval_s=SYNC_S),
            encoder=hashing_encoder,
        )
        for name in ("a", "b")
    ]
    async with (
        LifespanManager(apps[0], startup_timeout=120) as one,
        LifespanManager(apps[1], startup_timeout=120) as two,
    ):
        a, b = Service(apps[0], one.app), Service(apps[1], two.app)
        async with await a.client() as http_a, await b.client() as http_b:
            x = await create_org(
                http_a, "Xenogen", description="AI pathology", offers=["AI image analysis"]
            )
            y = await create_org(
                http_a, "Ymed", description="hospital", seeks=["AI image analysis for pathology"]
            )
            z = await create_org(http_b, "Zeta Dx", description="diagnostics", offers=["assays"])
            collab = await link(http_a, x["id"], y["id"])
            await caught_up(a)
            await caught_up(b)
            # Y is X's partner now, in B's copy too (written through A).
            assert await matched_ids(http_b, x["id"]) == {z["id"]}
            assert await matched_ids(http_a, z["id"]) == {x["id"], y["id"]}

            changed = await http_b.patch(
                f"/v1/organisations/{x['id']}", json={"offers": ["clinical validation site"]}
            )
            assert changed.status_code == 200, changed.text
            await caught_up(a)
            profile = a.ctx.derived.state.catalog.get(x["id"])
            assert profile is not None and profile.offers == ("clinical validation site",)
            assert_same_state(a.ctx.derived, b.ctx.derived)

            assert (await http_a.delete(f"/v1/organisations/{y['id']}")).status_code == 204
            await caught_up(b)
            assert y["id"] not in b.ctx.derived.state.catalog
            assert await matched_ids(http_b, z["id"]) == {x["id"]}
            # The collaboration lost a participant with Y and went with it.
            assert not b.ctx.derived.state.graph.has_collaboration(collab["id"])

            w = await create_org(http_b, "Wales Biobank", description="biobank")
            again = await link(http_b, x["id"], w["id"], z["id"])
            await caught_up(a)
            assert await matched_ids(http_a, x["id"]) == set()  # both are partners now
            deleted = await http_a.delete(f"/v1/collaborations/{again['id']}")
            assert deleted.status_code == 204
            await caught_up(b)
            assert await matched_ids(http_b, x["id"]) == {w["id"], z["id"]}

            health = [(await http.get("/health")).json() for http in (http_a, http_b)]
            assert health[0]["organisations"] == health[1]["organisations"] == 3
            seq = await store_seq(a.ctx.db)
            assert [h["process"]["changes_applied"] for h in health] == [seq, seq]

        expected = await fresh_state(a.ctx.db, hashing_encoder)
        assert_same_state(a.ctx.derived, expected)
        assert_same_state(b.ctx.derived, expected)


async def test_a_write_made_outside_the_service_is_followed(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    """A change recorded by any writer of the store (here: a bare transaction, as another
    machine's service would commit it) reaches a running service without a restart."""
    settings = make_settings(store_url, tmp_path, state_sync_interval_s=SYNC_S)
    app = create_app(settings, encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        service = Service(app, manager.app)
        async with await service.client() as http:
            x = await create_org(http, "Xenogen", description="AI pathology")
            y = await create_org(http, "Ymed", description="hospital")
            await caught_up(service)
            assert await matched_ids(http, x["id"]) == {y["id"]}
            db = Database(store_url)
            try:
                async with db.sessions() as session, session.begin():
                    row = m.Collaboration(kind="project", year=2024, weight=1.0)
                    row.participants = [
                        m.CollaborationParticipant(organisation_id=x["id"], position=0),
                        m.CollaborationParticipant(organisation_id=y["id"], position=1),
                    ]
                    session.add(row)
                    await session.flush()
                    await record_changes(session, collaborations=[row.id])
            finally:
                await db.dispose()
            await caught_up(service)
            assert await matched_ids(http, x["id"]) == set()
            assert service.ctx.derived.state.graph.has_collaboration(row.id)


async def test_a_process_that_lost_the_feed_reads_the_store_again_and_freezes_it(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    """After too long without reading the change feed, the follower rebuilds the whole state,
    and keeps the rebuilt objects out of full garbage collections as the start does."""
    settings = make_settings(store_url, tmp_path, state_sync_interval_s=SYNC_S)
    app = create_app(settings, encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        service = Service(app, manager.app)
        async with await service.client() as http:
            x = await create_org(http, "Xenogen", description="AI pathology")
        derived = service.ctx.derived
        before = derived.state
        # Under the lock, as a catch-up sets it.
        async with derived.applying:
            derived._caught_up_at = time.monotonic() - KEEP_FOR.total_seconds()
        deadline = time.monotonic() + 30
        while derived.state is before:
            assert time.monotonic() < deadline, "the follower did not read the store again"
            await asyncio.sleep(SYNC_S)
        profile = derived.state.catalog.get(x["id"])
        assert profile is not None and profile is not before.catalog.get(x["id"])
        assert gc.is_tracked(profile)
        assert not any(obj is profile for obj in gc.get_objects())


def test_worker_sockets_share_the_port_and_the_kernel_spreads_connections() -> None:
    """Each worker's socket is bound to the one port with SO_REUSEPORT; the kernel spreads new
    connections over every listening one, and they say TCP, so asyncio sets TCP_NODELAY on
    every accepted connection (no 40 ms delayed-ACK stalls)."""
    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port)
    listeners = (first, second)
    clients: list[socket.socket] = []
    try:
        assert first.proto == second.proto == socket.IPPROTO_TCP
        with pytest.raises(ConnectionRefusedError):  # bound, but no worker listens yet
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        for listener in listeners:
            listener.listen()  # a worker does this once its app has started
            listener.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        accepted = [0, 0]
        deadline = time.monotonic() + 10
        while sum(accepted) < len(clients):
            assert time.monotonic() < deadline, accepted
            for at, listener in enumerate(listeners):
                try:
                    connection, _ = listener.accept()
                except BlockingIOError:
                    continue
                with connection:
                    assert connection.proto == socket.IPPROTO_TCP
                accepted[at] += 1
        # All 64 on one socket would happen with probability 2 ** -63.
        assert min(accepted) > 0, accepted
    finally:
        for sock in (*clients, first, second):
            sock.close()


def test_serve_with_two_workers_answers_from_both_and_they_agree(tmp_path: Path) -> None:
    """``multihelix serve --workers 2`` on an empty store: the demo data is loaded once (by
    the parent, before the workers start), both workers answer, and whichever answers holds
    the writes the other one took."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    env = server_env(url, tmp_path / "data", state_sync_interval_s="0.1", load_demo_data="true")
    key = create_admin_key(env)
    headers = {"Authorization": f"Bearer {key}"}
    demo = len(read_json(DEMO_DATA).organisations)
    with running(env, tmp_path / "server.log", "--workers", "2") as server:
        ids = []
        for i in range(6):
            # A new connection per request: the kernel hands it to either worker.
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                response = http.post(
                    "/v1/organisations",
                    json={
                        "name": f"Org {i}",
                        "kind": "sme",
                        "sectors": ["biotech"],
                        "country": "ES",
                        "description": f"organisation {i} working on topic {i % 3}",
                    },
                )
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
        time.sleep(1.0)  # ten sync intervals
        answers: Counter[int] = Counter()  # per worker process
        deadline = time.monotonic() + 60
        while len(answers) < 2:
            assert time.monotonic() < deadline, f"one worker answered everything: {answers}"
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                health = http.get("/health").json()
                assert health["organisations"] == demo + 6, health
                for org_id in ids:  # in this worker's catalogue, whoever wrote it
                    found = http.get(f"/v1/organisations/{org_id}/matches")
                    assert found.status_code == 200, found.text
            answers[health["process"]["pid"]] += 1
        assert server.process is not None and server.process.pid not in answers
        # Each worker logs its own start-up, marked with its pid.
        log = server.log_path.read_text()
        for pid in answers:
            assert f"[{pid}] state rebuilt from the store" in log, server.log()

        # A worker killed: its socket closes with it, so every new connection goes to the
        # other while the supervisor starts a replacement, which then takes its share.
        killed = next(iter(answers))
        os.kill(killed, signal.SIGKILL)
        time.sleep(0.5)
        for _ in range(10):
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
                health = http.get("/health").json()
            assert health["process"]["pid"] != killed
        survivors: set[int] = set()
        deadline = time.monotonic() + 120
        while len(survivors) < 2:
            assert time.monotonic() < deadline, f"no replacement answered: {survivors}"
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as http:
                survivors.add(http.get("/health").json()["process"]["pid"])
            time.sleep(0.05)
        assert killed not in survivors
    assert (tmp_path / "server.log").read_text().count("demo data loaded") == 1


async def test_the_graph_snapshot_is_rebuilt_only_when_links_change(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> None:
    """Rebuilding the CSR snapshot and the hubs' walk table takes ~0.7 s at 100k
    organisations: an organisation without links must not cost a rebuild per write."""
    app = create_app(make_settings(store_url, tmp_path), encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        service = Service(app, manager.app)
        async with await service.client() as http:
            x = await create_org(http, "Xenogen", description="AI pathology")
            state = service.ctx.derived.state
            before = state.snapshot()
            y = await create_org(http, "Ymed", description="hospital")
            patched = await http.patch(f"/v1/organisations/{x['id']}", json={"region": "Lund"})
            assert patched.status_code == 200, patched.text
            assert state.snapshot() is before
            await link(http, x["id"], y["id"])
            assert state.snapshot() is not before
            assert state.snapshot().direct_partners(x["id"]).tolist() == [y["id"]]
