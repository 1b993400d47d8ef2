"""Ranking partners for one organisation (or a free-text need): candidates -> features ->
score -> diversified top N with explanations. Pure and synchronous: callers run it off the
event loop; the API, the batch re-ranker and the benchmark all call these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from embeddings import VectorIndex
from graph import CollaborationGraph, GraphSnapshot
from matching.catalog import CandidateFilter, Catalog, OrgProfile
from matching.diversity import mmr_select, profile_similarity
from matching.explanation import explain
from matching.features import QueryVectors, compute_features, query_vectors
from matching.scoring import LinearScorer, sigmoid
from matching.spare import Helper, SpareThread

# Below this many eligible organisations every one is scored exactly (no candidate generation).
EXHAUSTIVE_LIMIT = 3_000
TEXT_CANDIDATES = 100
GRAPH_CANDIDATES = 200
POPULAR_CANDIDATES = 100
DEFAULT_CROSS_PREFERENCE = 0.25
DEFAULT_DIVERSITY = 0.25
# How many of the first results are diversified (the first page a person reads).
DIVERSIFIED_HEAD = 10
# Logit lift for organisations in a country the free-text search names ("... in Spain").
COUNTRY_WISH_BONUS = 3.0


class UnknownOrganisation(LookupError):
    """The organisation is not in the catalogue."""


@dataclass(frozen=True, slots=True)
class MatchQuery:
    """How to rank. ``cross_preference`` 0 = neutral, 1 = strongly favour other sectors and
    countries; ``diversity`` 0 = plain score order, 1 = maximal spread."""

    limit: int = 10
    filter: CandidateFilter = field(default_factory=CandidateFilter)
    cross_preference: float = DEFAULT_CROSS_PREFERENCE
    diversity: float = DEFAULT_DIVERSITY
    include_existing: bool = False
    explain: bool = True


@dataclass(frozen=True, slots=True)
class ScoredMatch:
    organisation: OrgProfile
    score: float
    components: dict[str, float]
    explanation: list[str]
    is_existing_partner: bool


@dataclass
class MatchingState:
    """Everything the ranker reads, derived from the store.

    The graph snapshot is rebuilt by writers (:meth:`refresh_snapshot`) and swapped in whole,
    so readers never wait for a rebuild and never see a half-built one.
    """

    catalog: Catalog
    graph: CollaborationGraph
    vectors: dict[str, VectorIndex]
    scorer: LinearScorer
    _snapshot: GraphSnapshot | None = None
    # Odd while a writer changes the state in place (:meth:`changing`), moved on by every
    # change: what readers derive and remember (``batch.cached_own_fingerprints``) is kept
    # only if it stayed the same, even number from start to end.
    generation: int = 0
    # (generation, the own-input fingerprints computed under it), swapped whole.
    fingerprint_memo: tuple[int, dict[int, str]] = field(default_factory=lambda: (0, {}))
    # Lent to a ranking that has the process to itself (matching/spare.py).
    spare: SpareThread = field(default_factory=SpareThread, repr=False, compare=False)

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Wrap every in-place change of the catalogue, the indexes or the graph."""
        self.generation += 1
        try:
            yield
        finally:
            self.generation += 1

    def snapshot(self) -> GraphSnapshot:
        current = self._snapshot
        if current is None:
            current = self._snapshot = self.graph.snapshot()
        return current

    def refresh_snapshot(self) -> None:
        """Rebuild the CSR view after graph changes (call from the writer, off the event loop).

        The hubs' walk table is built here too, so no request waits for it (0.7 s at 100k
        organisations)."""
        snapshot = self.graph.snapshot()
        snapshot.hub_walk_table()
        self._snapshot = snapshot

    def name_of(self, org_id: int) -> str:
        profile = self.catalog.get(org_id)
        return profile.name if profile is not None else f"organisation {org_id}"


