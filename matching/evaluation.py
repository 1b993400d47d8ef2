"""Offline quality measurement of partner rankings on the H2020-health temporal benchmark.

The benchmark directory (``/work/shared/benchmarks/h2020-health`` in this project) holds
organisations, the collaboration history before a cut-off and, for the dev queries, the partners
each query organisation actually met for the first time afterwards.  This module loads it, scores a
mapping ``{query_id: [candidate ids, best first]}`` with the benchmark's protocol, and computes the
reference baselines with the same code so that a new ranker is always compared like for like.

Protocol (from the benchmark README):

* a ranking is cleaned before scoring: the query itself, every organisation already connected to
  it before the cut-off (``edges_hist_allprog_agg``), ids outside ``orgs.csv`` and repeated ids are
  dropped; order is otherwise kept;
* positives are the query's held-out partners; a positive missing from the ranking counts as not
  found;
* per query: MRR@100 (1/rank of the best-ranked positive, 0 if none in the top 100), Hits@10,
  Recall@10/50/100 (share of the query's positives in the top K) and Recall@50 over the cross-type
  and over the cross-country positives only;
* every metric is the plain mean over queries.  Every dev query has at least one positive; the
  cross-type (cross-country) Recall@50 is averaged over the queries that have at least one
  cross-type (cross-country) positive, since the share of an empty set is undefined.  A query that
  the ranker returns nothing for scores 0 everywhere.

The README's reference table uses MRR without a cut-off; :func:`evaluate_rankings` can reproduce
that with ``mrr_cutoff=None``.  Baseline ties are broken randomly with a seeded generator, as the
README's are.  The README's popularity row uses the degree over *all* organisations of
``participations_hist`` (outsiders included); the degree among benchmark organisations only gives a
much stronger row (MRR 0.338), so :attr:`Benchmark.history_degree` follows the README.
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
from numpy.typing import NDArray

MRR_CUTOFF = 100
METRIC_NAMES = (
    "mrr",
    "hits@10",
    "recall@10",
    "recall@50",
    "recall@100",
    "recall@50_cross_type",
    "recall@50_cross_country",
)


@dataclass(frozen=True)
class Benchmark:
    """The benchmark as plain data: organisations, history links and held-out partners."""

    org_ids: tuple[str, ...]
    org_type: Mapping[str, str]
    org_country: Mapping[str, str]
    connected: Mapping[str, frozenset[str]]
    """Organisations already sharing any project with the key before the cut-off."""
    domain_pairs: tuple[tuple[str, str], ...]
    """Distinct pairs sharing a health-programme project before the cut-off."""
    history_degree: Mapping[str, int]
    """Distinct co-participants before the cut-off, any programme, counting organisations outside
    ``orgs.csv`` too (from ``participations_hist``): the README's popularity baseline."""
    positives: Mapping[str, frozenset[str]]
    """Held-out new partners per query; the keys are the queries."""
    cross_type_positives: Mapping[str, frozenset[str]]
    cross_country_positives: Mapping[str, frozenset[str]]

    @property
    def query_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self.positives))


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return path.open(newline="", encoding="utf-8")


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with _open_text(path) as handle:
        yield from csv.DictReader(handle)


def load_benchmark(
    bench_dir: Path | str, split: str = "dev", *, heldout: Path | str | None = None
) -> Benchmark:
    """Read ``orgs.csv``, ``edges_hist_allprog_agg.csv.gz``, ``edges_hist_domain.csv.gz``,
    ``participations_hist.csv.gz`` and ``heldout_<split>.csv`` (or ``heldout``) from
    ``bench_dir``."""
    root = Path(bench_dir)
    heldout_path = Path(heldout) if heldout is not None else root / f"heldout_{split}.csv"
    org_type: dict[str, str] = {}
    org_country: dict[str, str] = {}
    for row in _rows(root / "orgs.csv"):
        org_type[row["org_id"]] = row["type"]
        org_country[row["org_id"]] = row["country"]

    connected: dict[str, set[str]] = {org: set() for org in org_type}
    for row in _rows(root / "edges_hist_allprog_agg.csv.gz"):
        u, v = row["org_u"], row["org_v"]
        connected.setdefault(u, set()).add(v)
        connected.setdefault(v, set()).add(u)

    domain: set[tuple[str, str]] = set()
    for row in _rows(root / "edges_hist_domain.csv.gz"):
        u, v = row["org_u"], row["org_v"]
        if u != v:
            domain.add((u, v) if u < v else (v, u))

    members: dict[str, set[str]] = {}
    for row in _rows(root / "participations_hist.csv.gz"):
        members.setdefault(row["project_id"], set()).add(row["org_id"])
    co_participants: dict[str, set[str]] = {org: set() for org in org_type}
    for orgs in members.values():
        for org in orgs:
            if org in co_participants:
                co_participants[org].update(orgs)
    history_degree = {org: len(others - {org}) for org, others in co_participants.items()}

    positives: dict[str, set[str]] = {}
    cross_type: dict[str, set[str]] = {}
    cross_country: dict[str, set[str]] = {}
    for row in _rows(heldout_path):
        q, p = row["query_id"], row["partner_id"]
        positives.setdefault(q, set()).add(p)
        if row["cross_type"] == "1":
            cross_type.setdefault(q, set()).add(p)
        if row["cross_country"] == "1":
            cross_country.setdefault(q, set()).add(p)

    return Benchmark(
        org_ids=tuple(sorted(org_type)),
        org_type=org_type,
        org_country=org_country,
        connected={k: frozenset(v) for k, v in connected.items()},
        domain_pairs=tuple(sorted(domain)),
        history_degree=history_degree,
        positives={k: frozenset(v) for k, v in positives.items()},
        cross_type_positives={k: frozenset(v) for k, v in cross_type.items()},
        cross_country_positives={k: frozenset(v) for k, v in cross_country.items()},
    )


