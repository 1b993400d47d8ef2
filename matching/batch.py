"""Ranking many organisations at once with the ranker's features, scoring and diversification,
batched across queries so a nightly run over every organisation stays fast.

:func:`rank_many` gives the same lists as calling :func:`matching.ranker.rank_partners` for each
organisation (a test checks it on samples). What is shared and what is batched:

- shared as is: the candidate rules and limits (``EXHAUSTIVE_LIMIT``, ``TEXT_CANDIDATES``, ...),
  ``reciprocal_fit``, ``profile_similarity``, the scorer (``score_columns``) and the explanations;
- called per organisation: ``compute_features`` itself (its graph sweeps are compiled loops,
  graph/kernels.py) and ``GraphSnapshot.expand``, reading the batch's arrays;
- batched, same arithmetic in the same order: maximal marginal relevance (one vectorised loop
  for a group of queries);
- batched with BLAS matrix-matrix products instead of one matrix-vector product per query: the
  exact text-candidate searches, whose products only shortlist; the shortlist is scored again
  with the API's arithmetic, so the neighbours are the same (:func:`_search_many`).

Everything here is pure and synchronous; :class:`BatchState` is a picklable, read-only copy of
the :class:`~matching.ranker.MatchingState` that worker processes (Ray actors) receive once.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, cast

import faiss
import numpy as np
import numpy.typing as npt

from embeddings import VectorIndex
from embeddings.index import dot_rows, id_map, look_up
from embeddings.kernels import dot_at, top_k
from graph import GraphSnapshot
from matching import ranker
from matching.catalog import Catalog, ItemMatrix, OrgProfile, gather_items
from matching.diversity import profile_similarity
from matching.explanation import explain
from matching.features import (
    VECTOR_SPACES,
    QueryVectors,
    compute_features,
    query_vectors,
)
from matching.ranker import (
    MatchingState,
    MatchQuery,
    ScoredMatch,
    UnknownOrganisation,
    bridges_of,
)
from matching.scoring import LinearScorer

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SCORE_PARTS: tuple[str, ...] = ("text_score", "graph_score", "preference_bonus")
"""After the feature columns (whatever ``compute_features`` returns), what a stored match keeps."""


_SEARCH_BATCH = 256  # queries per matrix product: bounds the (queries x vectors) score block
_MMR_GROUP = 32  # queries diversified together: bounds the (group, pool, pool) block
_IVF_GROUP = 16


# -- the read-only batch snapshot -----------------------------------------------------------
class SpaceArrays:
    """One vector space as plain arrays: unit rows by slot, their ids, and the IVF layout.

    The arrays and the faiss layout are the index's own, read in place (see :func:`prepare`).
    """

    def __init__(self, index: VectorIndex) -> None:
        # The batch searches many queries at once with the very same slot layout, IVF lists and
        # nprobe as the API's one-at-a-time searches; the index's snapshot is that layout.
        content = index.snapshot()
        used = len(content.slot_ids)
        self.dim = content.dim
        self.vectors = content.vectors
        self.slot_ids = content.slot_ids
        self.free = content.free_slots
        live = np.ones(used, dtype=bool)
        live[self.free] = False
        self.size = int(live.sum())
        self._slot_by_id = id_map(self.slot_ids[live], np.flatnonzero(live))
        self.nprobe = content.nprobe or 0
        self.ivf: Any = content.ivf  # None for an exact scan

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # faiss objects do not pickle: a worker process gets the layout serialised.
        state["ivf"] = None if self.ivf is None else faiss.serialize_index(self.ivf)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.ivf is not None:
            self.ivf = faiss.deserialize_index(self.ivf)
            self.ivf.nprobe = self.nprobe

    def slots_of(self, ids: IntArray) -> IntArray:
        """Slot of each id, -1 where the id has no vector in this space."""
        return look_up(self._slot_by_id, np.asarray(ids, dtype=np.int64))

    def similarity(self, query: npt.NDArray[np.floating[Any]], ids: IntArray) -> np.ndarray:
        """As ``VectorIndex.similarity``: cosine to each id, 0 where an id has no vector."""
        return dot_at(self.vectors, self.slots_of(np.asarray(ids, dtype=np.int64)), _unit(query))


class _PackedItems:
    """Item vectors with the ``(start, count)`` span of each batch row, as
    :meth:`~matching.catalog.ItemMatrix.view` gives them."""

    def __init__(self, items: npt.NDArray[np.float32], span: IntArray) -> None:
        self._items, self._span = items, span

    @classmethod
    def of(cls, source: ItemMatrix, rows: IntArray) -> _PackedItems:
        """The items of catalogue ``rows``, read in place: an ``ItemMatrix`` never writes where
        a span points, so this stays valid whatever the catalogue does later."""
        items, span = source.view()
        return cls(items, span[rows])

    def __getstate__(self) -> dict[str, Any]:
        # A worker process gets only the items the spans point at, packed in row order.
        items, counts = gather_items(self._items, self._span, np.arange(len(self._span)))
        span = np.column_stack((np.cumsum(counts) - counts, counts)).astype(np.int64)
        return {"_items": items, "_span": span}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def view(self) -> tuple[npt.NDArray[np.float32], IntArray]:
        return self._items, self._span


@dataclass
class BatchState:
    """Everything :func:`rank_chunk` reads, as arrays (picklable; treat as read-only)."""

    row_ids: IntArray  # catalogue order: the order exhaustive candidate lists follow
    profiles: list[OrgProfile]
    kind_code: npt.NDArray[np.int8]
    country_code: npt.NDArray[np.int16]
    sector_masks: IntArray
    country_codes: dict[str, int]
    offer_items: _PackedItems
    seek_items: _PackedItems
    spaces: dict[str, SpaceArrays]
    snapshot: GraphSnapshot
    scorer: LinearScorer
    _row_by_id: npt.NDArray[np.int32] = field(repr=False)  # embeddings.index.id_map

    def __len__(self) -> int:
        return len(self.row_ids)

    def rows_of(self, ids: IntArray) -> IntArray:
        """Position of each id in ``row_ids`` (-1 for unknown ids)."""
        return look_up(self._row_by_id, np.asarray(ids, dtype=np.int64))


def prepare(state: MatchingState) -> BatchState:
    """What the batch ranker reads from ``state``: small columns copied, the vector arrays, IVF
    layouts and item vectors read in place. Nothing may write ``state``'s vector indexes while
    the batch is in use; a re-ranking run ranks a state no request writes (the command's own,
    or a private copy in the service: ``app/services/rerank.py``)."""
    catalog = state.catalog
    row_ids = np.asarray(catalog.all_ids(), dtype=np.int64)
    rows = catalog.rows_of(row_ids)
    profiles = [p for p in catalog.profiles(row_ids) if p is not None]
    if len(profiles) != len(row_ids):
        raise RuntimeError("the catalogue changed while it was being copied")
    snapshot = state.snapshot()
    return BatchState(
        row_ids=row_ids,
        profiles=profiles,
        kind_code=catalog.kind_code[rows].copy(),
        country_code=catalog.country_code[rows].copy(),
        sector_masks=catalog.sector_masks[rows].copy(),
        country_codes={p.country: catalog.country_code_of(p.country) for p in profiles},
        offer_items=_PackedItems.of(catalog.offer_items, rows),
        seek_items=_PackedItems.of(catalog.seek_items, rows),
        spaces={space: SpaceArrays(state.vectors[space]) for space in VECTOR_SPACES},
        snapshot=snapshot,
        scorer=state.scorer,
        _row_by_id=id_map(row_ids, np.arange(len(row_ids), dtype=np.int64)),
    )


# -- results --------------------------------------------------------------------------------
@dataclass
class ChunkResult:
    """The ranked lists of a chunk of organisations, flat: one entry per (subject, rank).

    ``cutoffs`` is, per subject, the lowest score that made it into the pool the list was
    diversified from (-inf when every candidate did): a candidate scoring below it cannot
    change the list, which is what ``--only-changed`` tests new candidates against.
    """

    names: tuple[str, ...]  # of the component columns: the features, then SCORE_PARTS
    subjects: IntArray  # the organisations ranked, in input order
    cutoffs: FloatArray  # per subject
    subject: IntArray  # per entry
    rank: IntArray
    candidate: IntArray
    score: FloatArray
    components: FloatArray  # (entries, len(names))
    # Per subject: every organisation it scored, ascending (empty when everyone is scored),
    # and the best score that missed the pool (-inf: none did). ``verify_chunk`` reads them
    # back from a stored run.
    candidates: tuple[IntArray, ...] = ()
    next_scores: FloatArray = field(default_factory=lambda: np.zeros(0))
    # Subjects ``verify_chunk`` found whose stored lists stand (not in ``subjects``), and of
    # those, the ones whose candidates moved: (subject, its candidates now, a bound on the
    # best score outside its pool), to be stored with the list so that the next check starts
    # from what is true now.
    kept: int = 0
    restated: tuple[tuple[int, IntArray, float], ...] = ()

    def stored(self) -> dict[int, StoredList]:
        """Per subject, what :func:`verify_chunk` reads back from a stored run."""
        lists = self.lists()
        return {
            org_id: StoredList(
                candidates=candidates,
                listed=lists[org_id][0],
                scores=lists[org_id][1],
                cutoff=cutoff,
                next_score=next_score,
            )
            for org_id, candidates, cutoff, next_score in zip(
                self.subjects.tolist(),
                self.candidates,
                self.cutoffs.tolist(),
                self.next_scores.tolist(),
                strict=True,
            )
        }

    def lists(self) -> dict[int, tuple[IntArray, FloatArray, FloatArray]]:
        """Per subject: (candidate ids, scores, component rows), best first."""
        out: dict[int, tuple[IntArray, FloatArray, FloatArray]] = {
            int(s): (np.zeros(0, np.int64), np.zeros(0), np.zeros((0, len(self.names))))
            for s in self.subjects
        }
        if len(self.subject) == 0:
            return out
        bounds = np.flatnonzero(np.diff(self.subject)) + 1
        for start, end in zip(
            np.concatenate(([0], bounds)),
            np.concatenate((bounds, [len(self.subject)])),
            strict=True,
        ):
            out[int(self.subject[start])] = (
                self.candidate[start:end],
                self.score[start:end],
                self.components[start:end],
            )
        return out


def rank_many(
    state: MatchingState, org_ids: Sequence[int], query: MatchQuery
) -> dict[int, list[ScoredMatch]]:
    """``{org_id: rank_partners(state, org_id, query)}`` for many organisations at once.

    Queries with a candidate filter are ranked one by one with ``rank_partners`` (the batch
    path serves the default query of the nightly run). Unknown ids raise ``UnknownOrganisation``.
    """
    for org_id in org_ids:
        if state.catalog.get(int(org_id)) is None:
            raise UnknownOrganisation(org_id)
    if not query.filter.is_empty:
        return {int(o): ranker.rank_partners(state, int(o), query) for o in org_ids}
    batch = prepare(state)
    result = rank_chunk(batch, org_ids, query)
    out: dict[int, list[ScoredMatch]] = {}
    for org_id, (cands, scores, comps) in result.lists().items():
        out[org_id] = to_matches(
            state, org_id, result.names, cands, scores, comps, explain_them=query.explain
        )
    return out


def to_matches(
    state: MatchingState,
    org_id: int,
    names: Sequence[str],
    candidates: IntArray,
    scores: FloatArray,
    components: FloatArray,
    *,
    explain_them: bool = True,
) -> list[ScoredMatch]:
    """Stored or freshly batched rows as the ranker's :class:`ScoredMatch` list, explained the
    way ``rank_partners`` explains them (same reasons, same bridges)."""
    query_profile = state.catalog.get(org_id)
    bridges = (
        bridges_of(
            state.snapshot(), org_id, candidates, components[:, list(names).index("hop_distance")]
        )
        if explain_them and query_profile is not None and "hop_distance" in names
        else [[] for _ in range(len(candidates))]
    )
    matches: list[ScoredMatch] = []
    for cand_id, score, row, bridged in zip(
        candidates.tolist(), scores.tolist(), components, bridges, strict=True
    ):
        cand = state.catalog.get(int(cand_id))
        if cand is None:
            continue
        comps = dict(zip(names, (float(v) for v in row), strict=True))
        feats = {name: comps[name] for name in names if name not in SCORE_PARTS}
        reasons: list[str] = []
        if explain_them and query_profile is not None:
            reasons = explain(query_profile, cand, feats, bridges=bridged, name_of=state.name_of)
        matches.append(
            ScoredMatch(
                organisation=cand,
                score=float(score),
                components=comps,
                explanation=reasons,
                is_existing_partner=feats.get("hop_distance", 4) == 1,
            )
        )
    return matches


# -- the batched ranker ---------------------------------------------------------------------
@dataclass
class _Query:
    org_id: int
    row: int  # in BatchState.row_ids
    partners: IntArray  # ids of its direct partners, ascending
    exclude: IntArray  # ids never suggested, ascending
    vectors: dict[str, npt.NDArray[np.float32] | None]
    candidates: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    features: dict[str, FloatArray] | None = None  # of ``candidates``, once computed


def _make_queries(batch: BatchState, ids: IntArray, query: MatchQuery) -> list[_Query]:
    rows = batch.rows_of(ids)
    if np.any(rows < 0):
        raise UnknownOrganisation(int(ids[np.flatnonzero(rows < 0)[0]]))
    queries: list[_Query] = []
    for org_id, row in zip(ids.tolist(), rows.tolist(), strict=True):
        partners = batch.snapshot.direct_partners(org_id)
        exclude = np.array([org_id], dtype=np.int64)
        if not query.include_existing:
            exclude = ranker.never_suggested(batch.snapshot, org_id)
        vectors = {}
        for space in VECTOR_SPACES:
            arrays = batch.spaces[space]
            slot = int(arrays.slots_of(np.array([org_id], dtype=np.int64))[0])
            vectors[space] = arrays.vectors[slot].copy() if slot >= 0 else None
        queries.append(_Query(org_id, row, partners, exclude, vectors))
    return queries


def rank_chunk(batch: BatchState, org_ids: Iterable[int], query: MatchQuery) -> ChunkResult:
    """Rank every organisation in ``org_ids`` (known to ``batch``) with the unfiltered ``query``.

    The per-organisation steps follow ``rank_partners``: candidates (every organisation up to
    ``EXHAUSTIVE_LIMIT``, else text neighbours in three spaces, graph neighbours and
    well-connected organisations), features, score, pool of ``max(5 * limit, 50)``, MMR.
    """
    if not query.filter.is_empty:
        raise ValueError("rank_chunk ranks the unfiltered query only; use rank_partners")
    ids = np.asarray(list(dict.fromkeys(int(i) for i in org_ids)), dtype=np.int64)
    queries = _make_queries(batch, ids, query)
    return _rank_queries(batch, ids, queries, query, _text_candidates(batch, queries))


def _rank_queries(
    batch: BatchState,
    ids: IntArray,
    queries: list[_Query],
    query: MatchQuery,
    texts: list[list[IntArray]] | None = None,
) -> ChunkResult:
    """:func:`rank_chunk` for ``queries``: their candidates (gathered here from their text
    neighbours ``texts``, or already), features, scores, pools, diversification."""
    per_query_cols: list[dict[str, FloatArray]] = []
    for i, q in enumerate(queries):
        if texts is not None:
            # Graph expansion and features both start from the query's two-step flow: one
            # right after the other, the snapshot computes it once.
            q.candidates = _candidates_of(batch, q, texts[i], query)
        if len(q.candidates):
            per_query_cols.append(q.features if q.features is not None else _features(batch, q))
    lengths = np.array([len(q.candidates) for q in queries], dtype=np.int64)
    if not per_query_cols:
        return _empty_result(ids)
    feature_names = tuple(per_query_cols[0])
    cols = {
        name: np.concatenate([c[name] for c in per_query_cols]).astype(np.float64, copy=False)
        for name in feature_names
    }
    scores, contributions, bonus = ranker.score_columns(batch.scorer, cols, query.cross_preference)
    text_score = np.zeros(len(scores))
    graph_score = np.zeros(len(scores))
    for name, values in contributions.items():
        if name in ranker._TEXT_FEATURES:
            text_score = text_score + values
        else:
            graph_score = graph_score + values
    offsets = np.concatenate(([0], np.cumsum(lengths)))

    # Pools, best first, per query; then the diversified order within each pool.
    head, pool_limit, window_size = _diversified_head(query.limit)
    orders: list[npt.NDArray[np.intp]] = []
    cutoffs = np.full(len(queries), -np.inf)
    next_scores = np.full(len(queries), -np.inf)
    to_diversify: list[int] = []
    pools: list[npt.NDArray[np.intp]] = []
    for i in range(len(queries)):
        n = int(lengths[i])
        if n == 0:
            pools.append(np.zeros(0, dtype=np.intp))
            orders.append(np.zeros(0, dtype=np.intp))
            continue
        s = scores[offsets[i] : offsets[i + 1]]
        pool_size = min(n, pool_limit)
        pool = np.argpartition(-s, pool_size - 1)[:pool_size]
        pool = pool[np.argsort(-s[pool], kind="stable")]
        if pool_size < n:
            cutoffs[i] = float(s[pool[-1]])
            next_scores[i] = float(-np.partition(-s, pool_size)[pool_size])
        pools.append(pool)
        orders.append(pool[: query.limit])
        if query.diversity > 0 and len(pool) > head:
            to_diversify.append(i)
    trade_off = 1.0 - 0.7 * query.diversity
    for start in range(0, len(to_diversify), _MMR_GROUP):
        group = to_diversify[start : start + _MMR_GROUP]
        rels, sims = [], []
        for i in group:
            window = pools[i][:window_size]
            s = scores[offsets[i] : offsets[i + 1]]
            rels.append(s[window])
            sims.append(_pool_similarity(batch, queries[i].candidates[window]))
        for i, picked in zip(group, _mmr_many(rels, sims, head, trade_off), strict=True):
            chosen = pools[i][:window_size][picked]
            rest = pools[i][~np.isin(pools[i], chosen)][: query.limit - head]
            orders[i] = np.concatenate([chosen, rest]).astype(np.intp)

    subject_parts, rank_parts, cand_parts, index_parts = [], [], [], []
    for i, q in enumerate(queries):
        order = orders[i]
        subject_parts.append(np.full(len(order), q.org_id, dtype=np.int64))
        rank_parts.append(np.arange(1, len(order) + 1, dtype=np.int64))
        cand_parts.append(q.candidates[order])
        index_parts.append(offsets[i] + order)
    at = np.concatenate(index_parts).astype(np.int64)
    components = np.column_stack(
        [cols[name][at] for name in feature_names]
        + [text_score[at], graph_score[at], bonus[at].astype(np.float64)]
    )
    return ChunkResult(
        names=(*feature_names, *SCORE_PARTS),
        subjects=ids,
        cutoffs=cutoffs,
        subject=np.concatenate(subject_parts),
        rank=np.concatenate(rank_parts),
        candidate=np.concatenate(cand_parts).astype(np.int64),
        score=scores[at].astype(np.float64),
        components=components,
        candidates=tuple(
            q.candidates if len(batch) > ranker.EXHAUSTIVE_LIMIT else np.zeros(0, np.int64)
            for q in queries
        ),
        next_scores=next_scores,
    )


def _diversified_head(limit: int) -> tuple[int, int, int]:
    """(how many results MMR picks, the pool size, the window MMR picks from), as
    ``ranker._finish`` decides them: the whole list, or only its first page."""
    page = getattr(ranker, "DIVERSIFIED_HEAD", None)
    if page is None:
        pool = max(limit * 5, 50)
        return limit, pool, pool
    head = min(limit, int(page))
    return head, max(limit, head * 5, 50), head * 5


def is_prefix(limit: int, top_k: int) -> bool:
    """Whether the first ``limit`` items of a ``top_k`` list are the ``limit`` list itself:
    true when both diversify the same first page from the same window.

    >>> is_prefix(10, 50) == (getattr(ranker, "DIVERSIFIED_HEAD", None) is not None)
    True
    >>> is_prefix(50, 50), is_prefix(60, 50)
    (True, False)
    """
    if limit > top_k:
        return False
    if limit == top_k:
        return True
    head, _, window = _diversified_head(limit)
    head_k, _, window_k = _diversified_head(top_k)
    return head == head_k and window == window_k


def _empty_result(ids: IntArray) -> ChunkResult:
    empty = np.zeros(0, dtype=np.int64)
    return ChunkResult(
        names=SCORE_PARTS,
        subjects=ids,
        cutoffs=np.full(len(ids), -np.inf),
        subject=empty,
        rank=empty,
        candidate=empty,
        score=np.zeros(0),
        components=np.zeros((0, len(SCORE_PARTS))),
        candidates=tuple(empty for _ in ids),
        next_scores=np.full(len(ids), -np.inf),
    )


@dataclass(frozen=True)
class StoredList:
    """What an earlier run stored for a subject, as :func:`verify_chunk` reads it."""

    candidates: IntArray  # every organisation it scored, ascending
    listed: IntArray  # the list, best first
    scores: FloatArray  # the list's scores
    cutoff: float  # lowest score in the pool (-inf: every candidate made it)
    next_score: float  # best score outside the pool (-inf: none)


@dataclass(frozen=True)
class VerifyWork:
    """What :func:`verify_chunk` needs besides the batch: the chunk's stored lists and the
    organisations changed since they were stored (ascending)."""

    stored: dict[int, StoredList]
    changed: IntArray


def work_chunk(
    batch: BatchState, org_ids: Iterable[int], query: MatchQuery, work: VerifyWork | None
) -> ChunkResult:
    """What an engine runs for a chunk: :func:`rank_chunk`, or :func:`verify_chunk` when the
    chunk's subjects are to be checked against their stored lists."""
    if work is None:
        return rank_chunk(batch, org_ids, query)
    return verify_chunk(batch, org_ids, query, work.stored, work.changed)


