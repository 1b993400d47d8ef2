"""Compiled loops for the dot products a match request takes: the query against a few hundred
candidates' stored vectors, read in place by slot (no gathered copy of their rows).

A ranking query scores ~500 candidates. Gathering their vectors (and their offer and need
items) into fresh matrices before one BLAS product cost more than the products themselves:
~0.8 MB copied per space and query. These kernels read each candidate's row where it lies.

Float32 sums, vectorised (``fastmath`` lets the compiler split a sum over lanes, so the last
bit can differ from numpy's order); a result depends only on its inputs and the compiled code.
The live ranker and the nightly batch call the same kernels, so they agree to the last bit.
All release the GIL. Compiled on first use and cached on disk (:func:`warm_up` compiles them
ahead of the first request).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["best_item_dot", "dot_at", "look_up", "warm_up"]

# Reassociation lets the sums vectorise; no flag that changes what a finite input gives.
_FAST = {"reassoc", "contract"}


@njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _dot(x: Any, y: Any) -> Any:  # pragma: no cover - compiled
    total = np.float32(0.0)
    for k in range(x.shape[0]):
        total += x[k] * y[k]
    return total


@njit(cache=True, nogil=True)
def look_up(by_id: Any, ids: Any) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """``by_id[id]`` for each of ``ids``, -1 for ids outside the table: one pass, where numpy
    takes five (and holds the GIL for each)."""
    out = np.empty(len(ids), dtype=np.int64)
    n = len(by_id)
    for i in range(len(ids)):
        x = ids[i]
        out[i] = by_id[x] if 0 <= x < n else -1
    return out


@njit(cache=True, nogil=True, fastmath=_FAST)
def dot_at(vectors: Any, slots: Any, query: Any) -> npt.NDArray[np.float32]:  # pragma: no cover
    """``vectors[slots] @ query`` without the gather: 0 where a slot is -1."""
    out = np.zeros(len(slots), dtype=np.float32)
    for i in range(len(slots)):
        s = slots[i]
        if s >= 0:
            out[i] = _dot(vectors[s], query)
    return out


@njit(cache=True, nogil=True, fastmath=_FAST)
def best_item_dot(
    items: Any, span: Any, rows: Any, queries: Any
) -> npt.NDArray[np.float64]:  # pragma: no cover - compiled
    """Per row ``r`` of ``rows``, the best dot between any of ``queries`` and any of r's items
    ``items[span[r, 0] : span[r, 0] + span[r, 1]]``; 0 for a row of -1 or without items."""
    out = np.zeros(len(rows))
    for i in range(len(rows)):
        r = rows[i]
        if r < 0 or span[r, 1] == 0:
            continue
        best = -np.inf
        for j in range(span[r, 0], span[r, 0] + span[r, 1]):
            for m in range(queries.shape[0]):
                d = _dot(items[j], queries[m])
                if d > best:
                    best = d
        out[i] = best
    return out


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernels for the index's array types."""
    vectors = np.eye(2, dtype=np.float32)
    slots = look_up(np.array([0], dtype=np.int32), np.array([0, 5], dtype=np.int64))
    dot_at(vectors, slots, vectors[0])
    best_item_dot(vectors, np.array([[0, 2], [0, 0]], dtype=np.int64), slots, vectors[:1])
