"""Timing of the network map and insights on synthetic networks, through the same functions the
API calls (app.services.network.map_picture / insights_report).

    .venv/bin/python -m scripts.bench_network                      # map 5,000; insights 100,000
    .venv/bin/python -m scripts.bench_network --map-orgs 2000 --insights-orgs 20000

Figures are wall-clock seconds on this machine (noisy when the cores are shared).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from app.services.network import NetworkScope, insights_report, map_picture
from embeddings import VectorIndex
from graph import Collaboration, CollaborationGraph
from matching.catalog import Catalog, OrgProfile
from matching.network_map import MapOptions
from matching.ranker import MatchingState
from matching.scoring import LinearScorer
from matching.vocabulary import Sector, StakeholderKind

COUNTRIES = [
    "ES",
    "FR",
    "DE",
    "IT",
    "SE",
    "DK",
    "NL",
    "BE",
    "PL",
    "IE",
    "GB",
    "EE",
    "FI",
    "PT",
    "AT",
    "CZ",
    "NO",
    "CH",
    "CA",
    "US",
]
DIM = 32


def synthetic_state(n_orgs: int, links_per_org: float, seed: int = 0) -> MatchingState:
    """Organisations over 20 countries and 40 clusters; projects of 2-8 partners, mostly
    within a country or a cluster, so the network has regions and bridges like a real one."""
    rng = np.random.default_rng(seed)
    sectors = [s.value for s in Sector]
    kinds = [k.value for k in StakeholderKind]
    country_of = rng.choice(len(COUNTRIES), size=n_orgs, p=_zipf(len(COUNTRIES), rng))
    cluster_of = rng.integers(0, 40, size=n_orgs)
    profiles = [
        OrgProfile(
            id=i + 1,
            name=f"Organisation {i + 1}",
            kind=kinds[int(rng.integers(0, len(kinds)))],
            sectors=tuple(rng.choice(sectors, size=int(rng.integers(1, 3)), replace=False)),
            country=COUNTRIES[int(country_of[i])],
            clusters=(f"cluster-{int(cluster_of[i])}",),
            offer_vectors=np.zeros((0, DIM), np.float32),
            seek_vectors=np.zeros((0, DIM), np.float32),
        )
        for i in range(n_orgs)
    ]
    catalog = Catalog(capacity=n_orgs + 1)
    catalog.upsert_many(profiles)
    by_country = [np.flatnonzero(country_of == c) for c in range(len(COUNTRIES))]
    by_cluster = [np.flatnonzero(cluster_of == c) for c in range(40)]
    # A project of k partners makes k(k-1)/2 pairs; aim at links_per_org * n / 2 pairs.
    n_projects = int(links_per_org * n_orgs / 2 / 8)
    collaborations = []
    activity = rng.pareto(1.5, size=n_orgs) + 1.0
    activity /= activity.sum()
    for p in range(n_projects):
        size = int(rng.integers(2, 9))
        lead = int(rng.choice(n_orgs, p=activity))
        roll = rng.random()
        if roll < 0.5:
            group = by_country[int(country_of[lead])]
        elif roll < 0.8:
            group = by_cluster[int(cluster_of[lead])]
        else:
            group = np.arange(n_orgs)
        members = {lead, *rng.choice(group, size=min(size - 1, len(group)), replace=False).tolist()}
        if len(members) >= 2:
            ids = tuple(sorted(int(m) + 1 for m in members))
            collaborations.append(
                Collaboration(p + 1, ids, "project", int(rng.integers(2015, 2025)))
            )
    graph = CollaborationGraph.from_collaborations([p.id for p in profiles], collaborations)
    vectors = {}
    for space in ("profile", "offers", "seeks"):
        index = VectorIndex(DIM)
        rows = rng.standard_normal((n_orgs, DIM)).astype(np.float32)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        index.build(np.arange(1, n_orgs + 1, dtype=np.int64), rows)
        vectors[space] = index
    state = MatchingState(catalog=catalog, graph=graph, vectors=vectors, scorer=LinearScorer.load())
    state.refresh_snapshot()
    return state


def _zipf(k: int, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** 0.8
    return np.asarray(weights / weights.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--map-orgs", type=int, default=5_000)
    parser.add_argument("--insights-orgs", type=int, default=100_000)
    parser.add_argument("--links-per-org", type=float, default=12.0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    state = synthetic_state(args.map_orgs, args.links_per_org)
    print(
        f"map network: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links (built in {time.perf_counter() - t0:.1f} s)"
    )
    scope = NetworkScope(tenants=None)
    options = MapOptions(max_nodes=5_000)
    for fmt in ("json", "png", "svg"):
        t0 = time.perf_counter()
        out = map_picture(state, scope, options, fmt, "Benchmark map")  # type: ignore[arg-type]
        size = len(out) if isinstance(out, bytes) else len(out["nodes"])
        unit = "bytes" if isinstance(out, bytes) else "nodes"
        print(f"map {fmt}: {time.perf_counter() - t0:.2f} s ({size:,} {unit})")

    t0 = time.perf_counter()
    state = synthetic_state(args.insights_orgs, args.links_per_org, seed=1)
    print(
        f"insights network: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links (built in {time.perf_counter() - t0:.1f} s)"
    )
    t0 = time.perf_counter()
    report = insights_report(state, scope, 10)
    elapsed = time.perf_counter() - t0
    method = "exact" if report.betweenness_exact else f"{report.betweenness_pivots} pivots"
    print(f"insights: {elapsed:.1f} s (betweenness {method}); headline {report.headline}")
    print(
        "top bridges:", [(b.organisation.id, round(b.betweenness, 4)) for b in report.bridges[:5]]
    )


if __name__ == "__main__":
    main()
