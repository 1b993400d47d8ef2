"""Micro-benchmark of graph loading and per-query graph features on synthetic power-law graphs.

Run: ``.venv/bin/python -m scripts.bench_graph [--sizes 10000 100000] [--queries 300]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt

from graph import Collaboration, CollaborationGraph, GraphSnapshot

IntArray = npt.NDArray[np.int64]

KINDS = ("project", "publication", "supply", "membership", "event_meeting", "other")


def synthetic_collaborations(
    n_organisations: int, n_collaborations: int, *, seed: int = 0
) -> tuple[list[int], list[Collaboration]]:
    """Organisation ids, and collaborations whose participants follow preferential attachment.

    Sizes are 2 + a Pareto draw (most pairs and small projects, a few consortia of up to 300);
    participants are drawn with probability proportional to a Zipf activity score (static
    preferential attachment, Chung-Lu style), which gives hubs with thousands of partners.
    """
    rng = np.random.default_rng(seed)
    activity = 1.0 / np.arange(1, n_organisations + 1) ** 0.65
    cumulative = np.cumsum(activity)
    cumulative /= cumulative[-1]
    org_ids = rng.permutation(n_organisations).astype(np.int64) * 7 + 1_000  # sparse, arbitrary
    sizes = np.minimum(2 + np.floor(rng.pareto(2.2, n_collaborations) * 2.0), 300).astype(int)
    owner = np.repeat(np.arange(n_collaborations), sizes)
    member = np.searchsorted(cumulative, rng.random(len(owner)))
    # Repeated draws inside one collaboration collapse to one participant.
    pairs = np.unique(np.stack((owner, member), axis=1), axis=0)
    bounds = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    groups = np.split(org_ids[pairs[:, 1]], bounds)
    years = rng.integers(2005, 2025, n_collaborations)
    kinds = rng.integers(0, len(KINDS), n_collaborations)
    collaborations = [
        Collaboration(int(pairs[start, 0]), tuple(group.tolist()), KINDS[k], int(y))
        for start, group, k, y in zip(
            np.concatenate(([0], bounds)).tolist(),
            groups,
            kinds[np.unique(pairs[:, 0])].tolist(),
            years[np.unique(pairs[:, 0])].tolist(),
            strict=True,
        )
        if len(group) >= 2
    ]
    return org_ids.tolist(), collaborations


def percentiles_ms(timings_s: list[float]) -> str:
    p50, p99 = np.percentile(np.asarray(timings_s) * 1e3, [50, 99])
    return f"p50 {p50:6.3f} ms  p99 {p99:6.3f} ms"


def time_calls(calls: list[Callable[[], object]]) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each call; CPU time is what the code costs on a busy machine."""
    wall, cpu = [], []
    for call in calls:
        start_wall, start_cpu = time.perf_counter(), time.thread_time()
        call()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return wall, cpu


def bench(n_organisations: int, n_queries: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    org_ids, collaborations = synthetic_collaborations(n_organisations, n_organisations, seed=seed)
    generate_s = time.perf_counter() - start

    start = time.perf_counter()
    graph = CollaborationGraph.from_collaborations(org_ids, collaborations)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    snap: GraphSnapshot = graph.snapshot()
    build_s = time.perf_counter() - start

    degree = snap.degree
    print(
        f"\nN={snap.number_of_organisations:,} organisations, {len(collaborations):,} "
        f"collaborations, {snap.number_of_links:,} links; degree median {np.median(degree):.0f}, "
        f"p99 {np.percentile(degree, 99):.0f}, max {degree.max():,}"
    )
    print(
        f"  generate {generate_s:.2f} s   from_collaborations {load_s:.2f} s   "
        f"snapshot build {build_s:.2f} s"
    )

    connected = snap.node_ids[degree > 0]
    hub_cut = np.percentile(degree[degree > 0], 99)
    hubs = snap.node_ids[degree >= hub_cut]
    groups = {
        "typical": rng.choice(connected, n_queries),
        f"hub (top 1%, degree >= {hub_cut:.0f})": rng.choice(hubs, n_queries),
    }
    for label, queries in groups.items():
        # Candidates as the ranker sees them: graph candidates plus unrelated text matches.
        candidates = [
            np.concatenate((snap.expand(q, 150)[0], rng.choice(snap.node_ids, 300)))[:300]
            for q in queries.tolist()
        ]
        pairs = list(zip(queries.tolist(), candidates, strict=True))
        # Alone: each query new to the snapshot. Then as the ranker calls them, expand first,
        # whose two-hop sweep proximity reuses.
        alone = time_calls([partial(snap.proximity, q, c) for q, c in pairs])
        expand = time_calls([partial(snap.expand, q, 200) for q, _ in pairs])
        both = time_calls([partial(expand_then_proximity, snap, q, c) for q, c in pairs])
        print(f"  {label} queries ({n_queries}):")
        print(f"    {'':<34}{'wall':<29}{'cpu (thread time)'}")
        for name, (wall, cpu) in (
            ("proximity(300 candidates)", alone),
            ("expand(limit=200)", expand),
            ("expand, then proximity (ranker)", both),
        ):
            print(f"    {name:<34}{percentiles_ms(wall)}   {percentiles_ms(cpu)}")


def expand_then_proximity(snap: GraphSnapshot, query: int, candidates: IntArray) -> None:
    snap.expand(query, 200)
    snap.proximity(query, candidates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for n in args.sizes:
        bench(n, args.queries, args.seed)


if __name__ == "__main__":
    main()
