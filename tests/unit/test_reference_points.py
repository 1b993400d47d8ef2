"""The benchmarks' reference points: the issue's building blocks, measured on this machine."""

from __future__ import annotations

import faiss
import numpy as np

from scripts import reference_points
from scripts.reference_points import describe, measure, unit_vectors


def test_vectors_are_unit_length_and_repeatable() -> None:
    rows = unit_vectors(50, dim=8)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(rows, unit_vectors(50, dim=8))


def test_measure_reports_each_point_against_the_issue_figure() -> None:
    threads = faiss.omp_get_max_threads()
    points = measure(all_pairs=True, n=2_000)
    assert faiss.omp_get_max_threads() == threads  # the one-thread query gives them back
    exact, pairs = points["exact_query_ms"], points["all_pairs_top50_s"]
    assert exact["issue"] == reference_points.ISSUE_EXACT_QUERY_MS
    assert pairs["issue"] == reference_points.ISSUE_ALL_PAIRS_S
    for point in (exact, pairs):
        assert point["measured"] >= 0
        assert abs(point["ratio"] - point["measured"] / point["issue"]) <= 0.01
    rows = describe(points)
    labels = ("one exact faiss query, one thread (ms)", "exact all-pairs top-50, faiss (s)")
    assert [name for name, _ in rows] == [f"{label}, 2,000 x 384" for label in labels]


def test_all_pairs_is_left_out_unless_asked() -> None:
    points = measure(all_pairs=False, n=1_000)
    assert "all_pairs_top50_s" not in points
    assert len(describe(points)) == 1
