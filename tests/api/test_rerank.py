"""Batch re-ranking runs: publication, serving fresh lists, incremental runs, the lease,
resumption, pruning, export and erasure (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select, update

from app.routers.matches import match_item
from app.schemas.matches import Match
from app.services import rerank
from app.services.rerank import (
    RunOptions,
    begin_run,
    erase_from_runs,
    export_run,
    run_rerank,
    unpack_list,
)
from app.store.rerank_models import RerankList, RerankRun, RerankState
from matching import batch, ranker
from matching.ranker import MatchQuery, rank_partners
from tests.api.helpers import create_org, link
from tests.conftest import Service

NEEDS = [
    "GMP manufacturing of viral vectors",
    "clinical validation site for a diagnostic",
    "AI models for digital pathology",
    "probiotic functional food trials",
    "wearable ECG monitoring",
]


async def make_network(http: httpx.AsyncClient, n: int = 14) -> list[int]:
    """Organisations with offers and needs across a few topics, some of them linked."""
    ids = []
    for i in range(n):
        org = await create_org(
            http,
            f"Org {i:02d}",
            country=["ES", "FR", "SE", "DK"][i % 4],
            sectors=[["diagnostics"], ["medtech"], ["biotech"], ["pharma"]][i % 4],
            offers=[NEEDS[i % 5], f"{NEEDS[(i + 2) % 5]} services"],
            seeks=[NEEDS[(i + 1) % 5]],
            description=f"Organisation number {i} working on {NEEDS[i % 5]}.",
        )
        ids.append(org["id"])
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (6, 7), (0, 8), (9, 10), (1, 11)]
    pairs += [(i, i + 13) for i in range(0, n - 13, 3)]
    for a, b in pairs:
        if b < n:
            await link(http, ids[a], ids[b])
    if n > 12:
        await link(http, ids[2], ids[5], ids[12])
    return ids


def searched_candidates(
    monkeypatch: pytest.MonkeyPatch, *, text: int, graph: int, popular: int
) -> None:
    """Candidates from searches, as on a large network, on a network of a few dozen: text
    and graph neighbours and best-connected organisations, at most this many of each."""
    monkeypatch.setattr(ranker, "EXHAUSTIVE_LIMIT", 5)
    monkeypatch.setattr(ranker, "TEXT_CANDIDATES", text)
    monkeypatch.setattr(ranker, "GRAPH_CANDIDATES", graph)
    monkeypatch.setattr(ranker, "POPULAR_CANDIDATES", popular)


async def stored_lists(service: Service, run_id: int) -> dict[int, list[tuple[Any, ...]]]:
    """Per organisation with a non-empty list: (rank, partner, score, component bytes) rows."""
    async with service.ctx.db.read() as session:
        stored = (
            await session.scalars(
                select(RerankList)
                .where(RerankList.run_id == run_id)
                .order_by(RerankList.organisation_id)
            )
        ).all()
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in stored:
        cands, scores, components = unpack_list(row)
        for rank, (cand, score) in enumerate(zip(cands.tolist(), scores.tolist(), strict=True), 1):
            out.setdefault(row.organisation_id, []).append(
                (rank, cand, score, components[rank - 1].tobytes())
            )
    return out


async def count(service: Service, model: Any) -> int:
    async with service.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_run_publishes_every_list_and_matches_serve_it_while_fresh(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client)
    report = await run_rerank(service.ctx, RunOptions(top_k=12, chunk_size=4))
    assert report.status == "published" and report.ranked == len(ids)

    runs = (await client.get("/v1/rerank/runs")).json()
    assert runs["total"] == 1
    run = runs["items"][0]
    assert run["id"] == report.run_id and run["status"] == "published" and run["is_current"]
    assert run["progress"]["fraction"] == 1.0
    assert run["progress"]["total_chunks"] == 4 and run["progress"]["done_chunks"] == 4
    assert run["parameters"]["top_k"] == 12 and run["snapshot_marker"]
    assert run["model_versions"]["ranker"]

    state = service.ctx.derived.state
    for org_id in ids[:5]:
        for limit in (12, 10, 5):
            body = (await client.get(f"/v1/organisations/{org_id}/matches?limit={limit}")).json()
            # A shorter list is served only when it is the start of the stored one.
            if not batch.is_prefix(limit, 12):
                assert body["source"] == "live"
                continue
            assert body["source"] == "batch" and body["run_id"] == report.run_id
            assert body["computed_at"]
            live = [
                Match.model_validate(match_item(m)).model_dump(mode="json")
                for m in rank_partners(state, org_id, MatchQuery(limit=limit))
            ]
            assert body["items"] == live
    assert batch.is_prefix(12, 12)

    # Options the run did not use, or more partners than it kept, are ranked live.
    for params in ({"diversity": 0.9}, {"country": "SE"}, {"limit": 13}, {"live": True}):
        body = (await client.get(f"/v1/organisations/{ids[0]}/matches", params=params)).json()
        assert body["source"] == "live" and body["run_id"] is None


async def test_a_newcomer_waits_for_the_next_run_unless_live_ranking_is_asked_for(
    service: Service, client: httpx.AsyncClient
) -> None:
    # Fresh means nothing the list was ranked from changed: an organisation added since the
    # run is not on it, so the list is still served; live=true ranks now and finds it.
    ids = await make_network(client)
    report = await run_rerank(service.ctx, RunOptions(top_k=12))
    newcomer = await create_org(
        client, "Newcomer", country="IT", sectors=["diagnostics"], offers=[NEEDS[1]]
    )
    url = f"/v1/organisations/{ids[0]}/matches?limit=12"

    served = (await client.get(url)).json()
    live = (await client.get(url, params={"live": "true"})).json()

    assert served["source"] == "batch" and served["run_id"] == report.run_id
    assert newcomer["id"] not in [m["organisation"]["id"] for m in served["items"]]
    assert live["source"] == "live" and live["run_id"] is None
    assert newcomer["id"] in [m["organisation"]["id"] for m in live["items"]]


async def test_the_published_run_pointer_is_read_again_after_its_trust_period(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The match endpoint reads the published-run pointer once per PUBLISHED_RUN_SECONDS;
    another process changing it (here: straight in the store) is seen when that ends."""
    ids = await make_network(client)
    clock = [1_000.0]
    monkeypatch.setattr(rerank.time, "monotonic", lambda: clock[0])
    report = await run_rerank(service.ctx, RunOptions(top_k=10))
    url = f"/v1/organisations/{ids[0]}/matches"
    assert (await client.get(url)).json()["run_id"] == report.run_id
    async with service.ctx.db.sessions() as session, session.begin():
        await session.execute(update(RerankState).values(published_run_id=None))
    assert (await client.get(url)).json()["source"] == "batch"  # still trusted
    clock[0] += rerank.PUBLISHED_RUN_SECONDS + 0.01
    assert (await client.get(url)).json()["source"] == "live"


