"""Consortium building for a funding call: a candidate pool scored against the call text, by
affinity to the required members and pair by pair (a membership model over the ranker's
features), then an exact search (OR-Tools CP-SAT) for the members that maximise fit plus pair
scores under the call's rules (size, countries, EU member states, required roles, must
include / exclude), returning several ranked alternatives.

Pure and synchronous: callers run it off the event loop.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from ortools.sat.python import cp_model

from matching.catalog import CandidateFilter, OrgProfile
from matching.explanation import best_item_pair, country_name
from matching.features import QueryVectors, compute_features, query_vectors
from matching.ranker import (
    DEFAULT_CROSS_PREFERENCE,
    EXHAUSTIVE_LIMIT,
    MatchingState,
    UnknownOrganisation,
)
from matching.scoring import sigmoid, transform
from matching.vocabulary import KIND_LABELS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EU_MEMBER_STATES = frozenset(
    {"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"}
    | {"IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)
# Objective coefficients are integers: scores are multiplied by this before rounding.
SCALE = 1_000
MAX_POOL = 250
# Pair terms in the search: each member's strongest ties only; the weak rest barely moves the
# choice but slows the search down.
PAIR_TERMS_PER_MEMBER = 10
# Offer-to-call cosine worth quoting in a member's reasons.
CALL_FIT_QUOTE = 0.3


@dataclass(frozen=True, slots=True)
class RoleRule:
    """At least ``at_least`` (and at most ``at_most``) members of one stakeholder kind."""

    kind: str
    at_least: int = 1
    at_most: int | None = None


@dataclass(frozen=True, slots=True)
class ConsortiumRules:
    min_size: int = 3
    max_size: int = 8
    min_countries: int = 1
    min_eu_countries: int = 0
    max_per_country: int | None = None
    roles: tuple[RoleRule, ...] = ()
    must_include: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()


@dataclass(frozen=True)
class ConsortiumSearch:
    """One request. ``tenants`` None = every organisation may be proposed; otherwise only
    those tenants' and network-wide ones. ``call_weight`` balances fit to the call (1)
    against the members' ties (0); among the ties, ``pair_weight`` sets how much the members'
    ties to each other count against their ties to the required members (0 = only those)."""

    call_text: str
    call_vector: np.ndarray | None
    rules: ConsortiumRules
    filter: CandidateFilter = field(default_factory=CandidateFilter)
    tenants: tuple[str, ...] | None = None
    alternatives: int = 3
    min_difference: int = 2
    pool_size: int = 60
    time_limit_s: float = 5.0
    cross_preference: float = DEFAULT_CROSS_PREFERENCE
    pair_weight: float = 1.0
    call_weight: float = 0.5
    workers: int = 2
    seed: int = 0


class UnsatisfiableRules(ValueError):
    """No consortium can meet the rules; ``rule`` names the rule group, ``detail`` says why."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MemberScore:
    organisation: OrgProfile
    fit: float
    mean_pair_score: float
    required: bool
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class PairScore:
    first: int
    second: int
    score: float
    worked_together: bool
    hop_distance: int | None
    common_partners: int
    reason: str


@dataclass(frozen=True, slots=True)
class RuleCheck:
    rule: str
    satisfied: bool
    detail: str


@dataclass(frozen=True)
class Consortium:
    """``score`` is what the search maximised: standardised fit to the call plus standardised
    pair ties (higher is better; compare within one answer). ``optimality_gap`` bounds how
    much better an unseen consortium could score, as a share (0 = proven best)."""

    members: list[MemberScore]
    pairs: list[PairScore]
    score: float
    mean_fit: float
    mean_pair_score: float
    rules: list[RuleCheck]
    explanation: list[str]
    proven_optimal: bool
    optimality_gap: float


@dataclass(frozen=True)
class ConsortiumResult:
    consortia: list[Consortium]
    candidates: int
    pool: int
    solve_seconds: float
    notes: list[str]


@dataclass(frozen=True)
class _Pool:
    ids: IntArray
    profiles: list[OrgProfile]
    fit: FloatArray  # to the call, 0-1
    member: FloatArray  # affinity logit to the required members (or activity prior)
    pair: FloatArray  # symmetric affinity logit per pair, zero diagonal
    hops: IntArray
    common: IntArray
    required: npt.NDArray[np.bool_]


def suggest_consortia(state: MatchingState, search: ConsortiumSearch) -> ConsortiumResult:
    """Ranked candidate consortia for a call, best first (fewer than asked when the rules
    leave fewer distinct ones). Raises :class:`UnsatisfiableRules` naming the rule that
    cannot be met, :class:`UnknownOrganisation` for a required organisation it cannot see."""
    started = time.perf_counter()
    rules = search.rules
    eligible = _eligible(state, search)
    check_rules(rules, eligible)
    pool = _pool(state, search, eligible)
    notes: list[str] = []
    if len(pool.ids) < len(eligible):
        notes.append(
            f"Searched the {len(pool.ids)} best-placed of {len(eligible)} candidate "
            "organisations (call fit, the required members' networks, role and country cover)."
        )
    consortia = _solve(pool, search)
    return ConsortiumResult(
        consortia=[_describe(pool, solution, search) for solution in consortia],
        candidates=len(eligible),
        pool=len(pool.ids),
        solve_seconds=time.perf_counter() - started,
        notes=notes,
    )


