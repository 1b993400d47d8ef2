"""The collaboration graph: organisations joined by collaborations, projected to weighted pairs."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import networkx as nx
import numpy as np
import numpy.typing as npt

from graph.proximity import GraphSnapshot

__all__ = [
    "COLLABORATION_KINDS",
    "Collaboration",
    "CollaborationGraph",
    "CollaborationLink",
    "pair_contributions",
    "recency",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

COLLABORATION_KINDS: Final = frozenset(
    {"project", "publication", "supply", "membership", "event_meeting", "other"}
)

# An ancient collaboration still makes a link: without a floor, 0.5 ** (age / half_life) can
# underflow to 0.0 and the pair would silently vanish from the CSR view.
MIN_RECENCY: Final = 1e-12


@dataclass(frozen=True, slots=True)
class Collaboration:
    """One project, publication, supply contract, membership or meeting joining organisations.

    A 12-partner project is one collaboration with 12 participants. ``weight`` is the
    caller's strength of the tie (> 0); ``year=None`` counts as the reference year.
    """

    id: int
    organisation_ids: tuple[int, ...]
    kind: str
    year: int | None
    weight: float = 1.0

    def __post_init__(self) -> None:
        if len(self.organisation_ids) < 2:
            raise ValueError(f"collaboration {self.id} needs at least 2 organisations")
        if len(set(self.organisation_ids)) != len(self.organisation_ids):
            raise ValueError(f"collaboration {self.id} lists an organisation twice")
        if self.kind not in COLLABORATION_KINDS:
            raise ValueError(f"collaboration {self.id} has unknown kind {self.kind!r}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"collaboration {self.id} needs a finite weight > 0")


@dataclass(frozen=True, slots=True)
class CollaborationLink:
    """What two organisations did together: the projected pair and the collaborations behind it."""

    organisation_ids: tuple[int, int]
    weight: float
    n_collaborations: int
    first_year: int | None
    last_year: int | None
    collaboration_ids: tuple[int, ...]


def recency(
    years: npt.ArrayLike, reference_year: float | None, half_life_years: float
) -> FloatArray:
    """Recency factor per year: halves every ``half_life_years``, at most 1.

    ``NaN`` years (unknown) and a ``None`` reference year count as current. The factor is
    floored at ``MIN_RECENCY`` so an old collaboration still makes a link.

    >>> recency([2024, 2020, 2016, 2030, float("nan")], 2024, 4.0).tolist()
    [1.0, 0.5, 0.25, 1.0, 1.0]
    """
    y = np.asarray(years, dtype=np.float64)
    if reference_year is None:
        return np.ones_like(y)
    age = np.where(np.isnan(y), 0.0, reference_year - y)
    factor = np.power(0.5, np.maximum(age, 0.0) / half_life_years)
    return np.maximum(factor, MIN_RECENCY)


def pair_contributions(
    weights: npt.ArrayLike,
    years: npt.ArrayLike,
    n_participants: npt.ArrayLike,
    *,
    reference_year: float | None,
    half_life_years: float,
) -> FloatArray:
    """What each collaboration adds to every pair of its participants.

    ``weight * recency(year) / (n_participants - 1)``: each participant spreads the
    collaboration's weight over its ``n - 1`` partners (resource-allocation style), so one
    collaboration adds the same total to every participant's strength whatever its size, and an
    88-partner consortium says far less about any one pair than a 4-partner project.
    Collaborations left with fewer than 2 participants contribute 0.

    >>> pair_contributions([1, 1, 1, 2], [2024, 2024, 2020, 2024], [4, 88, 4, 2],
    ...                    reference_year=2024, half_life_years=4.0).round(4).tolist()
    [0.3333, 0.0115, 0.1667, 2.0]
    """
    n = np.asarray(n_participants, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64) * recency(years, reference_year, half_life_years)
    return np.where(n >= 2, w / np.maximum(n - 1.0, 1.0), 0.0)


@dataclass(frozen=True, slots=True)
class _CollaborationArrays:
    """The collaborations as arrays, one entry each; participants flattened as node positions."""

    node_ids: IntArray
    collab_ids: IntArray
    sizes: IntArray
    years: FloatArray
    contributions: FloatArray
    positions: IntArray


@dataclass(frozen=True, slots=True)
class _PairTable:
    """Every projected pair once (``lo < hi`` node positions), sorted by ``(lo, hi)``.

    ``member_order`` lists, pair after pair, the positions of the collaborations behind each
    pair; ``group_starts[i]`` is where pair ``i`` begins in it.
    """

    node_ids: IntArray
    lo: IntArray
    hi: IntArray
    weight: FloatArray
    n_collaborations: IntArray
    group_starts: IntArray
    member_order: IntArray


class CollaborationGraph:
    """Mutable collaboration graph; derived views (CSR snapshot, networkx projection) are cached.

    The collaborations themselves are the state; pair weights are derived, because with the
    default reference year (the latest year seen) one new collaboration can re-weight every
    pair. Not thread-safe: the caller serialises writers and hands readers a ``snapshot()``.

    >>> g = CollaborationGraph()
    >>> g.add_collaboration(Collaboration(1, (10, 20, 30), "project", 2024))
    >>> g.add_collaboration(Collaboration(2, (20, 40), "publication", 2020))
    >>> sorted(g.neighbours(20)), g.number_of_links
    ([10, 30, 40], 4)
    >>> g.snapshot().proximity(10, [30, 40]).hop_distance.tolist()
    [1.0, 2.0]
    """

    def __init__(
        self, *, reference_year: int | None = None, recency_half_life_years: float = 4.0
    ) -> None:
        if not (math.isfinite(recency_half_life_years) and recency_half_life_years > 0):
            raise ValueError("recency_half_life_years must be a finite number > 0")
        self._fixed_reference_year = reference_year
        self._half_life_years = float(recency_half_life_years)
        self._collaborations: dict[int, Collaboration] = {}
        # Current participants: an organisation's removal shrinks these, not the Collaboration.
        self._participants: dict[int, tuple[int, ...]] = {}
        self._memberships: dict[int, set[int]] = {}
        self._year_counts: Counter[int] = Counter()
        self._version = 0
        self._snapshot: GraphSnapshot | None = None
        self._nx_graph: nx.Graph | None = None
        self._nx_version = -1

    @classmethod
    def from_collaborations(
        cls,
        organisation_ids: Iterable[int],
        collaborations: Iterable[Collaboration],
        *,
        reference_year: int | None = None,
        recency_half_life_years: float = 4.0,
    ) -> CollaborationGraph:
        """Load a whole graph at start-up; a repeated collaboration id replaces the earlier one."""
        graph = cls(reference_year=reference_year, recency_half_life_years=recency_half_life_years)
        for org_id in organisation_ids:
            graph._memberships.setdefault(int(org_id), set())
        for collaboration in collaborations:
            graph._put(collaboration)
        graph._version += 1
        return graph

    @classmethod
    def from_arrays(
        cls,
        organisation_ids: npt.ArrayLike,
        collaboration_ids: npt.ArrayLike,
        kinds: Sequence[str],
        years: npt.ArrayLike,
        weights: npt.ArrayLike,
        sizes: npt.ArrayLike,
        members: npt.ArrayLike,
        *,
        reference_year: int | None = None,
        recency_half_life_years: float = 4.0,
    ) -> CollaborationGraph:
        """Load a whole graph from columns, one entry per collaboration; CSR snapshot included.

        Collaboration ``i`` has id ``collaboration_ids[i]`` (unique), ``kinds[i]``,
        ``years[i]`` (NaN when unknown), ``weights[i]`` and the ``sizes[i]`` participants that
        follow those of collaboration ``i - 1`` in ``members``. The rules of
        :class:`Collaboration` are checked on the arrays, and the snapshot is projected
        straight from them: the same graph as ``from_collaborations``, without a validated
        object per collaboration on the way.

        >>> g = CollaborationGraph.from_arrays(
        ...     [10, 20, 30, 40, 50], [1, 2], ["project", "publication"], [2024, float("nan")],
        ...     [1.0, 1.0], [3, 2], [10, 20, 30, 20, 40])
        >>> g.number_of_organisations, g.collaboration(2).year, sorted(g.neighbours(20))
        (5, None, [10, 30, 40])
        >>> g.snapshot().proximity(10, [40, 50]).hop_distance.tolist()
        [2.0, 4.0]
        """
        ids = np.asarray(collaboration_ids, dtype=np.int64).reshape(-1)
        year_values = np.asarray(years, dtype=np.float64).reshape(-1)
        weight_values = np.asarray(weights, dtype=np.float64).reshape(-1)
        size_values = np.asarray(sizes, dtype=np.int64).reshape(-1)
        member_ids = np.asarray(members, dtype=np.int64).reshape(-1)
        _check_collaboration_arrays(ids, kinds, year_values, weight_values, size_values, member_ids)

        graph = cls(reference_year=reference_year, recency_half_life_years=recency_half_life_years)
        org_ids = np.union1d(np.asarray(organisation_ids, dtype=np.int64), member_ids)
        graph._memberships = {org_id: set() for org_id in org_ids.tolist()}
        ends = np.cumsum(size_values).tolist()
        member_list = member_ids.tolist()
        year_list = [None if math.isnan(y) else int(y) for y in year_values.tolist()]
        memberships = graph._memberships
        start = 0
        for collab_id, kind, year, weight, end in zip(
            ids.tolist(), kinds, year_list, weight_values.tolist(), ends, strict=True
        ):
            participants = tuple(member_list[start:end])
            start = end
            # Checked above for all collaborations at once; the object is built unchecked.
            collaboration = object.__new__(Collaboration)
            for attribute, value in (
                ("id", collab_id),
                ("organisation_ids", participants),
                ("kind", kind),
                ("year", year),
                ("weight", weight),
            ):
                object.__setattr__(collaboration, attribute, value)
            graph._collaborations[collab_id] = collaboration
            graph._participants[collab_id] = participants
            for org_id in participants:
                memberships[org_id].add(collab_id)
        graph._year_counts = Counter(y for y in year_list if y is not None)
        graph._version += 1

        positions = np.searchsorted(org_ids, member_ids).astype(np.int64)
        contributions = pair_contributions(
            weight_values,
            year_values,
            size_values,
            reference_year=graph.reference_year,
            half_life_years=graph._half_life_years,
        )
        pairs = _project_pairs(org_ids, size_values, contributions, positions)
        graph._snapshot = GraphSnapshot.from_unique_pairs(
            pairs.node_ids, pairs.lo, pairs.hi, pairs.weight, version=graph._version
        )
        return graph

    # -- reading ---------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Bumps on every mutation; a snapshot carries the version it was built from."""
        return self._version

    @property
    def reference_year(self) -> int | None:
        """The year recency is measured from: fixed at construction, else the latest year seen."""
        if self._fixed_reference_year is not None:
            return self._fixed_reference_year
        return max(self._year_counts) if self._year_counts else None

    @property
    def recency_half_life_years(self) -> float:
        return self._half_life_years

    @property
    def number_of_organisations(self) -> int:
        return len(self._memberships)

    @property
    def number_of_collaborations(self) -> int:
        return len(self._collaborations)

    @property
    def number_of_links(self) -> int:
        """Distinct partner pairs (builds the snapshot if it is stale)."""
        return self.snapshot().number_of_links

    def has_organisation(self, org_id: int) -> bool:
        return org_id in self._memberships

    def has_collaboration(self, collab_id: int) -> bool:
        return collab_id in self._collaborations

    def collaboration(self, collab_id: int) -> Collaboration:
        """The collaboration as added (participants removed since are still listed)."""
        return self._collaborations[collab_id]

    def participants(self, collab_id: int) -> tuple[int, ...]:
        """Current participants of a collaboration, after any organisation removals."""
        return self._participants[collab_id]

    def collaborations_of(self, org_id: int) -> set[int]:
        """Ids of the collaborations an organisation currently takes part in."""
        return set(self._memberships[org_id])

    def neighbours(self, org_id: int) -> set[int]:
        """Distinct partners of an organisation; ``KeyError`` if unknown."""
        partners: set[int] = set()
        for collab_id in self._memberships[org_id]:
            partners.update(self._participants[collab_id])
        partners.discard(org_id)
        return partners

    def degree(self, org_id: int) -> int:
        """Number of distinct partners; ``KeyError`` if unknown."""
        return len(self.neighbours(org_id))

    def link(self, org_a: int, org_b: int) -> CollaborationLink | None:
        """The projected pair between two organisations, or ``None`` if they never collaborated.

        Computed from the two organisations' collaborations, so it is cheap and needs no
        snapshot; used to explain "worked together on X".
        """
        if org_a == org_b or org_a not in self._memberships or org_b not in self._memberships:
            return None
        shared = sorted(self._memberships[org_a] & self._memberships[org_b])
        if not shared:
            return None
        collabs = [self._collaborations[i] for i in shared]
        years = [c.year for c in collabs if c.year is not None]
        contributions = pair_contributions(
            [c.weight for c in collabs],
            [math.nan if c.year is None else c.year for c in collabs],
            [len(self._participants[i]) for i in shared],
            reference_year=self.reference_year,
            half_life_years=self._half_life_years,
        )
        return CollaborationLink(
            organisation_ids=(min(org_a, org_b), max(org_a, org_b)),
            weight=float(contributions.sum()),
            n_collaborations=len(shared),
            first_year=min(years) if years else None,
            last_year=max(years) if years else None,
            collaboration_ids=tuple(shared),
        )

    # -- mutating --------------------------------------------------------------------------

    def add_organisation(self, org_id: int) -> None:
        """Add an organisation without partners; a no-op if it is already there."""
        if org_id not in self._memberships:
            self._memberships[org_id] = set()
            self._version += 1

    def remove_organisation(self, org_id: int) -> None:
        """Remove an organisation and take it out of every collaboration; ``KeyError`` if unknown.

        The remaining participants' pairs are weighted by the smaller participant count, as if
        it had never taken part; a collaboration left with fewer than 2 participants stays
        recorded but adds no pairs.
        """
        for collab_id in self._memberships.pop(org_id):
            self._participants[collab_id] = tuple(
                o for o in self._participants[collab_id] if o != org_id
            )
        self._version += 1

    def add_collaboration(self, collaboration: Collaboration) -> None:
        """Add a collaboration, replacing one with the same id; unknown participants are added."""
        self._put(collaboration)
        self._version += 1

    def remove_collaboration(self, collab_id: int) -> None:
        """Remove a collaboration; its participants stay. ``KeyError`` if unknown."""
        self._drop(collab_id)
        self._version += 1

    def _put(self, collaboration: Collaboration) -> None:
        if collaboration.id in self._collaborations:
            self._drop(collaboration.id)
        self._collaborations[collaboration.id] = collaboration
        self._participants[collaboration.id] = collaboration.organisation_ids
        for org_id in collaboration.organisation_ids:
            self._memberships.setdefault(org_id, set()).add(collaboration.id)
        if collaboration.year is not None:
            self._year_counts[collaboration.year] += 1

    def _drop(self, collab_id: int) -> None:
        collaboration = self._collaborations.pop(collab_id)
        for org_id in self._participants.pop(collab_id):
            self._memberships[org_id].discard(collab_id)
        if collaboration.year is not None:
            self._year_counts[collaboration.year] -= 1
            if self._year_counts[collaboration.year] == 0:
                del self._year_counts[collaboration.year]

    # -- derived views ---------------------------------------------------------------------

    def snapshot(self) -> GraphSnapshot:
        """Immutable CSR view for feature computation, rebuilt only after a mutation."""
        if self._snapshot is None or self._snapshot.version != self._version:
            pairs = self._pair_table()
            self._snapshot = GraphSnapshot.from_unique_pairs(
                pairs.node_ids, pairs.lo, pairs.hi, pairs.weight, version=self._version
            )
        return self._snapshot

    @property
    def nx_graph(self) -> nx.Graph:
        """The projected networkx graph, built on first use after a mutation.

        Edge attributes: ``weight``, ``n_collaborations``, ``first_year``, ``last_year`` (``None``
        when no collaboration has a year) and ``collaboration_ids`` (sorted tuple). At a million
        links it takes ~15 s and ~0.5 GB, which is why the request path reads the snapshot and
        ``link`` instead. Treat the returned graph as read-only.
        """
        if self._nx_graph is None or self._nx_version != self._version:
            self._nx_graph = self._build_nx_graph()
            self._nx_version = self._version
        return self._nx_graph

    def _collaboration_arrays(self) -> _CollaborationArrays:
        node_ids = np.fromiter(self._memberships, dtype=np.int64, count=len(self._memberships))
        node_ids.sort()
        n_collabs = len(self._collaborations)
        collab_ids = np.fromiter(self._participants, dtype=np.int64, count=n_collabs)
        parts = self._participants.values()
        sizes = np.fromiter(map(len, parts), dtype=np.int64, count=n_collabs)
        flat = np.fromiter(
            itertools.chain.from_iterable(parts), dtype=np.int64, count=int(sizes.sum())
        )
        collabs = [self._collaborations[i] for i in self._participants]
        years = np.fromiter(
            (math.nan if c.year is None else c.year for c in collabs),
            dtype=np.float64,
            count=n_collabs,
        )
        weights = np.fromiter((c.weight for c in collabs), dtype=np.float64, count=n_collabs)
        contributions = pair_contributions(
            weights,
            years,
            sizes,
            reference_year=self.reference_year,
            half_life_years=self._half_life_years,
        )
        return _CollaborationArrays(
            node_ids=node_ids,
            collab_ids=collab_ids,
            sizes=sizes,
            years=years,
            contributions=contributions,
            positions=np.searchsorted(node_ids, flat).astype(np.int64),
        )

    def _pair_table(self) -> _PairTable:
        arrays = self._collaboration_arrays()
        return _project_pairs(arrays.node_ids, arrays.sizes, arrays.contributions, arrays.positions)

    def _build_nx_graph(self) -> nx.Graph:
        arrays = self._collaboration_arrays()
        node_ids = arrays.node_ids
        pairs = _project_pairs(node_ids, arrays.sizes, arrays.contributions, arrays.positions)
        graph = nx.Graph()
        graph.add_nodes_from(node_ids.tolist())
        if len(pairs.lo) == 0:
            return graph
        member_years = arrays.years[pairs.member_order]
        first = np.fmin.reduceat(member_years, pairs.group_starts)
        last = np.fmax.reduceat(member_years, pairs.group_starts)
        members = arrays.collab_ids[pairs.member_order].tolist()
        bounds = [*pairs.group_starts.tolist(), len(members)]
        graph.add_edges_from(
            (
                u,
                v,
                {
                    "weight": w,
                    "n_collaborations": n,
                    "first_year": None if math.isnan(fy) else int(fy),
                    "last_year": None if math.isnan(ly) else int(ly),
                    "collaboration_ids": tuple(sorted(members[bounds[i] : bounds[i + 1]])),
                },
            )
            for i, (u, v, w, n, fy, ly) in enumerate(
                zip(
                    node_ids[pairs.lo].tolist(),
                    node_ids[pairs.hi].tolist(),
                    pairs.weight.tolist(),
                    pairs.n_collaborations.tolist(),
                    first.tolist(),
                    last.tolist(),
                    strict=True,
                )
            )
        )
        return graph


