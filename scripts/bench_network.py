"""Timing of the network map and insights on synthetic networks, through the same functions the
API calls (app.services.network.map_picture / insights_report).

    .venv/bin/python -m scripts.bench_network                      # map 5,000; insights 100,000
    .venv/bin/python -m scripts.bench_network --insights-orgs 0    # the map only
    .venv/bin/python -m scripts.bench_network --map-orgs 2000 --insights-orgs 20000

Each figure is wall-clock seconds and the process's CPU seconds (all threads). The machine is
shared: wall time grows with everyone else's load, CPU time much less, so compare CPU figures.
The map's organisations carry 384-dimension vectors (the real encoder's size) and one to three
offer and seek items each, so the suggested links cost what the partner ranker costs in service.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Literal, TypeVar

import numpy as np

from app.services.network import NetworkScope, insights_report, map_picture
from embeddings import MINILM_DIM, VectorIndex
from graph import Collaboration, CollaborationGraph
from matching.catalog import Catalog, OrgProfile
from matching.network_map import MapOptions, build_map, map_json, network_view, render_map
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


def synthetic_state(
    n_orgs: int, links_per_org: float, seed: int = 0, *, dim: int = DIM, max_items: int = 0
) -> MatchingState:
    """Organisations over 20 countries and 40 clusters; projects of 2-8 partners, mostly
    within a country or a cluster, so the network has regions and bridges like a real one.

    Vectors are random unit rows of ``dim``; with ``max_items`` > 0 each organisation lists
    one to ``max_items`` offers and seeks with their own vectors, as profiles do in service.
    The graph depends on ``seed`` only, not on ``dim`` or ``max_items``.
    """
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
            offer_vectors=np.zeros((0, dim), np.float32),
            seek_vectors=np.zeros((0, dim), np.float32),
        )
        for i in range(n_orgs)
    ]
    if max_items > 0:
        profiles = _with_items(profiles, dim, max_items, seed)
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
        index = VectorIndex(dim)
        index.build(np.arange(1, n_orgs + 1, dtype=np.int64), _unit_rows(rng, n_orgs, dim))
        vectors[space] = index
    state = MatchingState(catalog=catalog, graph=graph, vectors=vectors, scorer=LinearScorer.load())
    state.refresh_snapshot()
    return state


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def _with_items(
    profiles: list[OrgProfile], dim: int, max_items: int, seed: int
) -> list[OrgProfile]:
    rng = np.random.default_rng(seed + 1_000)  # its own stream: the graph stays the same
    out = []
    for p in profiles:
        n_offers, n_seeks = (int(k) for k in rng.integers(1, max_items + 1, size=2))
        out.append(
            replace(
                p,
                offers=tuple(f"offer {k + 1} of {p.name}" for k in range(n_offers)),
                seeks=tuple(f"need {k + 1} of {p.name}" for k in range(n_seeks)),
                offer_vectors=_unit_rows(rng, n_offers, dim),
                seek_vectors=_unit_rows(rng, n_seeks, dim),
            )
        )
    return out


def _zipf(k: int, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1) ** 0.8
    return np.asarray(weights / weights.sum())


T = TypeVar("T")


def timed(run: Callable[[], T], repeat: int) -> tuple[T, list[tuple[float, float]]]:
    """The last result and (wall s, CPU s) of each of ``repeat`` runs."""
    samples = []
    for _ in range(max(repeat, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        out = run()
        samples.append((time.perf_counter() - wall, time.process_time() - cpu))
    return out, samples


def figures(samples: list[tuple[float, float]]) -> str:
    wall = statistics.median(w for w, _ in samples)
    cpu = statistics.median(c for _, c in samples)
    return f"wall {wall:5.2f} s  CPU {cpu:5.2f} s"


def bench_map(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    state = synthetic_state(
        args.map_orgs, args.links_per_org, dim=args.dim, max_items=args.max_items
    )
    print(
        f"map network: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links, {args.dim}-d vectors, "
        f"1-{args.max_items} offers/seeks each (built in {time.perf_counter() - t0:.1f} s)"
    )
    scope = NetworkScope(tenants=None)
    options = MapOptions(max_nodes=args.max_nodes)
    formats: tuple[Literal["svg", "png", "json"], ...] = ("svg", "png", "json")
    # The first picture also imports matplotlib (once per process, as in the service).
    for fmt in formats:
        _, first = timed(partial(map_picture, state, scope, options, fmt, "Benchmark map"), 1)
        print(f"first {fmt:4} (cold process): {figures(first)}")
    for fmt in formats:
        out, samples = timed(
            partial(map_picture, state, scope, options, fmt, "Benchmark map"), args.repeat
        )
        size = f"{len(out):,} bytes" if isinstance(out, bytes) else f"{len(out['nodes']):,} nodes"
        print(f"map {fmt:4} median of {args.repeat}: {figures(samples)}  ({size})")

    # Where the time goes: the same steps map_picture takes, one by one.
    view, samples = timed(lambda: network_view(state, tenants=None), args.repeat)
    print(f"  view                    {figures(samples)}")
    _, samples = timed(lambda: build_map(state, view, replace(options, suggested=0)), args.repeat)
    print(f"  layout (no suggestions) {figures(samples)}")
    netmap, samples = timed(lambda: build_map(state, view, options), args.repeat)
    print(f"  layout + suggestions    {figures(samples)}  ({netmap.ranker_calls} ranker calls)")
    pictures: tuple[Literal["svg", "png"], ...] = ("svg", "png")
    for picture in pictures:
        _, samples = timed(partial(render_map, netmap, picture, title="Benchmark map"), args.repeat)
        print(f"  render {picture}              {figures(samples)}")
    _, samples = timed(lambda: map_json(netmap), args.repeat)
    print(f"  json                    {figures(samples)}")


def bench_insights(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    state = synthetic_state(args.insights_orgs, args.links_per_org, seed=1)
    print(
        f"insights network: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links (built in {time.perf_counter() - t0:.1f} s)"
    )
    report, samples = timed(lambda: insights_report(state, NetworkScope(tenants=None), 10), 1)
    method = "exact" if report.betweenness_exact else f"{report.betweenness_pivots} pivots"
    print(f"insights: {figures(samples)} (betweenness {method}); headline {report.headline}")
    print(
        "top bridges:", [(b.organisation.id, round(b.betweenness, 4)) for b in report.bridges[:5]]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--map-orgs", type=int, default=5_000, help="0 skips the map")
    parser.add_argument("--insights-orgs", type=int, default=100_000, help="0 skips insights")
    parser.add_argument("--links-per-org", type=float, default=12.0)
    parser.add_argument("--max-nodes", type=int, default=5_000, help="the map's max_nodes")
    parser.add_argument("--dim", type=int, default=MINILM_DIM, help="vector dimension")
    parser.add_argument("--max-items", type=int, default=3, help="offers/seeks per organisation")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    if args.map_orgs > 0:
        bench_map(args)
    if args.insights_orgs > 0:
        bench_insights(args)


if __name__ == "__main__":
    main()
