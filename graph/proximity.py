"""The immutable CSR view of the collaboration graph and the per-request proximity features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from graph.kernels import (
    PROXIMITY_COLUMNS,
    bridge_rows,
    hub_walk_table,
    proximity_rows,
    scratch,
    top_rows,
    two_step_flow,
)

__all__ = ["UNREACHABLE_HOPS", "GraphSnapshot", "ProximityFeatures"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.integer[Any]]  # CSR index arrays: int32 unless the graph is huge
_ArrayT = TypeVar("_ArrayT", bound=np.ndarray[Any, Any])

UNREACHABLE_HOPS: Final = 4
"""``hop_distance`` for "4 or more hops, or not connected at all"."""

HUB_COUNT: Final = 128
HUB_MIN_DEGREE: Final = 64
"""At most ``HUB_COUNT`` organisations with at least ``HUB_MIN_DEGREE`` partners get their
three-step walks from a table (``GraphSnapshot.hub_walk_table``: n x 128 floats, 102 MB at 100k
organisations): they are in almost every query's candidates, and their rows are the longest.
When one of them is the query, its two-step flow is its column of the same table.
128 covers the ranker's ``POPULAR_CANDIDATES`` (the 100 best-connected) with room for a
query's own hub partners, which it skips. Rows swept per query at 100k (scripts.bench_rerank
data, 200 queries): 109k entries with 64 hubs, 50k with 128; the proximity features of a
query's ~500 candidates: 0.81 -> 0.68 ms; building the table: 0.42 -> 0.70 s."""


@dataclass(frozen=True, slots=True)
class ProximityFeatures:
    """Graph features of one query against each candidate, aligned with ``candidate_ids``.

    Candidates unknown to the graph, or equal to the query, get zeros and
    ``hop_distance == UNREACHABLE_HOPS``.
    """

    candidate_ids: IntArray
    common_partners: FloatArray
    adamic_adar: FloatArray
    resource_allocation: FloatArray
    weighted_ra: FloatArray
    hop_distance: FloatArray
    paths3: FloatArray
    candidate_degree: FloatArray
    query_degree: int

    feature_names: ClassVar[tuple[str, ...]] = (
        "common_partners",
        "adamic_adar",
        "resource_allocation",
        "weighted_ra",
        "hop_distance",
        "paths3",
        "candidate_degree",
    )

    def as_matrix(self) -> FloatArray:
        """The per-candidate features as columns, in ``feature_names`` order."""
        return np.column_stack([getattr(self, name) for name in self.feature_names])