def _eligible(state: MatchingState, search: ConsortiumSearch) -> list[OrgProfile]:
    catalog = state.catalog
    rules = search.rules
    for org_id in rules.must_include:
        profile = catalog.get(org_id)
        if profile is None or not _visible(profile, search.tenants):
            raise UnknownOrganisation(org_id)
    clash = sorted(set(rules.must_include) & set(rules.exclude))
    if clash:
        raise UnsatisfiableRules(
            "must_include", f"organisation {clash[0]} is both required and excluded"
        )
    flt = search.filter
    ids = catalog.all_ids() if flt.is_empty else catalog.filtered_ids(flt)
    excluded = set(rules.exclude) | set(rules.must_include)
    found = [
        p
        for p in catalog.profiles(np.sort(ids))
        if p is not None and p.id not in excluded and _visible(p, search.tenants)
    ]
    required = [p for p in catalog.profiles(rules.must_include) if p is not None]
    return required + found


def _visible(profile: OrgProfile, tenants: tuple[str, ...] | None) -> bool:
    return tenants is None or profile.tenant is None or profile.tenant in tenants


_PLURALS = {
    "SME": "SMEs",
    "large company": "large companies",
    "university": "universities",
    "hospital or care provider": "hospitals or care providers",
    "public body": "public bodies",
    "funder or investor": "funders or investors",
    "cluster or science park": "clusters or science parks",
    "other organisation": "other organisations",
}


def _kind_label(kind: str, count: int = 1) -> str:
    """The kind in words, plural unless ``count`` is 1.

    >>> _kind_label("university", 2), _kind_label("sme", 1), _kind_label("patient_organisation", 3)
    ('universities', 'SME', 'patient organisations')
    """
    label = KIND_LABELS.get(kind, kind)
    if count == 1:
        return label
    return _PLURALS.get(label, label + "s")


def check_rules(rules: ConsortiumRules, candidates: Sequence[OrgProfile]) -> None:
    """Cheap counts that prove a rule unsatisfiable before any search.

    >>> orgs = [OrgProfile(i, f"o{i}", "sme", (), c) for i, c in enumerate(["ES", "FR"])]
    >>> try:
    ...     check_rules(ConsortiumRules(min_size=2, max_size=3, min_countries=3), orgs)
    ... except UnsatisfiableRules as exc:
    ...     print(exc.rule, "-", exc.detail)
    countries - at least 3 countries are required, but the candidates come from only 2 (ES, FR)
    """
    required = set(rules.must_include)
    must = [p for p in candidates if p.id in required]
    if rules.min_size > rules.max_size:
        raise UnsatisfiableRules(
            "size", f"the smallest size ({rules.min_size}) is above the largest ({rules.max_size})"
        )
    if len(must) > rules.max_size:
        raise UnsatisfiableRules(
            "size",
            f"{len(must)} organisations must be included but the consortium has at most "
            f"{rules.max_size} members",
        )
    if len(candidates) < rules.min_size:
        raise UnsatisfiableRules(
            "size",
            f"at least {rules.min_size} members are required, but only {len(candidates)} "
            "organisations are candidates",
        )
    kinds = Counter(p.kind for p in candidates)
    must_kinds = Counter(p.kind for p in must)
    for role in rules.roles:
        label = _kind_label(role.kind, role.at_least)
        if kinds[role.kind] < role.at_least:
            raise UnsatisfiableRules(
                "roles",
                f"at least {role.at_least} {label} are required, but the candidates include "
                f"only {kinds[role.kind]}",
            )
        if role.at_most is not None and must_kinds[role.kind] > role.at_most:
            raise UnsatisfiableRules(
                "roles",
                f"at most {role.at_most} {_kind_label(role.kind, 2)} are allowed, but "
                f"{must_kinds[role.kind]} of the required organisations are",
            )
    needed = sum(r.at_least for r in rules.roles)
    if needed > rules.max_size:
        raise UnsatisfiableRules(
            "roles",
            f"the required roles need at least {needed} members, but the consortium has at "
            f"most {rules.max_size}",
        )
    countries = sorted({p.country for p in candidates})
    eu = [c for c in countries if c in EU_MEMBER_STATES]
    if rules.min_countries > rules.max_size:
        raise UnsatisfiableRules(
            "countries",
            f"{rules.min_countries} countries need at least as many members, but the "
            f"consortium has at most {rules.max_size}",
        )
    if len(countries) < rules.min_countries:
        raise UnsatisfiableRules(
            "countries",
            f"at least {rules.min_countries} countries are required, but the candidates come "
            f"from only {len(countries)} ({', '.join(countries)})",
        )
    if len(eu) < rules.min_eu_countries:
        raise UnsatisfiableRules(
            "eu_member_states",
            f"at least {rules.min_eu_countries} EU member states are required, but the "
            f"candidates come from only {len(eu)} ({', '.join(eu) or 'none'})",
        )
    if rules.min_eu_countries > rules.max_size:
        raise UnsatisfiableRules(
            "eu_member_states",
            f"{rules.min_eu_countries} EU member states need at least as many members, but the "
            f"consortium has at most {rules.max_size}",
        )
    if rules.max_per_country is not None:
        per_must = Counter(p.country for p in must)
        crowded = [c for c, k in per_must.items() if k > rules.max_per_country]
        if crowded:
            raise UnsatisfiableRules(
                "max_per_country",
                f"at most {rules.max_per_country} members per country are allowed, but "
                f"{per_must[crowded[0]]} required organisations are in {crowded[0]}",
            )
        per_country = Counter(p.country for p in candidates)
        room = sum(min(k, rules.max_per_country) for k in per_country.values())
        if room < rules.min_size:
            raise UnsatisfiableRules(
                "max_per_country",
                f"with at most {rules.max_per_country} per country the candidates can fill "
                f"only {room} places, fewer than the {rules.min_size} required",
            )


