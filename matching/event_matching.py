"""Partner recommendations inside a brokerage event: the ranker's features and model scored in
both directions between participant organisations, combined so that both sides must gain, and
the event's rules of who may meet whom. Pure: callers run it off the event loop.

Reciprocal score = geometric mean of the two directed scores ``sqrt(s(a->b) * s(b->a))``: one
side's enthusiasm cannot make up for the other's indifference (0.9 and 0.1 give 0.3, while
0.5 and 0.5 give 0.5), yet, unlike the minimum, a better fit on either side still counts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from matching.explanation import explain
from matching.features import compute_features, query_vectors
from matching.ranker import DEFAULT_CROSS_PREFERENCE, MatchingState, score_columns

# Features worth showing next to an event recommendation (from the asking side's view).
SHOWN_FEATURES = (
    "offer_fit",
    "need_fit",
    "reciprocal_fit",
    "text_similarity",
    "common_partners",
    "hop_distance",
    "cross_sector",
    "cross_country",
)


@dataclass(frozen=True, slots=True)
class MeetingRules:
    """Who may meet whom. ``allowed_pairs`` holds sorted group pairs; empty = any-to-any.

    >>> rules = MeetingRules(allowed_pairs=frozenset({("buyer", "seller")}))
    >>> rules.can_meet("seller", "buyer"), rules.can_meet("buyer", "buyer")
    (True, False)
    >>> MeetingRules().can_meet(None, None)
    True
    """

    allowed_pairs: frozenset[tuple[str, str]] = frozenset()

    def can_meet(self, group_a: str | None, group_b: str | None) -> bool:
        if not self.allowed_pairs:
            return True
        a, b = sorted((group_a or "", group_b or ""))
        return (a, b) in self.allowed_pairs


@dataclass(frozen=True, slots=True)
class Attendee:
    """One participant as the rules see it. ``do_not_meet`` holds organisation ids; ``slots``
    the slot ids it can attend (None: every slot)."""

    participant_id: int
    organisation_id: int
    group: str | None = None
    do_not_meet: frozenset[int] = frozenset()
    slots: frozenset[int] | None = None


def meeting_obstacle(rules: MeetingRules, a: Attendee, b: Attendee) -> str | None:
    """Why ``a`` and ``b`` may not meet, in words; None when they may.

    >>> rules = MeetingRules(frozenset({("investor", "startup")}))
    >>> x = Attendee(1, 10, "investor", slots=frozenset({0, 1}))
    >>> y = Attendee(2, 20, "startup", do_not_meet=frozenset({10}))
    >>> z = Attendee(3, 30, "startup", slots=frozenset({2}))
    >>> meeting_obstacle(rules, x, x)
    'a participant cannot meet itself'
    >>> meeting_obstacle(rules, y, z)
    'the rules do not let startup meet startup'
    >>> meeting_obstacle(rules, x, y)
    'one of them asked not to meet the other'
    >>> meeting_obstacle(rules, x, z)
    'they have no time slot in common'
    """
    if a.participant_id == b.participant_id or a.organisation_id == b.organisation_id:
        return "a participant cannot meet itself"
    if not rules.can_meet(a.group, b.group):
        return f"the rules do not let {a.group or 'ungrouped'} meet {b.group or 'ungrouped'}"
    if b.organisation_id in a.do_not_meet or a.organisation_id in b.do_not_meet:
        return "one of them asked not to meet the other"
    if a.slots is not None and b.slots is not None and not (a.slots & b.slots):
        return "they have no time slot in common"
    return None


def reciprocal(for_a: float, for_b: float) -> float:
    """Geometric mean of both sides' scores: high only when both gain.

    >>> reciprocal(0.9, 0.1), reciprocal(0.5, 0.5), reciprocal(0.8, 0.0)
    (0.3, 0.5, 0.0)
    """
    return round(math.sqrt(max(for_a, 0.0) * max(for_b, 0.0)), 12)


@dataclass(frozen=True, slots=True)
class PairScore:
    """``score`` is the reciprocal score; ``for_a``/``for_b`` how much each side gains."""

    score: float
    for_a: float
    for_b: float


@dataclass(frozen=True)
class EventMatch:
    """A recommended counterpart inside an event."""

    participant_id: int
    organisation_id: int
    score: float
    score_for_you: float
    score_for_them: float
    explanation: list[str]
    features: dict[str, float] = field(default_factory=dict)


def _directed(
    state: MatchingState, query_id: int, candidate_ids: Sequence[int], cross_preference: float
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The ranker's score of each candidate for ``query_id``, with the feature columns."""
    candidates = np.asarray(candidate_ids, dtype=np.int64)
    profile = state.catalog.get(query_id)
    if profile is None or len(candidates) == 0:
        return np.zeros(len(candidates)), {}
    cols = compute_features(
        query=profile,
        qvec=query_vectors(state.vectors, query_id),
        candidate_ids=candidates,
        catalog=state.catalog,
        vectors=state.vectors,
        snapshot=state.snapshot(),
    )
    scores, _, _ = score_columns(state.scorer, cols, cross_preference)
    known = state.catalog.rows_of(candidates) >= 0
    return np.where(known, scores, 0.0), cols


