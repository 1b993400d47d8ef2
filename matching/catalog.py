"""The in-memory catalogue of organisation profiles the ranker reads: attributes, columns for
fast filtering, and per-item offer/seek vectors for explanations.

It is derived state: the service fills it from the store at start-up and after every commit.
Writers are serialised by the service; readers (ranking threads) only ever see whole
:class:`OrgProfile` objects, which are immutable.

Every item vector is held once: a stored profile's ``offer_vectors`` and ``seek_vectors`` are
views of its rows in the catalogue's :class:`ItemMatrix` pair, not the arrays it was stored
with (at 100k organisations those held a second copy of all items, about 600 MB).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from embeddings.index import MAX_ID
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
    # need Y" explanations; shape (0, dim) when the organisation lists none. A profile the
    # catalogue stores holds views of its item matrices (see Catalog._store_items).
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


class ItemMatrix:
    """Every organisation's offer (or seek) item vectors in one float32 matrix.

    Row ``r`` of the catalogue owns ``vectors[span[r, 0] : span[r, 0] + span[r, 1]]``. An
    upsert appends the new items and leaves the old ones as garbage until a compaction, so a
    write costs O(its items) amortised and a gather for many candidates is one fancy index.
    Readers take :meth:`view` once per query: its arrays are never written again in place
    except for rows added later, so a concurrent write cannot tear what a reader sees.
    """

    __slots__ = ("_data", "_dim", "_garbage", "_used")

    def __init__(self, capacity_rows: int) -> None:
        self._dim = 0
        # (vectors, span) swapped as one tuple, so a reader never pairs old spans with new rows.
        self._data = (
            np.zeros((0, 0), dtype=np.float32),
            np.zeros((capacity_rows, 2), dtype=np.int64),  # (start, count) per row
        )
        self._used = 0
        self._garbage = 0

    def grow_rows(self, capacity_rows: int) -> None:
        vectors, old = self._data
        span = np.zeros((capacity_rows, 2), dtype=np.int64)
        span[: len(old)] = old
        self._data = (vectors, span)

    def set(self, row: int, items: np.ndarray | None) -> None:
        """Replace row ``row``'s items (writer only; the catalogue's lock is held)."""
        self._garbage += int(self._data[1][row, 1])
        count = 0 if items is None else len(items)
        if count == 0:
            self._data[1][row] = (0, 0)
            return
        assert items is not None
        if self._dim == 0:
            self._dim = items.shape[1]
            self._data = (np.zeros((max(1024, 2 * count), self._dim), np.float32), self._data[1])
        if self._used + count > len(self._data[0]):
            self._compact_or_grow(count)
        vectors, span = self._data
        start = self._used
        vectors[start : start + count] = items  # rows no span points at yet
        self._used += count
        span[row] = (start, count)  # one assignment: readers see old or new, never half

    def set_many(self, rows: Sequence[int], items: Sequence[np.ndarray | None]) -> None:
        """``set`` for each of ``rows`` with its ``items``, the same layout as one ``set`` after
        another, with one copy of all the items (writer only; for a bulk load, before any
        reader holds the catalogue: the spans of many rows change in one assignment)."""
        row_array = np.asarray(rows, dtype=np.int64)
        if len(np.unique(row_array)) != len(row_array):
            for row, one in zip(rows, items, strict=True):
                self.set(row, one)
            return
        counts = np.fromiter((0 if m is None else len(m) for m in items), np.int64, len(items))
        self._garbage += int(self._data[1][row_array, 1].sum())
        present = [m for m in items if m is not None and len(m)]
        total = int(counts.sum())
        if total:
            self.reserve(total, present[0].shape[1])
        vectors, span = self._data
        start = self._used
        if total:
            np.concatenate(present, axis=0, out=vectors[start : start + total])
        starts = start + np.cumsum(counts) - counts
        span[row_array] = np.stack((np.where(counts > 0, starts, 0), counts), axis=1)
        self._used += total

    def clear(self, row: int) -> None:
        self.set(row, None)

    def reserve(self, extra: int, dim: int) -> None:
        """Room for ``extra`` more items without regrowing (bulk loads; writer only)."""
        if self._dim == 0:
            self._dim = dim
            self._data = (np.zeros((0, dim), np.float32), self._data[1])
        if extra > 0 and self._used + extra > len(self._data[0]):
            self._compact_or_grow(extra)

    def _compact_or_grow(self, extra: int) -> None:
        live = self._used - self._garbage
        capacity = max(1024, 2 * (live + extra))
        old_vectors, old_span = self._data
        span = old_span.copy()
        rows = np.flatnonzero(span[:, 1] > 0)
        counts = span[rows, 1]
        positions = item_positions(span[rows, 0], counts)
        vectors = np.zeros((capacity, self._dim), dtype=np.float32)
        vectors[: len(positions)] = old_vectors[positions]
        span[rows, 0] = np.cumsum(counts) - counts
        # New arrays, swapped in whole: a reader holding the old pair still reads a valid one.
        self._data = (vectors, span)
        self._used, self._garbage = len(positions), 0

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(item vectors, ``(start, count)`` span per row): one consistent pair, never written
        in place where a span points."""
        return self._data

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(items of ``rows`` concatenated in row order, item count per row); a row of -1
        (an unknown organisation) has none."""
        return gather_items(*self._data, rows)  # one consistent pair


def gather_items(
    vectors: np.ndarray, span: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`ItemMatrix.gather` over a ``(vectors, span)`` pair that :meth:`ItemMatrix.view`
    gave."""
    picked = span[np.where(rows >= 0, rows, 0)]
    counts = np.where(rows >= 0, picked[:, 1], 0)
    return vectors[item_positions(picked[:, 0], counts)], counts