# -- affinity: who joins a consortium with whom ---------------------------------------------
@dataclass(frozen=True, slots=True)
class AffinityModel:
    """``logit P(b is in a consortium with a) = intercept + sum(coef * transform(column))``
    over the partner ranker's feature columns of the pair (a, b), see
    :func:`affinity_columns`.

    The partner ranker predicts *new* partners and leaves existing ones out; a consortium is
    mostly made of past partners, partners of partners and active organisations, so
    membership gets its own weights over the same features.

    >>> model = AffinityModel(-2.0, (("paths3", "log_eps", 0.5), ("same_kind", "identity", 1.0)))
    >>> model.logits({"paths3": np.array([0.0, 1.0]), "same_kind": np.array([1.0, 0.0])}).round(2)
    array([-7.91, -2.  ])
    """

    intercept: float
    terms: tuple[tuple[str, str, float], ...]  # (feature column, transform, coefficient)

    def logits(self, cols: dict[str, FloatArray]) -> FloatArray:
        design = affinity_design(cols, tuple((name, how) for name, how, _ in self.terms))
        coef = np.array([c for _, _, c in self.terms], dtype=np.float64)
        return np.asarray(self.intercept + design @ coef, dtype=np.float64)


# (column, transform) of the affinity model, in the order its coefficients are listed.
AFFINITY_FEATURES: tuple[tuple[str, str], ...] = (
    ("adamic_adar", "log1p"),
    ("weighted_ra", "log_eps"),
    ("paths3", "log_eps"),
    ("candidate_strength", "log1p"),
    ("candidate_degree", "log1p"),
    ("worked_together", "identity"),
    ("same_kind", "identity"),
    ("cross_country", "identity"),
)
# Fitted by logistic regression on the H2020 health benchmark's history only: the graph of
# participations before 2015-07-01 (other programmes' projects weighted 0.25, as the importer
# does), labels = the benchmark organisations in the projects of any programme starting
# 2015-07-01..2015-12-31, for each project's coordinator against every other candidate.
# `python -m scripts.bench_consortium --fit` reprints them.
AFFINITY = AffinityModel(
    intercept=-0.7759,
    terms=(
        ("adamic_adar", "log1p", 0.041),
        ("weighted_ra", "log_eps", -0.3866),
        ("paths3", "log_eps", 1.3784),
        ("candidate_strength", "log1p", 0.0695),
        ("candidate_degree", "log1p", 0.7853),
        ("worked_together", "identity", -0.2815),
        ("same_kind", "identity", 0.3685),
        ("cross_country", "identity", -0.6966),
    ),
)
# Ranker features about text (offers answering needs): their ranker contributions are added to
# a pair's affinity, since the history cannot weigh them.
TEXT_FEATURES = ("text_similarity", "offer_fit", "need_fit", "reciprocal_fit")


def affinity_design(
    cols: dict[str, FloatArray], features: Sequence[tuple[str, str]] = AFFINITY_FEATURES
) -> FloatArray:
    """One transformed column per (feature, transform), as the affinity model reads them.

    >>> affinity_design({"adamic_adar": np.array([0.0, np.e - 1])}, [("adamic_adar", "log1p")])
    array([[0.],
           [1.]])
    """
    return np.column_stack(
        [transform(how, np.asarray(cols[name], dtype=np.float64)) for name, how in features]
    )


def affinity_columns(
    state: MatchingState, query: OrgProfile, ids: IntArray
) -> dict[str, FloatArray]:
    """The ranker's feature columns of ``query`` against ``ids``, plus ``worked_together``."""
    cols = compute_features(
        query=query,
        qvec=query_vectors(state.vectors, query.id),
        candidate_ids=ids,
        catalog=state.catalog,
        vectors=state.vectors,
        snapshot=state.snapshot(),
    )
    cols["worked_together"] = (cols["hop_distance"] == 1).astype(np.float64)
    return {name: np.asarray(col, dtype=np.float64) for name, col in cols.items()}