def verify_chunk(
    batch: BatchState,
    org_ids: Iterable[int],
    query: MatchQuery,
    stored: dict[int, StoredList],
    changed: IntArray,
) -> ChunkResult:
    """Rank those of ``org_ids`` whose ``stored`` list may differ from ranking them now; the
    others are only counted (``kept``): their stored lists stand.

    For subjects whose own inputs, partners' links and two-hop neighbourhood are as they were
    when the lists were stored (``--only-changed`` ranks the others outright), with
    ``changed`` the organisations whose own inputs changed since, ascending. A subject's
    candidates are gathered again exactly as :func:`rank_chunk` gathers them; its list stands
    when the pool it was diversified from is still the same set with the same scores:

    - no listed organisation changed or stopped being a candidate;
    - every organisation that became a candidate, or changed, scores below the stored pool
      cut-off (by more than the last bits: ``_SCORE_SLACK``);
    - the stored list is the whole pool, with more candidates than the pool holds, and no
      two of its scores (nor the cut-off and the best score outside) are equal, so that no
      tie was broken by where a candidate sat.

    Candidates are compared only when they come from searches (above ``EXHAUSTIVE_LIMIT``);
    below it every subject is ranked.
    """
    ids = np.asarray(list(dict.fromkeys(int(i) for i in org_ids)), dtype=np.int64)
    if len(batch) <= ranker.EXHAUSTIVE_LIMIT:
        return rank_chunk(batch, ids.tolist(), query)
    changed = np.unique(np.asarray(changed, dtype=np.int64))
    _, pool_limit, _ = _diversified_head(query.limit)
    whole_pool = query.limit >= pool_limit
    queries = _make_queries(batch, ids, query)
    again: list[_Query] = []
    restated: list[tuple[int, IntArray, float]] = []
    for q, text in zip(queries, _text_candidates(batch, queries), strict=True):
        # Gathering (graph expansion) and the check's scoring (features) both start from the
        # query's two-step flow: one right after the other, the snapshot computes it once.
        q.candidates = _candidates_of(batch, q, text, query)
        old = stored.get(q.org_id)
        verdict = None if old is None else _stands(batch, q, old, changed, pool_limit, query)
        if verdict is None or (verdict.moved and not whole_pool):
            # Its features now, while the snapshot still holds its two-step flow: ranked
            # after the whole chunk's checks, each would sweep its flow a second time.
            if len(q.candidates):
                q.features = _features(batch, q)
            again.append(q)
        elif verdict.moved:
            restated.append((q.org_id, q.candidates, verdict.next_bound))
    again_ids = np.array([q.org_id for q in again], dtype=np.int64)
    result = _rank_queries(batch, again_ids, again, query)
    result.kept = len(ids) - len(again)
    result.restated = tuple(restated)
    return result


