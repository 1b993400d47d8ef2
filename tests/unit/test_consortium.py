"""Consortium builder on small in-memory networks: rules are met, ties count, alternatives
differ, and unsatisfiable rules name the rule."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import VectorIndex
from graph import CollaborationGraph
from graph.collaboration import Collaboration
from matching.catalog import Catalog, OrgProfile
from matching.consortium import (
    ConsortiumRules,
    ConsortiumSearch,
    RoleRule,
    UnsatisfiableRules,
    suggest_consortia,
)
from matching.ranker import MatchingState, UnknownOrganisation
from matching.scoring import LinearScorer

KINDS = ["sme", "university", "hospital_or_care_provider", "patient_organisation"]
COUNTRIES = ["ES", "FR", "DE", "SE", "NO"]


def _state(profiles: list[OrgProfile], links: list[tuple[int, ...]]) -> MatchingState:
    catalog = Catalog()
    catalog.upsert_many(profiles)
    graph = CollaborationGraph.from_collaborations(
        [p.id for p in profiles],
        [Collaboration(i + 1, ids, "project", 2022) for i, ids in enumerate(links)],
    )
    state = MatchingState(
        catalog=catalog,
        graph=graph,
        vectors={s: VectorIndex(4) for s in ("profile", "offers", "seeks")},
        scorer=LinearScorer.load(),
    )
    state.refresh_snapshot()
    return state


@pytest.fixture
def network() -> MatchingState:
    """20 organisations: kinds and countries cycle; 1-2-3-4 form a tight team; 20 is another
    tenant's. Organisation 7 offers exactly what the call asks."""
    profiles = []
    for i in range(1, 21):
        offers: tuple[str, ...] = ()
        offer_vectors = np.zeros((0, 4), dtype=np.float32)
        if i == 7:
            offers = ("clinical validation",)
            offer_vectors = np.array([[1.0, 0.0, 0.0, 0.0]], dtype=np.float32)
        profiles.append(
            OrgProfile(
                i,
                f"Org {i}",
                kind=KINDS[i % 4],
                sectors=("diagnostics",),
                country=COUNTRIES[i % 5],
                tenant="other" if i == 20 else None,
                offers=offers,
                offer_vectors=offer_vectors,
            )
        )
    links = [(1, 2, 3, 4), (1, 2), (3, 4), (5, 6), (8, 9), (10, 11), (20, 1)]
    return _state(profiles, links)


CALL = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)


def _search(rules: ConsortiumRules, **kw: object) -> ConsortiumSearch:
    values: dict[str, object] = {
        "call_text": "clinical validation",
        "call_vector": CALL,
        "rules": rules,
        "tenants": ("mine",),
        "time_limit_s": 5.0,
        "workers": 1,
    }
    values.update(kw)
    return ConsortiumSearch(**values)  # type: ignore[arg-type]


def test_consortia_meet_every_rule_and_keep_the_required_member(network: MatchingState) -> None:
    rules = ConsortiumRules(
        min_size=4,
        max_size=5,
        min_countries=3,
        min_eu_countries=2,
        max_per_country=2,
        roles=tuple(RoleRule(k) for k in KINDS),
        must_include=(1,),
        exclude=(2,),
    )
    result = suggest_consortia(network, _search(rules, alternatives=3))
    assert len(result.consortia) == 3
    for consortium in result.consortia:
        ids = [m.organisation.id for m in consortium.members]
        assert 1 in ids and 2 not in ids and 20 not in ids  # 20: another tenant's
        assert 4 <= len(ids) <= 5
        assert {m.organisation.kind for m in consortium.members} >= set(KINDS)
        assert len({m.organisation.country for m in consortium.members}) >= 3
        assert all(check.satisfied for check in consortium.rules)
        assert (
            consortium.members[0].required and "Required by you." in consortium.members[0].reasons
        )
        n = len(ids)
        assert len(consortium.pairs) == n * (n - 1) // 2
        assert all(0 <= p.score <= 1 for p in consortium.pairs)
    scores = [c.score for c in result.consortia]
    assert scores == sorted(scores, reverse=True)
    # Alternatives differ by at least two members.
    first, second = ({m.organisation.id for m in c.members} for c in result.consortia[:2])
    assert len(first ^ second) >= 2


def test_existing_ties_and_call_fit_are_chosen(network: MatchingState) -> None:
    rules = ConsortiumRules(min_size=4, max_size=4, must_include=(1,))
    best = suggest_consortia(network, _search(rules, alternatives=1)).consortia[0]
    ids = {m.organisation.id for m in best.members}
    # The team that already worked together wins on ties ...
    assert {2, 3, 4} <= ids
    assert best.proven_optimal
    assert any(p.worked_together and "Worked together before" in p.reason for p in best.pairs)
    # ... while fit to the call alone brings the organisation whose offer matches it.
    fit_only = suggest_consortia(network, _search(rules, alternatives=1, call_weight=1.0))
    members = {m.organisation.id: m for m in fit_only.consortia[0].members}
    assert 7 in members and members[7].fit == pytest.approx(1.0)
    assert any("clinical validation" in r for r in members[7].reasons)