def _check_collaboration_arrays(
    ids: IntArray,
    kinds: Sequence[str],
    years: FloatArray,
    weights: FloatArray,
    sizes: IntArray,
    members: IntArray,
) -> None:
    """The rules of :class:`Collaboration`, for many collaborations at once (``ValueError``)."""
    n = len(ids)
    if not (len(kinds) == len(years) == len(weights) == len(sizes) == n):
        raise ValueError("one kind, year, weight and size per collaboration id is needed")
    if int(sizes.sum()) != len(members):
        raise ValueError("the sizes must add up to the number of members")
    if len(np.unique(ids)) != n:
        raise ValueError("collaboration ids must be unique")
    if n and int(sizes.min()) < 2:
        bad = int(ids[np.argmax(sizes < 2)])
        raise ValueError(f"collaboration {bad} needs at least 2 organisations")
    owner = np.repeat(np.arange(n, dtype=np.int64), sizes)
    order = np.lexsort((members, owner))
    repeated = (owner[order][1:] == owner[order][:-1]) & (members[order][1:] == members[order][:-1])
    if repeated.any():
        bad = int(ids[owner[order][1:][repeated][0]])
        raise ValueError(f"collaboration {bad} lists an organisation twice")
    unknown = set(kinds) - COLLABORATION_KINDS
    if unknown:
        raise ValueError(f"unknown collaboration kinds {sorted(unknown)!r}")
    if not (np.all(np.isfinite(weights)) and np.all(weights > 0)):
        raise ValueError("every collaboration needs a finite weight > 0")
    known_years = years[~np.isnan(years)]
    if not np.all(np.isfinite(known_years) & (known_years == np.round(known_years))):
        raise ValueError("years must be whole numbers (NaN when unknown)")