class _Stands(NamedTuple):
    """A stored list that stands: whether its candidates moved (then it is stored again with
    them), and a bound on the best score outside its pool now."""

    moved: bool
    next_bound: float


def _stands(
    batch: BatchState,
    q: _Query,
    old: StoredList,
    changed: IntArray,
    pool_limit: int,
    query: MatchQuery,
) -> _Stands | None:
    """Whether ``q``'s stored list is what ranking it now gives (see :func:`verify_chunk`);
    None if it may not be."""
    now = q.candidates
    listed = np.sort(old.listed)
    if len(listed) and listed[0] <= 0:
        return None  # a partner erased from the list since (blanked to id 0)
    moved_in = np.setdiff1d(now, old.candidates, assume_unique=True)
    changed_now = now[ranker.in_sorted(now, changed)]
    if len(moved_in) == 0 and len(changed_now) == 0 and len(now) == len(old.candidates):
        return _Stands(False, old.next_score)  # the same candidates and scores
    if not np.isfinite(old.cutoff) or len(now) <= pool_limit:
        return None  # the pool is every candidate: whatever moved is in it
    if old.next_score >= old.cutoff or len(np.unique(old.scores)) < len(old.scores):
        return None  # a tie, broken by position
    gone = np.setdiff1d(old.candidates, now, assume_unique=True)
    if ranker.in_sorted(gone, listed).any() or ranker.in_sorted(listed, changed).any():
        return None
    rescore = np.union1d(moved_in, changed_now)
    if len(rescore) == 0:
        return _Stands(True, old.next_score)
    cols = _features(batch, replace(q, candidates=rescore))
    scores, _, _ = ranker.score_columns(batch.scorer, cols, query.cross_preference)
    if not np.all(scores < old.cutoff - _SCORE_SLACK):
        return None
    return _Stands(True, max(old.next_score, float(scores.max())))