class GraphSnapshot:
    """Symmetric weighted adjacency in CSR form; immutable, so safe to read from many threads.

    Node ``i`` is organisation ``node_ids[i]`` (ascending). A query reads the rows of the query
    and its candidates plus one sparse two-hop sweep from the query's partners, so its cost
    follows the degrees involved, plus a few vectorised passes over one value per node.

    >>> snap = GraphSnapshot.from_edges([1, 2, 3, 4], [1, 1, 2], [2, 3, 4], [1.0, 1.0, 1.0])
    >>> snap.degree.tolist(), snap.direct_partners(1).tolist()
    ([2, 2, 1, 1], [2, 3])
    >>> f = snap.proximity(1, [4, 3, 99])
    >>> f.hop_distance.tolist(), f.common_partners.tolist()
    ([2.0, 1.0, 4.0], [1.0, 0.0, 0.0])
    """

    __slots__ = (
        "_adjacency",
        "_by_degree",
        "_hub_slot",
        "_hub_table",
        "_hubs",
        "_indices",
        "_indptr",
        "_inv_degree",
        "_inv_log_degree",
        "_inv_sqrt_strength",
        "_inv_strength",
        "_memo",
        "_row_by_id",
        "_weights",
        "degree",
        "node_ids",
        "strength",
        "version",
    )

    node_ids: IntArray
    degree: IntArray
    strength: FloatArray
    version: int

    def __init__(self, node_ids: IntArray, adjacency: sp.csr_array, *, version: int = 0) -> None:
        """Wrap a canonical, symmetric CSR adjacency without self-loops (use ``from_edges``)."""
        n = len(node_ids)
        if adjacency.shape != (n, n):
            raise ValueError("adjacency must be square with one row per node id")
        if np.any(np.diff(node_ids) <= 0):
            raise ValueError("node_ids must be strictly ascending")
        if n and not 0 <= node_ids[0] <= node_ids[-1] < 2**31:
            raise ValueError("node_ids must be store keys in [0, 2**31)")
        adjacency.sum_duplicates()  # canonical: sorted column indices, no duplicates
        self._adjacency = adjacency
        self._memo: tuple[int, tuple[FloatArray, IntArray]] | None = None
        self._by_degree: IntArray | None = None
        self._hub_table: FloatArray | None = None
        # Organisation ids are the store's dense integer keys: one array index finds a row.
        self._row_by_id = np.full(int(node_ids[-1]) + 1 if n else 0, -1, dtype=np.int32)
        self._row_by_id[np.asarray(node_ids, dtype=np.int64)] = np.arange(n, dtype=np.int32)
        self._row_by_id.flags.writeable = False
        self._indptr: IndexArray = _frozen(adjacency.indptr)
        self._indices: IndexArray = _frozen(adjacency.indices)
        self._weights: FloatArray = _frozen(adjacency.data.astype(np.float64, copy=False))
        self.node_ids = _frozen(np.asarray(node_ids, dtype=np.int64))
        self.version = version
        self.degree = _frozen(np.diff(self._indptr).astype(np.int64))
        self.strength = _frozen(np.asarray(adjacency.sum(axis=1), dtype=np.float64).reshape(n))
        with np.errstate(divide="ignore"):
            deg = self.degree.astype(np.float64)
            log_deg = np.log(deg)
            self._inv_degree = _frozen(np.where(deg > 0, 1.0 / deg, 0.0))
            # A common partner has degree >= 2, so log > 0; the guard only covers the API.
            self._inv_log_degree = _frozen(np.where(deg > 1, 1.0 / log_deg, 0.0))
            self._inv_strength = _frozen(np.where(self.strength > 0, 1.0 / self.strength, 0.0))
            self._inv_sqrt_strength = _frozen(np.sqrt(self._inv_strength))
        # The best-connected organisations: their walks from a query come from a table.
        top = np.argsort(-self.degree, kind="stable")[:HUB_COUNT]
        self._hubs = _frozen(np.sort(top[self.degree[top] >= HUB_MIN_DEGREE]).astype(np.int64))
        hub_slot = np.full(n, -1, dtype=np.int32)
        hub_slot[self._hubs] = np.arange(len(self._hubs), dtype=np.int32)
        self._hub_slot = _frozen(hub_slot)

    @classmethod
    def from_edges(
        cls,
        node_ids: npt.ArrayLike,
        sources: npt.ArrayLike,
        targets: npt.ArrayLike,
        weights: npt.ArrayLike,
        *,
        version: int = 0,
    ) -> GraphSnapshot:
        """Build from an undirected edge list; repeated pairs add up, self-loops are dropped."""
        ids = np.unique(np.asarray(node_ids, dtype=np.int64))
        src = np.asarray(sources, dtype=np.int64)
        dst = np.asarray(targets, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        if not (src.shape == dst.shape == w.shape):
            raise ValueError("sources, targets and weights must have the same length")
        if np.any(w <= 0) or not np.all(np.isfinite(w)):
            raise ValueError("edge weights must be finite and > 0")
        a, b = _positions(ids, src), _positions(ids, dst)
        if np.any(a < 0) or np.any(b < 0):
            raise ValueError("every edge end must be one of node_ids")
        keep = a != b
        lo, hi, w = np.minimum(a, b)[keep], np.maximum(a, b)[keep], w[keep]
        key = lo * np.int64(len(ids)) + hi
        unique, inverse = np.unique(key, return_inverse=True)
        summed = _sum_by(inverse, w, len(unique))
        return cls.from_unique_pairs(
            ids, unique // len(ids), unique % len(ids), summed, version=version
        )

    @classmethod
    def from_unique_pairs(
        cls,
        node_ids: IntArray,
        lo: IntArray,
        hi: IntArray,
        weights: FloatArray,
        *,
        version: int = 0,
    ) -> GraphSnapshot:
        """Build from each undirected pair once, as node positions with ``lo < hi``."""
        n = len(node_ids)
        index_dtype = np.int32 if 2 * len(lo) < np.iinfo(np.int32).max else np.int64
        rows = np.concatenate((lo, hi)).astype(index_dtype)
        cols = np.concatenate((hi, lo)).astype(index_dtype)
        data = np.concatenate((weights, weights)).astype(np.float64)
        adjacency = sp.csr_array((data, (rows, cols)), shape=(n, n))
        return cls(node_ids, adjacency, version=version)

    # -- lookups ---------------------------------------------------------------------------

    @property
    def number_of_organisations(self) -> int:
        return len(self.node_ids)

    @property
    def adjacency(self) -> sp.csr_array:
        """The symmetric pair-weight matrix in node order (read-only arrays; do not modify)."""
        return self._adjacency

    @property
    def number_of_links(self) -> int:
        return len(self._indices) // 2

    def index_of(self, org_ids: npt.ArrayLike) -> IntArray:
        """Row of each organisation id in this snapshot, -1 for ids it does not know."""
        ids = np.asarray(org_ids, dtype=np.int64)
        row_by_id = self._row_by_id
        known = (ids >= 0) & (ids < len(row_by_id))
        if not len(row_by_id):
            return np.full(ids.shape, -1, dtype=np.int64)
        return np.where(known, row_by_id[np.where(known, ids, 0)], -1).astype(np.int64)

    def _row(self, org_id: int) -> int:
        row_by_id = self._row_by_id
        return int(row_by_id[org_id]) if 0 <= org_id < len(row_by_id) else -1

    def _neighbourhood(self, row: int) -> tuple[npt.NDArray[np.intp], FloatArray]:
        start, end = self._indptr[row], self._indptr[row + 1]
        return self._indices[start:end].astype(np.intp), self._weights[start:end]

    def ids_by_degree(self) -> IntArray:
        """Every organisation id, most partners first (ties: smaller id first); computed once.

        >>> GraphSnapshot.from_edges([1, 2, 3], [1], [3], [1.0]).ids_by_degree().tolist()
        [1, 3, 2]
        """
        found = self._by_degree
        if found is None:
            order = np.lexsort((self.node_ids, -self.degree))
            found = self._by_degree = _frozen(np.asarray(self.node_ids[order], dtype=np.int64))
        return found

    def direct_partners(self, query_id: int) -> IntArray:
        """Ids of the organisation's partners, ascending; empty if unknown."""
        row = self._row(query_id)
        if row < 0:
            return np.zeros(0, dtype=np.int64)
        return self.node_ids[self._neighbourhood(row)[0]]

    # -- features --------------------------------------------------------------------------

    def proximity(self, query_id: int, candidate_ids: npt.ArrayLike) -> ProximityFeatures:
        """Proximity features of ``query_id`` to each candidate.

        Per candidate ``c`` with common partners ``w`` (weights ``A``, degree = distinct
        partners, strength = sum of pair weights):

        - ``common_partners``: number of ``w``;
        - ``adamic_adar``: sum of ``1 / log(degree(w))``;
        - ``resource_allocation``: sum of ``1 / degree(w)``;
        - ``weighted_ra``: sum of ``A[q, w] * A[w, c] / strength(w)``;
        - ``hop_distance``: 1, 2, 3, or ``UNREACHABLE_HOPS`` for 4 or more;
        - ``paths3``: length-3 walks weighted by ``S = D^-1/2 A D^-1/2`` (D = strength), i.e.
          ``S^3[q, c]``, a truncated Katz / random-walk score. The symmetric normalisation
          makes the score the same whichever side asks (matching is reciprocal) and, unlike
          the random-walk probability, does not grow with the candidate's own size.

        >>> snap = GraphSnapshot.from_edges(range(5), [0, 0, 1, 2, 3], [1, 2, 3, 3, 4], [1] * 5)
        >>> f = snap.proximity(0, [3, 4])
        >>> f.common_partners.tolist(), f.resource_allocation.tolist(), f.hop_distance.tolist()
        ([2.0, 0.0], [1.0, 0.0], [2.0, 3.0])
        """
        candidates = np.asarray(candidate_ids, dtype=np.int64).reshape(-1)
        m = len(candidates)
        rows = self.index_of(candidates)
        known = rows >= 0
        candidate_degree = np.zeros(m)
        candidate_degree[known] = self.degree[rows[known]]
        feats = {name: np.zeros(m) for name in ProximityFeatures.feature_names}
        feats["hop_distance"][:] = UNREACHABLE_HOPS
        q = self._row(query_id)
        query_degree = int(self.degree[q]) if q >= 0 else 0
        slots = np.flatnonzero(known & (rows != q)) if q >= 0 else np.zeros(0, dtype=np.intp)
        if query_degree > 0 and len(slots) > 0:
            self._fill_proximity(q, rows[slots], slots, feats)
        return ProximityFeatures(
            candidate_ids=candidates,
            common_partners=feats["common_partners"],
            adamic_adar=feats["adamic_adar"],
            resource_allocation=feats["resource_allocation"],
            weighted_ra=feats["weighted_ra"],
            hop_distance=feats["hop_distance"],
            paths3=feats["paths3"],
            candidate_degree=candidate_degree,
            query_degree=query_degree,
        )

    def _fill_proximity(
        self, q: int, cand_rows: IntArray, slots: npt.NDArray[np.intp], out: dict[str, FloatArray]
    ) -> None:
        values = proximity_rows(
            self._indptr,
            self._indices,
            self._weights,
            self._inv_log_degree,
            self._inv_degree,
            self._inv_strength,
            self._inv_sqrt_strength,
            self._hub_slot,
            self.hub_walk_table(),
            q,
            *self.resource_flow(q),
            cand_rows,
            float(UNREACHABLE_HOPS),
            *scratch(len(self.node_ids)),
        )
        for column, name in enumerate(PROXIMITY_COLUMNS):
            out[name][slots] = values[:, column]

    def _step(self, rows: npt.NDArray[np.intp], mass: FloatArray) -> FloatArray:
        """Dense ``sum_a mass[a] * A[rows[a], :]``: one step of weighted flow from ``rows``."""
        if len(rows) == 0:
            return np.zeros(len(self.node_ids))
        flow: FloatArray = np.asarray(mass @ self._adjacency[rows], dtype=np.float64)
        return flow

    def expand(self, query_id: int, limit: int) -> tuple[IntArray, FloatArray]:
        """Graph candidates for ``query_id``: up to ``limit`` organisations 2 hops away, then 3.

        Excludes the query and its direct partners. Distance-2 organisations come first,
        ranked by weighted resource allocation (``weighted_ra``: resource flowing
        q -> partner -> c, each node splitting it by pair weight); if there are fewer than
        ``limit``, distance-3 organisations follow, ranked by the same flow over three steps.
        Scores compare only within one distance. Ties go to the smaller id.

        >>> snap = GraphSnapshot.from_edges(range(6), [0, 0, 1, 2, 3], [1, 2, 3, 3, 4], [1] * 5)
        >>> ids, scores = snap.expand(0, 5)
        >>> ids.tolist(), scores.round(3).tolist()
        ([3, 4], [1.0, 0.333])
        """
        q = self._row(query_id)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
        if q < 0 or limit <= 0 or self.degree[q] == 0:
            return empty
        q_partners = self._neighbourhood(q)[0]
        flow2, reached = self.resource_flow(q)
        skip = scratch(len(self.node_ids))[1]  # zero between calls
        skip[q_partners] = 1
        skip[q] = 1
        try:
            picked = top_rows(flow2, reached, limit, skip)
        finally:
            skip[q_partners] = 0
            skip[q] = 0
        if len(picked) == limit:
            return self.node_ids[picked], flow2[picked]
        # Fewer than `limit` nodes are 2 hops away, so `picked` holds them all. A distance-3
        # node's partners are all 2 or more hops away, so its flow comes from the distance-2
        # nodes alone (summed in row order, so the result does not depend on the order the
        # flow found them).
        two = np.sort(picked)
        flow3 = self._step(two, flow2[two] * self._inv_strength[two])
        flow3[q] = 0.0
        flow3[q_partners] = 0.0
        flow3[two] = 0.0
        more = top_rows(flow3, np.flatnonzero(flow3 > 0), limit - len(picked), skip)
        rows = np.concatenate((picked, more))
        return self.node_ids[rows], np.concatenate((flow2[picked], flow3[more]))

    def hub_walk_table(self) -> FloatArray:
        """``(A D^-1 A)[:, hubs]`` for the ``HUB_COUNT`` best-connected organisations (those with
        at least ``HUB_MIN_DEGREE`` partners): built on first use, then shared by every query
        on this snapshot (a lost race only builds it twice)."""
        table = self._hub_table
        if table is None:
            table = hub_walk_table(
                self._indptr, self._indices, self._weights, self._inv_strength, self._hubs
            )
            table.flags.writeable = False
            self._hub_table = table
        return table

    def resource_flow(self, q: int) -> tuple[FloatArray, IntArray]:
        """Dense ``A[q] @ D^-1 A`` for graph row ``q`` (how much of q's tie weight reaches each
        node in two steps), and the rows it reaches (unordered).

        Both ``expand`` and ``proximity`` start from it, and the ranker calls them for the same
        query back to back, so the latest one is kept (read-only; a lost race only recomputes).

        A hub's flow is its column of :meth:`hub_walk_table`, computed by the same sweep
        (``A D^-1 A`` is symmetric), so the values are the same to the last bit. Reading it
        costs 1.2 ms against 3.9 ms for the sweep, median over the 128 hubs of
        ``scripts.bench_rerank``'s 100k network (degree 1,260-9,600).
        """
        memo = self._memo
        if memo is not None and memo[0] == q:
            return memo[1]
        slot = int(self._hub_slot[q])
        if slot >= 0:
            flow = np.ascontiguousarray(self.hub_walk_table()[:, slot])
            reached = np.flatnonzero(flow).astype(np.int64, copy=False)  # weights > 0: flow > 0
        else:
            flow, reached = two_step_flow(
                self._indptr, self._indices, self._weights, self._inv_strength, q
            )
        flow.flags.writeable = False
        reached.flags.writeable = False
        self._memo = (q, (flow, reached))
        return flow, reached

    def bridges(self, query_id: int, candidate_id: int, limit: int = 3) -> list[int]:
        """Organisations that best explain how the query reaches the candidate, strongest first.

        Common partners ranked by their ``weighted_ra`` term ``A[q, w] * A[w, c] /
        strength(w)`` (a partner strongly tied to both and not spread thin explains most). With
        none, at distance 3, the query's partners ``a`` on paths ``q - a - b - c``, ranked by
        the flow through them. Empty for unknown ids, for direct partners without common
        partners and for pairs 4 or more hops apart.

        >>> snap = GraphSnapshot.from_edges(range(6), [0, 0, 1, 2, 3, 4], [1, 2, 3, 3, 4, 5],
        ...                                 [1, 3, 1, 1, 1, 1])
        >>> snap.bridges(0, 3), snap.bridges(0, 4), snap.bridges(0, 5)
        ([2, 1], [2, 1], [])
        """
        return self.bridges_many(query_id, [candidate_id], limit)[0]

    def bridges_many(
        self, query_id: int, candidate_ids: Sequence[int], limit: int = 3
    ) -> list[list[int]]:
        """:meth:`bridges` for each candidate, in one compiled pass (a query's explained page)."""
        q = self._row(query_id)
        if q < 0 or limit <= 0:
            return [[] for _ in candidate_ids]
        rows = self.index_of(candidate_ids)
        asked = np.flatnonzero((rows >= 0) & (rows != q))
        found = bridge_rows(
            self._indptr,
            self._indices,
            self._weights,
            self._inv_strength,
            q,
            rows[asked],
            limit,
            *scratch(len(self.node_ids)),
        )
        out: list[list[int]] = [[] for _ in candidate_ids]
        for slot, picked in zip(asked.tolist(), found, strict=True):
            out[slot] = self._ids(picked[picked >= 0])
        return out

    def _ids(self, rows: npt.NDArray[np.integer]) -> list[int]:
        ids: list[int] = self.node_ids[rows].tolist()
        return ids


def _positions(sorted_ids: IntArray, ids: IntArray) -> IntArray:
    """Position of each id in ``sorted_ids``, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)


def _frozen(array: _ArrayT) -> _ArrayT:
    array.flags.writeable = False
    return array


def _sum_by(slots: npt.NDArray[np.integer], values: FloatArray, size: int) -> FloatArray:
    """``out[i] = sum(values[slots == i])`` for ``i < size``."""
    return np.bincount(slots, weights=values, minlength=size).astype(np.float64, copy=False)