@pytest.mark.parametrize(
    ("rules", "rule", "words"),
    [
        (ConsortiumRules(min_size=3, max_size=8, min_countries=6), "countries", "only 5"),
        (
            ConsortiumRules(min_size=3, max_size=5, roles=(RoleRule("large_company"),)),
            "roles",
            "include only 0",
        ),
        (ConsortiumRules(min_size=3, max_size=4, min_countries=5), "countries", "at most 4"),
        (
            ConsortiumRules(min_size=3, max_size=4, must_include=(1,), exclude=(1,)),
            "must_include",
            "both required and excluded",
        ),
    ],
)
def test_unsatisfiable_rules_are_named_before_searching(
    network: MatchingState, rules: ConsortiumRules, rule: str, words: str
) -> None:
    with pytest.raises(UnsatisfiableRules) as caught:
        suggest_consortia(network, _search(rules))
    assert caught.value.rule == rule and words in caught.value.detail


def test_rules_that_clash_only_together_are_diagnosed_by_the_solver() -> None:
    # Both SMEs are Spanish: two SMEs plus three countries do not fit in three places,
    # though each rule alone does.
    profiles = [
        OrgProfile(1, "SME one", "sme", (), "ES"),
        OrgProfile(2, "SME two", "sme", (), "ES"),
        OrgProfile(3, "Uni", "university", (), "FR"),
        OrgProfile(4, "Uni two", "university", (), "DE"),
        OrgProfile(5, "Hospital", "hospital_or_care_provider", (), "ES"),
    ]
    state = _state(profiles, [(1, 3)])
    rules = ConsortiumRules(min_size=3, max_size=3, min_countries=3, roles=(RoleRule("sme", 2),))
    with pytest.raises(UnsatisfiableRules) as caught:
        suggest_consortia(state, _search(rules))
    assert caught.value.rule == "roles"
    assert caught.value.detail.startswith(
        "the required roles (>= 2 SMEs) and at least 3 countries cannot be met together"
    )


def test_another_tenants_required_member_is_unknown(network: MatchingState) -> None:
    with pytest.raises(UnknownOrganisation):
        suggest_consortia(network, _search(ConsortiumRules(must_include=(20,))))


def test_the_required_members_network_beats_popular_strangers() -> None:
    # 1's partners (2, 3) and their partners (4, 5) against a busy hub team (10-15) that
    # never came near 1: the consortium is built from 1's neighbourhood.
    profiles = [OrgProfile(i, f"Org {i}", "university", (), "ES") for i in range(1, 16)]
    hub_projects = [(10, 11, 12, 13, 14, 15)] * 6 + [(10, 11), (12, 13), (14, 15)]
    state = _state(profiles, [(1, 2), (1, 3), (2, 4), (3, 5), *hub_projects])
    rules = ConsortiumRules(min_size=3, max_size=3, must_include=(1,))
    best = suggest_consortia(state, _search(rules, call_vector=None, alternatives=1)).consortia[0]
    assert {m.organisation.id for m in best.members} <= {1, 2, 3, 4, 5}


def test_members_who_worked_together_are_chosen_together() -> None:
    # Equally active organisations; only the pairs 1-5, 2-6, 3-7, 4-8 worked together.
    profiles = [OrgProfile(i, f"Org {i}", "sme", (), "ES") for i in range(1, 9)]
    state = _state(profiles, [(1, 5), (2, 6), (3, 7), (4, 8)])
    rules = ConsortiumRules(min_size=2, max_size=2)
    result = suggest_consortia(state, _search(rules, call_vector=None, alternatives=2))
    for consortium in result.consortia:
        first, second = sorted(m.organisation.id for m in consortium.members)
        assert second == first + 4
        assert consortium.pairs[0].worked_together


def test_kind_cover_spans_countries_so_country_rules_stay_satisfiable() -> None:
    # The best-placed SMEs are all Spanish like the required member; the only other SME is a
    # stranger in France. Three countries with one SME need it in the searched pool.
    profiles = [
        OrgProfile(1, "Uni ES", "university", (), "ES"),
        *(OrgProfile(i, f"SME ES {i}", "sme", (), "ES") for i in (2, 3, 4)),
        OrgProfile(5, "SME FR", "sme", (), "FR"),
        OrgProfile(6, "Uni DE", "university", (), "DE"),
        OrgProfile(7, "Uni FR", "university", (), "FR"),
        *(OrgProfile(i, f"Uni ES {i}", "university", (), "ES") for i in range(8, 14)),
    ]
    links = [(1, 2, 3, 4), (1, 2, 3, 4), (1, 6), (1, 7), (1, *range(8, 14))]
    state = _state(profiles, links)
    rules = ConsortiumRules(
        min_size=3,
        max_size=3,
        min_countries=3,
        roles=(RoleRule("sme"), RoleRule("university", 2)),
        must_include=(1,),
    )
    search = _search(rules, call_vector=None, alternatives=1, pool_size=6)
    best = suggest_consortia(state, search).consortia[0]
    assert {m.organisation.id for m in best.members} == {1, 5, 6}
    assert all(check.satisfied for check in best.rules)
