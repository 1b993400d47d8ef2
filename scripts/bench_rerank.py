"""Benchmark of the batch re-ranker on synthetic networks: wall time, CPU time, peak memory,
recall against exact scoring of every organisation, and an incremental run with 1% changed (and
how many lists it publishes that differ from a full run over the changed state).

Run: ``.venv/bin/python -m scripts.bench_rerank [--sizes 10000 100000] [--top 50]
[--engine local|ray] [--workers N] [--recall-sample 50] [--changed 0.01]``

Beyond 100k: ``--search-scaling 10000 100000 1000000`` measures only the text-candidate
searches, vectors only (the one part of a run whose cost per organisation grows with N; the
graph features, scoring and diversification cost the same per organisation at any N), so 1M
fits this machine; docs/rerank.md extrapolates a whole run from it.

The data: organisations around ``sqrt(N)`` topics, each with a profile text, 0-2 offers and
0-2 needs (topic words, embedded by the hashing encoder at 384 dimensions, with a little noise
so that no two vectors are equal), and a collaboration graph where participants are drawn by a
Zipf activity score (hubs with thousands of partners; scripts/bench_graph.py). Ranking reads
the same in-memory state the service builds (vector indexes: exact up to 20k vectors, IVF
above); the store is not involved, so this measures the ranking itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import threading
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from embeddings import HashingEncoder, VectorIndex
from graph import CollaborationGraph
from matching import batch, ranker
from matching.catalog import Catalog, OrgProfile
from matching.ranker import MatchingState, MatchQuery, rank_partners
from matching.scoring import LinearScorer
from matching.vocabulary import Sector, StakeholderKind
from scripts import reference_points
from scripts.bench_graph import synthetic_collaborations

DIM = 384
COUNTRIES = ("ES", "FR", "SE", "DK", "DE", "NL", "BE", "IT", "PT", "US", "CA", "GB")


def synthetic_state(n: int, *, seed: int = 0) -> MatchingState:
    """A MatchingState of ``n`` organisations with texts, vectors and a power-law graph."""
    rng = np.random.default_rng(seed)
    n_topics = max(20, int(np.sqrt(n)))
    topic_words = rng.integers(0, 20_000, (n_topics, 16))
    ids, collaborations = synthetic_collaborations(n, 2 * n, seed=seed)
    kinds = [k.value for k in StakeholderKind]
    sectors = [s.value for s in Sector]
    encoder = HashingEncoder(DIM)

    def text(topic: int, words: int) -> str:
        return " ".join(f"w{w}" for w in rng.choice(topic_words[topic], words, replace=False))

    rows = []
    for _ in ids:
        topic = int(rng.integers(n_topics))
        offers = [text(topic, 5) for _ in range(int(rng.integers(0, 3)))]
        seeks = [text(int(rng.integers(n_topics)), 5) for _ in range(int(rng.integers(0, 3)))]
        rows.append((text(topic, 10), offers, seeks))

    def embed(texts: list[str]) -> np.ndarray:
        vectors = encoder.encode(texts) if texts else np.zeros((0, DIM), np.float32)
        vectors = vectors + 0.02 * rng.standard_normal(vectors.shape).astype(np.float32)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    profile_vectors = embed([r[0] for r in rows])
    offer_vectors = embed([o for r in rows for o in r[1]])
    seek_vectors = embed([s for r in rows for s in r[2]])
    catalog = Catalog(capacity=n + 16)
    spaces: dict[str, tuple[list[int], list[np.ndarray]]] = {
        "profile": ([], []),
        "offers": ([], []),
        "seeks": ([], []),
    }
    at_offer = at_seek = 0
    for i, (org_id, (_, offers, seeks)) in enumerate(zip(ids, rows, strict=True)):
        own_offers = offer_vectors[at_offer : at_offer + len(offers)]
        own_seeks = seek_vectors[at_seek : at_seek + len(seeks)]
        at_offer += len(offers)
        at_seek += len(seeks)
        catalog.upsert(
            OrgProfile(
                id=int(org_id),
                name=f"Organisation {org_id}",
                kind=kinds[i % len(kinds)],
                sectors=(sectors[i % len(sectors)],),
                country=COUNTRIES[int(rng.integers(len(COUNTRIES)))],
                offers=tuple(offers),
                seeks=tuple(seeks),
                offer_vectors=own_offers,
                seek_vectors=own_seeks,
            )
        )
        spaces["profile"][0].append(int(org_id))
        spaces["profile"][1].append(profile_vectors[i])
        for space, items in (("offers", own_offers), ("seeks", own_seeks)):
            if len(items):
                mean = items.mean(axis=0)
                spaces[space][0].append(int(org_id))
                spaces[space][1].append(mean / np.linalg.norm(mean))
    vectors = {}
    for space, (space_ids, space_rows) in spaces.items():
        index = VectorIndex(DIM)
        index.build(np.array(space_ids, dtype=np.int64), np.stack(space_rows))
        vectors[space] = index
    graph = CollaborationGraph.from_collaborations(ids, collaborations)
    state = MatchingState(catalog, graph, vectors, LinearScorer.load())
    state.refresh_snapshot()
    return state


def rank_all(
    prepared: batch.BatchState,
    ids: list[int],
    query: MatchQuery,
    chunk: int,
    engine: str,
    workers: int = 1,
    *,
    check: batch.VerifyWork | None = None,
    stored: dict[int, batch.StoredList] | None = None,
) -> tuple[dict[int, np.ndarray], int]:
    """Lists of ``ids``, chunk by chunk, through the run's own engine (no store). With
    ``check`` (stored lists and the organisations changed since), each one is checked against
    its stored list as ``--only-changed`` does (``batch.verify_chunk``): only the lists ranked
    again come back, with how many stood. ``stored`` collects what a later check reads."""
    import asyncio

    from app.services.rerank import Engine, LocalEngine, RayEngine

    out: dict[int, np.ndarray] = {}
    kept = 0
    chunks = [
        (i, np.array(ids[start : start + chunk]), check is not None)
        for i, start in enumerate(range(0, len(ids), chunk))
    ]

    async def work_for(chunk_ids: np.ndarray, checked: bool) -> batch.VerifyWork | None:
        if check is None or not checked:
            return None
        mine = {o: check.stored[o] for o in chunk_ids.tolist() if o in check.stored}
        return batch.VerifyWork(mine, check.changed)

    async def rank() -> None:
        nonlocal kept
        runner: Engine = (
            RayEngine(prepared, query, address=None, workers=None)
            if engine == "ray"
            else LocalEngine(prepared, query, workers=workers)
        )
        try:
            async for _, result in runner.results(chunks, work_for):
                out.update({k: v[0] for k, v in result.lists().items()})
                kept += result.kept
                if stored is not None:
                    stored.update(result.stored())
        finally:
            await runner.close()

    asyncio.run(rank())
    return out, kept


def exact_recall(
    state: MatchingState, lists: dict[int, np.ndarray], sample: list[int], top: int
) -> float:
    """Share of the exact top ``top`` (every organisation scored) that the run found."""
    limit = ranker.EXHAUSTIVE_LIMIT
    ranker.EXHAUSTIVE_LIMIT = 10**9  # score every organisation: brute force
    try:
        hits = total = 0
        for org_id in sample:
            exact = {m.organisation.id for m in rank_partners(state, org_id, MatchQuery(top))}
            hits += len(exact & set(lists[org_id].tolist()))
            total += len(exact)
    finally:
        ranker.EXHAUSTIVE_LIMIT = limit
    return hits / max(total, 1)


def change_profiles(state: MatchingState, org_ids: list[int], seed: int) -> None:
    """Give organisations a new profile vector and needs, as an edit of their texts would."""
    rng = np.random.default_rng(seed)
    for org_id in org_ids:
        profile = state.catalog.get(org_id)
        assert profile is not None
        vec = rng.standard_normal(DIM).astype(np.float32)
        vec /= np.linalg.norm(vec)
        state.catalog.upsert(replace(profile, seeks=("a new need",), seek_vectors=vec[None, :]))
        state.vectors["profile"].upsert([org_id], vec[None, :])
        state.vectors["seeks"].upsert([org_id], vec[None, :])


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the local engine's
    worker processes, joined when it closes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class TreeMemory:
    """Peak proportional set size (PSS) of this process and its children, sampled twice a
    second. Forked rank workers share the parent's pages until they write to them; their
    peak RSS would count the shared pages once per process, PSS splits them."""

    def __init__(self) -> None:
        self.peak_gib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.peak_gib = max(self.peak_gib, _tree_pss_kib(os.getpid()) / 2**20)
            if self._stop.wait(0.5):
                return


def _tree_pss_kib(root: int) -> int:
    pids = [root]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == root:
                    pids.append(int(entry))
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as rollup:
            total += sum(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    return total


def bench(
    n: int, top: int, engine: str, workers: int, recall_sample: int, changed_share: float
) -> None:
    t0 = time.perf_counter()
    state = synthetic_state(n)
    build_s = time.perf_counter() - t0
    kinds = {space: (index.kind, index.nprobe) for space, index in state.vectors.items()}
    rss_before = peak_rss_gib()
    ids = sorted(state.catalog.all_ids().tolist())
    query = MatchQuery(limit=top, explain=False)

    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    stored: dict[int, batch.StoredList] = {}
    with TreeMemory() as memory:
        prepared = batch.prepare(state)
        lists, _ = rank_all(prepared, ids, query, 500, engine, workers, stored=stored)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    where = f"engine={engine}" + (f" workers={workers}" if engine == "local" else "")
    print(
        f"N={n:>7} K={top} {where}: full run {wall:6.1f} s wall, {cpu:6.1f} s CPU "
        f"({1000 * cpu / n:.2f} ms/org), peak RSS {peak_rss_gib():.2f} GiB, peak PSS with "
        f"the workers {memory.peak_gib:.2f} GiB (data alone {rss_before:.2f} GiB); "
        f"synthetic build {build_s:.0f} s; indexes {kinds}",
        flush=True,
    )

    # Why an incremental run re-ranks so much: the best-connected organisations (the popular
    # candidates every query gets) are on most lists, so changing one touches most lists.
    popular = state.snapshot().ids_by_degree()[: ranker.POPULAR_CANDIDATES]
    on_lists = np.concatenate([np.zeros(0, dtype=np.int64), *lists.values()])
    lists_with = np.bincount(
        np.searchsorted(np.sort(popular), on_lists[np.isin(on_lists, popular)]),
        minlength=len(popular),
    ) / max(len(lists), 1)  # share of lists holding each (a list holds an id at most once)
    holding_any = np.mean([np.isin(cands, popular).any() for cands in lists.values()])
    print(
        f"  lists holding one of the {len(popular)} best-connected: {holding_any:.2f}; "
        f"each of them is on {np.median(lists_with):.2f} of lists (median), "
        f"up to {lists_with.max():.2f}",
        flush=True,
    )

    rng = np.random.default_rng(1)
    sample = rng.choice(ids, size=min(recall_sample, n), replace=False).tolist()
    t0 = time.perf_counter()
    recall = exact_recall(state, lists, sample, top)
    if sample:
        print(
            f"  recall@{top} vs brute force (every organisation scored), "
            f"{len(sample)} organisations: {recall:.3f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )

    if changed_share <= 0:
        return
    if n <= ranker.EXHAUSTIVE_LIMIT:
        print("  --only-changed: not measured (everyone is scored at this size)", flush=True)
        return
    own_before = batch.own_fingerprints(state, ids)
    changed = rng.choice(ids, size=max(1, int(changed_share * n)), replace=False).tolist()
    change_profiles(state, changed, seed=2)
    # As the command plans it (app/services/rerank.py, _affected): the changed are ranked (no
    # links changed here), every other organisation is checked against its stored list.
    wall0 = time.perf_counter()
    own_after = batch.own_fingerprints(state, ids)
    really = sorted(o for o in ids if own_before[o] != own_after[o])
    others = sorted(set(ids) - set(really))
    plan_s = time.perf_counter() - wall0
    prepared = batch.prepare(state)
    t0 = time.perf_counter()
    ranked, _ = rank_all(prepared, really, query, 500, engine, workers)
    rank_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    check = batch.VerifyWork(stored, np.array(really, dtype=np.int64))
    checked, kept = rank_all(prepared, others, query, 500, engine, workers, check=check)
    check_s = time.perf_counter() - t0
    total = time.perf_counter() - wall0
    # What the incremental run publishes (ranked lists, the rest copied), against a full run
    # over the changed state.
    full, _ = rank_all(prepared, ids, query, 500, engine, workers)
    published = {**lists, **ranked, **checked}
    missed = [o for o in ids if not np.array_equal(published[o], full[o])]
    print(
        f"  --only-changed with {len(changed)} changed ({100 * changed_share:.0f}%): "
        f"{len(really)} ranked, {len(others)} checked ({kept} lists stood, {len(checked)} "
        "ranked again) "
        f"({100 * (len(really) + len(checked)) / n:.1f}% ranked in all), "
        f"{total:.1f} s = {100 * total / wall:.0f}% of the full run (planning {plan_s:.1f} s, "
        f"ranking the changed {rank_s:.1f} s, checking the others {check_s:.1f} s); "
        f"lists that differ from a full run over the changed state: {len(missed)}",
        flush=True,
    )


def search_scaling(sizes: list[int], queries: int, recall_queries: int, seed: int = 0) -> None:
    """The one part of a run whose cost per organisation grows with N: the text-candidate
    searches. Vectors only (no texts, no graph), so it reaches 1M on this machine.

    Per N: ``N`` unit vectors around ``sqrt(N)`` topics; the product's ``VectorIndex.build``
    (IVF with nlist ~ 4 sqrt(N) and the nprobe calibrated for recall@50 0.95 above 20k
    vectors); ``queries`` searches for the top ``TEXT_CANDIDATES`` through the batch's own
    ``_search_many`` on one thread (half the queries are indexed vectors, their own id
    excluded, half midpoints of two, like a seeks-against-offers query); recall of those
    against brute force on ``recall_queries`` of them; peak memory so far.
    """
    k = ranker.TEXT_CANDIDATES
    measured: list[tuple[int, float]] = []
    for n in sizes:
        rng = np.random.default_rng(seed)
        topics = rng.standard_normal((max(20, int(np.sqrt(n))), DIM), dtype=np.float32)
        vectors = topics[rng.integers(0, len(topics), n)]
        vectors += rng.standard_normal((n, DIM), dtype=np.float32)  # same-topic cosine ~0.5
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(1, n + 1, dtype=np.int64)
        t0 = time.perf_counter()
        index = VectorIndex(DIM)
        index.build(ids, vectors)
        build_s = time.perf_counter() - t0
        space = batch.SpaceArrays(index)
        m = min(queries, n)
        own = rng.choice(n, size=m, replace=False)
        mixed = np.arange(m) >= m // 2
        asked = vectors[own].copy()
        asked[mixed] += vectors[rng.choice(n, size=int(mixed.sum()))]
        asked /= np.linalg.norm(asked, axis=1, keepdims=True)
        excludes = [
            np.zeros(0, np.int64) if mixed[i] else ids[own[i] : own[i] + 1] for i in range(m)
        ]
        with threadpool_limits(limits=1, user_api="blas"):
            cpu0 = time.thread_time()
            found = batch._search_many(space, list(asked), excludes, k)
            per_query_ms = 1000 * (time.thread_time() - cpu0) / m
        hits = 0
        r = min(recall_queries, m)
        for start in range(0, r, 64):
            scores = asked[start : min(r, start + 64)] @ vectors.T
            for row, i in enumerate(range(start, min(r, start + 64))):
                if not mixed[i]:
                    scores[row, own[i]] = -np.inf
                exact = ids[np.argpartition(-scores[row], k - 1)[:k]]
                hits += len(np.intersect1d(exact, found[i]))
        layout = f"IVF nlist {index._ivf.nlist}, nprobe {index.nprobe}" if index.nprobe else "exact"
        print(
            f"N={n:>9,}: build {build_s:6.1f} s ({layout}); one text search "
            f"{per_query_ms:.3f} ms CPU ({m:,} queries, one thread); recall@{k} vs brute force "
            f"{hits / (r * k):.3f} ({r} queries); peak RSS {peak_rss_gib():.2f} GiB",
            flush=True,
        )
        measured.append((n, per_query_ms))
        del index, space, vectors, found
    if len(measured) >= 2:
        (n0, t0_), (n1, t1_) = measured[-2], measured[-1]
        growth = np.log(t1_ / t0_) / np.log(n1 / n0)
        print(
            f"  a search's cost grows as N^{growth:.2f} from {n0:,} to {n1:,}; a run makes three "
            f"per organisation, so its search part costs {3 * t1_:.2f} ms CPU per organisation "
            f"at N={n1:,}, {3 * t1_ * n1 / 1000:,.0f} s CPU in all",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="chunks the local engine ranks at once (default: CPUs, as multihelix rerank)",
    )
    parser.add_argument("--recall-sample", type=int, default=50)
    parser.add_argument("--changed", type=float, default=0.01, help="share changed (0: skip)")
    parser.add_argument(
        "--search-scaling",
        type=int,
        nargs="*",
        metavar="N",
        help="instead: only the text searches, vectors only, at these sizes "
        "(e.g. 10000 100000 1000000)",
    )
    parser.add_argument("--search-queries", type=int, default=20_000)
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the issue's reference points (an exact all-pairs top-50 at 100k: ~1 min)",
    )
    args = parser.parse_args()
    if args.search_scaling:
        search_scaling(args.search_scaling, args.search_queries, recall_queries=500)
        return
    if not args.no_reference:
        print("reference points: this machine against the issue's", flush=True)
        for name, value in reference_points.describe(reference_points.measure(all_pairs=True)):
            print(f"  {name}: {value}", flush=True)
    for n in args.sizes:
        bench(n, args.top, args.engine, args.workers, args.recall_sample, args.changed)


if __name__ == "__main__":
    main()
