"""The batch ranker gives exactly what rank_partners gives, one organisation at a time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from embeddings import VectorIndex
from graph import Collaboration, CollaborationGraph
from matching import batch, ranker
from matching.catalog import Catalog, OrgProfile
from matching.ranker import MatchingState, MatchQuery, rank_partners
from matching.scoring import LinearScorer

DIM = 32
KINDS = ("sme", "university", "hospital_or_care_provider", "research_organisation")
SECTORS = ("diagnostics", "medtech", "biotech", "ehealth", "pharma")
COUNTRIES = ("ES", "FR", "SE", "DK", "DE", "NL")


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def make_state(
    n: int, *, seed: int = 0, exact_threshold: int = 20_000, spread: float = 0.6
) -> MatchingState:
    """Organisations around a few topics (no two vectors equal), with offers, seeks and a
    collaboration graph where a few organisations take part in much more than the rest."""
    rng = np.random.default_rng(seed)
    topics = _unit(rng.standard_normal((8, DIM)))
    ids = (np.arange(n) * 3 + 7).tolist()
    catalog = Catalog()
    spaces: dict[str, tuple[list[int], list[np.ndarray]]] = {
        s: ([], []) for s in ("profile", "offers", "seeks")
    }
    for i, org_id in enumerate(ids):
        topic = topics[rng.integers(len(topics))]

        def near(centre: np.ndarray, count: int) -> np.ndarray:
            return _unit(centre + spread * rng.standard_normal((count, DIM)))

        offers = near(topic, int(rng.integers(0, 3)))
        seeks = near(topics[rng.integers(len(topics))], int(rng.integers(0, 3)))
        catalog.upsert(
            OrgProfile(
                id=org_id,
                name=f"Org {org_id}",
                kind=KINDS[i % len(KINDS)],
                sectors=(SECTORS[int(rng.integers(len(SECTORS)))],),
                country=COUNTRIES[int(rng.integers(len(COUNTRIES)))],
                offers=tuple(f"offer {org_id}.{k}" for k in range(len(offers))),
                seeks=tuple(f"seek {org_id}.{k}" for k in range(len(seeks))),
                offer_vectors=offers,
                seek_vectors=seeks,
            )
        )
        if i % 7 != 0:  # some organisations have no text at all
            spaces["profile"][0].append(org_id)
            spaces["profile"][1].append(near(topic, 1)[0])
        for space, items in (("offers", offers), ("seeks", seeks)):
            if len(items):
                spaces[space][0].append(org_id)
                spaces[space][1].append(_unit(items.mean(axis=0)))
    vectors = {}
    for space, (space_ids, rows) in spaces.items():
        index = VectorIndex(DIM, exact_threshold=exact_threshold)
        index.build(np.array(space_ids), np.stack(rows))
        vectors[space] = index
    activity = 1.0 / np.arange(1, n + 1) ** 0.8
    collaborations = []
    for c in range(n):
        size = int(min(2 + rng.pareto(2.0) * 2, 12))
        members = rng.choice(n, size=size, replace=False, p=activity / activity.sum())
        collaborations.append(
            Collaboration(c + 1, tuple(ids[m] for m in members), "project", 2015 + c % 10)
        )
    # A few organisations stay outside the graph.
    graph = CollaborationGraph.from_collaborations(ids[: n - 3], collaborations)
    state = MatchingState(catalog, graph, vectors, LinearScorer.load())
    state.refresh_snapshot()
    return state


def assert_same(state: MatchingState, org_ids: list[int], query: MatchQuery) -> None:
    batched = batch.rank_many(state, org_ids, query)
    for org_id in org_ids:
        expected = rank_partners(state, org_id, query)
        got = batched[org_id]
        assert [m.organisation.id for m in got] == [m.organisation.id for m in expected], org_id
        assert [m.score for m in got] == [m.score for m in expected]
        assert [m.components for m in got] == [m.components for m in expected]
        assert [m.explanation for m in got] == [m.explanation for m in expected]
        assert [m.is_existing_partner for m in got] == [m.is_existing_partner for m in expected]


@pytest.fixture(scope="module")
def state() -> MatchingState:
    return make_state(400)


def test_equals_rank_partners_when_every_organisation_is_a_candidate(
    state: MatchingState,
) -> None:
    ids = state.catalog.all_ids().tolist()
    assert_same(state, ids[::9], MatchQuery(limit=10))
    assert_same(state, ids[1::23], MatchQuery(limit=50, diversity=0.6, cross_preference=0.8))


def test_equals_rank_partners_with_candidate_generation(
    state: MatchingState, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small limits make a 400-organisation network behave like a large one: text, graph and
    # well-connected candidates, exclusions, three-hop expansion.
    monkeypatch.setattr(ranker, "EXHAUSTIVE_LIMIT", 50)
    monkeypatch.setattr(ranker, "TEXT_CANDIDATES", 25)
    monkeypatch.setattr(ranker, "GRAPH_CANDIDATES", 30)
    monkeypatch.setattr(ranker, "POPULAR_CANDIDATES", 5)
    ids = state.catalog.all_ids().tolist()
    assert_same(state, ids[::7], MatchQuery(limit=10))
    assert_same(state, ids[3::11], MatchQuery(limit=20, include_existing=True, diversity=0.0))


def test_equals_rank_partners_on_an_ivf_index(monkeypatch: pytest.MonkeyPatch) -> None:
    state = make_state(1500, seed=1, exact_threshold=200, spread=0.05)
    assert state.vectors["profile"].kind == "ivf"
    monkeypatch.setattr(ranker, "EXHAUSTIVE_LIMIT", 100)
    ids = state.catalog.all_ids().tolist()
    assert_same(state, ids[::50], MatchQuery(limit=10))


def _edit_texts(state: MatchingState, org_ids: list[int], rng: np.random.Generator) -> None:
    """A new profile vector and a new need for each of ``org_ids``, as a text edit gives."""
    for org_id in org_ids:
        vec = _unit(rng.standard_normal(DIM))
        profile = state.catalog.get(org_id)
        assert profile is not None
        state.catalog.upsert(replace(profile, seeks=("a new need",), seek_vectors=vec[None, :]))
        state.vectors["profile"].upsert([org_id], vec[None, :])
        state.vectors["seeks"].upsert([org_id], vec[None, :])


@pytest.mark.parametrize(
    ("n", "exact_threshold", "spread"),
    [(800, 20_000, 0.3), (1500, 200, 0.05)],
    ids=["exact scans", "ivf"],
)
def test_verify_chunk_keeps_a_stored_list_only_when_ranking_now_gives_it(
    n: int, exact_threshold: int, spread: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ranker, "EXHAUSTIVE_LIMIT", 100)
    monkeypatch.setattr(ranker, "TEXT_CANDIDATES", 25)
    monkeypatch.setattr(ranker, "GRAPH_CANDIDATES", 30)
    monkeypatch.setattr(ranker, "POPULAR_CANDIDATES", 5)
    state = make_state(n, seed=2, exact_threshold=exact_threshold, spread=spread)
    assert state.vectors["profile"].kind == ("ivf" if exact_threshold == 200 else "flat")
    ids = state.catalog.all_ids().tolist()
    query = MatchQuery(limit=50, explain=False)
    stored = batch.rank_chunk(batch.prepare(state), ids, query).stored()
    rng = np.random.default_rng(4)

    # Two incremental steps: the second checks against what the first stored, as a run
    # based on an incremental run does.
    for _step in range(2):
        own = batch.own_fingerprints(state, ids)
        _edit_texts(state, rng.choice(ids, len(ids) // 33, replace=False).tolist(), rng)
        after = batch.own_fingerprints(state, ids)
        changed = sorted(o for o in ids if after[o] != own[o])
        prepared = batch.prepare(state)
        ranked_now = batch.rank_chunk(prepared, ids, query)
        now = ranked_now.lists()
        others = [o for o in ids if o not in set(changed)]

        verified = batch.verify_chunk(prepared, others, query, stored, np.array(changed))
        redone = verified.lists()
        assert verified.kept + len(verified.subjects) == len(others)
        assert verified.kept > 0 and len(verified.subjects) > 0  # both ways taken
        assert verified.restated  # lists that stood although their candidates moved
        moved = 0
        for org_id in others:
            expected_ids, expected_scores, _ = now[org_id]
            if org_id in redone:
                got_ids, got_scores = redone[org_id][:2]
            else:
                got_ids, got_scores = stored[org_id].listed, stored[org_id].scores
            assert got_ids.tolist() == expected_ids.tolist(), org_id
            assert got_scores.tolist() == expected_scores.tolist(), org_id
            moved += stored[org_id].listed.tolist() != expected_ids.tolist()
        assert moved > 0  # lists of unchanged organisations did move: the check had work to do

        # What the run stores: changed and re-ranked lists anew, restated ones with the
        # candidates they have now, the rest as they were.
        fresh = ranked_now.stored()
        stored = {**stored, **{o: fresh[o] for o in changed}, **verified.stored()}
        for org_id, candidates, next_bound in verified.restated:
            stored[org_id] = replace(stored[org_id], candidates=candidates, next_score=next_bound)
            assert next_bound >= fresh[org_id].next_score  # a bound on the best outside


def test_chunks_give_the_same_lists_as_one_pass(state: MatchingState) -> None:
    prepared = batch.prepare(state)
    ids = state.catalog.all_ids().tolist()[:60]
    whole = batch.rank_chunk(prepared, ids, MatchQuery(limit=10)).lists()
    halves = {
        **batch.rank_chunk(prepared, ids[:25], MatchQuery(limit=10)).lists(),
        **batch.rank_chunk(prepared, ids[25:], MatchQuery(limit=10)).lists(),
    }
    assert whole.keys() == halves.keys()
    for org_id, (cands, scores, comps) in whole.items():
        assert np.array_equal(cands, halves[org_id][0])
        assert np.array_equal(scores, halves[org_id][1])
        assert np.array_equal(comps, halves[org_id][2])


def test_fingerprints_change_with_own_inputs_only() -> None:
    state = make_state(60, seed=2)
    ids = state.catalog.all_ids().tolist()
    before = batch.own_fingerprints(state, ids)
    a, b, c = ids[0], ids[1], ids[2]
    profile = state.catalog.get(a)
    assert profile is not None
    state.catalog.upsert(replace(profile, seeks=("a new need",)))
    state.graph.add_collaboration(Collaboration(10_000, (b, c), "project", 2024))
    state.refresh_snapshot()
    after = batch.own_fingerprints(state, ids)
    changed = {i for i in ids if before[i] != after[i]}
    assert {a, b, c} <= changed
    # Pair weights move with the latest year (2024 is new), so other linked organisations
    # change too; organisations outside the graph never do.
    assert all(before[i] == after[i] for i in ids[-3:])


def test_remembered_fingerprints_follow_every_change() -> None:
    state = make_state(60, seed=2)
    ids = state.catalog.all_ids().tolist()
    assert batch.cached_own_fingerprints(state, ids) == batch.own_fingerprints(state, ids)
    a, b = ids[0], ids[1]
    profile = state.catalog.get(a)
    assert profile is not None
    with state.changing():
        state.catalog.upsert(replace(profile, seeks=("a new need",)))
        # Derived while the change is under way: answered, never remembered.
        during = batch.cached_own_fingerprints(state, [a])
        assert during == batch.own_fingerprints(state, [a])
        state.graph.add_collaboration(Collaboration(10_000, (a, b), "project", 2024))
        state.refresh_snapshot()
    after = batch.cached_own_fingerprints(state, ids)
    assert after == batch.own_fingerprints(state, ids)
    assert after[a] != during[a]  # the link came after: what was derived during is gone
    assert state.fingerprint_memo[0] == state.generation and set(state.fingerprint_memo[1]) == set(
        ids
    )


def test_scores_from_the_candidates_side_are_the_ranked_lists_scores(
    state: MatchingState,
) -> None:
    prepared = batch.prepare(state)
    subjects = [int(i) for i in state.catalog.all_ids()[::9]]
    lists = batch.rank_chunk(prepared, subjects, MatchQuery(limit=20)).lists()
    checked = 0
    for candidate in sorted({int(c) for cands, _, _ in lists.values() for c in cands[:3]}):
        listing = [s for s in subjects if candidate in lists[s][0]]
        scores = batch.scores_as_candidate(state, candidate, np.array(listing), MatchQuery())
        expected = [lists[s][1][lists[s][0].tolist().index(candidate)] for s in listing]
        # Equal up to float32 rounding: item products are summed in another order.
        assert np.allclose(scores, expected, rtol=1e-6, atol=0)
        checked += len(listing)
    assert checked > 50
    partner = int(state.snapshot().direct_partners(subjects[1])[0])
    never = batch.scores_as_candidate(
        state, partner, np.array([subjects[1], partner]), MatchQuery()
    )
    assert never.tolist() == [-np.inf, -np.inf]  # an existing partner, and itself