async def test_a_changed_organisation_is_ranked_live_until_the_next_run(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client)
    report = await run_rerank(service.ctx, RunOptions(top_k=5))
    changed = ids[3]
    lists = await stored_lists(service, report.run_id)
    unrelated = next(
        o
        for o in ids
        if o != changed
        and changed not in {c for _, c, _, _ in lists[o]}
        and changed not in service.ctx.derived.state.snapshot().direct_partners(o).tolist()
    )
    patched = await client.patch(
        f"/v1/organisations/{changed}", json={"seeks": ["veterinary vaccines for poultry"]}
    )
    assert patched.status_code == 200
    assert (await client.get(f"/v1/organisations/{changed}/matches")).json()["source"] == "live"
    still = (await client.get(f"/v1/organisations/{unrelated}/matches?limit=5")).json()
    assert still["source"] == "batch"

    again = await run_rerank(service.ctx, RunOptions(top_k=5))
    body = (await client.get(f"/v1/organisations/{changed}/matches?limit=5")).json()
    assert body["source"] == "batch" and body["run_id"] == again.run_id


async def test_only_changed_ranks_the_affected_and_equals_a_full_run(
    service: Service, client: httpx.AsyncClient
) -> None:
    # More organisations than a ranking pool holds (50), so not every list takes everyone in.
    ids = await make_network(client, n=64)
    first = await run_rerank(service.ctx, RunOptions(top_k=50))
    await client.patch(f"/v1/organisations/{ids[7]}", json={"offers": ["a brand new offer"]})

    incremental = await run_rerank(service.ctx, RunOptions(top_k=50, only_changed=True))
    assert 0 < incremental.ranked < len(ids)
    assert incremental.copied == len(ids) - incremental.ranked
    run = (await client.get(f"/v1/rerank/runs/{incremental.run_id}")).json()
    assert run["only_changed"] and run["base_run_id"] == first.run_id
    assert run["progress"]["copied_organisations"] == incremental.copied

    full = await run_rerank(service.ctx, RunOptions(top_k=50))
    assert await stored_lists(service, incremental.run_id) == await stored_lists(
        service, full.run_id
    )