# --- per-query metrics -------------------------------------------------------------------------


def reciprocal_rank(
    ranked: Sequence[str], positives: Iterable[str], k: int | None = MRR_CUTOFF
) -> float:
    """1 / (1-based rank of the best-ranked positive) within the top ``k``; 0 if none is there.

    ``k=None`` looks at the whole ranking (the README's reference MRR).

    >>> reciprocal_rank(["a", "b", "c"], {"c", "x"})
    0.3333333333333333
    >>> reciprocal_rank(["a", "b", "c"], {"c"}, k=2)
    0.0
    >>> reciprocal_rank([], {"c"})
    0.0
    """
    wanted = set(positives)
    limit = len(ranked) if k is None else min(k, len(ranked))
    for i in range(limit):
        if ranked[i] in wanted:
            return 1.0 / (i + 1)
    return 0.0


def hits_at_k(ranked: Sequence[str], positives: Iterable[str], k: int) -> float:
    """1.0 if any positive is in the top ``k``, else 0.0.

    >>> hits_at_k(["a", "b", "c"], {"c"}, 3), hits_at_k(["a", "b", "c"], {"c"}, 2)
    (1.0, 0.0)
    """
    wanted = set(positives)
    return 1.0 if any(c in wanted for c in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], positives: Iterable[str], k: int) -> float:
    """Share of ``positives`` found in the top ``k`` (denominator: all positives, not min(k, n)).

    Undefined (``nan``) when there are no positives.

    >>> recall_at_k(["a", "b", "c", "d"], {"b", "d", "z", "y"}, 2)
    0.25
    >>> recall_at_k(["a"], set(), 10)
    nan
    """
    wanted = set(positives)
    if not wanted:
        return math.nan
    return sum(1 for c in ranked[:k] if c in wanted) / len(wanted)


def clean_ranking(bench: Benchmark, query_id: str, ranked: Iterable[str]) -> list[str]:
    """Drop the query, organisations already connected to it, unknown ids and repeats.

    Order is otherwise kept.
    """
    excluded = bench.connected.get(query_id, frozenset())
    seen: set[str] = set()
    cleaned: list[str] = []
    for c in ranked:
        if c == query_id or c in excluded or c in seen or c not in bench.org_type:
            continue
        seen.add(c)
        cleaned.append(c)
    return cleaned


def evaluate_rankings(
    bench: Benchmark,
    rankings: Mapping[str, Sequence[str]],
    mrr_cutoff: int | None = MRR_CUTOFF,
) -> dict[str, float]:
    """Protocol metrics (see :data:`METRIC_NAMES`) averaged over the benchmark's queries.

    Only the first 100 cleaned candidates of each ranking matter (all of it with
    ``mrr_cutoff=None``).
    Queries absent from ``rankings`` score 0; keys that are not queries are ignored.
    """
    sums = dict.fromkeys(METRIC_NAMES, 0.0)
    counts = dict.fromkeys(METRIC_NAMES, 0)
    for q in bench.query_ids:
        ranked = clean_ranking(bench, q, rankings.get(q, ()))
        pos = bench.positives[q]
        per_query = {
            "mrr": reciprocal_rank(ranked, pos, mrr_cutoff),
            "hits@10": hits_at_k(ranked, pos, 10),
            "recall@10": recall_at_k(ranked, pos, 10),
            "recall@50": recall_at_k(ranked, pos, 50),
            "recall@100": recall_at_k(ranked, pos, 100),
            "recall@50_cross_type": recall_at_k(
                ranked, bench.cross_type_positives.get(q, frozenset()), 50
            ),
            "recall@50_cross_country": recall_at_k(
                ranked, bench.cross_country_positives.get(q, frozenset()), 50
            ),
        }
        for name, value in per_query.items():
            if not math.isnan(value):
                sums[name] += value
                counts[name] += 1
    return {
        name: (sums[name] / counts[name] if counts[name] else math.nan) for name in METRIC_NAMES
    }


