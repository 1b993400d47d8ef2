"""Benchmark protocol metrics and reference baselines on hand-made rankings and a tiny bench dir."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import pytest

from matching.evaluation import (
    METRIC_NAMES,
    Benchmark,
    adamic_adar_rankings,
    baseline_rows,
    clean_ranking,
    evaluate_rankings,
    hits_at_k,
    load_benchmark,
    popularity_rankings,
    random_rankings,
    recall_at_k,
    reciprocal_rank,
)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    """Six benchmark orgs a..f plus one outsider x.

    Health projects: P1 = {a, b, c}, P2 = {c, d}, P3 = {d, e}.  Other programme: P4 = {a, f, x}.
    So a is already connected to b, c, f; d has the most health partners.
    Held-out: a -> d (cross-type, cross-country), a -> e (same type and country);
    b -> f (cross-country only).
    """
    orgs = [
        ["a", "HES", "DE"],
        ["b", "HES", "FR"],
        ["c", "REC", "DE"],
        ["d", "PRC", "IT"],
        ["e", "HES", "DE"],
        ["f", "HES", "ES"],
    ]
    _write_csv(
        tmp_path / "orgs.csv",
        ["org_id", "type", "country", "country_group", "n_projects_hist"],
        [[o, t, c, "eu15", 1] for o, t, c in orgs],
    )
    projects = {"P1": ["a", "b", "c"], "P2": ["c", "d"], "P3": ["d", "e"], "P4": ["a", "f", "x"]}
    participations = [
        [p, o, "participant", "HES", "DE", "2016-01-01", "SC1", int(p != "P4")]
        for p, members in projects.items()
        for o in members
    ]
    _write_csv(
        tmp_path / "participations_hist.csv.gz",
        [
            "project_id",
            "org_id",
            "role",
            "type",
            "country",
            "start_date",
            "programme_parts",
            "is_domain",
        ],
        participations,
    )
    domain_pairs = [
        ("a", "b", "P1"),
        ("a", "c", "P1"),
        ("b", "c", "P1"),
        ("c", "d", "P2"),
        ("d", "e", "P3"),
    ]
    _write_csv(
        tmp_path / "edges_hist_domain.csv.gz",
        ["org_u", "org_v", "project_id", "start_year", "project_size"],
        [[u, v, p, 2016, len(projects[p])] for u, v, p in domain_pairs],
    )
    all_pairs = [(u, v) for u, v, _ in domain_pairs] + [("a", "f")]
    _write_csv(
        tmp_path / "edges_hist_allprog_agg.csv.gz",
        ["org_u", "org_v", "n_projects", "n_domain_projects", "first_year", "last_year"],
        [[u, v, 1, 1, 2016, 2016] for u, v in all_pairs],
    )
    _write_csv(
        tmp_path / "heldout_dev.csv",
        [
            "query_id",
            "partner_id",
            "first_project_id",
            "first_year",
            "n_projects_after",
            "first_project_size",
            "cross_type",
            "cross_country",
        ],
        [
            ["a", "d", "N1", 2019, 1, 5, 1, 1],
            ["a", "e", "N1", 2019, 1, 5, 0, 0],
            ["b", "f", "N2", 2019, 1, 3, 0, 1],
        ],
    )
    return tmp_path


@pytest.fixture
def bench(bench_dir: Path) -> Benchmark:
    return load_benchmark(bench_dir)


def test_reciprocal_rank_counts_only_the_best_positive_within_the_cutoff() -> None:
    ranked = ["x", "p", "y", "q"]
    assert reciprocal_rank(ranked, {"q", "p"}) == 0.5
    assert reciprocal_rank(ranked, {"q"}, k=3) == 0.0
    assert reciprocal_rank(ranked, {"q"}, k=None) == 0.25


def test_recall_divides_by_all_positives_and_hits_is_binary() -> None:
    ranked = ["p1", "x", "p2", "y"]
    positives = {"p1", "p2", "p3", "p4"}
    assert recall_at_k(ranked, positives, 1) == 0.25
    assert recall_at_k(ranked, positives, 10) == 0.5
    assert hits_at_k(ranked, positives, 1) == 1.0
    assert hits_at_k(["x", "y"], positives, 2) == 0.0
    assert math.isnan(recall_at_k(ranked, set(), 10))


def test_load_benchmark_reads_connections_positives_and_history_degree(bench: Benchmark) -> None:
    assert bench.query_ids == ("a", "b")
    assert bench.connected["a"] == {"b", "c", "f"}
    assert bench.positives["a"] == {"d", "e"}
    assert bench.cross_type_positives == {"a": {"d"}}
    assert bench.cross_country_positives == {"a": {"d"}, "b": {"f"}}
    # a met b, c (P1) and f, x (P4): the outsider x counts towards the degree.
    assert bench.history_degree["a"] == 4


def test_clean_ranking_drops_query_connected_unknown_and_repeats(bench: Benchmark) -> None:
    assert clean_ranking(bench, "a", ["a", "b", "x", "d", "zz", "d", "e", "f"]) == ["d", "e"]


def test_evaluate_rankings_on_known_rankings(bench: Benchmark) -> None:
    # a: connected b is dropped, so d is rank 2 and e rank 3. b: f at rank 1 of the cleaned list.
    rankings = {"a": ["b", "x", "e", "d"], "b": ["a", "f"]}
    metrics = evaluate_rankings(bench, rankings)
    assert metrics["mrr"] == pytest.approx((1 / 1 + 1 / 1) / 2)  # a: e first after cleaning
    assert metrics["recall@10"] == pytest.approx(1.0)
    # Cross-type recall is averaged over the one query (a) that has a cross-type positive.
    assert metrics["recall@50_cross_type"] == pytest.approx(1.0)
    assert metrics["recall@50_cross_country"] == pytest.approx(1.0)

    partial = evaluate_rankings(bench, {"a": ["e"]})
    assert partial["recall@10"] == pytest.approx((0.5 + 0.0) / 2)  # b is missing: scores 0
    assert partial["hits@10"] == pytest.approx(0.5)
    assert partial["recall@50_cross_type"] == 0.0  # d, the cross-type positive, is not ranked
    assert set(partial) == set(METRIC_NAMES)


def test_ids_outside_the_benchmark_take_no_rank(bench: Benchmark) -> None:
    outsiders = [f"zz{i}" for i in range(150)]
    # a finds d at rank 1 once outsiders are dropped; b gets nothing.
    assert evaluate_rankings(bench, {"a": [*outsiders, "d"]})["mrr"] == pytest.approx(0.5)


def test_random_baseline_is_seeded_and_ranks_every_eligible_org(bench: Benchmark) -> None:
    first, again = random_rankings(bench, seed=3), random_rankings(bench, seed=3)
    assert first == again
    assert sorted(first["a"]) == ["d", "e"]
    assert sorted(first["b"]) == ["d", "e", "f"]


def test_popularity_baseline_orders_by_history_degree(bench: Benchmark) -> None:
    # degrees: d 2 (c, e), f 2 (a, x), e 1; the d/f tie is broken at random.
    assert (bench.history_degree["d"], bench.history_degree["f"], bench.history_degree["e"]) == (
        2,
        2,
        1,
    )
    for seed in range(5):
        ranking = popularity_rankings(bench, seed=seed)["b"]
        assert ranking[-1] == "e" and set(ranking[:2]) == {"d", "f"}


def test_adamic_adar_baseline_prefers_shared_health_partners(bench: Benchmark) -> None:
    # a and d share the health partner c; a and e share none.
    assert adamic_adar_rankings(bench)["a"][0] == "d"
    rows = baseline_rows(bench)
    assert set(rows) == {
        "random",
        "popularity (history degree)",
        "Adamic-Adar, health-programme graph",
    }
    # b: d shares c, then e and f tie at 0, so its positive f is at rank 2 or 3.
    assert rows["Adamic-Adar, health-programme graph"]["mrr"] in (
        pytest.approx((1.0 + 1 / 2) / 2),
        pytest.approx((1.0 + 1 / 3) / 2),
    )