@pytest.mark.parametrize("band", [2048, 3], ids=["whole-order", "short-band"])
async def test_an_organisation_becoming_popular_reranks_lists_far_from_it(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, band: int
) -> None:
    # Candidate generation as on a large network: a few text and graph neighbours, and the
    # two best-connected organisations for everyone.
    searched_candidates(monkeypatch, text=2, graph=2, popular=2)
    monkeypatch.setattr(batch, "POPULAR_BAND", band)
    ids = await make_network(client, n=30)
    await run_rerank(service.ctx, RunOptions(top_k=50))
    # The last organisation starts eight collaborations and becomes the best-connected: it is
    # now a candidate of organisations nowhere near it, and pushes another out of the two.
    for other in ids[14:22]:
        await link(client, ids[29], other)

    incremental = await run_rerank(service.ctx, RunOptions(top_k=50, only_changed=True))
    full = await run_rerank(service.ctx, RunOptions(top_k=50))
    assert await stored_lists(service, incremental.run_id) == await stored_lists(
        service, full.run_id
    )
    run = (await client.get(f"/v1/rerank/runs/{incremental.run_id}")).json()
    assert "popular_band" not in run["parameters"]


async def test_ranking_chunks_in_worker_processes_stores_the_same_lists(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client, n=30)
    one = await run_rerank(service.ctx, RunOptions(top_k=8, chunk_size=4))
    several = await run_rerank(service.ctx, RunOptions(top_k=8, chunk_size=4, workers=3))
    assert several.status == "published" and several.ranked == len(ids)
    assert await stored_lists(service, several.run_id) == await stored_lists(service, one.run_id)