def pair_scores(
    state: MatchingState,
    pairs: Iterable[tuple[int, int]],
    cross_preference: float = DEFAULT_CROSS_PREFERENCE,
) -> dict[tuple[int, int], PairScore]:
    """Reciprocal scores of organisation pairs, keyed as given; one feature pass per
    organisation and direction. Organisations unknown to the catalogue score 0."""
    wanted = list(dict.fromkeys(pairs))
    targets: dict[int, set[int]] = defaultdict(set)
    for a, b in wanted:
        targets[a].add(b)
        targets[b].add(a)
    directed: dict[tuple[int, int], float] = {}
    for query_id, others in targets.items():
        ordered = sorted(others)
        scores, _ = _directed(state, query_id, ordered, cross_preference)
        for other, score in zip(ordered, scores.tolist(), strict=True):
            directed[(query_id, other)] = float(score)
    out = {}
    for a, b in wanted:
        for_a, for_b = directed[(a, b)], directed[(b, a)]
        out[(a, b)] = PairScore(reciprocal(for_a, for_b), for_a, for_b)
    return out


def recommend_all(
    state: MatchingState,
    attendees: Sequence[Attendee],
    rules: MeetingRules,
    *,
    limit: int,
    for_ids: Iterable[int] | None = None,
    excluded: Mapping[int, set[int]] | None = None,
    cross_preference: float = DEFAULT_CROSS_PREFERENCE,
) -> dict[int, list[EventMatch]]:
    """The best ``limit`` counterparts for each attendee in ``for_ids`` (default: all), keyed
    by participant id: eligible under the rules, not in ``excluded[participant]`` (e.g. those
    already asked), by reciprocal score, with reasons.

    One feature pass per attendee gives its row of directed scores; a recommendation needs
    the row of the asker and, for each candidate, the candidate's score for the asker.
    """
    by_id = {a.participant_id: a for a in attendees}
    excluded = excluded or {}
    askers = [by_id[i] for i in (for_ids if for_ids is not None else by_id) if i in by_id]
    eligible: dict[int, list[Attendee]] = {}
    needed: dict[int, set[int]] = defaultdict(set)  # query org -> candidate orgs
    for me in askers:
        skip = excluded.get(me.participant_id, set())
        eligible[me.participant_id] = [
            other
            for other in attendees
            if other.participant_id not in skip and meeting_obstacle(rules, me, other) is None
        ]
        for other in eligible[me.participant_id]:
            needed[me.organisation_id].add(other.organisation_id)
            needed[other.organisation_id].add(me.organisation_id)
    directed: dict[tuple[int, int], float] = {}
    columns: dict[int, tuple[list[int], dict[str, np.ndarray]]] = {}
    for query_id, others in needed.items():
        ordered = sorted(others)
        scores, cols = _directed(state, query_id, ordered, cross_preference)
        for other_id, score in zip(ordered, scores.tolist(), strict=True):
            directed[(query_id, other_id)] = float(score)
        columns[query_id] = (ordered, cols)
    out: dict[int, list[EventMatch]] = {}
    for me in askers:
        ranked = sorted(
            (
                (
                    reciprocal(
                        directed[(me.organisation_id, o.organisation_id)],
                        directed[(o.organisation_id, me.organisation_id)],
                    ),
                    o,
                )
                for o in eligible[me.participant_id]
            ),
            key=lambda pair: (-pair[0], pair[1].participant_id),
        )[:limit]
        ordered, cols = columns.get(me.organisation_id, ([], {}))
        position = {org: i for i, org in enumerate(ordered)}
        out[me.participant_id] = [
            _match(state, me, other, score, directed, cols, position.get(other.organisation_id))
            for score, other in ranked
        ]
    return out


def _match(
    state: MatchingState,
    me: Attendee,
    other: Attendee,
    score: float,
    directed: Mapping[tuple[int, int], float],
    cols: Mapping[str, np.ndarray],
    row: int | None,
) -> EventMatch:
    for_you = directed[(me.organisation_id, other.organisation_id)]
    for_them = directed[(other.organisation_id, me.organisation_id)]
    features = {name: float(col[row]) for name, col in cols.items()} if row is not None else {}
    mine = state.catalog.get(me.organisation_id)
    theirs = state.catalog.get(other.organisation_id)
    reasons: list[str] = []
    if mine is not None and theirs is not None:
        hops = int(features.get("hop_distance", 4))
        bridges = state.snapshot().bridges(mine.id, theirs.id, limit=2) if hops in (2, 3) else []
        reasons = explain(mine, theirs, features, bridges=bridges, name_of=state.name_of)
    reasons.append(
        f"Both sides gain: a match score of {for_you:.2f} from your side and "
        f"{for_them:.2f} from theirs."
    )
    return EventMatch(
        participant_id=other.participant_id,
        organisation_id=other.organisation_id,
        score=score,
        score_for_you=for_you,
        score_for_them=for_them,
        explanation=reasons,
        features={k: features[k] for k in SHOWN_FEATURES if k in features},
    )
