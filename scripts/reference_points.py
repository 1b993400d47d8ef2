"""The issues' reference points, measured on the machine a benchmark runs on.

The speed targets were set on a 2-core Intel machine with AVX-512, and the issues quote what
plain building blocks took there: one exact faiss query over 100k x 384-d vectors (~6 ms, the
service issue), exact all-pairs top-50 over the same (41 s with default BLAS, the batch issue).
The same blocks measured here say how this machine compares. Both are bound by memory and
BLAS, as the ranking is, so a figure from a slower machine is read against its own reference
as well as against the target. The benchmarks print these beside their figures.

    .venv/bin/python -m scripts.reference_points [--all-pairs]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

# What the issues measured on their machine.
ISSUE_EXACT_QUERY_MS = 6.0  # one exact query over 100k x 384, one thread
ISSUE_ALL_PAIRS_S = 41.0  # exact all-pairs top-50 over 100k x 384, default BLAS
SIZE = 100_000
DIM = 384


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> npt.NDArray[np.float32]:
    """``n`` random unit vectors: an exact scan costs the same whatever the vectors hold."""
    rows = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def flat_index(vectors: npt.NDArray[np.float32]) -> faiss.IndexFlatIP:
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def exact_query_ms(vectors: npt.NDArray[np.float32], queries: int = 200, k: int = 100) -> float:
    """Median wall time of one exact inner-product query over ``vectors``, one thread."""
    index = flat_index(vectors)
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        samples = []
        for i in range(queries):
            query = vectors[i % len(vectors)][None, :]
            start = time.perf_counter()
            index.search(query, k)
            samples.append(time.perf_counter() - start)
    finally:
        faiss.omp_set_num_threads(previous)
    return float(np.median(samples)) * 1000


def all_pairs_top_k_s(vectors: npt.NDArray[np.float32], k: int = 50, block: int = 4096) -> float:
    """Wall time of every vector's exact top ``k`` among ``vectors``, faiss on every core."""
    index = flat_index(vectors)
    start = time.perf_counter()
    for first in range(0, len(vectors), block):
        index.search(vectors[first : first + block], k)
    return time.perf_counter() - start


def measure(*, all_pairs: bool, n: int = SIZE) -> dict[str, Any]:
    """The reference points at ``n`` vectors, each with the issue's figure and the ratio
    (above 1: this machine is slower). The issue's figures are for 100k vectors."""
    vectors = unit_vectors(n)
    out: dict[str, Any] = {"vectors": n, "dim": DIM}
    exact = exact_query_ms(vectors)
    out["exact_query_ms"] = {
        "measured": round(exact, 2),
        "issue": ISSUE_EXACT_QUERY_MS,
        "ratio": round(exact / ISSUE_EXACT_QUERY_MS, 2),
    }
    if all_pairs:
        seconds = all_pairs_top_k_s(vectors)
        out["all_pairs_top50_s"] = {
            "measured": round(seconds, 1),
            "issue": ISSUE_ALL_PAIRS_S,
            "ratio": round(seconds / ISSUE_ALL_PAIRS_S, 2),
        }
    return out


def describe(points: dict[str, Any]) -> list[tuple[str, str]]:
    """Table rows for the benchmarks' reports."""
    labels = {
        "exact_query_ms": "one exact faiss query, one thread (ms)",
        "all_pairs_top50_s": "exact all-pairs top-50, faiss (s)",
    }
    return [
        (
            f"{label}, {points['vectors']:,} x {points['dim']}",
            f"{points[key]['measured']} here; the issue's machine {points[key]['issue']} "
            f"({points[key]['ratio']}x)",
        )
        for key, label in labels.items()
        if key in points
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--all-pairs", action="store_true", help="also all-pairs top-50 (~1 min)")
    args = parser.parse_args()
    points = measure(all_pairs=args.all_pairs)
    for name, value in describe(points):
        print(f"  {name}: {value}")
    print(json.dumps(points))


if __name__ == "__main__":
    main()
