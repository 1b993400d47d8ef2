"""The in-memory catalogue of organisation profiles the ranker reads: attributes, columns for
fast filtering, and per-item offer/seek vectors for explanations.

It is derived state: the service fills it from the store at start-up and after every commit.
Writers are serialised by the service; readers (ranking threads) only ever see whole
:class:`OrgProfile` objects, which are immutable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from matching.vocabulary import KIND_CODES, sector_bitmask


@dataclass(frozen=True, slots=True)
class OrgProfile:
    """What the ranker knows about one organisation."""

    id: int
    name: str
    kind: str
    sectors: tuple[str, ...]
    country: str
    region: str | None = None
    clusters: tuple[str, ...] = ()
    maturity: int | None = None
    tenant: str | None = None
    offers: tuple[str, ...] = ()
    seeks: tuple[str, ...] = ()
    # One L2-normalised row per offer / seek item (float32), for "offers X which matches your
    # need Y" explanations; shape (0, dim) when the organisation lists none.
    offer_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)
    seek_vectors: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def sector_mask(self) -> int:
        return sector_bitmask(self.sectors)


@dataclass(frozen=True, slots=True)
class CandidateFilter:
    """Restricts which organisations may be suggested. Empty tuples mean "any"."""

    kinds: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    min_maturity: int | None = None

    @property
    def is_empty(self) -> bool:
        return (
            not (self.kinds or self.sectors or self.countries or self.clusters)
            and self.min_maturity is None
        )


class Catalog:
    """Organisation profiles by id, plus columnar arrays for vectorised filters and features.

    Rows are recycled through a free list so upserts and removals are O(1) amortised.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[int, OrgProfile] = {}
        self._row_of: dict[int, int] = {}
        self._free: list[int] = []
        self._n_rows = 0
        self._countries: dict[str, int] = {}
        self._cluster_members: dict[str, set[int]] = {}
        self.ids: np.ndarray
        self.alive: np.ndarray
        self.kind_code: np.ndarray
        self.country_code: np.ndarray
        self.sector_masks: np.ndarray
        self.maturity: np.ndarray
        self._alloc(capacity)

    _COLUMNS: tuple[tuple[str, type, int], ...] = (
        ("ids", np.int64, -1),
        ("alive", np.bool_, 0),
        ("kind_code", np.int8, -1),
        ("country_code", np.int16, -1),
        ("sector_masks", np.int64, 0),
        ("maturity", np.int8, 0),
    )

    def _alloc(self, capacity: int) -> None:
        """Grow every column to ``capacity`` rows, keeping the existing rows."""
        for name, dtype, fill in self._COLUMNS:
            column: np.ndarray = np.full(capacity, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                column[: len(old)] = old
            setattr(self, name, column)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, org_id: object) -> bool:
        return org_id in self._profiles

    def get(self, org_id: int) -> OrgProfile | None:
        return self._profiles.get(org_id)

    def profiles(self, org_ids: Iterable[int]) -> list[OrgProfile | None]:
        return [self._profiles.get(int(i)) for i in org_ids]

    def all_ids(self) -> np.ndarray:
        return np.asarray(self.ids[: self._n_rows][self.alive[: self._n_rows]])

    def country_code_of(self, country: str) -> int:
        return self._countries.get(country, -2)

    def upsert(self, profile: OrgProfile) -> None:
        with self._lock:
            row = self._row_of.get(profile.id)
            if row is None:
                if self._free:
                    row = self._free.pop()
                else:
                    if self._n_rows == len(self.ids):
                        self._alloc(max(1024, 2 * len(self.ids)))
                    row = self._n_rows
                    self._n_rows += 1
                self._row_of[profile.id] = row
            code = self._countries.setdefault(profile.country, len(self._countries))
            self.ids[row] = profile.id
            self.kind_code[row] = KIND_CODES.get(profile.kind, -1)
            self.country_code[row] = code
            self.sector_masks[row] = profile.sector_mask
            self.maturity[row] = profile.maturity or 0
            self.alive[row] = True
            old = self._profiles.get(profile.id)
            if old is not None:
                self._leave_clusters(old)
            for cluster in profile.clusters:
                self._cluster_members.setdefault(cluster, set()).add(profile.id)
            self._profiles[profile.id] = profile

    def upsert_many(self, profiles: Sequence[OrgProfile]) -> None:
        for profile in profiles:
            self.upsert(profile)

    def remove(self, org_id: int) -> None:
        with self._lock:
            row = self._row_of.pop(org_id, None)
            old = self._profiles.pop(org_id, None)
            if old is not None:
                self._leave_clusters(old)
            if row is not None:
                self.alive[row] = False
                self.ids[row] = -1
                self._free.append(row)

    def _leave_clusters(self, profile: OrgProfile) -> None:
        for cluster in profile.clusters:
            members = self._cluster_members.get(cluster)
            if members is not None:
                members.discard(profile.id)
                if not members:
                    del self._cluster_members[cluster]

    def cluster_names(self) -> list[str]:
        return sorted(self._cluster_members)

    def rows_of(self, org_ids: np.ndarray) -> np.ndarray:
        """Row index per id (-1 for unknown ids)."""
        get = self._row_of.get
        return np.fromiter((get(int(i), -1) for i in org_ids), dtype=np.int64, count=len(org_ids))

    def filter_mask(self, flt: CandidateFilter) -> np.ndarray:
        """Boolean mask over rows (``self.ids[:n]``) of organisations passing the filter."""
        n = self._n_rows
        mask = self.alive[:n].copy()
        if flt.kinds:
            codes = [KIND_CODES[k] for k in flt.kinds if k in KIND_CODES]
            mask &= np.isin(self.kind_code[:n], codes)
        if flt.countries:
            codes = [self._countries[c] for c in flt.countries if c in self._countries]
            mask &= np.isin(self.country_code[:n], codes)
        if flt.sectors:
            mask &= (self.sector_masks[:n] & sector_bitmask(list(flt.sectors))) != 0
        if flt.min_maturity is not None:
            mask &= self.maturity[:n] >= flt.min_maturity
        if flt.clusters:
            members = set().union(*(self._cluster_members.get(c, set()) for c in flt.clusters))
            in_cluster = np.zeros(n, dtype=np.bool_)
            rows = self.rows_of(np.fromiter(members, dtype=np.int64, count=len(members)))
            in_cluster[rows[rows >= 0]] = True
            mask &= in_cluster
        return mask

    def filtered_ids(self, flt: CandidateFilter) -> np.ndarray:
        n = self._n_rows
        return np.asarray(self.ids[:n][self.filter_mask(flt)])

    def passes(self, flt: CandidateFilter, org_ids: np.ndarray) -> np.ndarray:
        """Boolean per id: known and passing the filter."""
        rows = self.rows_of(org_ids)
        known = rows >= 0
        if flt.is_empty:
            return known
        mask = self.filter_mask(flt)
        out = np.zeros(len(org_ids), dtype=np.bool_)
        out[known] = mask[rows[known]]
        return out