def format_table(rows: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table: one row per method, one column per metric.

    >>> print(format_table({"m": dict.fromkeys(METRIC_NAMES, 0.5)}).splitlines()[2])
    | m | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 |
    """
    header = "| method | " + " | ".join(METRIC_NAMES) + " |"
    rule = "|---" * (len(METRIC_NAMES) + 1) + "|"
    lines = [header, rule]
    for method, metrics in rows.items():
        cells = " | ".join(f"{metrics[name]:.3f}" for name in METRIC_NAMES)
        lines.append(f"| {method} | {cells} |")
    return "\n".join(lines)


# --- reference baselines -----------------------------------------------------------------------


def rank_by_scores(
    candidate_ids: Sequence[str], scores: NDArray[np.float64], rng: np.random.Generator
) -> list[str]:
    """Candidates by descending score, ties broken uniformly at random.

    >>> rank_by_scores(["a", "b", "c"], np.array([1.0, 3.0, 2.0]), np.random.default_rng(0))
    ['b', 'c', 'a']
    """
    tie_break = rng.permutation(len(candidate_ids))
    order = np.lexsort((tie_break, -np.asarray(scores, dtype=np.float64)))
    return [candidate_ids[i] for i in order]


def _candidates(bench: Benchmark, query_id: str) -> list[str]:
    excluded = bench.connected.get(query_id, frozenset())
    return [c for c in bench.org_ids if c != query_id and c not in excluded]


def random_rankings(bench: Benchmark, seed: int = 0) -> dict[str, list[str]]:
    """Every eligible organisation in a seeded random order."""
    rng = np.random.default_rng(seed)
    rankings: dict[str, list[str]] = {}
    for q in bench.query_ids:
        cands = _candidates(bench, q)
        rankings[q] = [cands[i] for i in rng.permutation(len(cands))]
    return rankings


def popularity_rankings(bench: Benchmark, seed: int = 0) -> dict[str, list[str]]:
    """Eligible organisations by history degree (:attr:`Benchmark.history_degree`)."""
    rng = np.random.default_rng(seed)
    degree = {org: float(bench.history_degree.get(org, 0)) for org in bench.org_ids}
    rankings: dict[str, list[str]] = {}
    for q in bench.query_ids:
        cands = _candidates(bench, q)
        rankings[q] = rank_by_scores(cands, np.array([degree[c] for c in cands]), rng)
    return rankings


def adamic_adar_scores(
    org_ids: Sequence[str], pairs: Iterable[tuple[str, str]], query_ids: Sequence[str]
) -> NDArray[np.float64]:
    """Adamic-Adar of each query with every organisation on the simple graph of ``pairs``.

    ``AA(q, c) = sum over common neighbours z of 1 / ln(deg z)``; shape
    (len(query_ids), len(org_ids)); a query's score with itself is 0.

    >>> adamic_adar_scores(["a", "b", "c"], [("a", "b"), ("b", "c")], ["a"]).round(3).tolist()
    [[0.0, 0.0, 1.443]]
    """
    index = {org: i for i, org in enumerate(org_ids)}
    adjacency = np.zeros((len(org_ids), len(org_ids)), dtype=np.float64)
    for u, v in pairs:
        if u in index and v in index and u != v:
            adjacency[index[u], index[v]] = adjacency[index[v], index[u]] = 1.0
    degree = adjacency.sum(axis=1)
    # A common neighbour has degree >= 2, so ln(deg) > 0 wherever the weight is used.
    weight = np.where(degree > 1, 1.0 / np.log(np.maximum(degree, 2.0)), 0.0)
    rows = adjacency[[index[q] for q in query_ids]]
    scores: NDArray[np.float64] = (rows * weight) @ adjacency
    scores[np.arange(len(query_ids)), [index[q] for q in query_ids]] = 0.0
    return scores


def adamic_adar_rankings(
    bench: Benchmark, seed: int = 0, log_degree_weight: float = 0.0
) -> dict[str, list[str]]:
    """Eligible organisations by Adamic-Adar on the health-programme graph (``edges_hist_domain``),
    plus ``log_degree_weight * ln(1 + degree)`` (degree in that graph) when non-zero."""
    rng = np.random.default_rng(seed)
    queries = bench.query_ids
    scores = adamic_adar_scores(bench.org_ids, bench.domain_pairs, queries)
    if log_degree_weight:
        degree = np.zeros(len(bench.org_ids))
        index = {org: i for i, org in enumerate(bench.org_ids)}
        for u, v in bench.domain_pairs:
            degree[index[u]] += 1
            degree[index[v]] += 1
        scores = scores + log_degree_weight * np.log1p(degree)
    index = {org: i for i, org in enumerate(bench.org_ids)}
    rankings: dict[str, list[str]] = {}
    for row, q in enumerate(queries):
        cands = _candidates(bench, q)
        rankings[q] = rank_by_scores(cands, scores[row, [index[c] for c in cands]], rng)
    return rankings


def baseline_rows(
    bench: Benchmark, seed: int = 0, mrr_cutoff: int | None = MRR_CUTOFF
) -> dict[str, dict[str, float]]:
    """Metrics of the reference baselines, named as in the README's table."""
    return {
        "random": evaluate_rankings(bench, random_rankings(bench, seed), mrr_cutoff),
        "popularity (history degree)": evaluate_rankings(
            bench, popularity_rankings(bench, seed), mrr_cutoff
        ),
        "Adamic-Adar, health-programme graph": evaluate_rankings(
            bench, adamic_adar_rankings(bench, seed), mrr_cutoff
        ),
    }