def item_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``start .. start + count - 1`` of every span, concatenated."""
    offsets = np.cumsum(counts) - counts
    positions: np.ndarray = np.arange(int(counts.sum()), dtype=np.int64)
    positions += np.repeat(starts - offsets, counts)
    return positions


def _items_view(
    vectors: np.ndarray, start: int, count: int, given: np.ndarray | None
) -> np.ndarray | None:
    """A stored profile's items: rows of the matrix ``vectors``. With no items, None stays
    None and an empty array becomes a shared empty one of the same width (even an empty slice
    would keep the array it was cut from alive)."""
    if count:
        return vectors[start : start + count]
    return None if given is None else _no_items(given.shape[-1] if given.ndim == 2 else 0)


@cache
def _no_items(dim: int) -> np.ndarray:
    empty = np.zeros((0, dim), dtype=np.float32)
    empty.flags.writeable = False
    return empty


class Catalog:
    """Organisation profiles by id, plus columnar arrays for vectorised filters and features.

    Rows are recycled through a free list so upserts and removals are O(1) amortised. Ids are
    the store's organisation keys (positive, dense enough): ``row_by_id`` maps them to rows with
    one array index, so per-query lookups for hundreds of candidates cost microseconds.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[int, OrgProfile] = {}
        self._row_by_id = np.full(capacity, -1, dtype=np.int32)
        self._profile_at = np.empty(capacity, dtype=object)  # OrgProfile per row (None if free)
        self.offer_items = ItemMatrix(capacity)
        self.seek_items = ItemMatrix(capacity)
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
        if len(self._profile_at) < capacity:
            profile_at = np.empty(capacity, dtype=object)
            profile_at[: len(self._profile_at)] = self._profile_at
            self._profile_at = profile_at
            self.offer_items.grow_rows(capacity)
            self.seek_items.grow_rows(capacity)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, org_id: object) -> bool:
        return org_id in self._profiles

    def get(self, org_id: int) -> OrgProfile | None:
        return self._profiles.get(org_id)

    def profiles(self, org_ids: Iterable[int]) -> list[OrgProfile | None]:
        rows = self.rows_of(np.fromiter(org_ids, dtype=np.int64))
        picked = np.asarray(self._profile_at[rows])
        picked[rows < 0] = None
        found: list[OrgProfile | None] = picked.tolist()
        return found

    def all_ids(self) -> np.ndarray:
        return np.asarray(self.ids[: self._n_rows][self.alive[: self._n_rows]])

    def country_code_of(self, country: str) -> int:
        return self._countries.get(country, -2)

    def upsert(self, profile: OrgProfile) -> None:
        with self._lock:
            row = self._upsert_fields(profile)
            self._store_items([row], [profile])

    def _upsert_fields(self, profile: OrgProfile) -> int:
        """Everything of an upsert but the items; returns the profile's row (lock held)."""
        if not 0 <= profile.id <= MAX_ID:
            raise ValueError(f"organisation ids must be in [0, {MAX_ID}], got {profile.id}")
        row = self._row(profile.id)
        if row < 0:
            if self._free:
                row = self._free.pop()
            else:
                if self._n_rows == len(self.ids):
                    self._alloc(max(1024, 2 * len(self.ids)))
                row = self._n_rows
                self._n_rows += 1
            self._map_id(profile.id, row)
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
        self._profile_at[row] = profile
        return row

    def _row(self, org_id: int) -> int:
        return int(self._row_by_id[org_id]) if 0 <= org_id < len(self._row_by_id) else -1

    def _map_id(self, org_id: int, row: int) -> None:
        if org_id >= len(self._row_by_id):
            grown = np.full(max(2 * len(self._row_by_id), org_id + 1), -1, dtype=np.int32)
            grown[: len(self._row_by_id)] = self._row_by_id
            self._row_by_id = grown
        self._row_by_id[org_id] = row

    def upsert_many(self, profiles: Sequence[OrgProfile]) -> None:
        """``upsert`` for each profile in turn, with their items copied in one pass (start-up:
        100k organisations' items took 3.3 s one ``set`` at a time). For a bulk load: a reader
        meanwhile could see the new rows before their items."""
        with self._lock:
            if self._n_rows + len(profiles) > len(self.ids):  # one allocation, no regrowth
                self._alloc(self._n_rows + len(profiles))
            rows = [self._upsert_fields(profile) for profile in profiles]
            self._store_items(rows, profiles)

    def _store_items(self, rows: Sequence[int], profiles: Sequence[OrgProfile]) -> None:
        """Copy the ``profiles``' items into the item matrices and point the stored profiles
        of ``rows`` at them (lock held). When a matrix moved to a new array (it grew or
        dropped garbage), every stored profile is pointed at the new one, so the old array is
        freed once no reader holds a profile read before."""
        before = (self.offer_items.view()[0], self.seek_items.view()[0])
        self.offer_items.set_many(rows, [p.offer_vectors for p in profiles])
        self.seek_items.set_many(rows, [p.seek_vectors for p in profiles])
        moved = before[0] is not self.offer_items.view()[0] or (
            before[1] is not self.seek_items.view()[0]
        )
        targets = np.arange(self._n_rows) if moved else np.asarray(rows, dtype=np.int64)
        offers, offer_span = self.offer_items.view()
        seeks, seek_span = self.seek_items.view()
        for row, (o_start, o_count), (s_start, s_count) in zip(
            targets.tolist(), offer_span[targets].tolist(), seek_span[targets].tolist(), strict=True
        ):
            profile = self._profile_at[row]
            if profile is None:
                continue
            viewed = replace(
                profile,
                offer_vectors=_items_view(offers, o_start, o_count, profile.offer_vectors),
                seek_vectors=_items_view(seeks, s_start, s_count, profile.seek_vectors),
            )
            self._profiles[viewed.id] = viewed
            self._profile_at[row] = viewed

    def remove(self, org_id: int) -> None:
        with self._lock:
            row = self._row(org_id)
            old = self._profiles.pop(org_id, None)
            if old is not None:
                self._leave_clusters(old)
            if row >= 0:
                self._row_by_id[org_id] = -1
                self.alive[row] = False
                self.ids[row] = -1
                self._profile_at[row] = None
                self.offer_items.clear(row)
                self.seek_items.clear(row)
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
        ids = np.asarray(org_ids, dtype=np.int64).reshape(-1)
        row_by_id = self._row_by_id  # one read: a concurrent grow swaps in a longer copy
        known = (ids >= 0) & (ids < len(row_by_id))
        return np.where(known, row_by_id[np.where(known, ids, 0)], -1).astype(np.int64)

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