# -- candidates -----------------------------------------------------------------------------
def _text_candidates(batch: BatchState, queries: list[_Query]) -> list[list[IntArray]]:
    """Per query, its text neighbours in the three spaces (none when everyone is scored):
    searched for the whole chunk at once."""
    found: list[list[IntArray]] = [[] for _ in queries]
    if len(batch) <= ranker.EXHAUSTIVE_LIMIT:
        return found
    for space, source in (("profile", "profile"), ("offers", "seeks"), ("seeks", "offers")):
        asking = [i for i, q in enumerate(queries) if q.vectors[source] is not None]
        hits = _search_many(
            batch.spaces[space],
            [queries[i].vectors[source] for i in asking],  # type: ignore[misc]
            [queries[i].exclude for i in asking],
            ranker.TEXT_CANDIDATES,
        )
        for i, ids in zip(asking, hits, strict=True):
            found[i].append(ids)
    return found


def _candidates_of(
    batch: BatchState, q: _Query, text: list[IntArray], query: MatchQuery
) -> IntArray:
    """The query's candidates: everyone, or its ``text`` neighbours, graph neighbours and
    well-connected organisations, as ``ranker._candidates`` gathers them."""
    if len(batch) <= ranker.EXHAUSTIVE_LIMIT:
        return np.asarray(batch.row_ids[~ranker.in_sorted(batch.row_ids, q.exclude)])
    found = [
        *text,
        batch.snapshot.expand(q.org_id, ranker.GRAPH_CANDIDATES)[0],
        ranker.popular_candidates(
            batch.snapshot.ids_by_degree(), ranker.POPULAR_CANDIDATES, q.exclude
        ),
    ]
    if query.include_existing:
        found.append(q.partners)
    pool = np.unique(np.concatenate(found).astype(np.int64))
    pool = pool[batch.rows_of(pool) >= 0]
    return np.asarray(pool[~ranker.in_sorted(pool, q.exclude)], dtype=np.int64)


