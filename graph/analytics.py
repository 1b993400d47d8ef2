"""Ecosystem analytics on the collaboration graph's CSR adjacency: betweenness (exact or
sampled), brokerage across groups, components, group-by-group link matrices and their gaps.

Everything works on a symmetric ``scipy.sparse`` adjacency (the :class:`GraphSnapshot`'s, or a
sub-matrix of it) plus plain integer arrays for node attributes, so it needs neither networkx
nor the catalogue and stays vectorised: 100,000 organisations take seconds, not hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

__all__ = [
    "Betweenness",
    "GroupGap",
    "brokerage",
    "components",
    "group_gaps",
    "group_link_matrix",
    "hop_betweenness",
    "membership_matrix",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Up to this many nodes betweenness is exact (every node a source); above, sampled pivots.
EXACT_BETWEENNESS_LIMIT = 2_000
DEFAULT_PIVOTS = 128
# Sampled sources x adjacency entries: ~15 s of sweeps on one slow shared core.
PIVOT_WORK_BUDGET = 128_000_000


@dataclass(frozen=True, slots=True)
class Betweenness:
    """Shortest-path betweenness per node (hop counts, links unweighted), normalised to [0, 1]
    like networkx's ``normalized=True``. ``pivots`` sources were used; with ``exact`` False the
    values are an unbiased estimate from that many randomly sampled sources (Brandes & Pich
    2007), good for ranking the top brokers but noisy for the tail."""

    values: FloatArray
    pivots: int
    exact: bool


def _binary(adjacency: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
    """The adjacency with every stored link as 1, canonical (sorted) indices, no self-loops."""
    a = sp.csr_array(adjacency, copy=True)
    a.sum_duplicates()
    a.data = np.ones(len(a.data), dtype=np.float64)
    owner = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    if np.any(owner == a.indices):
        a.data[owner == a.indices] = 0.0
        a.eliminate_zeros()
    return a


def default_pivots(n_nodes: int, n_entries: int) -> int:
    """How many sources to sample: all of them on small graphs; above
    ``EXACT_BETWEENNESS_LIMIT`` nodes enough to keep about ``PIVOT_WORK_BUDGET`` adjacency
    entries of work (one source sweeps every entry twice), between 16 and 128.

    >>> default_pivots(300, 2_000), default_pivots(100_000, 2_000_000)
    (300, 64)
    """
    if n_nodes <= EXACT_BETWEENNESS_LIMIT:
        return n_nodes
    return int(min(DEFAULT_PIVOTS, max(16, PIVOT_WORK_BUDGET // max(n_entries, 1))))


def hop_betweenness(
    adjacency: sp.csr_array | sp.csr_matrix,
    *,
    pivots: int | None = None,
    seed: int = 0,
) -> Betweenness:
    """Brandes' betweenness over hop-count shortest paths, from every node or from ``pivots``
    sampled sources (default: :func:`default_pivots`, exact on graphs up to
    ``EXACT_BETWEENNESS_LIMIT`` nodes).

    Each source is one level-synchronous breadth-first sweep over the CSR arrays, so a source
    costs O(links) in vectorised numpy, not in Python steps.

    >>> path = sp.csr_array(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]]))
    >>> hop_betweenness(path).values.round(3).tolist()
    [0.0, 0.667, 0.667, 0.0]
    """
    a = _binary(adjacency)
    n = a.shape[0]
    if n < 3:
        return Betweenness(np.zeros(n), n, True)
    if pivots is None:
        pivots = default_pivots(n, a.nnz)
    pivots = max(1, min(int(pivots), n))
    exact = pivots == n
    sources = (
        np.arange(n) if exact else np.random.default_rng(seed).choice(n, size=pivots, replace=False)
    )
    index_dtype = np.int32 if a.nnz < 2**31 - 1 else np.int64
    indptr = a.indptr.astype(np.int64)
    indices = a.indices.astype(index_dtype)
    degree = np.diff(indptr)
    total = np.zeros(n)
    dist = np.full(n, -1, dtype=np.int32)
    sigma = np.zeros(n)
    delta = np.zeros(n)
    for s in sources.tolist():
        if degree[s] == 0:
            continue
        visited, steps = _bfs(int(s), indptr, indices, degree, dist, sigma)
        delta[:] = 0.0
        # Dependencies flow back from the deepest level: delta_v += sigma_v / sigma_w
        # * (1 + delta_w) for every shortest-path successor w of v.
        for tail, head in reversed(steps):
            contrib = sigma[tail] / sigma[head] * (1.0 + delta[head])
            delta += np.bincount(tail, weights=contrib, minlength=n)
        delta[s] = 0.0
        total += delta
        dist[visited] = -1  # reset only what this sweep touched
        sigma[visited] = 0.0
    # Every unordered pair was seen from both ends; sampling scales by n / pivots.
    scale = (n / pivots) / 2.0
    norm = 2.0 / ((n - 1) * (n - 2))
    return Betweenness(total * scale * norm, pivots, exact)


def _bfs(
    s: int,
    indptr: IntArray,
    indices: npt.NDArray[np.integer[Any]],
    degree: IntArray,
    dist: npt.NDArray[np.int32],
    sigma: FloatArray,
) -> tuple[IntArray, list[tuple[IntArray, IntArray]]]:
    """Breadth-first sweep from ``s`` filling ``dist`` and ``sigma`` (shortest-path counts).

    Returns the nodes reached and, per level, the shortest-path edges (tail, head) into the
    next level: a neighbour still unvisited when its level is expanded is exactly one step
    further out, so the backward pass can reuse these edges instead of scanning rows again.
    """
    n = len(dist)
    dist[s] = 0
    sigma[s] = 1.0
    frontier = np.array([s], dtype=np.int64)
    reached = [frontier]
    steps: list[tuple[IntArray, IntArray]] = []
    depth = 0
    while True:
        starts = indptr[frontier]
        lengths = degree[frontier]
        block = np.cumsum(lengths) - lengths
        pos = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - block, lengths)
        head = indices[pos]
        fresh = dist[head] < 0
        head = head[fresh].astype(np.int64)
        if len(head) == 0:
            break
        tail = np.repeat(frontier, lengths)[fresh]
        depth += 1
        counts = np.bincount(head, weights=sigma[tail], minlength=n)
        frontier = np.flatnonzero(counts)
        dist[frontier] = depth
        sigma[frontier] = counts[frontier]
        reached.append(frontier)
        steps.append((tail, head))
    return np.concatenate(reached), steps


def components(adjacency: sp.csr_array | sp.csr_matrix) -> tuple[int, IntArray]:
    """(number of connected components, component label per node); isolated nodes count.

    >>> a = sp.csr_array(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    >>> n, labels = components(a)
    >>> n, labels.tolist()
    (2, [0, 0, 1])
    """
    n, labels = connected_components(sp.csr_array(adjacency), directed=False)
    return int(n), np.asarray(labels, dtype=np.int64)


def membership_matrix(groups_of_node: Sequence[Sequence[int]], n_groups: int) -> sp.csr_array:
    """A sparse (nodes x groups) 0/1 matrix; a node may belong to several groups or none.

    >>> membership_matrix([(0,), (0, 1), ()], 2).toarray().tolist()
    [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    """
    lengths = np.fromiter((len(g) for g in groups_of_node), dtype=np.int64)
    rows = np.repeat(np.arange(len(groups_of_node)), lengths)
    cols = np.fromiter(
        (c for g in groups_of_node for c in g), dtype=np.int64, count=int(lengths.sum())
    )
    data = np.ones(len(rows))
    return sp.csr_array((data, (rows, cols)), shape=(len(groups_of_node), n_groups))


def group_link_matrix(
    adjacency: sp.csr_array | sp.csr_matrix, membership: sp.csr_array
) -> IntArray:
    """Links between groups: cell (i, j) counts the links joining an organisation of group i
    and one of group j; the diagonal counts links inside a group. An organisation in two
    groups counts in both.

    >>> a = sp.csr_array(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]]))
    >>> m = membership_matrix([(0,), (0,), (1,)], 2)
    >>> group_link_matrix(a, m).tolist()
    [[1, 1], [1, 0]]
    """
    b = _binary(adjacency)
    counts = np.asarray((membership.T @ b @ membership).toarray(), dtype=np.float64)
    np.fill_diagonal(counts, np.diag(counts) / 2.0)
    return np.rint(counts).astype(np.int64)


@dataclass(frozen=True, slots=True)
class GroupGap:
    """A pair of groups linked less than the network's average density would predict."""

    first: int
    second: int
    organisations_first: int
    organisations_second: int
    links: int
    expected_links: float

    @property
    def shortfall(self) -> float:
        return self.expected_links - self.links