def rank_partners(state: MatchingState, org_id: int, query: MatchQuery) -> list[ScoredMatch]:
    """The top ``query.limit`` new partners for ``org_id``, best first.

    The graph work (graph candidates, then proximity) runs on the state's spare thread beside
    the text work (searches, then similarities and item fits) when this ranking is the only
    one in flight (matching/spare.py); the answer is the same either way.
    """
    profile = state.catalog.get(org_id)
    if profile is None:
        raise UnknownOrganisation(org_id)
    snapshot = state.snapshot()
    qvec = query_vectors(state.vectors, org_id)
    direct = snapshot.direct_partners(org_id)
    exclude = np.array([org_id]) if query.include_existing else never_suggested(snapshot, org_id)

    with state.spare.borrowed() as helper:
        candidates = _candidates(state, snapshot, profile, qvec, query, exclude, direct, helper)
        if len(candidates) == 0:
            return []
        proximity = helper.submit(snapshot.proximity, org_id, candidates)
        cols = compute_features(
            query=profile,
            qvec=qvec,
            candidate_ids=candidates,
            catalog=state.catalog,
            vectors=state.vectors,
            snapshot=snapshot,
            proximity=proximity.result,
        )
    return _finish(state, snapshot, profile, candidates, cols, query)


def _candidates(
    state: MatchingState,
    snapshot: GraphSnapshot,
    profile: OrgProfile,
    qvec: QueryVectors,
    query: MatchQuery,
    exclude: np.ndarray,
    direct: np.ndarray,
    helper: Helper,
) -> np.ndarray:
    catalog = state.catalog
    eligible = catalog.filtered_ids(query.filter) if not query.filter.is_empty else None
    n_eligible = len(catalog) if eligible is None else len(eligible)
    if n_eligible <= EXHAUSTIVE_LIMIT:
        pool = catalog.all_ids() if eligible is None else eligible
    else:
        # A hub's two-step flow costs more than the three searches together.
        graph = helper.submit(snapshot.expand, profile.id, GRAPH_CANDIDATES)
        found: list[np.ndarray] = []
        for space, vec in (
            ("profile", qvec.profile),
            ("offers", qvec.seeks),
            ("seeks", qvec.offers),
        ):
            if vec is not None:
                ids, _ = state.vectors[space].search(vec, TEXT_CANDIDATES, exclude=exclude)
                found.append(ids)
        found.append(graph.result()[0])
        found.append(popular_candidates(snapshot.ids_by_degree(), POPULAR_CANDIDATES, exclude))
        if query.include_existing:
            found.append(direct)
        pool = np.unique(np.concatenate(found).astype(np.int64))
        pool = pool[catalog.passes(query.filter, pool)]
    keep = ~in_sorted(pool, exclude)
    return np.asarray(pool[keep], dtype=np.int64)


def popular_candidates(by_degree: np.ndarray, k: int, exclude: np.ndarray) -> np.ndarray:
    """The ``k`` best-connected organisations not in ``exclude`` (ascending): active
    organisations for newcomers without text or links, and the well-connected partners the
    scorer favours, which neither text nor graph neighbours always reach. ``by_degree`` is
    ``GraphSnapshot.ids_by_degree()`` (or the part of it a run recorded, ``batch.popular_band``).

    ``k`` is fixed, whatever the query's own partner count: ``k`` plus one per excluded partner
    gave hubs thousands of candidates (100k organisations: 18 ms per hub query against 11.7
    with the first 100). Recall@50 against scoring everyone, 10k organisations, 150 random
    and 50 hub queries: the first 30: 0.74 / 0.70; 30 plus one per partner: 0.81 / 0.96; the
    first 100: 0.86 / 0.86; the first 200: 0.88 / 0.92.
    """
    ranked = by_degree[: k + len(exclude)]
    return np.asarray(ranked[~in_sorted(ranked, exclude)][:k], dtype=np.int64)


def never_suggested(snapshot: GraphSnapshot, org_id: int) -> np.ndarray:
    """The organisation and its direct partners, ascending: what a default query excludes."""
    partners = snapshot.direct_partners(org_id)  # ascending, never org_id itself
    return np.insert(partners, np.searchsorted(partners, org_id), org_id).astype(np.int64)