# -- the pool -------------------------------------------------------------------------------
def _call_fit(
    state: MatchingState, search: ConsortiumSearch, ids: IntArray
) -> tuple[FloatArray, FloatArray]:
    """(fit to the call, activity prior) per organisation.

    The call plays the part of a seeker, as in free-text search: its text is both the
    profile and the need the members' offers should answer. The fit is the better of profile
    similarity and the best offer's cosine (0-1, what staff read). The prior is the affinity
    model's view of an organisation nobody has worked with yet (its own activity only): what
    ranks candidates when no member is required."""
    vector = search.call_vector
    if len(ids) == 0:
        return np.zeros(0), np.zeros(0)
    dim = state.vectors["profile"].dim
    vec = (
        np.asarray(vector, dtype=np.float32)
        if vector is not None
        else np.zeros(dim, dtype=np.float32)
    )
    anchor = OrgProfile(
        id=-1,
        name="the call",
        kind="other",
        sectors=(),
        country="",
        seeks=(search.call_text,),
        seek_vectors=vec[None, :],
    )
    cols = compute_features(
        query=anchor,
        qvec=QueryVectors(profile=vec, offers=None, seeks=vec),
        candidate_ids=ids,
        catalog=state.catalog,
        vectors=state.vectors,
        snapshot=state.snapshot(),
    )
    cols["worked_together"] = np.zeros(len(ids))
    for name in ("cross_country", "cross_sector", "same_kind"):
        cols[name] = np.zeros(len(ids))
    fit = np.maximum(np.maximum(cols["text_similarity"], cols["offer_fit"]), 0.0)
    return np.asarray(fit, dtype=np.float64), AFFINITY.logits(cols)


def _scored_candidates(
    state: MatchingState, search: ConsortiumSearch, eligible: list[OrgProfile]
) -> list[OrgProfile]:
    """Every candidate on small networks; on large ones the required members' partners and
    partners' partners, the call's text neighbours, the most active, and the most active of
    every kind and country, so cover stays possible."""
    if len(eligible) <= EXHAUSTIVE_LIMIT:
        return eligible
    by_id = {p.id: p for p in eligible}
    picked: dict[int, OrgProfile] = {i: by_id[i] for i in search.rules.must_include}
    snapshot = state.snapshot()
    for seed in search.rules.must_include:
        near = [snapshot.direct_partners(seed), snapshot.expand(seed, 8 * search.pool_size)[0]]
        picked.update((int(i), by_id[int(i)]) for i in np.concatenate(near) if int(i) in by_id)
    if search.call_vector is not None:
        for space in ("profile", "offers"):
            ids, _ = state.vectors[space].search(search.call_vector, 4 * search.pool_size)
            picked.update((int(i), by_id[int(i)]) for i in ids if int(i) in by_id)
    rows = snapshot.index_of(np.fromiter(by_id, dtype=np.int64, count=len(by_id)))
    activity = np.where(rows >= 0, snapshot.strength[np.maximum(rows, 0)], 0.0)
    ranked = [
        p
        for _, p in sorted(
            zip((-activity).tolist(), by_id.values(), strict=True), key=lambda t: (t[0], t[1].id)
        )
    ]
    per_kind: Counter[str] = Counter()
    per_country: Counter[str] = Counter()
    for rank, p in enumerate(ranked):
        if rank < 2 * search.pool_size or per_kind[p.kind] < 30 or per_country[p.country] < 5:
            picked.setdefault(p.id, p)
            per_kind[p.kind] += 1
            per_country[p.country] += 1
    return list(picked.values())


def _member_scores(
    state: MatchingState, search: ConsortiumSearch, ids: IntArray, prior: FloatArray
) -> FloatArray:
    """Affinity logit of each candidate to the required members (their mean), or the activity
    prior when none is required."""
    seeds = [p for p in state.catalog.profiles(search.rules.must_include) if p is not None]
    if not seeds:
        return prior
    total = np.zeros(len(ids))
    for seed in seeds:
        total += AFFINITY.logits(affinity_columns(state, seed, ids))
    return total / len(seeds)


def _pool(state: MatchingState, search: ConsortiumSearch, eligible: list[OrgProfile]) -> _Pool:
    rules = search.rules
    scored = _scored_candidates(state, search, eligible)
    ids = np.fromiter((p.id for p in scored), dtype=np.int64, count=len(scored))
    fit, prior = _call_fit(state, search, ids)
    member = _member_scores(state, search, ids, prior)
    rank_score = _member_term(fit, member, search.call_weight)
    score_of = dict(zip(ids.tolist(), rank_score.tolist(), strict=True))
    ranked = sorted(scored, key=lambda p: (-score_of[p.id], p.id))
    target = min(MAX_POOL, max(search.pool_size, 2 * rules.max_size))

    chosen: dict[int, OrgProfile] = {p.id: p for p in scored if p.id in rules.must_include}
    # Cover first: the best few of every required kind, from different countries first, so
    # the search can meet the roles and the country rules together.
    for role in rules.roles:
        want = role.at_least + max(role.at_least, 2)
        of_kind = [p for p in ranked if p.kind == role.kind]
        spread = _first_per_country(
            of_kind, {p.country for p in chosen.values() if p.kind == role.kind}
        )
        have = sum(1 for p in chosen.values() if p.kind == role.kind)
        for p in spread[: max(want - have, 0)] + of_kind:
            if have >= want:
                break
            if p.id not in chosen:
                chosen[p.id] = p
                have += 1
    for p in ranked:
        if len(chosen) >= target:
            break
        chosen.setdefault(p.id, p)
    best_of_country: dict[str, OrgProfile] = {}
    for p in ranked:
        best_of_country.setdefault(p.country, p)
    countries = {p.country for p in chosen.values()}
    for country, p in best_of_country.items():
        eu_have = len({c for c in countries if c in EU_MEMBER_STATES})
        need_any = len(countries) < rules.min_countries + 2
        need_eu = eu_have < rules.min_eu_countries + 1 and country in EU_MEMBER_STATES
        if country not in countries and (need_any or need_eu):
            chosen[p.id] = p
            countries.add(country)
    if rules.max_per_country is not None:
        for p in ranked:
            per = Counter(q.country for q in chosen.values())
            room = sum(min(k, rules.max_per_country) for k in per.values())
            if room >= rules.max_size + 2:
                break
            if p.id not in chosen and per[p.country] < rules.max_per_country:
                chosen[p.id] = p

    profiles = list(chosen.values())
    pool_ids = np.fromiter((p.id for p in profiles), dtype=np.int64, count=len(profiles))
    pair, hops, common = _pair_scores(state, search, profiles, pool_ids)
    position = {i: k for k, i in enumerate(ids.tolist())}
    at = np.array([position[i] for i in pool_ids.tolist()], dtype=np.int64)
    return _Pool(
        ids=pool_ids,
        profiles=profiles,
        fit=fit[at],
        member=member[at],
        pair=pair,
        hops=hops,
        common=common,
        required=np.array([p.id in rules.must_include for p in profiles], dtype=np.bool_),
    )