def _unit(vector: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """As ``VectorIndex._unit_query``: the query normalised again, in float32."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _search_many(
    space: SpaceArrays,
    vectors: list[npt.NDArray[np.float32]],
    excludes: list[IntArray],
    k: int,
) -> list[IntArray]:
    """Per query, the ids of ``VectorIndex.search(vector, k, exclude=...)`` (as a set)."""
    if not vectors:
        return []
    excluded_slots = [np.unique(s[s >= 0]) for s in (space.slots_of(e) for e in excludes)]
    wanted = [min(k, space.size - len(ex)) for ex in excluded_slots]
    out: list[IntArray] = [np.zeros(0, dtype=np.int64) for _ in vectors]
    units = np.stack([_unit(v) for v in vectors])
    ivf = space.ivf
    if ivf is not None:
        # Over-fetching by a query's exclusions, then dropping them, gives the same set as the
        # API's search that skips them in faiss: the best ``wanted`` others in the probed lists.
        # Queries with similar exclusion counts share one call, fetching for the largest.
        asking = sorted(
            (i for i in range(len(units)) if wanted[i] > 0),
            key=lambda i: wanted[i] + len(excluded_slots[i]),
        )
        # Below faiss's BLAS threshold (20 queries) the coarse search computes each query
        # exactly as a one-query search does, so the probed lists are the API's too.
        for at in range(0, len(asking), _IVF_GROUP):
            members = asking[at : at + _IVF_GROUP]
            fetch = max(wanted[i] + len(excluded_slots[i]) for i in members)
            _, slots = ivf.search(units[members], fetch)
            for row, i in zip(slots, members, strict=True):
                keep = row >= 0
                if len(excluded_slots[i]):
                    keep &= ~ranker.in_sorted(row, excluded_slots[i])
                out[i] = space.slot_ids[row[keep][: wanted[i]]]
        return out
    # One matrix product per block of queries shortlists; the API's own arithmetic decides.
    # How a BLAS kernel rounds a query's row depends on where the row sits in the block (seen
    # with OpenBLAS's Haswell kernels on an AMD EPYC: 130 of 256 positions gave other bits),
    # so the product alone would make a query's neighbours depend on which queries share its
    # chunk. Two float32 sums of a unit query's products with a unit vector, added in any
    # order, are at most ``apart`` from each other (dim * eps: each is within dim * eps / 2 of
    # the exact sum, as sum |x_i y_i| <= 1). Every score within ``2 * apart`` of the k-th best
    # of the product is scored again with ``dot_rows``, as ``VectorIndex``'s exact search
    # scores it, and the best k of those (ties to the lower slot) are the answer: the API's,
    # whatever the chunk, and whatever the block's shape (so a short block is not padded).
    apart = space.dim * float(np.finfo(np.float32).eps)
    for start in range(0, len(units), _SEARCH_BATCH):
        rows = units[start : start + _SEARCH_BATCH]
        block = rows @ space.vectors.T
        block[:, space.free] = -np.inf
        for offset, scores in enumerate(block):
            i = start + offset
            kk = wanted[i]
            if kk <= 0:
                continue
            scores[excluded_slots[i]] = -np.inf
            kth = scores[top_k(scores, kk)[-1]]
            shortlist = np.flatnonzero(scores >= kth - 2 * apart)  # ascending slots
            exact = dot_rows(space.vectors[shortlist], rows[offset])
            out[i] = space.slot_ids[shortlist[top_k(exact, kk)]]
    return out


# -- features -------------------------------------------------------------------------------
class _CatalogView:
    """What ``compute_features`` reads from a catalogue, answered from the batch arrays."""

    def __init__(self, batch: BatchState) -> None:
        self._batch = batch
        self.sector_masks = batch.sector_masks
        self.country_code = batch.country_code
        self.kind_code = batch.kind_code
        self.offer_items = batch.offer_items
        self.seek_items = batch.seek_items

    def profiles(self, org_ids: IntArray) -> list[OrgProfile | None]:
        profiles = self._batch.profiles
        return [profiles[r] if r >= 0 else None for r in self.rows_of(org_ids).tolist()]

    def rows_of(self, org_ids: IntArray) -> IntArray:
        return self._batch.rows_of(np.asarray(org_ids, dtype=np.int64))

    def country_code_of(self, country: str) -> int:
        return self._batch.country_codes.get(country, -2)


def _features(batch: BatchState, q: _Query) -> dict[str, FloatArray]:
    """``compute_features`` for one query of the chunk, reading the batch's arrays."""
    vectors = q.vectors
    return compute_features(
        query=batch.profiles[q.row],
        qvec=QueryVectors(vectors["profile"], vectors["offers"], vectors["seeks"]),
        candidate_ids=q.candidates,
        catalog=cast(Catalog, _CatalogView(batch)),
        vectors=cast(dict[str, VectorIndex], batch.spaces),
        snapshot=batch.snapshot,
    )


# -- diversification ------------------------------------------------------------------------
def _pool_similarity(batch: BatchState, ids: IntArray) -> FloatArray:
    """The (pool, pool) similarity ``ranker._diversify`` builds (same function, same inputs)."""
    space = batch.spaces["profile"]
    slots = space.slots_of(ids)
    has = slots >= 0
    vecs = np.zeros((len(ids), space.dim), dtype=np.float32)
    if has.any():
        vecs[has] = space.vectors[slots[has]]
    rows = batch.rows_of(ids)
    return profile_similarity(
        vecs, has.astype(np.float64), batch.country_code[rows], batch.sector_masks[rows]
    )


def _mmr_many(
    relevances: list[FloatArray], similarities: list[FloatArray], k: int, trade_off: float
) -> list[list[int]]:
    """``diversity.mmr_select`` for several pools at once (same arithmetic, one loop).

    >>> rel = np.array([1.0, 0.99, 0.5])
    >>> sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> _mmr_many([rel, rel[:2]], [sim, sim[:2, :2]], 2, 0.6)
    [[0, 2], [0, 1]]
    """
    g = len(relevances)
    sizes = np.array([len(r) for r in relevances])
    width = int(sizes.max()) if g else 0
    rel = np.zeros((g, width))
    sim = np.zeros((g, width, width))
    available = np.zeros((g, width), dtype=bool)
    for i, (r, s) in enumerate(zip(relevances, similarities, strict=True)):
        n = len(r)
        if n == 0:
            continue
        top = float(np.max(r))
        rel[i, :n] = r / top if top > 0 else np.zeros(n)
        sim[i, :n, :n] = s
        available[i, :n] = True
    redundancy = np.zeros((g, width))
    chosen: list[list[int]] = [[] for _ in range(g)]
    steps = np.minimum(sizes, k) if k > 0 else np.zeros(g, dtype=np.int64)
    everyone = np.arange(g)
    for step in range(int(steps.max()) if g else 0):
        active = everyone[steps > step]
        gain = np.where(
            available[active],
            trade_off * rel[active] - (1.0 - trade_off) * redundancy[active],
            -np.inf,
        )
        picks = np.argmax(gain, axis=1)
        available[active, picks] = False
        redundancy[active] = np.maximum(redundancy[active], sim[active, picks])
        for i, pick in zip(active.tolist(), picks.tolist(), strict=True):
            chosen[i].append(int(pick))
    return chosen


# -- input fingerprints ---------------------------------------------------------------------
def own_fingerprints(state: MatchingState, org_ids: Iterable[int]) -> dict[int, str]:
    """Per organisation, a short hash of everything of its own the ranker reads: attributes,
    texts and vectors (the first 16 hex digits), then its partners with pair weights (the last
    16). Missing organisations are left out.

    Two states give an organisation the same fingerprint exactly when its own inputs are equal.
    """
    snapshot = state.snapshot()
    profiles = [p for p in (state.catalog.get(int(o)) for o in org_ids) if p is not None]
    out: dict[int, str] = {}
    for start in range(0, len(profiles), _FINGERPRINT_BLOCK):
        _fingerprint_block(state, snapshot, profiles[start : start + _FINGERPRINT_BLOCK], out)
    return out


_FINGERPRINT_BLOCK = 4096  # organisations per vector gather: 3 x 6 MB at 384 dimensions


def cached_own_fingerprints(state: MatchingState, org_ids: Sequence[int]) -> dict[int, str]:
    """:func:`own_fingerprints`, remembered until the state changes: serving a stored list
    checks the fingerprints of its organisation and its ~50 partners, and hashing a hub's
    thousands of links each time cost more than ranking the list anew (100k organisations:
    4 ms per list). Kept only when no writer changed the state meanwhile (``generation``)."""
    generation = state.generation
    memo_generation, memo = state.fingerprint_memo
    if memo_generation != generation:
        memo = {}
        if generation % 2 == 0:
            state.fingerprint_memo = (generation, memo)
    missing = [o for o in org_ids if o not in memo]
    found = own_fingerprints(state, missing) if missing else {}
    if found and generation % 2 == 0 and state.generation == generation:
        memo.update(found)
    out: dict[int, str] = {}
    for org_id in org_ids:
        value = found.get(org_id) or memo.get(org_id)
        if value is not None:
            out[org_id] = value
    return out


def _fingerprint_block(
    state: MatchingState, snapshot: GraphSnapshot, profiles: list[OrgProfile], out: dict[int, str]
) -> None:
    ids = np.array([p.id for p in profiles], dtype=np.int64)
    # One gather per space (an unknown id gets a zero row; stored vectors are never zero).
    rows = {space: state.vectors[space].get(ids) for space in VECTOR_SPACES}
    present = {space: np.any(rows[space] != 0, axis=1) for space in VECTOR_SPACES}
    nodes = snapshot.index_of(ids).tolist()
    adjacency = snapshot.adjacency
    for at, profile in enumerate(profiles):
        digest = hashlib.blake2b(digest_size=8)
        digest.update(
            repr(
                (
                    profile.name,
                    profile.kind,
                    profile.sectors,
                    profile.country,
                    profile.region,
                    profile.clusters,
                    profile.maturity,
                    profile.offers,
                    profile.seeks,
                )
            ).encode()
        )
        for space in VECTOR_SPACES:
            digest.update(b"|" + space.encode())
            if present[space][at]:
                digest.update(rows[space][at].tobytes())
        for items in (profile.offer_vectors, profile.seek_vectors):
            digest.update(b"|" if items is None else np.ascontiguousarray(items).tobytes())
        links = hashlib.blake2b(digest_size=8)
        node = nodes[at]
        if node >= 0:
            start, end = adjacency.indptr[node], adjacency.indptr[node + 1]
            links.update(snapshot.node_ids[adjacency.indices[start:end]].tobytes())
            links.update(np.asarray(adjacency.data[start:end], dtype=np.float64).tobytes())
        out[profile.id] = digest.hexdigest() + links.hexdigest()


def links_changed(before: str | None, after: str) -> bool:
    """Whether two :func:`own_fingerprints` values differ in the partners part.

    >>> links_changed("a" * 32, "b" * 16 + "a" * 16), links_changed(None, "a" * 32)
    (False, True)
    """
    return before is None or before[16:] != after[16:]


POPULAR_BAND = 2048
"""How much of the degree order a run records (:func:`popular_band`): it tells every organisation
with fewer than ``POPULAR_BAND - POPULAR_CANDIDATES`` partners among those which popular
candidates it was ranked with."""


def popular_band(state: MatchingState) -> list[int]:
    """The best-connected organisations, in the order popular candidates are taken from."""
    band: list[int] = state.snapshot().ids_by_degree()[:POPULAR_BAND].tolist()
    return band


def popular_shifts(
    state: MatchingState, old_band: Sequence[int], subjects: Sequence[int]
) -> tuple[set[int], dict[int, set[int]], dict[int, set[int]]]:
    """How each subject's popular candidates (``ranker.popular_candidates``) moved since a run
    that recorded ``old_band``: a changed link can lift an organisation into the best-connected
    for everyone, and push another out.

    Returns (subjects the old band is too short to tell for: partners of nearly all of it,
    ``{subject: organisations now popular for it that were not}``, ``{subject: organisations
    no longer popular for it}``). Subjects are taken to keep their partners (those whose links
    changed are re-ranked anyway). When the order is the same as far as it was recorded, only
    the first set can be non-empty.
    """
    k = ranker.POPULAR_CANDIDATES
    snapshot = state.snapshot()
    old = np.asarray(old_band, dtype=np.int64)
    new = snapshot.ids_by_degree()
    ids = np.asarray(subjects, dtype=np.int64)
    unknown: set[int] = set()
    if len(old) < len(new):
        # Band members each subject may not be offered (itself, its partners).
        in_band = np.isin(ids, old).astype(np.int64)
        rows = snapshot.index_of(old)
        per_node = np.bincount(
            snapshot.adjacency[rows[rows >= 0]].indices, minlength=len(snapshot.node_ids)
        )
        nodes = snapshot.index_of(ids)
        in_band[nodes >= 0] += per_node[nodes[nodes >= 0]]
        unknown = set(ids[len(old) - in_band < k].tolist())
    entering: dict[int, set[int]] = {}
    leaving: dict[int, set[int]] = {}
    if np.array_equal(old, new[: len(old)]):
        return unknown, entering, leaving
    for subject in ids.tolist():
        if subject in unknown:
            continue
        exclude = ranker.never_suggested(snapshot, subject)
        before = ranker.popular_candidates(old, k, exclude)
        after = ranker.popular_candidates(new, k, exclude)
        came = np.setdiff1d(after, before)
        went = np.setdiff1d(before, after)
        if len(came):
            entering[subject] = set(came.tolist())
        if len(went):
            leaving[subject] = set(went.tolist())
    return unknown, entering, leaving


class ListedPartners:
    """Who lists whom in a run's lists, as one array: ``holding`` answers for every list at
    once, without a partner index (the planning of ``--only-changed`` on a small network)."""

    def __init__(self, subjects: IntArray, partners: IntArray, lengths: IntArray) -> None:
        self.subjects = np.asarray(subjects, dtype=np.int64)
        self.partners = np.asarray(partners, dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
        self._row = {int(s): i for i, s in enumerate(self.subjects.tolist())}

    @classmethod
    def from_packed(cls, subjects: Sequence[int], packed: Sequence[bytes]) -> ListedPartners:
        """From stored lists: each list's partner ids as little-endian int64 bytes.

        >>> packed = [np.array(ids, dtype="<i8").tobytes() for ids in ([5, 6], [7])]
        >>> listed = ListedPartners.from_packed([1, 2], packed)
        >>> listed.holding([6, 9]).tolist(), listed.of(2), listed.of(3)
        ([1], [7], [])
        """
        partners = np.frombuffer(b"".join(packed), dtype="<i8")
        lengths = np.array([len(p) // 8 for p in packed], dtype=np.int64)
        return cls(np.asarray(subjects, dtype=np.int64), partners, lengths)

    def holding(self, ids: Sequence[int]) -> IntArray:
        """The subjects whose list holds any of ``ids``."""
        hit = np.isin(self.partners, np.asarray(ids, dtype=np.int64))
        running = np.concatenate(([0], np.cumsum(hit)))
        found: IntArray = self.subjects[running[self.offsets[1:]] > running[self.offsets[:-1]]]
        return found

    def of(self, subject: int) -> list[int]:
        row = self._row.get(subject)
        if row is None:
            return []
        listed: list[int] = self.partners[self.offsets[row] : self.offsets[row + 1]].tolist()
        return listed


def within_two_hops(snapshot: GraphSnapshot, org_ids: Iterable[int]) -> set[int]:
    """The organisations within two hops of any of ``org_ids`` (their partners and their
    partners' partners): whose common partners, degrees and three-step walks a change of
    ``org_ids``' links can move."""
    out: set[int] = set()
    for org_id in org_ids:
        partners = snapshot.direct_partners(org_id)
        out.update(partners.tolist())
        for partner in partners.tolist():
            out.update(snapshot.direct_partners(partner).tolist())
    return out


def reached_by_changes(
    state: MatchingState,
    own: dict[int, str],
    changed: Sequence[int],
    relinked: Sequence[int],
    cutoffs: dict[int, float | None],
    entering: dict[int, set[int]] | None = None,
) -> set[int]:
    """Organisations a changed one now reaches: within two hops of a changed link (common
    partners, their degrees and three-step walks move), and those it would enter the ranking
    pool of (checked by scoring it for them against their stored pool cut-off).

    ``own``: :func:`own_fingerprints` of every organisation; ``changed``: those whose own
    fingerprint differs from the stored one (or that are new); ``relinked``: those of them whose
    partners changed; ``cutoffs``: the stored pool cut-offs (no entry: never ranked);
    ``entering``: more candidates per subject to check the same way (newly popular ones,
    :func:`popular_shifts`).
    """
    snapshot = state.snapshot()
    out = within_two_hops(snapshot, relinked)
    pairs: dict[int, set[int]] = {}
    exhaustive = len(own) <= ranker.EXHAUSTIVE_LIMIT
    everyone = list(own)
    for org_id in changed:
        reached: set[int] = set()
        if exhaustive:
            reached.update(everyone)
        else:
            qvec = {s: state.vectors[s] for s in ("profile", "offers", "seeks")}
            # Who would find it: the same searches, asked the other way round.
            for own_space, their_space in (
                ("profile", "profile"),
                ("offers", "seeks"),
                ("seeks", "offers"),
            ):
                if org_id in qvec[own_space]:
                    vec = qvec[own_space].get([org_id])[0]
                    ids, _ = qvec[their_space].search(vec, ranker.TEXT_CANDIDATES)
                    reached.update(ids.tolist())
            ids, _ = snapshot.expand(org_id, ranker.GRAPH_CANDIDATES)
            reached.update(ids.tolist())
        for subject in reached:
            if subject != org_id:
                pairs.setdefault(subject, set()).add(org_id)
    for subject, found in (entering or {}).items():
        pairs.setdefault(subject, set()).update(found)
    by_candidate: dict[int, list[int]] = {}
    for subject, found in pairs.items():
        if subject in out or subject not in own:
            continue
        if subject not in cutoffs or cutoffs[subject] is None:
            out.add(subject)  # never ranked, or every candidate made its pool
            continue
        for org_id in found:
            by_candidate.setdefault(org_id, []).append(subject)
    query = MatchQuery()
    for org_id, subjects in by_candidate.items():
        ordered = np.array(sorted(subjects), dtype=np.int64)
        scores = scores_as_candidate(state, org_id, ordered, query)
        limits = np.array([cutoffs[s] for s in ordered.tolist()], dtype=np.float64)
        out.update(ordered[scores >= limits - _SCORE_SLACK].tolist())
    return out


_SCORE_SLACK = 1e-9
"""Scores computed from the candidate's side may differ from the ranking's in the last bits
(sums in another order); a candidate this close to a pool's cut-off counts as entering it."""


def scores_as_candidate(
    state: MatchingState, candidate_id: int, subjects: IntArray, query: MatchQuery
) -> FloatArray:
    """The score ranking each of ``subjects`` would give ``candidate_id`` (-inf where it may
    not be suggested: to itself, to an existing partner unless ``query.include_existing``, to
    an unknown subject), for all of them in one ``compute_features`` call from the
    candidate's side.

    Every feature is symmetric in the pair except the two fit directions, which swap (what
    the subject seeks and the candidate offers is the candidate's need fit), and the
    candidate's own degree and strength, which are the candidate's whoever asks.
    """
    subjects = np.asarray(subjects, dtype=np.int64)
    out = np.full(len(subjects), -np.inf)
    profile = state.catalog.get(int(candidate_id))
    snapshot = state.snapshot()
    allowed = (subjects != candidate_id) & (state.catalog.rows_of(subjects) >= 0)
    if not query.include_existing:
        allowed &= ~np.isin(subjects, snapshot.direct_partners(int(candidate_id)))
    if profile is None or not allowed.any():
        return out
    asked = subjects[allowed]
    mirrored = compute_features(
        query=profile,
        qvec=query_vectors(state.vectors, int(candidate_id)),
        candidate_ids=asked,
        catalog=state.catalog,
        vectors=state.vectors,
        snapshot=snapshot,
    )
    cols = dict(mirrored)
    cols["offer_fit"], cols["need_fit"] = mirrored["need_fit"], mirrored["offer_fit"]
    node = int(snapshot.index_of(np.array([candidate_id]))[0])
    own = (float(snapshot.degree[node]), float(snapshot.strength[node])) if node >= 0 else (0, 0)
    cols["candidate_degree"] = np.full(len(asked), own[0])
    cols["candidate_strength"] = np.full(len(asked), own[1])
    scores, _, _ = ranker.score_columns(state.scorer, cols, query.cross_preference)
    out[allowed] = scores
    return out


def subject_marker(
    snapshot: GraphSnapshot,
    org_id: int,
    own: dict[int, str],
    candidate_ids: Iterable[int],
    context: str,
) -> str:
    """The input marker of one organisation's stored list: its own fingerprint, those of the
    organisations on the list, the degree and strength of its partners (they weigh common
    partners) and ``context`` (model, encoder, parameters). ``own`` must hold every id used.
    """
    digest = hashlib.blake2b(context.encode(), digest_size=8)
    digest.update(own.get(org_id, "-").encode())
    for cand in candidate_ids:
        digest.update(struct.pack("<q", int(cand)) + own.get(int(cand), "-").encode())
    partners = snapshot.direct_partners(org_id)
    if len(partners):
        nodes = snapshot.index_of(partners)
        digest.update(snapshot.degree[nodes].tobytes())
        digest.update(snapshot.strength[nodes].tobytes())
    return digest.hexdigest()