def in_sorted(items: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Whether each of ``items`` is in ``sorted_values`` (ascending): a binary search per item,
    5x faster than ``np.isin`` for a few hundred candidates against a query's exclusions.

    >>> in_sorted(np.array([3, 1, 7]), np.array([1, 2, 3])).tolist()
    [True, True, False]
    """
    if len(sorted_values) == 0:
        return np.zeros(len(items), dtype=np.bool_)
    pos = np.minimum(np.searchsorted(sorted_values, items), len(sorted_values) - 1)
    found: np.ndarray = sorted_values[pos] == items
    return found


def score_columns(
    scorer: LinearScorer,
    cols: dict[str, np.ndarray],
    cross_preference: float,
    extra_bonus: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(final score in [0, 1], per-feature logit contributions, preference bonus)."""
    contributions = scorer.contributions(cols)
    logits = scorer.intercept + sum(contributions.values(), np.zeros(len(cols["offer_fit"])))
    bonus = scorer.preference_bonus(cols, cross_preference)
    if extra_bonus is not None:
        bonus = bonus + extra_bonus
    return sigmoid(logits + bonus), contributions, bonus


def _finish(
    state: MatchingState,
    snapshot: GraphSnapshot,
    query_profile: OrgProfile | None,
    candidates: np.ndarray,
    cols: dict[str, np.ndarray],
    query: MatchQuery,
    *,
    extra_bonus: np.ndarray | None = None,
) -> list[ScoredMatch]:
    scores, contributions, bonus = score_columns(
        state.scorer, cols, query.cross_preference, extra_bonus
    )
    head = min(query.limit, DIVERSIFIED_HEAD)
    pool_size = min(len(candidates), max(query.limit, head * 5, 50))
    pool = np.argpartition(-scores, pool_size - 1)[:pool_size]
    pool = pool[np.argsort(-scores[pool], kind="stable")]
    order = pool[: query.limit]
    if query.diversity > 0 and len(pool) > head:
        # Spread the first page; the rest of a long list stays in score order, so asking
        # for 100 partners does not trade recall for variety.
        window = pool[: head * 5]
        picked = window[_diversify(state, candidates[window], scores[window], query, head)]
        rest = pool[~np.isin(pool, picked)][: query.limit - head]
        order = np.concatenate([picked, rest])

    listed_ids = candidates[order]
    bridges = (
        bridges_of(snapshot, query_profile.id, listed_ids, cols["hop_distance"][order])
        if query.explain and query_profile is not None and "hop_distance" in cols
        else [[] for _ in order]
    )
    # The listed rows only, as Python floats, each sum in the scorer's feature order.
    text_score = np.zeros(len(order))
    graph_score = np.zeros(len(order))
    for name, part in contributions.items():
        if name in _TEXT_FEATURES:
            text_score = text_score + part[order]
        else:
            graph_score = graph_score + part[order]
    listed = {name: col[order].tolist() for name, col in cols.items()}
    summary = {
        "text_score": text_score.tolist(),
        "graph_score": graph_score.tolist(),
        "preference_bonus": bonus[order].tolist(),
    }
    listed_scores = scores[order].tolist()
    matches: list[ScoredMatch] = []
    for at, (cand_id, bridged) in enumerate(zip(listed_ids.tolist(), bridges, strict=True)):
        cand = state.catalog.get(cand_id)
        if cand is None:  # removed while we ranked
            continue
        feats = {name: values[at] for name, values in listed.items()}
        components = {**feats, **{name: values[at] for name, values in summary.items()}}
        reasons: list[str] = []
        if query.explain and query_profile is not None:
            reasons = explain(query_profile, cand, feats, bridges=bridged, name_of=state.name_of)
        matches.append(
            ScoredMatch(
                organisation=cand,
                score=listed_scores[at],
                components=components,
                explanation=reasons,
                is_existing_partner=feats.get("hop_distance", 4) == 1,
            )
        )
    return matches


def bridges_of(
    snapshot: GraphSnapshot, query_id: int, candidate_ids: np.ndarray, hops: np.ndarray
) -> list[list[int]]:
    """The two organisations that best explain each 2- or 3-hop candidate (none for others),
    found in one pass for the whole page."""
    bridged = np.flatnonzero((hops == 2) | (hops == 3))
    out: list[list[int]] = [[] for _ in range(len(candidate_ids))]
    found = snapshot.bridges_many(query_id, candidate_ids[bridged].tolist(), limit=2)
    for slot, ids in zip(bridged.tolist(), found, strict=True):
        out[slot] = ids
    return out


_TEXT_FEATURES = frozenset({"text_similarity", "offer_fit", "need_fit", "reciprocal_fit"})


def _diversify(
    state: MatchingState, ids: np.ndarray, scores: np.ndarray, query: MatchQuery, k: int
) -> list[int]:
    catalog = state.catalog
    rows = catalog.rows_of(ids)
    vecs = state.vectors["profile"].get(ids)
    has = np.any(vecs != 0, axis=1)  # an id without a vector gets a zero row; stored ones never
    sim = profile_similarity(
        vecs, has.astype(np.float64), catalog.country_code[rows], catalog.sector_masks[rows]
    )
    return mmr_select(scores, sim, k, trade_off=1.0 - 0.7 * query.diversity)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A free-text partner search, optionally on behalf of an organisation (adds graph terms)."""

    vector: np.ndarray
    text: str = ""
    limit: int = 10
    filter: CandidateFilter = field(default_factory=CandidateFilter)
    boost_countries: tuple[str, ...] = ()
    on_behalf_of: int | None = None
    diversity: float = DEFAULT_DIVERSITY


def search_partners(state: MatchingState, search: SearchQuery) -> list[ScoredMatch]:
    """Organisations whose profile or offers answer a free-text need ("AI diagnostics partner in
    Spain"), scored by the same model with the text standing in for the seeker's needs."""
    catalog = state.catalog
    snapshot = state.snapshot()
    behalf = catalog.get(search.on_behalf_of) if search.on_behalf_of is not None else None
    if search.on_behalf_of is not None and behalf is None:
        raise UnknownOrganisation(search.on_behalf_of)
    exclude = np.zeros(0, dtype=np.int64)
    if behalf is not None:
        exclude = never_suggested(snapshot, behalf.id)
    eligible = catalog.filtered_ids(search.filter) if not search.filter.is_empty else None
    if (len(catalog) if eligible is None else len(eligible)) <= EXHAUSTIVE_LIMIT:
        pool = catalog.all_ids() if eligible is None else eligible
    else:
        found = [
            state.vectors[space].search(search.vector, TEXT_CANDIDATES * 2, exclude=exclude)[0]
            for space in ("profile", "offers")
        ]
        pool = np.unique(np.concatenate(found).astype(np.int64))
        pool = pool[catalog.passes(search.filter, pool)]
    candidates = np.asarray(pool[~np.isin(pool, exclude)], dtype=np.int64)
    if len(candidates) == 0:
        return []

    # The free text plays the part of a profile and of a need at once.
    text_query = QueryVectors(profile=search.vector, offers=None, seeks=search.vector)
    seeks = (search.text,)
    seek_vectors = search.vector[None, :].astype(np.float32)
    anchor = (
        replace(behalf, seeks=seeks, seek_vectors=seek_vectors)
        if behalf is not None
        else OrgProfile(
            id=-1,
            name="your search",
            kind="other",
            sectors=(),
            country="",
            seeks=seeks,
            seek_vectors=seek_vectors,
        )
    )
    cols = compute_features(
        query=anchor,
        qvec=text_query,
        candidate_ids=candidates,
        catalog=catalog,
        vectors=state.vectors,
        snapshot=snapshot,
    )
    if behalf is None:
        for name in ("cross_country", "cross_sector", "same_kind"):
            cols[name] = np.zeros(len(candidates))
    boost = None
    if search.boost_countries:
        codes = [catalog.country_code_of(c) for c in search.boost_countries]
        in_country = np.isin(catalog.country_code[catalog.rows_of(candidates)], codes)
        boost = COUNTRY_WISH_BONUS * in_country.astype(np.float64)
    query = MatchQuery(
        limit=search.limit, filter=search.filter, cross_preference=0.0, diversity=search.diversity
    )
    return _finish(state, snapshot, anchor, candidates, cols, query, extra_bonus=boost)