def _first_per_country(ranked: list[OrgProfile], taken: set[str]) -> list[OrgProfile]:
    """The first organisation of every country not in ``taken``, in ``ranked`` order.

    >>> orgs = [OrgProfile(i, f"o{i}", "sme", (), c) for i, c in enumerate("ES ES FR DE".split())]
    >>> [p.id for p in _first_per_country(orgs, {"DE"})]
    [0, 2]
    """
    seen = set(taken)
    first = []
    for p in ranked:
        if p.country not in seen:
            seen.add(p.country)
            first.append(p)
    return first


def _member_term(fit: FloatArray, member: FloatArray, call_weight: float) -> FloatArray:
    """Fit to the call and affinity to the required members, each standardised over the
    candidates, balanced by ``call_weight``."""
    return call_weight * _zscore(fit) + (1.0 - call_weight) * _zscore(member)


def _pair_scores(
    state: MatchingState, search: ConsortiumSearch, profiles: list[OrgProfile], ids: IntArray
) -> tuple[FloatArray, IntArray, IntArray]:
    """Affinity logit of every pair of the pool, both directions averaged (text fit is
    asymmetric), plus hop distances and common partners for the reasons.

    The affinity model weighs the graph features; the ranker's own text contributions
    (complementary offers and needs) and its cross-sector / cross-country preference bonus
    are added, as the history cannot weigh them."""
    n = len(ids)
    logits = np.zeros((n, n))
    hops = np.full((n, n), 4, dtype=np.int64)
    common = np.zeros((n, n), dtype=np.int64)
    scorer = state.scorer
    for i, profile in enumerate(profiles):
        cols = affinity_columns(state, profile, ids)
        contributions = scorer.contributions(cols)
        text = sum((contributions[f] for f in TEXT_FEATURES if f in contributions), np.zeros(n))
        bonus = scorer.preference_bonus(cols, search.cross_preference)
        logits[i] = AFFINITY.logits(cols) + text + bonus
        hops[i] = np.asarray(cols["hop_distance"], dtype=np.int64)
        common[i] = np.asarray(cols["common_partners"], dtype=np.int64)
    logits = (logits + logits.T) / 2.0
    np.fill_diagonal(logits, 0.0)
    return logits, hops, common


# -- the search -----------------------------------------------------------------------------
@dataclass
class _Model:
    model: cp_model.CpModel
    x: list[cp_model.IntVar]
    groups: dict[str, list[cp_model.Constraint]] = field(default_factory=dict)


def _build_model(pool: _Pool, search: ConsortiumSearch, groups: Sequence[str]) -> _Model:
    rules = search.rules
    n = len(pool.ids)
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(n)]
    built = _Model(model, x)
    for i in np.flatnonzero(pool.required).tolist():
        model.add(x[i] == 1)
    model.add(sum(x) >= rules.min_size)
    model.add(sum(x) <= rules.max_size)
    if "roles" in groups:
        for role in rules.roles:
            members = [x[i] for i, p in enumerate(pool.profiles) if p.kind == role.kind]
            model.add(sum(members) >= role.at_least)
            if role.at_most is not None:
                model.add(sum(members) <= role.at_most)
    by_country: dict[str, list[int]] = {}
    for i, p in enumerate(pool.profiles):
        by_country.setdefault(p.country, []).append(i)
    if "countries" in groups or "eu_member_states" in groups:
        present = {}
        for country, idx in sorted(by_country.items()):
            z = model.new_bool_var(f"c_{country}")
            model.add(z <= sum(x[i] for i in idx))
            present[country] = z
        if "countries" in groups:
            model.add(sum(present.values()) >= rules.min_countries)
        if "eu_member_states" in groups:
            eu = [z for c, z in present.items() if c in EU_MEMBER_STATES]
            model.add(sum(eu) >= rules.min_eu_countries)
    if "max_per_country" in groups and rules.max_per_country is not None:
        for idx in by_country.values():
            model.add(sum(x[i] for i in idx) <= rules.max_per_country)
    return built


RULE_GROUPS = ("roles", "countries", "eu_member_states", "max_per_country")