@pytest.mark.parametrize("workers", [1, 2], ids=["in process", "forked workers"])
async def test_only_changed_with_searched_candidates_equals_a_full_run(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    # Candidates from searches, as on a large network: every unchanged organisation is
    # checked against its stored list, and kept where nothing it was ranked from moved
    # (tests/unit/test_batch.py checks the finer cases, where candidates outnumber a pool).
    searched_candidates(monkeypatch, text=5, graph=4, popular=2)
    ids = await make_network(client, n=80)
    await run_rerank(service.ctx, RunOptions(top_k=50, chunk_size=16))
    for org_id in ids[3], ids[40]:
        edited = await client.patch(
            f"/v1/organisations/{org_id}", json={"offers": ["veterinary vaccines for poultry"]}
        )
        assert edited.status_code == 200

    incremental = await run_rerank(
        service.ctx, RunOptions(top_k=50, chunk_size=16, only_changed=True, workers=workers)
    )
    run = (await client.get(f"/v1/rerank/runs/{incremental.run_id}")).json()
    assert run["progress"]["done_organisations"] == len(ids)  # everyone ranked or checked
    assert run["progress"]["copied_organisations"] == incremental.copied
    full = await run_rerank(service.ctx, RunOptions(top_k=50))
    assert await stored_lists(service, incremental.run_id) == await stored_lists(
        service, full.run_id
    )
    assert 2 < incremental.ranked < len(ids) and incremental.copied > 0  # some stood


async def test_consecutive_incremental_runs_equal_full_runs_and_restate_moved_lists(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More candidates than a pool holds (50), so that lists stand although their candidates
    # moved: each is stored again with its candidates as they are now, and the next
    # incremental run starts from those.
    searched_candidates(monkeypatch, text=40, graph=4, popular=2)
    words = [f"w{k}" for k in range(60)]
    ids = []
    for i in range(90):
        picked = [words[(i * 7 + j * 11) % 60] for j in range(6)]
        org = await create_org(
            client,
            f"Org {i:02d}",
            country=["ES", "FR", "SE", "DK", "IT"][i % 5],
            sectors=[["diagnostics"], ["medtech"], ["biotech"], ["pharma"]][i % 4],
            offers=[" ".join(picked[:3]) + f" u{i}"],
            seeks=[" ".join(picked[3:]) + f" v{i}"],
            description=" ".join(picked) + f" unique{i}",
        )
        ids.append(org["id"])
    for a in range(0, 88, 3):
        await link(client, ids[a], ids[a + 1])
    base = await run_rerank(service.ctx, RunOptions(top_k=50, chunk_size=16))
    restated = 0
    for step, edited in enumerate(([ids[5], ids[60]], [ids[33]])):
        for org_id in edited:
            patched = await client.patch(
                f"/v1/organisations/{org_id}", json={"offers": [f"new offer {step} w1 w2"]}
            )
            assert patched.status_code == 200
        incremental = await run_rerank(
            service.ctx, RunOptions(top_k=50, chunk_size=16, only_changed=True, workers=2)
        )
        before, after = await rows_by_subject(service, base.run_id, incremental.run_id)
        # Stored again, not ranked: the same computed_at and list, other candidates.
        restated += sum(
            1
            for org_id, row in after.items()
            if org_id in before
            and row.computed_at == before[org_id].computed_at
            and row.candidates != before[org_id].candidates
        )
        full = await run_rerank(service.ctx, RunOptions(top_k=50))
        assert await stored_lists(service, incremental.run_id) == await stored_lists(
            service, full.run_id
        )
        # The next step's incremental run starts from this incremental one, not the full run.
        async with service.ctx.db.sessions() as session, session.begin():
            await session.execute(update(RerankState).values(published_run_id=incremental.run_id))
        base = incremental
    assert restated > 0
    # Chunks of another size gather the same candidates (the texts above tie a lot).
    other = await run_rerank(service.ctx, RunOptions(top_k=50, chunk_size=7, workers=2))
    assert await stored_lists(service, other.run_id) == await stored_lists(service, full.run_id)


async def rows_by_subject(service: Service, *run_ids: int) -> list[dict[int, RerankList]]:
    async with service.ctx.db.read() as session:
        rows = (
            await session.scalars(select(RerankList).where(RerankList.run_id.in_(run_ids)))
        ).all()
    return [{r.organisation_id: r for r in rows if r.run_id == run_id} for run_id in run_ids]


async def test_nothing_changed_means_nothing_ranked(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client, n=8)
    await run_rerank(service.ctx, RunOptions(top_k=5))
    report = await run_rerank(service.ctx, RunOptions(top_k=5, only_changed=True))
    assert report.ranked == 0 and report.copied == len(ids)


async def test_runs_are_listed_and_unknown_ones_are_404(
    service: Service, client: httpx.AsyncClient
) -> None:
    await make_network(client, n=6)
    report = await run_rerank(service.ctx, RunOptions(top_k=3))
    async with await service.client("staff", tenant="biocat") as staff:
        assert (await staff.get(f"/v1/rerank/runs/{report.run_id}")).status_code == 200
        missing = await staff.get("/v1/rerank/runs/999999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert (await staff.get("/v1/rerank/runs/0")).status_code == 422
    async with await service.client("member", organisation_id=1) as member:
        assert (await member.get("/v1/rerank/runs")).status_code == 403


async def test_starting_a_run_needs_admin_and_conflicts_with_a_running_one(
    service: Service, client: httpx.AsyncClient
) -> None:
    await make_network(client, n=6)
    async with await service.client("staff", tenant="biocat") as staff:
        assert (await staff.post("/v1/rerank/runs", json={"top": 5})).status_code == 403
    # Another machine's run holds the lease.
    running, _ = await begin_run(
        service.ctx.db, RunOptions(top_k=7), owner="elsewhere:1:abc", requested_by="test"
    )
    before = await count(service, RerankRun)
    response = await client.post("/v1/rerank/runs", json={"top": 5})
    assert response.status_code == 409
    assert response.json()["errors"] == [{"running_run_id": running}]
    assert str(running) in response.json()["detail"]
    assert await count(service, RerankRun) == before


@pytest.mark.parametrize(
    "body",
    [{"top": 0}, {"top": 101}, {"engine": "spark"}, {"top": 5, "colour": "red"}, {"top": "x"}],
)
async def test_bad_run_requests_are_422_and_start_nothing(
    service: Service, client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/rerank/runs", json=body)
    assert response.status_code == 422
    assert await count(service, RerankRun) == 0


async def test_a_run_started_over_http_runs_in_the_background(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client, n=8)
    response = await client.post("/v1/rerank/runs", json={"top": 4})
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/rerank/runs/{run_id}"
    for _ in range(300):
        run = (await client.get(f"/v1/rerank/runs/{run_id}")).json()
        if run["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert run["status"] == "published" and run["is_current"]
    assert run["progress"]["done_organisations"] == len(ids)
    body = (await client.get(f"/v1/organisations/{ids[0]}/matches?limit=4")).json()
    assert body["source"] == "batch" and body["run_id"] == run_id


async def test_an_interrupted_run_resumes_from_its_last_committed_chunk(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await make_network(client, n=12)
    commit = rerank._commit_chunk
    calls = {"n": 0}

    async def dies_after_two(*args: Any, **kwargs: Any) -> None:
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process goes away between two chunks
        calls["n"] += 1
        await commit(*args, **kwargs)

    monkeypatch.setattr(rerank, "_commit_chunk", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        await run_rerank(service.ctx, RunOptions(top_k=5, chunk_size=3))
    monkeypatch.setattr(rerank, "_commit_chunk", commit)
    runs = (await client.get("/v1/rerank/runs")).json()["items"]
    assert runs[0]["status"] == "running" and runs[0]["progress"]["done_chunks"] == 2
    # Readers never see a half-written run.
    assert (await client.get(f"/v1/organisations/{ids[0]}/matches")).json()["source"] == "live"

    resumed = await run_rerank(service.ctx, RunOptions(top_k=5, chunk_size=3))
    assert resumed.resumed and resumed.run_id == runs[0]["id"]
    assert resumed.skipped_chunks == 2 and resumed.ranked == len(ids) - 6
    uninterrupted = await run_rerank(service.ctx, RunOptions(top_k=5, chunk_size=3))
    assert await stored_lists(service, resumed.run_id) == await stored_lists(
        service, uninterrupted.run_id
    )


async def test_a_resumed_run_whose_inputs_changed_starts_over(
    service: Service, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await make_network(client, n=9)
    commit = rerank._commit_chunk

    async def dies(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rerank, "_commit_chunk", dies)
    with pytest.raises(KeyboardInterrupt):
        await run_rerank(service.ctx, RunOptions(top_k=5, chunk_size=3))
    monkeypatch.setattr(rerank, "_commit_chunk", commit)
    await client.patch(f"/v1/organisations/{ids[0]}", json={"seeks": ["a different need"]})
    report = await run_rerank(service.ctx, RunOptions(top_k=5, chunk_size=3))
    runs = {r["id"]: r for r in (await client.get("/v1/rerank/runs")).json()["items"]}
    assert report.status == "published" and report.ranked == len(ids)
    old = [r for r in runs.values() if r["id"] != report.run_id]
    assert old[0]["status"] == "failed" and "inputs changed" in old[0]["error"]


async def test_old_runs_are_pruned_keeping_two(service: Service, client: httpx.AsyncClient) -> None:
    await make_network(client, n=6)
    reports = [await run_rerank(service.ctx, RunOptions(top_k=3)) for _ in range(3)]
    runs = (await client.get("/v1/rerank/runs")).json()["items"]
    assert [r["id"] for r in runs] == [reports[2].run_id, reports[1].run_id]
    assert [r["is_current"] for r in runs] == [True, False]
    async with service.ctx.db.read() as session:
        left = await session.scalar(
            select(func.count()).where(RerankList.run_id == reports[0].run_id)
        )
    assert left == 0


async def test_erasure_removes_an_organisation_from_every_run(
    service: Service, client: httpx.AsyncClient
) -> None:
    ids = await make_network(client, n=8)
    first = await run_rerank(service.ctx, RunOptions(top_k=7))
    second = await run_rerank(service.ctx, RunOptions(top_k=7))
    gone = ids[2]
    lists = await stored_lists(service, first.run_id)
    listing = next(o for o, items in lists.items() if gone in {c for _, c, _, _ in items})
    async with service.ctx.db.sessions() as session, session.begin():
        deleted = await erase_from_runs(session, gone)
    assert deleted > 0
    async with service.ctx.db.read() as session:
        stored = (await session.scalars(select(RerankList))).all()
    assert {r.run_id for r in stored} == {first.run_id, second.run_id}
    assert gone not in {r.organisation_id for r in stored}
    assert all(gone not in unpack_list(r)[0] for r in stored)
    # Its entry is blanked in place (id, score, components zeroed), the rest is as it was.
    before = {c: (score, comps) for _, c, score, comps in lists[listing]}
    after = next(r for r in stored if (r.run_id, r.organisation_id) == (first.run_id, listing))
    cands, scores, components = unpack_list(after)
    assert len(cands) == after.items == len(before)
    assert cands.tolist() == [0 if c == gone else c for c in before]
    for cand, score, row in zip(cands.tolist(), scores.tolist(), components, strict=True):
        if cand == 0:
            assert score == 0 and not row.any()
        else:
            assert (score, row.tobytes()) == before[cand]
    # Lists it was on are incomplete now: they are ranked live.
    body = (await client.get(f"/v1/organisations/{listing}/matches?limit=7")).json()
    assert body["source"] == "live"


async def test_erasure_blanks_only_whole_ids_in_the_packed_lists(
    service: Service, client: httpx.AsyncClient
) -> None:
    """The store finds an id by its 8 bytes; a match straddling two ids is not that id. Ids
    1280 and 256 side by side hold the bytes of id 5 one byte in."""
    owners = await make_network(client, n=3)
    lists = {owners[0]: [1280, 256, 5], owners[1]: [1280, 256], owners[2]: [5, 7]}
    async with service.ctx.db.sessions() as session, session.begin():
        run = RerankRun(status="published", engine="local", top_k=3, chunk_size=3)
        session.add(run)
        await session.flush()
        for owner, partners in lists.items():
            n = len(partners)
            session.add(
                RerankList(
                    run_id=run.id,
                    organisation_id=owner,
                    partners=np.array(partners, dtype="<i8").tobytes(),
                    items=n,
                    own_marker="o",
                    marker="m",
                    scores=np.arange(1, n + 1, dtype="<f8").tobytes(),
                    components=np.ones((n, 2), dtype="<f8").tobytes(),
                )
            )
    async with service.ctx.db.sessions() as session, session.begin():
        assert await erase_from_runs(session, 5) == 2
    async with service.ctx.db.read() as session:
        stored = {
            r.organisation_id: unpack_list(r) for r in await session.scalars(select(RerankList))
        }
    assert {o: cands.tolist() for o, (cands, _, _) in stored.items()} == {
        owners[0]: [1280, 256, 0],
        owners[1]: [1280, 256],
        owners[2]: [0, 7],
    }
    assert stored[owners[0]][1].tolist() == [1.0, 2.0, 0.0]
    assert stored[owners[0]][2].tolist() == [[1, 1], [1, 1], [0, 0]]
    assert stored[owners[2]][2].tolist() == [[0, 0], [1, 1]]


async def test_a_deleted_partner_stops_the_lists_naming_it_being_served_or_exported(
    service: Service, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    ids = await make_network(client, n=8)
    report = await run_rerank(service.ctx, RunOptions(top_k=7))
    lists = await stored_lists(service, report.run_id)
    gone = ids[2]
    naming = [o for o, items in lists.items() if o != gone and gone in {c for _, c, _, _ in items}]
    other = next(o for o, items in lists.items() if o != gone and o not in naming)
    for org_id in (naming[0], other):
        body = (await client.get(f"/v1/organisations/{org_id}/matches?limit=7")).json()
        assert body["source"] == "batch"
    assert (await client.delete(f"/v1/organisations/{gone}")).status_code == 204
    # Stored lists keep the id (no partner index to find them by), but are never served with it.
    body = (await client.get(f"/v1/organisations/{naming[0]}/matches?limit=7")).json()
    assert body["source"] == "live"
    assert gone not in [item["organisation"]["id"] for item in body["items"]]
    _, rows = await export_run(service.ctx.db, None, tmp_path / "run.csv")
    records = list(csv.DictReader((tmp_path / "run.csv").read_text().splitlines()))
    assert (
        len(records)
        == rows
        == sum(len(items) for o, items in lists.items() if o != gone) - len(naming)
    )
    assert str(gone) not in {r["partner_id"] for r in records} | {
        r["organisation_id"] for r in records
    }


async def test_a_run_exports_as_csv_and_parquet(
    service: Service, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    ids = await make_network(client, n=6)
    report = await run_rerank(service.ctx, RunOptions(top_k=3))
    run_id, rows = await export_run(service.ctx.db, None, tmp_path / "run.csv")
    assert run_id == report.run_id and rows == 3 * len(ids)
    text = (tmp_path / "run.csv").read_text(encoding="utf-8")
    records = list(csv.DictReader(text.splitlines()))
    assert len(records) == rows
    assert records[0]["organisation_name"].startswith("Org ")
    assert {"rank", "partner_name", "partner_country", "score", "text_similarity"} <= set(
        records[0]
    )
    import pyarrow.parquet as pq

    await export_run(service.ctx.db, report.run_id, tmp_path / "run.parquet")
    table = pq.read_table(tmp_path / "run.parquet")
    assert table.num_rows == rows
    assert np.allclose(
        sorted(table.column("score").to_pylist()), sorted(float(r["score"]) for r in records)
    )
