"""The vector index of one vector space: int64 ids, cosine search, exact gathers, persistence.

Storage: one float32 matrix of unit rows, a slot per id (``id -> slot`` and ``slot -> id`` arrays)
and a free list, so upsert and remove are O(1) amortised and ``get``/``similarity`` are one gather.
Ids are store keys in ``[0, 2**31)``; the ``id -> slot`` array is as long as the largest id,
which suits autoincrement keys (100k organisations: 400 KB) and makes a lookup one array index.

Search: up to ``exact_threshold`` vectors, an exact single-threaded scan of that matrix (faster
than ``faiss.IndexFlatIP`` for one query at 10-20k rows here; no second copy of the vectors, no
O(N) removals). Built with more vectors, a faiss ``IndexIVFFlat`` whose ids are the slots: nlist
~ 4*sqrt(N), spherical k-means, and ``nprobe`` calibrated at build time so that recall@50 against
the exact answer reaches ``target_recall`` on sample queries. If that needs more than a quarter
of the lists (data without cluster structure, such as uniform random vectors), IVF would be barely
faster than the scan, so the index stays exact. The default target, recall@50 0.95, suits the
ranker: a search only proposes candidates (100 per space, next to graph ones), which are then
scored exactly, and on synthetic 100k data it needs ~16 probes (0.4 ms) where 0.99 needs ~128
(1.8 ms) or fails, leaving a 66k-vector exact scan of 8 ms per query.

Thread-safety: every public method takes one ``threading.RLock``, so reads from worker threads
never see a half-applied write; searches are serialised too, which costs little next to a query
of a millisecond or less. ``build`` trains outside the lock and swaps the new layout in under it.
Writers are expected to be serialised by the caller; concurrent writes are safe but unordered.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import struct
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import faiss
import numpy as np
import numpy.typing as npt

from embeddings import kernels
from embeddings.kernels import dot_at, top_k

log = logging.getLogger(__name__)

Ids = Sequence[int] | npt.NDArray[np.integer[Any]]
IndexKind = Literal["flat", "ivf"]

_MAGIC: Final = b"MHVIDX\x00\x01"
_FORMAT_VERSION: Final = 1
_PREFIX: Final = struct.Struct(
    "<8s32sI"
)  # magic, sha256 of everything after the prefix, header size
MAX_ID: Final = 2**31 - 1  # the store's integer keys
_CALIBRATION_QUERIES: Final = 512
_MAX_NPROBE_FRACTION: Final = 0.25
_MIN_POINTS_PER_LIST: Final = 39  # faiss warns that k-means is unreliable below this


class VectorIndex:
    """Cosine nearest neighbours over unit vectors keyed by non-negative int64 ids.

    >>> index = VectorIndex(dim=2)
    >>> index.upsert([10, 20, 30], np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32))
    >>> ids, scores = index.search(np.array([1, 0], dtype=np.float32), k=2, exclude={10})
    >>> ids.tolist(), [round(float(score), 2) for score in scores]
    ([20, 30], [0.8, 0.0])
    >>> index.similarity(np.array([0, 1], dtype=np.float32), [30, 99]).tolist()
    [1.0, 0.0]
    """

    def __init__(
        self,
        dim: int,
        *,
        exact_threshold: int = 20_000,
        target_recall: float = 0.95,
        calibration_k: int = 50,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if not 0 < target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        self.dim = dim
        self.exact_threshold = exact_threshold
        self.target_recall = target_recall
        self.calibration_k = calibration_k
        self._lock = threading.RLock()
        self._vectors = np.zeros((0, dim), dtype=np.float32)  # capacity rows; free rows are zero
        self._slot_ids = np.zeros(0, dtype=np.int64)  # id of each used slot (stale when free)
        self._used = 0  # slots [0, used) have been handed out; some may be on the free list
        self._slot_by_id = np.full(0, -1, dtype=np.int32)  # -1: no vector for that id
        self._count = 0
        self._free: list[int] = []
        self._ivf: faiss.IndexIVFFlat | None = None
        self._built_size = 0

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def __contains__(self, id_: object) -> bool:
        if not isinstance(id_, int | np.integer):
            return False
        slot_by_id = self._slot_by_id
        return bool(0 <= id_ < len(slot_by_id) and slot_by_id[id_] >= 0)

    @property
    def kind(self) -> IndexKind:
        """Layout: "flat" (exact scan) or "ivf" (faiss inverted lists)."""
        return "flat" if self._ivf is None else "ivf"

    @property
    def nprobe(self) -> int | None:
        """Lists probed per IVF query (None when flat)."""
        return None if self._ivf is None else int(self._ivf.nprobe)

    @property
    def needs_rebuild(self) -> bool:
        """True once the size has drifted far enough from the last build that ``rebuild`` pays.

        Flat: more than ``exact_threshold`` vectors and twice as many as at the last build (an index
        filled by upserts never switches layout by itself). IVF: twice or half the trained size,
        where the lists and calibrated ``nprobe`` no longer fit. Doubling keeps rebuilds amortised.
        """
        n = len(self)
        if self._ivf is None:
            return n > self.exact_threshold and n >= 2 * self._built_size
        return n >= 2 * self._built_size or n <= self._built_size // 2

    def ids(self) -> npt.NDArray[np.int64]:
        """All ids in the index (in no particular order)."""
        with self._lock:
            return np.asarray(self._slot_ids[self._live_slots()])

    def get(self, ids: Ids) -> npt.NDArray[np.float32]:
        """Rows of ``ids`` as a new (len(ids), dim) array; an unknown id gets a zero row."""
        with self._lock:
            slots = self._slots(ids)
            rows = np.zeros((len(slots), self.dim), dtype=np.float32)
            known = slots >= 0
            rows[known] = self._vectors[slots[known]]
            return rows

    def similarity(self, query: npt.NDArray[np.floating[Any]], ids: Ids) -> npt.NDArray[np.float32]:
        """Exact cosine between ``query`` and each of ``ids``; 0 for an id without a vector."""
        unit_query = self._unit_query(query)
        with self._lock:
            return dot_at(self._vectors, self._slots(ids), unit_query)

    def search(
        self,
        query: npt.NDArray[np.floating[Any]],
        k: int,
        *,
        exclude: Collection[int] | npt.NDArray[np.integer[Any]] = (),
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The ``k`` ids most similar to ``query`` (cosine, best first), skipping ``exclude``.

        Returns fewer than ``k`` when fewer vectors are eligible. Only ids in the index are
        returned. With an IVF layout the answer is approximate (see ``nprobe``).
        """
        unit_query = self._unit_query(query)
        with self._lock:
            excluded_ids = _exclusion_ids(exclude)
            excluded = self._slots(excluded_ids)
            excluded_slots = excluded[excluded >= 0]
            if len(excluded_ids) > 1 and not np.all(excluded_ids[1:] > excluded_ids[:-1]):
                # Repeated ids would count twice below; ascending ones (a query's partners, as
                # the ranker passes them) map to distinct slots already.
                excluded_slots = np.unique(excluded_slots)
            k = min(k, len(self) - len(excluded_slots))
            if k <= 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            if self._ivf is None:
                slots, scores = self._search_flat(unit_query, k, excluded_slots)
            else:
                slots, scores = self._search_ivf(unit_query, k, excluded_slots)
            return self._slot_ids[slots], scores

    def _search_flat(
        self, query: npt.NDArray[np.float32], k: int, excluded_slots: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        scores = dot_rows(self._vectors[: self._used], query)
        # Free and excluded slots can never win; k was capped to what remains, so none is returned.
        scores[self._free] = -np.inf
        scores[excluded_slots] = -np.inf
        top = top_k(scores, k)
        return top, scores[top]

    def _search_ivf(
        self, query: npt.NDArray[np.float32], k: int, excluded_slots: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        assert self._ivf is not None
        params = None
        if len(excluded_slots):
            # Skipped while scanning the lists (one bit test per scanned vector), so a hub's
            # thousands of partners are not thousands of extra results to fetch and drop. A
            # bitmap over the slots (12.5 kB at 100k) is quicker to build and to test than
            # faiss's hash set (IDSelectorBatch): 0.28 -> 0.17 ms per search for a hub
            # excluding ~740. faiss reads ``bitmap`` through a raw pointer; the local keeps it
            # alive until this method returns.
            marked = np.zeros(self._used, dtype=np.bool_)
            marked[excluded_slots] = True
            bitmap = np.packbits(marked, bitorder="little")
            selector = faiss.IDSelectorNot(
                faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            )
            params = faiss.SearchParametersIVF()
            params.sel, params.nprobe = selector, self._ivf.nprobe
        scores, slots = self._ivf.search(query[None, :], k, params=params)
        keep = slots[0] >= 0  # faiss pads with -1 when the probed lists hold fewer than k
        return slots[0][keep], scores[0][keep]

    # -- writing -----------------------------------------------------------------------------

    def upsert(self, ids: Ids, vectors: npt.ArrayLike) -> None:
        """Insert or replace the vectors of ``ids`` (rows are normalised to unit length)."""
        id_array, rows = self._validated(ids, vectors)
        if len(id_array) == 0:
            return
        with self._lock:
            self._reserve(len(id_array))
            slots = np.empty(len(id_array), dtype=np.int64)
            replaced: list[int] = []
            for position, id_ in enumerate(id_array.tolist()):
                slot = self._slot(id_)
                if slot < 0:
                    slot = self._free.pop() if self._free else self._take_new_slot()
                    self._map(id_, slot)
                    self._slot_ids[slot] = id_
                else:
                    replaced.append(slot)
                slots[position] = slot
            self._vectors[slots] = rows
            if self._ivf is not None:
                # A changed vector may belong to another list: remove, then add.
                if replaced:
                    _remove_slots(self._ivf, replaced)
                self._ivf.add_with_ids(rows, slots)

    def remove(self, ids: Ids) -> int:
        """Remove ``ids`` (unknown ids are ignored); returns how many were removed."""
        id_array = _id_array(ids)
        with self._lock:
            found = self._slots(np.unique(id_array))
            slots = found[found >= 0].tolist()
            if not slots:
                return 0
            self._slot_by_id[self._slot_ids[slots]] = -1
            self._count -= len(slots)
            self._vectors[slots] = 0.0
            self._free.extend(slots)
            if self._ivf is not None:
                _remove_slots(self._ivf, slots)
            return len(slots)

    def build(self, ids: Ids, vectors: npt.ArrayLike) -> None:
        """Replace the whole content, choosing the layout (flat or IVF) for its size.

        Training an IVF layout takes tens of seconds at 100k vectors on 2 cores; it runs outside
        the lock, so reads keep using the old content until the swap. It is a write: an upsert
        made by another thread while it trains is lost.
        """
        id_array, rows = self._validated(ids, vectors)
        n = len(id_array)
        ivf = self._trained_ivf(rows) if n > self.exact_threshold else None
        slot_by_id = id_map(id_array, np.arange(n, dtype=np.int64))
        with self._lock:
            self._vectors = rows
            self._slot_ids = id_array.copy()
            self._used = n
            self._slot_by_id, self._count = slot_by_id, n
            self._free = []
            self._ivf = ivf
            self._built_size = n

    def rebuild(self) -> None:
        """``build`` from the current content (see ``needs_rebuild``); a write, like ``build``."""
        with self._lock:
            ids = self.ids()
            rows = self.get(ids)
        self.build(ids, rows)

    def snapshot(self) -> IndexSnapshot:
        """The content by slot, for batch jobs that search many queries with the very layout
        the one-at-a-time searches use: the live arrays and faiss layout themselves, nothing
        copied (at 100k vectors a copy would be ~450 MB), so valid only while no writer
        touches the index (the re-ranking run's own state is never written while it ranks).
        """
        with self._lock:
            used = self._used
            return IndexSnapshot(
                dim=self.dim,
                vectors=self._vectors[:used],
                slot_ids=self._slot_ids[:used],
                free_slots=np.asarray(sorted(self._free), dtype=np.int64),
                ivf=self._ivf,
                nprobe=self.nprobe,
            )

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str], *, fingerprint: str) -> None:
        """Write the index to ``path`` atomically (temp file, fsync, rename) with a checksum.

        ``fingerprint`` describes the data the vectors came from (e.g. model name, row count and
        latest update time); ``load`` refuses a file whose fingerprint differs. The content is
        copied under the lock and written outside it, so searches are blocked only for the copy.
        """
        with self._lock:
            live = self.snapshot()
            built_size = self._built_size
            slot_ids, vectors = live.slot_ids.copy(), live.vectors.copy()
            layout = np.zeros(0, np.uint8) if live.ivf is None else faiss.serialize_index(live.ivf)
        sections: dict[str, memoryview] = {
            "slot_ids": _byte_view(slot_ids),
            "vectors": _byte_view(vectors),
            "free": _byte_view(live.free_slots),
            "faiss": _byte_view(layout),
        }
        header = {
            "format": _FORMAT_VERSION,
            "dim": self.dim,
            "fingerprint": fingerprint,
            "used": len(slot_ids),
            "count": len(slot_ids) - len(live.free_slots),
            "built_size": built_size,
            "sections": [[name, data.nbytes] for name, data in sections.items()],
        }
        header_bytes = json.dumps(header, sort_keys=True).encode()
        digest = hashlib.sha256(header_bytes)
        for data in sections.values():
            digest.update(data)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(temporary, "wb") as file:
                file.write(_PREFIX.pack(_MAGIC, digest.digest(), len(header_bytes)))
                file.write(header_bytes)
                for data in sections.values():
                    file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(target.parent)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        dim: int,
        expected_fingerprint: str,
        exact_threshold: int = 20_000,
    ) -> VectorIndex | None:
        """The index saved at ``path``, or None if it is missing, corrupt, stale or of another dim.

        Never raises for a bad file: the caller rebuilds from the store instead.
        """
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            log.info("no saved vector index at %s", path)
            return None
        except OSError as error:
            log.warning("cannot read saved vector index %s: %s", path, error)
            return None
        try:
            return cls._from_bytes(data, dim, expected_fingerprint, exact_threshold)
        except _UnusableIndexFile as reason:
            log.warning("ignoring saved vector index %s: %s", path, reason)
        except Exception:  # a corrupt file can make numpy or faiss fail in any way
            log.warning("ignoring unreadable saved vector index %s", path, exc_info=True)
        return None

    @classmethod
    def _from_bytes(
        cls, data: bytes, dim: int, expected_fingerprint: str, exact_threshold: int
    ) -> VectorIndex:
        if len(data) < _PREFIX.size:
            raise _UnusableIndexFile("truncated")
        magic, digest, header_size = _PREFIX.unpack_from(data)
        if magic != _MAGIC:
            raise _UnusableIndexFile("not a vector index file of this format")
        body = memoryview(data)[_PREFIX.size :]
        if hashlib.sha256(body).digest() != digest:
            raise _UnusableIndexFile("checksum mismatch")
        header = json.loads(bytes(body[:header_size]))
        if header["format"] != _FORMAT_VERSION:
            raise _UnusableIndexFile(f"format {header['format']} is not {_FORMAT_VERSION}")
        if header["dim"] != dim:
            raise _UnusableIndexFile(f"dim {header['dim']} is not {dim}")
        if header["fingerprint"] != expected_fingerprint:
            raise _UnusableIndexFile("stale: fingerprint differs from the store's")
        sections: dict[str, memoryview] = {}
        offset = header_size
        for name, size in header["sections"]:
            sections[name] = body[offset : offset + size]
            offset += size
        used = int(header["used"])
        slot_ids = np.frombuffer(sections["slot_ids"], dtype=np.int64).copy()
        vectors = np.frombuffer(sections["vectors"], dtype=np.float32).reshape(used, dim).copy()
        free = np.frombuffer(sections["free"], dtype=np.int64).tolist()
        live = np.ones(used, dtype=bool)
        live[free] = False
        live_ids = slot_ids[live]
        if len(live_ids) != header["count"] or len(np.unique(live_ids)) != len(live_ids):
            raise _UnusableIndexFile("slot table is inconsistent")
        if len(live_ids) and (live_ids.min() < 0 or live_ids.max() > MAX_ID):
            raise _UnusableIndexFile("ids out of range")
        slot_by_id = id_map(live_ids, np.flatnonzero(live))
        ivf: faiss.IndexIVFFlat | None = None
        if sections["faiss"].nbytes:
            stored = faiss.deserialize_index(np.frombuffer(sections["faiss"], dtype=np.uint8))
            if not isinstance(stored, faiss.IndexIVFFlat):
                raise _UnusableIndexFile(f"unexpected faiss index type {type(stored).__name__}")
            ivf = stored
            if ivf.d != dim or ivf.ntotal != len(live_ids):
                raise _UnusableIndexFile("faiss index does not match the vectors")
        index = cls(dim, exact_threshold=exact_threshold)
        index._vectors, index._slot_ids, index._used = vectors, slot_ids, used
        index._slot_by_id, index._count = slot_by_id, len(live_ids)
        index._free, index._ivf = free, ivf
        index._built_size = int(header["built_size"])
        return index

    # -- internals ---------------------------------------------------------------------------

    def _slots(self, ids: Ids) -> npt.NDArray[np.int64]:
        """Slot of each id, -1 where unknown."""
        return look_up(self._slot_by_id, _id_array(ids))

    def _slot(self, id_: int) -> int:
        return int(self._slot_by_id[id_]) if id_ < len(self._slot_by_id) else -1

    def _map(self, id_: int, slot: int) -> None:
        if id_ >= len(self._slot_by_id):
            grown = np.full(max(2 * len(self._slot_by_id), id_ + 1, 64), -1, dtype=np.int32)
            grown[: len(self._slot_by_id)] = self._slot_by_id
            self._slot_by_id = grown
        self._slot_by_id[id_] = slot
        self._count += 1

    def _live_slots(self) -> npt.NDArray[np.intp]:
        live = np.ones(self._used, dtype=bool)
        live[self._free] = False
        return np.flatnonzero(live)

    def _unit_query(self, query: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
        vector = np.asarray(query, dtype=np.float32).reshape(-1)
        if vector.shape != (self.dim,):
            raise ValueError(f"query must have {self.dim} values, got shape {np.shape(query)}")
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def _validated(
        self, ids: Ids, vectors: npt.ArrayLike
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        id_array = _id_array(ids)
        if len(id_array) and (id_array.min() < 0 or id_array.max() > MAX_ID):
            raise ValueError(f"ids must be in [0, {MAX_ID}]")
        rows = np.array(vectors, dtype=np.float32, copy=True, ndmin=2)
        if len(id_array) == 0 and rows.size == 0:
            return id_array, np.zeros((0, self.dim), dtype=np.float32)
        if rows.shape != (len(id_array), self.dim):
            raise ValueError(
                f"expected vectors of shape ({len(id_array)}, {self.dim}), got {rows.shape}"
            )
        if len(np.unique(id_array)) != len(id_array):
            raise ValueError("ids must be unique within one call")
        norms = np.linalg.norm(rows, axis=1)
        if not np.all(np.isfinite(norms)) or np.any(norms == 0):
            raise ValueError("vectors must be finite and non-zero")
        rows /= norms[:, None]
        return id_array, rows

    def _reserve(self, extra: int) -> None:
        needed = self._used + max(0, extra - len(self._free))
        capacity = len(self._vectors)
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity, 64)
        vectors = np.zeros((new_capacity, self.dim), dtype=np.float32)
        vectors[: self._used] = self._vectors[: self._used]
        slot_ids = np.zeros(new_capacity, dtype=np.int64)
        slot_ids[: self._used] = self._slot_ids[: self._used]
        self._vectors, self._slot_ids = vectors, slot_ids

    def _take_new_slot(self) -> int:
        slot = self._used
        self._used += 1
        return slot

    def _trained_ivf(self, rows: npt.NDArray[np.float32]) -> faiss.IndexIVFFlat | None:
        n = len(rows)
        nlist = max(1, min(round(4 * math.sqrt(n)), n // _MIN_POINTS_PER_LIST))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.spherical = True  # centroids on the unit sphere suit inner-product assignment
        ivf.train(rows)
        # The hashtable direct map makes remove_ids O(1) per id instead of a scan of every list.
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        ivf.add_with_ids(rows, np.arange(n, dtype=np.int64))
        nprobe = _calibrated_nprobe(ivf, rows, self.calibration_k, self.target_recall)
        if nprobe is None:
            log.info(
                "IVF layout reaches recall %.2f only near a full scan at %d vectors: "
                "keeping the exact scan",
                self.target_recall,
                n,
            )
            return None
        ivf.nprobe = nprobe
        log.info("IVF layout: %d vectors, nlist %d, nprobe %d", n, nlist, nprobe)
        return ivf


@dataclass(frozen=True, slots=True)
class IndexSnapshot:
    """One index's content by slot: ``vectors[s]`` is the unit vector of ``slot_ids[s]``, except
    for slots in ``free_slots`` (zero rows, stale ids). ``ivf`` is the faiss IVF layout, whose
    ids are slots; None when the index is flat."""

    dim: int
    vectors: npt.NDArray[np.float32]
    slot_ids: npt.NDArray[np.int64]
    free_slots: npt.NDArray[np.int64]
    ivf: faiss.IndexIVFFlat | None
    nprobe: int | None


class _UnusableIndexFile(Exception):
    """A saved index that must not be served."""


def dot_rows(
    matrix: npt.NDArray[np.float32], vector: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """``matrix @ vector`` on one thread.

    OpenBLAS splits any matrix-vector product over ~9k values across all cores; with the model
    busy on the same 2 cores, its threads wait on each other and one 10k-row query took 20 ms
    instead of under 1 (scripts/bench_embeddings.py). numpy's own einsum loop uses no threads.
    Public so that batch searches (matching/batch.py) get the very same float32 arithmetic.
    """
    scores: npt.NDArray[np.float32] = np.einsum("ij,j->i", matrix, vector)
    return scores


def _byte_view(array: npt.NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, without a copy (also for zero rows)."""
    return np.ascontiguousarray(array).reshape(-1).data.cast("B")


def _id_array(ids: Ids) -> npt.NDArray[np.int64]:
    return np.asarray(ids, dtype=np.int64).reshape(-1)


def _exclusion_ids(
    exclude: Collection[int] | npt.NDArray[np.integer[Any]],
) -> npt.NDArray[np.int64]:
    if isinstance(exclude, np.ndarray):
        return exclude.astype(np.int64, copy=False).reshape(-1)
    return np.fromiter(exclude, dtype=np.int64, count=len(exclude))


def id_map(ids: npt.NDArray[np.int64], values: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """The ``id -> value`` array (-1 elsewhere) for non-negative ``ids``: ids are the store's
    keys, dense enough that one array index per lookup beats a search."""
    by_id = np.full(int(ids.max()) + 1 if len(ids) else 0, -1, dtype=np.int32)
    by_id[ids] = values
    return by_id


def look_up(
    by_id: npt.NDArray[np.integer[Any]], ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """``by_id[id]`` (an :func:`id_map`) for each id, -1 for ids outside it.

    >>> look_up(id_map(np.array([3, 1]), np.array([0, 1])), np.array([1, 2, 3, 9, -1])).tolist()
    [1, -1, 0, -1, -1]
    """
    return kernels.look_up(by_id, np.ascontiguousarray(ids, dtype=np.int64))


def _remove_slots(ivf: faiss.IndexIVFFlat, slots: list[int]) -> None:
    # With the hashtable direct map faiss accepts only an IDSelectorArray, each id O(1).
    array = np.asarray(slots, dtype=np.int64)
    ivf.remove_ids(faiss.IDSelectorArray(len(array), faiss.swig_ptr(array)))


def _calibrated_nprobe(
    ivf: faiss.IndexIVFFlat, rows: npt.NDArray[np.float32], k: int, target_recall: float
) -> int | None:
    """Smallest nprobe whose recall@k on sample queries reaches the target (None: none cheap).

    Half the queries are indexed vectors, as when an organisation's profile asks for similar
    profiles (its own id left out of both answers); half are midpoints of two random indexed
    vectors, like a query from another space (seeks against offers) that mixes topics and sits
    between clusters, where IVF needs more probes.
    """
    n = len(rows)
    k = min(k, n - 1)
    if k < 1:
        return 1
    rng = np.random.default_rng(0)
    n_queries = min(_CALIBRATION_QUERIES, n)
    own_slots = rng.choice(n, size=n_queries, replace=False)
    query_slots = np.where(np.arange(n_queries) < n_queries // 2, own_slots, -1)
    partners = rows[rng.choice(n, size=n_queries)]
    queries = np.where((query_slots >= 0)[:, None], rows[own_slots], rows[own_slots] + partners)
    norms = np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    queries = np.ascontiguousarray(queries / norms, dtype=np.float32)
    exact = np.empty((n_queries, k), dtype=np.int64)
    for start in range(0, n_queries, 32):  # bounded memory: 32 x n scores at a time
        scores = queries[start : start + 32] @ rows.T
        for row, slot in enumerate(query_slots[start : start + 32]):
            if slot >= 0:
                scores[row, slot] = -np.inf
        exact[start : start + 32] = np.argpartition(-scores, k - 1, axis=1)[:, :k]

    def recall(nprobe: int) -> float:
        ivf.nprobe = nprobe
        _, found = ivf.search(queries, k + 1)
        hits = np.empty(n_queries)
        for row, (query_slot, answer) in enumerate(zip(query_slots, found, strict=True)):
            approximate = answer[(answer >= 0) & (answer != query_slot)][:k]
            hits[row] = len(np.intersect1d(approximate, exact[row], assume_unique=True))
        # Each kind of query must reach the target on its own; easy ones must not hide hard ones.
        is_own = query_slots >= 0
        return min(float(group.mean()) for group in (hits[is_own], hits[~is_own]) if len(group)) / k

    max_nprobe = max(1, int(ivf.nlist * _MAX_NPROBE_FRACTION))
    low, high = 0, 1  # recall(low) < target (0 = nothing probed); find the first high that passes
    while recall(high) < target_recall:
        if high >= max_nprobe:
            return None
        low, high = high, min(2 * high, max_nprobe)
    while high - low > 1:
        middle = (low + high) // 2
        if recall(middle) >= target_recall:
            high = middle
        else:
            low = middle
    return high


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable; not possible on every platform, and only matters on a crash.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