def _zscore(values: FloatArray) -> FloatArray:
    """Centred and scaled to unit spread, clipped at 3; all zeros when there is no spread.

    >>> _zscore(np.array([1.0, 2.0, 3.0])).round(3).tolist(), _zscore(np.ones(3)).tolist()
    ([-1.225, 0.0, 1.225], [0.0, 0.0, 0.0])
    """
    if len(values) == 0:
        return values
    spread = float(values.std())
    if spread < 1e-9:
        return np.zeros_like(values)
    return np.asarray(np.clip((values - values.mean()) / spread, -3.0, 3.0), dtype=np.float64)


def _strongest_pairs(
    n: int, iu: IntArray, ju: IntArray, value: FloatArray, per_member: int
) -> npt.NDArray[np.bool_]:
    """Pairs among the ``per_member`` highest-valued of either member's pairs.

    >>> iu, ju = np.triu_indices(3, 1)
    >>> _strongest_pairs(3, iu, ju, np.array([3.0, 1.0, 2.0]), 1).tolist()
    [True, False, True]
    """
    keep = np.zeros(len(iu), dtype=np.bool_)
    for member in range(n):
        mine = np.flatnonzero((iu == member) | (ju == member))
        keep[mine[np.argsort(-value[mine], kind="stable")[:per_member]]] = True
    return keep


