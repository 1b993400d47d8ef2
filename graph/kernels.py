"""Compiled loops over the CSR adjacency behind the ranker's graph features, one query at a time.

Each reads the rows it needs in place (no row copies) and releases the GIL, so request threads
run them side by side. Sums run in a fixed order with plain IEEE arithmetic (no fast-math, no
fused multiply-add), so a result depends only on its inputs: the live ranker and the nightly
batch, which both call these, agree to the last bit.

Compiled on first use and cached on disk beside this file (``NUMBA_CACHE_DIR`` moves the
cache); :func:`warm_up` compiles them ahead of the first request.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "PROXIMITY_COLUMNS",
    "bridge_rows",
    "hub_walk_table",
    "proximity_rows",
    "scratch",
    "top_rows",
    "two_step_flow",
    "warm_up",
]

FloatArray = npt.NDArray[np.float64]

PROXIMITY_COLUMNS = (
    "common_partners",
    "adamic_adar",
    "resource_allocation",
    "weighted_ra",
    "paths3",
    "hop_distance",
)
"""The columns :func:`proximity_rows` returns, in order."""

LOOKUP_COST = 16
"""A hub's row is searched for each of the query's partners (about log2 of its length in
steps) instead of read whole when it holds at least this many entries per query partner."""


@njit(cache=True, nogil=True)
def two_step_flow(
    indptr: Any, indices: Any, weights: Any, inv_strength: Any, q: int
) -> tuple[FloatArray, npt.NDArray[np.int64]]:  # pragma: no cover - compiled
    """Dense ``A[q] D^-1 A``: the tie weight of ``q`` reaching each node in two steps, and the
    nodes it reaches (unordered; weights are > 0, so exactly those with flow > 0).

    Per node ``b`` the terms ``A[a, b] * (A[q, a] / strength(a))`` are added over q's
    partners ``a`` in ascending order, starting from zero.
    """
    n = len(indptr) - 1
    flow = np.zeros(n)
    bound = 0
    for p in range(indptr[q], indptr[q + 1]):
        bound += indptr[indices[p] + 1] - indptr[indices[p]]
    reached = np.empty(min(n, bound), dtype=np.int64)
    count = 0
    for p in range(indptr[q], indptr[q + 1]):
        a = indices[p]
        mass = weights[p] * inv_strength[a]
        for e in range(indptr[a], indptr[a + 1]):
            b = indices[e]
            if flow[b] == 0.0:
                reached[count] = b
                count += 1
            flow[b] += weights[e] * mass
    return flow, reached[:count]


@njit(cache=True, nogil=True)
def hub_walk_table(
    indptr: Any, indices: Any, weights: Any, inv_strength: Any, hubs: Any
) -> FloatArray:  # pragma: no cover - compiled
    """``T[a, j] = (A D^-1 A)[a, hubs[j]]``: two-step flow from every node into each hub.

    With it, the three-step walks from ``q`` to a hub cost one read per partner of ``q``
    (``sum_a A[q, a] / strength(a) * T[a, j]``) instead of a pass over the hub's thousands of
    partners for every query.
    """
    n = len(indptr) - 1
    table = np.zeros((n, len(hubs)))
    for j in range(len(hubs)):
        table[:, j] = two_step_flow(indptr, indices, weights, inv_strength, hubs[j])[0]
    return table


@njit(cache=True, nogil=True)
def proximity_rows(
    indptr: Any,
    indices: Any,
    weights: Any,
    inv_log_degree: Any,
    inv_degree: Any,
    inv_strength: Any,
    inv_sqrt_strength: Any,
    hub_slot: Any,
    hub_table: Any,
    q: int,
    flow: Any,
    reached: Any,
    rows: Any,
    unreachable: float,
    z: Any,
    is_partner: Any,
    partner_weight: Any,
) -> FloatArray:  # pragma: no cover - compiled
    """Per candidate graph row (never ``q`` itself), the :data:`PROXIMITY_COLUMNS`.

    For an ordinary candidate ``c``, one pass over its row: the entries ``b`` that are partners
    of ``q`` are the common partners (terms in ascending ``b``), and
    ``S^3[q, c] = s_c * sum_b A[c, b] z_b`` with ``z_b = flow_b / strength(b) * s_q`` gives
    the normalised three-step walks (``s = strength^-1/2``, ``flow`` from
    :func:`two_step_flow`).

    For a hub (``hub_slot[c] >= 0``) with ``LOOKUP_COST`` times more partners than ``q``:
    each partner of ``q`` is looked up in the hub's sorted row (same terms, same order), and
    the walks come from one pass over ``hub_table`` (:func:`hub_walk_table`) for all hubs.
    Which way a pair goes depends on the two degrees only, never on the other candidates.

    ``z`` (float64), ``is_partner`` (uint8) and ``partner_weight`` (float64), all zero, hold
    one value per node and are reused across the calls of one thread (:func:`scratch`): a row
    sweep reads the first two at every entry (compact, they stay in cache) and the weight only
    at common partners. Only the nodes the flow ``reached`` and q's partners are written, and
    all three are zero again on return.
    """
    q_start, q_end = indptr[q], indptr[q + 1]
    s_q = inv_sqrt_strength[q]
    for b in reached:
        z[b] = flow[b] * inv_strength[b] * s_q
    for p in range(q_start, q_end):
        is_partner[indices[p]] = 1
        partner_weight[indices[p]] = weights[p]

    q_degree = q_end - q_start
    hubs = hub_table.shape[1]
    hub_walks = np.zeros(hubs)
    have_hub_walks = False
    out = np.zeros((len(rows), 6))
    for i in range(len(rows)):
        c = rows[i]
        common = 0.0
        adamic_adar = 0.0
        resource = 0.0
        weighted = 0.0
        walks = 0.0
        start, end = indptr[c], indptr[c + 1]
        if hub_slot[c] >= 0 and q_degree * LOOKUP_COST <= end - start:
            if not have_hub_walks:
                for p in range(q_start, q_end):
                    a = indices[p]
                    mass = weights[p] * inv_strength[a]
                    for j in range(hubs):
                        hub_walks[j] += mass * hub_table[a, j]
                have_hub_walks = True
            for mine in range(q_start, q_end):
                b = indices[mine]
                theirs = start + np.searchsorted(indices[start:end], b)
                if theirs < end and indices[theirs] == b:
                    common += 1.0
                    adamic_adar += inv_log_degree[b]
                    resource += inv_degree[b]
                    weighted += weights[mine] * weights[theirs] * inv_strength[b]
            walks = hub_walks[hub_slot[c]] * s_q
        else:
            for e in range(start, end):
                b = indices[e]
                w_cb = weights[e]
                walks += w_cb * z[b]
                if is_partner[b]:
                    common += 1.0
                    adamic_adar += inv_log_degree[b]
                    resource += inv_degree[b]
                    weighted += partner_weight[b] * w_cb * inv_strength[b]
        paths3 = inv_sqrt_strength[c] * walks
        # Weights are > 0, so paths3 > 0 exactly when some walk of length 3 reaches c.
        if is_partner[c]:
            hops = 1.0
        elif common > 0.0:
            hops = 2.0
        elif paths3 > 0.0:
            hops = 3.0
        else:
            hops = unreachable
        out[i, 0] = common
        out[i, 1] = adamic_adar
        out[i, 2] = resource
        out[i, 3] = weighted
        out[i, 4] = paths3
        out[i, 5] = hops
    for p in range(q_start, q_end):
        is_partner[indices[p]] = 0
        partner_weight[indices[p]] = 0.0
    for b in reached:
        z[b] = 0.0
    return out


@njit(cache=True, nogil=True)
def bridge_rows(
    indptr: Any,
    indices: Any,
    weights: Any,
    inv_strength: Any,
    q: int,
    rows: Any,
    limit: int,
    z: Any,
    is_partner: Any,
    partner_weight: Any,
) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """Per candidate row ``c`` (never ``q``), the graph rows that best explain how ``q``
    reaches it, strongest first, ``-1`` where there are fewer than ``limit``.

    Common partners ``w`` rank by ``A[q, w] * A[c, w] / strength(w)``. With none, and ``c`` not
    a partner of ``q``: q's partners ``a`` on paths ``q - a - b - c``, ranked by
    ``(sum_b A[a, b] / strength(b) * A[b, c]) * (A[q, a] / strength(a))`` (terms in row
    order), those above zero. Ties go to the smaller row. The scratch arrays are those of
    :func:`proximity_rows` (:func:`scratch`), zero on entry and again on return.
    """
    q_start, q_end = indptr[q], indptr[q + 1]
    for p in range(q_start, q_end):
        is_partner[indices[p]] = 1
        partner_weight[indices[p]] = weights[p]
    out = np.full((len(rows), limit), -1, dtype=np.int64)
    best = np.zeros(limit)
    for i in range(len(rows)):
        c = rows[i]
        found = 0
        for e in range(indptr[c], indptr[c + 1]):  # common partners, ascending rows
            b = indices[e]
            if is_partner[b]:
                found = _keep_best(
                    out[i], best, found, b, partner_weight[b] * weights[e] * inv_strength[b]
                )
        if found > 0 or is_partner[c]:
            continue
        for e in range(indptr[c], indptr[c + 1]):
            z[indices[e]] = weights[e]
        for p in range(q_start, q_end):  # q's partners, ascending rows
            a = indices[p]
            through = 0.0
            for e in range(indptr[a], indptr[a + 1]):
                b = indices[e]
                if z[b] != 0.0:
                    through += weights[e] * inv_strength[b] * z[b]
            through *= weights[p] * inv_strength[a]
            if through > 0.0:
                found = _keep_best(out[i], best, found, a, through)
        for e in range(indptr[c], indptr[c + 1]):
            z[indices[e]] = 0.0
    for p in range(q_start, q_end):
        is_partner[indices[p]] = 0
        partner_weight[indices[p]] = 0.0
    return out


@njit(cache=True, nogil=True)
def _keep_best(
    picked: Any, best: Any, found: int, row: int, score: float
) -> int:  # pragma: no cover - compiled
    """Insert ``row`` into the ``found`` best so far (rows offered in ascending order, so an
    equal score keeps the earlier, smaller row ahead); returns how many are kept."""
    limit = len(picked)
    if found == limit and score <= best[limit - 1]:
        return found
    slot = min(found, limit - 1)
    while slot > 0 and best[slot - 1] < score:
        picked[slot] = picked[slot - 1]
        best[slot] = best[slot - 1]
        slot -= 1
    picked[slot] = row
    best[slot] = score
    return min(found + 1, limit)


@njit(cache=True, nogil=True)
def top_rows(
    values: Any, rows: Any, limit: int, skip: Any
) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """Of ``rows`` (distinct graph rows), those not flagged in ``skip`` with the ``limit``
    highest ``values[row]``, best first; ties go to the smaller row, so the answer is one list
    whatever the order of ``rows``. One pass with a heap of ``limit`` whose root is the worst
    row kept: most rows lose one comparison with it (a hub's query reaches tens of thousands
    of rows, of which the graph candidates are the best 200).
    """
    heap = np.empty(min(limit, len(rows)), dtype=np.int64)
    size = 0
    for r in rows:
        if skip[r]:
            continue
        if size < len(heap):
            heap[size] = r  # sift up: the new row climbs while it is worse than its parent
            at = size
            size += 1
            while at > 0:
                parent = (at - 1) // 2
                if not _worse(values, heap[at], heap[parent]):
                    break
                heap[at], heap[parent] = heap[parent], heap[at]
                at = parent
        elif size > 0 and _worse(values, heap[0], r):
            heap[0] = r
            _sift_down_rows(values, heap, 0, size)
    out = np.empty(size, dtype=np.int64)
    for end in range(size - 1, -1, -1):  # pop the worst into the last free place
        out[end] = heap[0]
        heap[0] = heap[end]
        _sift_down_rows(values, heap, 0, end)
    return out


@njit(cache=True, nogil=True, inline="always")
def _worse(values: Any, a: int, b: int) -> bool:  # pragma: no cover - compiled
    """Whether row ``a`` ranks below row ``b``: a lower value, or the same and a larger row."""
    return values[a] < values[b] or (values[a] == values[b] and a > b)


@njit(cache=True, nogil=True)
def _sift_down_rows(values: Any, heap: Any, at: int, size: int) -> None:  # pragma: no cover
    while True:
        worst = at
        for child in (2 * at + 1, 2 * at + 2):
            if child < size and _worse(values, heap[child], heap[worst]):
                worst = child
        if worst == at:
            return
        heap[at], heap[worst] = heap[worst], heap[at]
        at = worst


_scratch = threading.local()


def scratch(n: int) -> tuple[FloatArray, npt.NDArray[np.uint8], FloatArray]:
    """This thread's ``(z, is_partner, partner_weight)`` scratch arrays for
    :func:`proximity_rows` on a graph of ``n`` nodes (17 bytes per node and thread; fresh
    pages for every call cost more than the sweeps)."""
    found = getattr(_scratch, "arrays", None)
    if found is None or len(found[0]) != n:
        found = _scratch.arrays = (np.zeros(n), np.zeros(n, dtype=np.uint8), np.zeros(n))
    return found


def warm_up() -> None:
    """Compile (or load from the disk cache) the kernels for the snapshot's array types, so
    the first request does not pay for it (a few seconds without a cache)."""
    from graph.proximity import GraphSnapshot

    snap = GraphSnapshot.from_edges([1, 2, 3, 4], [1, 2, 3], [2, 3, 4], [1.0, 1.0, 1.0])
    snap.proximity(1, [3])
    snap.expand(1, 3)  # distance 2, then 3