def group_gaps(
    links: IntArray,
    sizes: IntArray,
    *,
    density: float,
    limit: int = 10,
    min_expected: float = 1.0,
) -> list[GroupGap]:
    """Group pairs (the diagonal included) whose links fall furthest below ``density`` times
    their possible pairs, largest shortfall first; pairs expecting fewer than
    ``min_expected`` links are too small to call a gap.

    >>> links = np.array([[4, 0], [0, 1]])
    >>> [(g.first, g.second, g.links, g.expected_links) for g in
    ...  group_gaps(links, np.array([5, 3]), density=0.2)]
    [(0, 1, 0, 3.0)]
    """
    n_groups = len(sizes)
    out: list[GroupGap] = []
    for i in range(n_groups):
        for j in range(i, n_groups):
            possible = sizes[i] * (sizes[i] - 1) / 2 if i == j else sizes[i] * sizes[j]
            expected = float(density * possible)
            observed = int(links[i, j])
            if expected >= min_expected and observed < expected:
                out.append(
                    GroupGap(i, j, int(sizes[i]), int(sizes[j]), observed, round(expected, 2))
                )
    out.sort(key=lambda g: (-g.shortfall, g.first, g.second))
    return out[:limit]


def brokerage(
    adjacency: sp.csr_array | sp.csr_matrix, rows: npt.ArrayLike, group_of: IntArray
) -> tuple[IntArray, IntArray]:
    """For each node in ``rows``: (partner pairs it brokers across groups, groups among its
    partners). A brokered pair is two partners in different groups (e.g. countries) that have
    no link of their own, so the node is the bridge between them.

    >>> a = sp.csr_array(np.array([[0, 1, 1, 1], [1, 0, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> pairs, groups = brokerage(a, [0], np.array([0, 1, 2, 2]))
    >>> pairs.tolist(), groups.tolist()
    ([1], [2])
    """
    b = _binary(adjacency)
    picked = np.asarray(rows, dtype=np.int64).reshape(-1)
    pairs = np.zeros(len(picked), dtype=np.int64)
    n_groups = np.zeros(len(picked), dtype=np.int64)
    indptr, indices = b.indptr, b.indices
    for k, v in enumerate(picked.tolist()):
        partners = np.asarray(indices[indptr[v] : indptr[v + 1]], dtype=np.int64)
        if len(partners) < 2:
            n_groups[k] = len(np.unique(group_of[partners]))
            continue
        groups = group_of[partners]
        _, counts = np.unique(groups, return_counts=True)
        n_groups[k] = len(counts)
        cross = (len(partners) ** 2 - int((counts**2).sum())) // 2
        sub: Any = b[partners][:, partners].tocoo()
        linked_cross = int(np.count_nonzero(groups[sub.row] != groups[sub.col])) // 2
        pairs[k] = cross - linked_cross
    return pairs, n_groups