def _objective(pool: _Pool, search: ConsortiumSearch, built: _Model) -> None:
    """Per member, fit to the call and affinity to the required members; per pair, the two
    members' affinity. Each is standardised over the pool so no scale dominates
    (``call_weight`` and ``pair_weight`` set the balance) and a below-average member lowers
    the total; pairs are weighted so a member's pairs count ``pair_weight`` times its own
    affinity whatever the consortium size."""
    rules = search.rules
    model, x = built.model, built.x
    n = len(pool.ids)
    member = _member_term(pool.fit, pool.member, search.call_weight)
    iu, ju = np.triu_indices(n, 1)
    mean_size = max((rules.min_size + rules.max_size) / 2.0, 2.0)
    pair = (
        (1.0 - search.call_weight)
        * search.pair_weight
        * _zscore(pool.pair[iu, ju])
        * 2.0
        / (mean_size - 1.0)
    )
    terms = [round(SCALE * f) * x[i] for i, f in enumerate(member.tolist())]
    # Only ties better than the pool's average earn points: a pair variable with a positive
    # coefficient needs just y <= x_i, y <= x_j, and the cuts below (no member has more than
    # max_size - 1 partners in the team) keep the relaxation tight enough to prove optimality.
    ties: dict[int, list[cp_model.IntVar]] = {}
    all_ties = []
    kept = _strongest_pairs(n, iu, ju, pair, max(PAIR_TERMS_PER_MEMBER, rules.max_size - 1))
    for i, j, p in zip(iu[kept].tolist(), ju[kept].tolist(), pair[kept].tolist(), strict=True):
        coef = round(SCALE * p)
        if coef <= 0:
            continue
        y = model.new_bool_var(f"y{i}_{j}")
        model.add_implication(y, x[i])
        model.add_implication(y, x[j])
        ties.setdefault(i, []).append(y)
        ties.setdefault(j, []).append(y)
        all_ties.append(y)
        terms.append(coef * y)
    for i, ys in ties.items():
        if len(ys) > rules.max_size - 1:
            model.add(sum(ys) <= (rules.max_size - 1) * x[i])
    if len(all_ties) > rules.max_size * (rules.max_size - 1) // 2:
        model.add(sum(all_ties) <= rules.max_size * (rules.max_size - 1) // 2)
    model.maximize(sum(terms))


@dataclass(frozen=True, slots=True)
class _Solution:
    members: list[int]
    optimal: bool
    objective: float
    gap: float  # share of the objective the proven bound still allows above this one


def _solve(pool: _Pool, search: ConsortiumSearch) -> list[_Solution]:
    """Best consortium, then the best differing from it by ``min_difference`` members, ...,
    re-ranked by objective (an alternative found within its time share can beat an earlier
    one that was not proven optimal)."""
    started = time.perf_counter()
    built = _build_model(pool, search, RULE_GROUPS)
    _objective(pool, search, built)
    found: list[_Solution] = []
    for k in range(search.alternatives):
        remaining = search.time_limit_s - (time.perf_counter() - started)
        # The first consortium always gets its share; later ones only what is left.
        share = max(remaining, 0.0) / (search.alternatives - k)
        if share <= 0.05 and k > 0:
            break
        solver = _solver(search, share)
        status = solver.solve(built.model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if k == 0:
                _diagnose(pool, search, status)
            break
        chosen = [i for i, v in enumerate(built.x) if solver.value(v)]
        value, bound = solver.objective_value, solver.best_objective_bound
        optimal = status == cp_model.OPTIMAL
        gap = 0.0 if optimal else max(bound - value, 0.0) / max(abs(bound), SCALE)
        found.append(_Solution(chosen, optimal, value / SCALE, round(gap, 4)))
        free = [i for i in chosen if not pool.required[i]]
        outside = [i for i in range(len(built.x)) if i not in set(chosen)]
        difference = min(search.min_difference, max(len(free), 1))
        # No-good cut: the next consortium differs in at least `difference` members.
        built.model.add(
            sum(1 - built.x[i] for i in free) + sum(built.x[i] for i in outside) >= difference
        )
    return sorted(found, key=lambda s: -s.objective)


def _solver(search: ConsortiumSearch, time_limit_s: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit_s, 0.05)
    solver.parameters.num_workers = search.workers
    solver.parameters.random_seed = search.seed
    return solver


def _diagnose(pool: _Pool, search: ConsortiumSearch, status: cp_model.CpSolverStatus) -> None:
    """Name the smallest set of rule groups that cannot be met together (deletion filter)."""
    if status != cp_model.INFEASIBLE:
        raise UnsatisfiableRules(
            "time_limit_s",
            f"no consortium meeting the rules was found within {search.time_limit_s:g} s; "
            "allow more time, or relax the rules",
        )
    active = list(RULE_GROUPS)
    for group in RULE_GROUPS:
        trial = [g for g in active if g != group]
        built = _build_model(pool, search, trial)
        solver = _solver(search, 1.0)
        if solver.solve(built.model) == cp_model.INFEASIBLE:
            active = trial
    rules = search.rules
    described = {
        "roles": "the required roles ("
        + ", ".join(f">= {r.at_least} {_kind_label(r.kind, r.at_least)}" for r in rules.roles)
        + ")",
        "countries": f"at least {rules.min_countries} countries",
        "eu_member_states": f"at least {rules.min_eu_countries} EU member states",
        "max_per_country": f"at most {rules.max_per_country} members per country",
    }
    size = f"a size of {rules.min_size}-{rules.max_size}"
    must = f" with the {len(rules.must_include)} required members" if rules.must_include else ""
    if not active:
        raise UnsatisfiableRules(
            "size", f"{size}{must} cannot be met by the {len(pool.ids)} candidates searched"
        )
    parts = [described[g] for g in active]
    raise UnsatisfiableRules(
        active[0],
        f"{' and '.join(parts)} cannot be met together with {size}{must} by the "
        f"{len(pool.ids)} best-placed candidates",
    )


# -- describing a consortium ----------------------------------------------------------------
def _describe(pool: _Pool, solution: _Solution, search: ConsortiumSearch) -> Consortium:
    rules = search.rules
    chosen = solution.members
    profiles = [pool.profiles[i] for i in chosen]
    kinds = Counter(p.kind for p in profiles)
    countries = Counter(p.country for p in profiles)
    pairs: list[PairScore] = []
    for a_pos, a in enumerate(chosen):
        for b in chosen[a_pos + 1 :]:
            hop = int(pool.hops[a, b])
            pairs.append(
                PairScore(
                    first=int(pool.ids[a]),
                    second=int(pool.ids[b]),
                    score=float(sigmoid(pool.pair[a, b])),
                    worked_together=hop == 1,
                    hop_distance=hop if hop <= 3 else None,
                    common_partners=int(pool.common[a, b]),
                    reason=_pair_reason(pool.profiles[a], pool.profiles[b], hop, pool.common[a, b]),
                )
            )
    members = []
    for i in chosen:
        p = pool.profiles[i]
        others = [j for j in chosen if j != i]
        mean_pair = float(sigmoid(pool.pair[i, others]).mean()) if others else 0.0
        members.append(
            MemberScore(
                organisation=p,
                fit=float(pool.fit[i]),
                mean_pair_score=mean_pair,
                required=bool(pool.required[i]),
                reasons=_member_reasons(pool, i, others, kinds, countries, search.call_vector),
            )
        )
    members.sort(key=lambda m: (not m.required, -(m.fit + m.mean_pair_score)))
    mean_fit = float(np.mean([m.fit for m in members])) if members else 0.0
    mean_pair = float(np.mean([p.score for p in pairs])) if pairs else 0.0
    return Consortium(
        members=members,
        pairs=sorted(pairs, key=lambda p: -p.score),
        score=round(solution.objective, 4),
        mean_fit=mean_fit,
        mean_pair_score=mean_pair,
        rules=rule_checks(rules, profiles),
        explanation=_explanation(profiles, pairs, members, kinds, countries),
        proven_optimal=solution.optimal,
        optimality_gap=solution.gap,
    )


def rule_checks(rules: ConsortiumRules, members: Sequence[OrgProfile]) -> list[RuleCheck]:
    """Each rule, whether the members meet it, and the figures that show it.

    >>> orgs = [OrgProfile(1, "a", "sme", (), "ES"), OrgProfile(2, "b", "university", (), "FR")]
    >>> [(c.rule, c.satisfied) for c in rule_checks(ConsortiumRules(min_size=2, max_size=4,
    ...     min_countries=2, roles=(RoleRule("sme"),)), orgs)]
    [('size', True), ('countries', True), ('roles', True)]
    """
    n = len(members)
    countries = sorted({p.country for p in members})
    eu = [c for c in countries if c in EU_MEMBER_STATES]
    kinds = Counter(p.kind for p in members)
    ids = {p.id for p in members}
    checks = [
        RuleCheck(
            "size",
            rules.min_size <= n <= rules.max_size,
            f"{n} members (allowed {rules.min_size}-{rules.max_size})",
        )
    ]
    if rules.min_countries > 1:
        checks.append(
            RuleCheck(
                "countries",
                len(countries) >= rules.min_countries,
                f"{len(countries)} countries ({', '.join(countries)}); at least "
                f"{rules.min_countries} required",
            )
        )
    if rules.min_eu_countries > 0:
        checks.append(
            RuleCheck(
                "eu_member_states",
                len(eu) >= rules.min_eu_countries,
                f"{len(eu)} EU member states ({', '.join(eu) or 'none'}); at least "
                f"{rules.min_eu_countries} required",
            )
        )
    if rules.max_per_country is not None:
        most = Counter(p.country for p in members).most_common(1)
        top = most[0] if most else ("-", 0)
        checks.append(
            RuleCheck(
                "max_per_country",
                top[1] <= rules.max_per_country,
                f"at most {top[1]} from one country ({top[0]}); limit {rules.max_per_country}",
            )
        )
    for role in rules.roles:
        have = kinds[role.kind]
        ok = have >= role.at_least and (role.at_most is None or have <= role.at_most)
        bound = f"at least {role.at_least}" + (
            f", at most {role.at_most}" if role.at_most is not None else ""
        )
        checks.append(RuleCheck("roles", ok, f"{have} {_kind_label(role.kind, have)} ({bound})"))
    for org_id in rules.must_include:
        checks.append(
            RuleCheck("must_include", org_id in ids, f"organisation {org_id} is a member")
        )
    for org_id in rules.exclude:
        if org_id in ids:
            checks.append(RuleCheck("exclude", False, f"organisation {org_id} is a member"))
    if rules.exclude and not any(c.rule == "exclude" for c in checks):
        checks.append(
            RuleCheck("exclude", True, f"none of the {len(rules.exclude)} excluded organisations")
        )
    return checks


def _pair_reason(a: OrgProfile, b: OrgProfile, hop: int, common: int) -> str:
    if hop == 1:
        tie = "Worked together before"
    elif hop == 2:
        tie = f"2 hops apart ({common} common partner{'s' if common != 1 else ''})"
    elif hop == 3:
        tie = "3 hops apart in the collaboration network"
    else:
        tie = "Not connected yet"
    cross = []
    if a.country != b.country:
        cross.append("countries")
    if a.sectors and b.sectors and not set(a.sectors) & set(b.sectors):
        cross.append("sectors")
    if a.kind != b.kind:
        cross.append("kinds")
    return tie + (f"; different {', '.join(cross)}" if cross else "") + "."


def _member_reasons(
    pool: _Pool,
    i: int,
    others: list[int],
    kinds: Counter[str],
    countries: Counter[str],
    call_vector: np.ndarray | None,
) -> list[str]:
    p = pool.profiles[i]
    reasons = []
    if pool.required[i]:
        reasons.append("Required by you.")
    offer = _offer_for_call(p, call_vector)
    if offer is not None:
        reasons.append(offer)
    partners = [pool.profiles[j].name for j in others if pool.hops[i, j] == 1]
    if partners:
        more = f" and {len(partners) - 3} more" if len(partners) > 3 else ""
        reasons.append(f"Worked before with {', '.join(partners[:3])}{more}.")
    if kinds[p.kind] == 1:
        reasons.append(f"The consortium's only {_kind_label(p.kind)}.")
    if countries[p.country] == 1:
        eu = " (EU member state)" if p.country in EU_MEMBER_STATES else ""
        reasons.append(f"Brings {country_name(p.country)}{eu}.")
    return reasons


def _offer_for_call(p: OrgProfile, vector: np.ndarray | None) -> str | None:
    """The member's offer that best answers the call, if it answers it at all."""
    if vector is None or p.offer_vectors is None or len(p.offer_vectors) == 0:
        return None
    best = best_item_pair(p.offer_vectors, np.asarray(vector, dtype=np.float32)[None, :])
    if best is None or best[2] < CALL_FIT_QUOTE:
        return None
    return f'Offers "{p.offers[best[0]]}" (fit to the call {best[2]:.2f}).'


def _explanation(
    profiles: list[OrgProfile],
    pairs: list[PairScore],
    members: list[MemberScore],
    kinds: Counter[str],
    countries: Counter[str],
) -> list[str]:
    eu = [c for c in countries if c in EU_MEMBER_STATES]
    names = ", ".join(country_name(c) for c in sorted(countries))
    lines = [
        f"{len(profiles)} members from {len(countries)} countries ({names}), "
        f"{len(eu)} of them EU member states."
    ]
    roles = ", ".join(
        f"{k} {_kind_label(kind, k)}" for kind, k in sorted(kinds.items(), key=lambda t: -t[1])
    )
    lines.append(f"Roles: {roles}.")
    best = sorted(members, key=lambda m: -m.fit)[:2]
    if best:
        lines.append(
            "Closest to the call: "
            + " and ".join(f"{m.organisation.name} ({m.fit:.2f})" for m in best)
            + "."
        )
    name = {p.id: p.name for p in profiles}
    together = [p for p in pairs if p.worked_together]
    if together:
        shown = "; ".join(f"{name[p.first]} & {name[p.second]}" for p in together[:3])
        more = f" and {len(together) - 3} more pairs" if len(together) > 3 else ""
        lines.append(f"Already worked together: {shown}{more}.")
    close = [p for p in pairs if p.hop_distance == 2]
    if close:
        lines.append(
            f"{len(close)} pairs are 2 hops apart: partners of partners, easy to introduce."
        )
    strangers = [p for p in pairs if p.hop_distance is None]
    if strangers:
        lines.append(
            f"{len(strangers)} of {len(pairs)} pairs have no connection yet: new links for "
            "the network."
        )
    return lines
