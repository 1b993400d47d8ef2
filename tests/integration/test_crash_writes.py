"""kill -9 of the running server during concurrent writes, repeated, on SQLite and PostgreSQL:
every acknowledged write is there after the restart, replaying every request with its
Idempotency-Key applies each exactly once, and the in-memory index and graph equal the store."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.live_server import (
    LiveServer,
    create_admin_key,
    fresh_postgres_database,
    server_env,
    store_counts,
)

ROUNDS = 3
WRITERS = 6
MIN_ACKNOWLEDGED = 4  # writes acknowledged in a round before the kill may come
PG_URL = os.environ.get("MULTIHELIX_TEST_POSTGRES_URL")


@dataclass
class Sent:
    """One write request as sent, and what came back if it was acknowledged."""

    kind: str  # organisation | collaboration | patch
    method: str
    url: str
    body: dict[str, Any]
    key: str
    status: int | None = None
    response: Any = None
    order: int = 0

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Ledger:
    """Everything the writers sent, in order."""

    sent: list[Sent] = field(default_factory=list)
    organisations: list[int] = field(default_factory=list)  # acknowledged ids

    def add(self, request: Sent) -> Sent:
        request.order = len(self.sent)
        self.sent.append(request)
        return request


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
async def crash_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'crash.sqlite3'}"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must provide MULTIHELIX_TEST_POSTGRES_URL (a real PostgreSQL)")
        pytest.skip("MULTIHELIX_TEST_POSTGRES_URL is not set")
    async with fresh_postgres_database(PG_URL, f"multihelix_crash_{os.getpid()}") as url:
        yield url


async def test_acknowledged_writes_survive_kill_9_and_replays_write_once(
    crash_store: str, tmp_path: Path
) -> None:
    env = server_env(crash_store, tmp_path / "data", rate_limit_per_second="0")
    headers = {"Authorization": f"Bearer {create_admin_key(env)}"}
    server = LiveServer(env, tmp_path / "server.log")
    ledger = Ledger()
    rng = random.Random(20261121)
    server.start()
    try:
        for round_no in range(ROUNDS):
            since = len(ledger.sent)
            await write_until_killed(server, headers, ledger, rng, round_no)
            this_round = ledger.sent[since:]
            acknowledged = sum(r.acknowledged for r in this_round)
            # The kill came in the middle of the writes: some were answered, some cut off.
            assert acknowledged > 0 and acknowledged < len(this_round)
            server.start()
            await check_acknowledged_writes_are_present(server, headers, ledger)
            await check_derived_state_equals_the_store(server, headers, crash_store)
            applied_unanswered, response_lost = await replay_everything(
                server, headers, ledger, crash_store, since
            )
            await check_derived_state_equals_the_store(server, headers, crash_store)
            print(
                f"round {round_no}: {len(this_round)} writes sent, {acknowledged} acknowledged, "
                f"{applied_unanswered} applied but unanswered at the kill ({response_lost} "
                "of them before their response was stored: replayed as 303)"
            )
    finally:
        server.stop()


async def write_until_killed(
    server: LiveServer,
    headers: dict[str, str],
    ledger: Ledger,
    rng: random.Random,
    round_no: int,
) -> None:
    """Concurrent writers until a SIGKILL at a random moment cuts them off."""
    stop = asyncio.Event()

    async def writer(number: int, http: httpx.AsyncClient) -> None:
        mine: list[int] = []
        step = 0
        while not stop.is_set():
            step += 1
            if step % 3 == 0 and len(ledger.organisations) >= 2:
                participants = rng.sample(ledger.organisations, k=min(3, len(ledger.organisations)))
                request = Sent(
                    "collaboration",
                    "POST",
                    "/v1/collaborations",
                    {
                        "kind": "project",
                        "year": 2020 + step % 5,
                        "participants": [{"organisation_id": i} for i in participants],
                    },
                    key=str(uuid.uuid4()),
                )
            elif step % 2 == 0 and mine:
                request = Sent(
                    "patch",
                    "PATCH",
                    f"/v1/organisations/{rng.choice(mine)}",
                    {"description": f"revision {round_no}.{number}.{step}"},
                    key=str(uuid.uuid4()),
                )
            else:
                request = Sent(
                    "organisation",
                    "POST",
                    "/v1/organisations",
                    {
                        "name": f"Crash {round_no}.{number}.{step}",
                        "kind": "sme",
                        "sectors": ["diagnostics"],
                        "country": "ES",
                        "description": f"writer {number} step {step}",
                        "offers": [f"offer {step % 7}"],
                        "seeks": [f"need {step % 5}"] if step % 2 else [],
                    },
                    key=str(uuid.uuid4()),
                )
            ledger.add(request)
            try:
                response = await http.request(
                    request.method,
                    request.url,
                    json=request.body,
                    headers={"Idempotency-Key": request.key},
                )
            except httpx.HTTPError:
                return  # the server is gone: this request is unacknowledged
            request.status = response.status_code
            request.response = response.json() if response.content else None
            assert response.is_success, response.text
            if request.kind == "organisation" and request.acknowledged:
                ledger.organisations.append(request.response["id"])
                mine.append(request.response["id"])

    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        since = len(ledger.sent)
        tasks = [asyncio.create_task(writer(n, http)) for n in range(WRITERS)]
        # Kill at a random moment once writes are flowing (however slow the machine is).
        for _ in range(600):
            if sum(r.acknowledged for r in ledger.sent[since:]) >= MIN_ACKNOWLEDGED:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        server.kill()
        stop.set()
        await asyncio.gather(*tasks)


async def check_acknowledged_writes_are_present(
    server: LiveServer, headers: dict[str, str], ledger: Ledger
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        for request in ledger.sent:
            if not request.acknowledged:
                continue
            if request.kind == "organisation":
                stored = await http.get(f"/v1/organisations/{request.response['id']}")
                assert stored.status_code == 200, request
                assert stored.json()["name"] == request.body["name"]
            elif request.kind == "collaboration":
                stored = await http.get(f"/v1/collaborations/{request.response['id']}")
                assert stored.status_code == 200, request
                ids = [p["organisation_id"] for p in stored.json()["participants"]]
                assert ids == [p["organisation_id"] for p in request.body["participants"]]
        # A patch that was acknowledged holds unless a later patch of the same organisation
        # (acknowledged or cut off by the kill) replaced it.
        by_org: dict[str, list[Sent]] = {}
        for request in ledger.sent:
            if request.kind == "patch":
                by_org.setdefault(request.url, []).append(request)
        for url, patches in by_org.items():
            acknowledged = [p for p in patches if p.acknowledged]
            if not acknowledged:
                continue
            last = acknowledged[-1]
            allowed = {p.body["description"] for p in patches if p.order >= last.order}
            stored = (await http.get(url)).json()["description"]
            assert stored in allowed, (url, stored, allowed)


async def check_derived_state_equals_the_store(
    server: LiveServer, headers: dict[str, str], database_url: str
) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        health = (await http.get("/health")).json()
    store = await store_counts(database_url)
    assert health["organisations"] == store["organisations"]
    assert health["collaboration_links"] == store["collaboration_links"]
    assert health["vectors"] == store["vectors"]


async def replay_everything(
    server: LiveServer, headers: dict[str, str], ledger: Ledger, database_url: str, since: int
) -> tuple[int, int]:
    """Send every request of this round again with its key, twice: the first pass applies the
    cut-off ones exactly once, the second changes nothing at all. Returns how many cut-off
    requests had been applied before the kill, and how many of those had no stored response."""
    creates = {
        kind: sum(1 for r in ledger.sent if r.kind == kind)
        for kind in ("organisation", "collaboration")
    }
    applied_unanswered = response_lost = 0
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30) as http:
        for pass_no in range(2):
            for request in ledger.sent[since:]:
                response = await http.request(
                    request.method,
                    request.url,
                    json=request.body,
                    headers={"Idempotency-Key": request.key},
                )
                assert response.status_code < 400, (request, response.text)
                if request.acknowledged or pass_no == 1:
                    assert response.headers.get("idempotent-replayed") == "true", request
                if request.acknowledged:
                    assert response.status_code == request.status
                    assert response.json() == request.response
                elif pass_no == 0 and response.headers.get("idempotent-replayed"):
                    applied_unanswered += 1  # applied before the kill, answer never sent
                    if response.status_code == 303:  # and the response was not stored either
                        assert response.json()["outcome"] == "applied"
                        response_lost += 1
            store = await store_counts(database_url)
            assert store["organisations"] == creates["organisation"], pass_no
            assert store["collaborations"] == creates["collaboration"], pass_no
    return applied_unanswered, response_lost