def _project_pairs(
    node_ids: IntArray, sizes: IntArray, contributions: FloatArray, positions: IntArray
) -> _PairTable:
    """Expand each collaboration into its n(n-1)/2 pairs and merge pairs across collaborations.

    Vectorised per participant count, so the Python loop runs once per distinct size.
    """
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    lo_parts: list[IntArray] = []
    hi_parts: list[IntArray] = []
    owner_parts: list[IntArray] = []
    for size in np.unique(sizes[sizes >= 2]).tolist():
        owners = np.flatnonzero(sizes == size)
        members = positions[offsets[owners, None] + np.arange(size)]
        first, second = np.triu_indices(size, 1)
        a = members[:, first].ravel()
        b = members[:, second].ravel()
        lo_parts.append(np.minimum(a, b))
        hi_parts.append(np.maximum(a, b))
        owner_parts.append(np.repeat(owners, len(first)))
    empty = np.zeros(0, dtype=np.int64)
    if not lo_parts:
        return _PairTable(node_ids, empty, empty, np.zeros(0), empty, empty, empty)
    lo = np.concatenate(lo_parts)
    hi = np.concatenate(hi_parts)
    owner = np.concatenate(owner_parts)
    key = lo * np.int64(len(node_ids)) + hi
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    member_order = owner[order]
    weight = np.add.reduceat(contributions[member_order], starts)
    counts = np.diff(np.append(starts, len(key)))
    return _PairTable(
        node_ids=node_ids,
        lo=lo[order][starts],
        hi=hi[order][starts],
        weight=weight,
        n_collaborations=counts.astype(np.int64),
        group_starts=starts.astype(np.int64),
        member_order=member_order,
    )
