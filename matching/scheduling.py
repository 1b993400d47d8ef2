"""B2B meeting scheduling for brokerage events: an exact CP-SAT model, the first-come
first-served baseline organisers use today, and repair of a published schedule with the fewest
moves. Pure: plain data in, plain data out (no SQL, no HTTP).

The exact model is compact: one boolean ``x[m, t]`` per meeting ``m`` and slot ``t`` in which
both parties are available. Places (tables, booths) are not variables: per slot, for every
seat threshold ``k``, at most as many meetings needing ``>= k`` seats as there are places
with ``>= k`` seats. Because places are nested by capacity, this is exactly Hall's condition,
so any slot that satisfies it can be given distinct places afterwards (:func:`assign_places`).
That keeps 3,000 meetings x 36 slots at about 100,000 booleans instead of six million.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model
from scipy.optimize import linear_sum_assignment

# Integer weight of a meeting: its value (a match score in [0, 1]) in thousandths, at least 1
# so that an extra meeting always counts. A must-meet adds MUST_MEET_BONUS: worth more than ten
# ordinary meetings, so must-meets are placed first in practice.
VALUE_SCALE = 1000
MUST_MEET_BONUS = 10 * VALUE_SCALE
# Repair: keeping an already published meeting outweighs any number of newly placed ones
# (it is larger than every other meeting's weight summed over a participant's day).
KEEP_BONUS = 1_000_000


@dataclass(frozen=True, slots=True)
class Slot:
    """One time slot; ``id`` orders slots chronologically, ``session`` groups them."""

    id: int
    session: int


@dataclass(frozen=True, slots=True)
class Place:
    """A table or booth that hosts one meeting per slot, seating ``capacity`` people."""

    id: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting to place: two parties (participant ids), its value, the seats it needs."""

    id: int
    parties: tuple[int, int]
    value: float
    must_meet: bool = False
    size: int = 2


@dataclass(frozen=True)
class Problem:
    """What to schedule and under which rules.

    ``availability``: slot ids a participant can attend (participants not listed: every slot).
    ``session_limit`` / ``total_limit``: most meetings per session / in all for a participant
    (not listed: no limit). ``meetings`` order is the first-come first-served order.
    """

    slots: tuple[Slot, ...]
    places: tuple[Place, ...]
    meetings: tuple[Meeting, ...]
    availability: Mapping[int, frozenset[int]] = field(default_factory=dict)
    session_limit: Mapping[int, int] = field(default_factory=dict)
    total_limit: Mapping[int, int] = field(default_factory=dict)

    def weight(self, meeting: Meeting) -> int:
        base = max(1, round(min(max(meeting.value, 0.0), 1.0) * VALUE_SCALE))
        return base + (MUST_MEET_BONUS if meeting.must_meet else 0)

    def candidate_slots(self, meeting: Meeting) -> list[int]:
        """Slot ids where both parties are available and some place seats the meeting."""
        if not self.places or meeting.size > max(p.capacity for p in self.places):
            return []
        a, b = meeting.parties
        slots = [s.id for s in self.slots]
        for party in (a, b):
            allowed = self.availability.get(party)
            if allowed is not None:
                slots = [t for t in slots if t in allowed]
        return slots


@dataclass(frozen=True, slots=True)
class Placement:
    meeting: int
    slot: int
    place: int


@dataclass(frozen=True)
class Schedule:
    """A solution with the figures an organiser needs to trust it.

    ``objective`` is the integer weighted value; ``best_bound`` a proven upper bound on it
    (equal to ``objective`` for heuristics, which prove nothing); ``gap`` =
    (bound - objective) / bound. ``unplaced`` is the standby list, most valuable first.
    """

    placements: tuple[Placement, ...]
    unplaced: tuple[int, ...]
    method: str
    status: str
    objective: int
    best_bound: float
    gap: float
    total_value: float
    must_meets_placed: int
    solve_s: float
    moved: int = 0
    dropped: int = 0

    @property
    def meetings_placed(self) -> int:
        return len(self.placements)


class InfeasibleProblem(ValueError):
    """The problem cannot be scheduled at all (e.g. no places or no slots)."""


# -- the exact model ------------------------------------------------------------------------
def solve_exact(
    problem: Problem,
    *,
    time_limit_s: float = 30.0,
    workers: int = 2,
    seed: int = 0,
) -> Schedule:
    """The schedule of maximum total weight, or the best found within ``time_limit_s``, with
    CP-SAT's proven bound. Starts from a value-ordered greedy solution (a hint).

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.9), Meeting(2, (10, 12), 0.8),
    ...             Meeting(3, (11, 12), 0.7))
    >>> s = solve_exact(Problem(slots, (Place(5, 2),), meetings), time_limit_s=5)
    >>> s.status, s.meetings_placed, s.unplaced, round(s.gap, 3)
    ('optimal', 2, (3,), 0.0)
    """
    started = time.perf_counter()
    _check(problem)
    hint = _greedy(problem, _value_order(problem))
    model = _Model(problem)
    model.maximise_weight()
    model.hint(hint)
    solver = _solver(time_limit_s, workers, seed)
    status = solver.solve(model.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # No solution within the limit (only on absurdly small limits): fall back to the hint.
        return _finish(
            problem, hint, {}, method="cp-sat", status="heuristic", started=started, bound=None
        )
    chosen = model.chosen_slots(solver)
    return _finish(
        problem,
        chosen,
        {},
        method="cp-sat",
        status="optimal" if status == cp_model.OPTIMAL else "feasible",
        started=started,
        bound=solver.best_objective_bound,
    )


def repair(
    problem: Problem,
    previous: Mapping[int, tuple[int, int]],
    *,
    time_limit_s: float = 10.0,
    workers: int = 2,
    seed: int = 0,
) -> Schedule:
    """Re-schedule after a change with the fewest moves.

    ``previous`` maps meeting id -> (slot id, place id) of the published schedule; meetings no
    longer in ``problem`` (cancelled) simply free their slot. First the weight is maximised
    with a large bonus for keeping every previously placed meeting (they are dropped only if
    they cannot be placed at all any more), which lets standby meetings fill freed slots and a
    newly accepted meeting in; then, with that weight fixed, the number of meetings moved to
    another slot is minimised. Places are kept where possible. ``moved`` counts meetings whose
    slot or place changed, ``dropped`` previously placed ones that lost their place.

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.5), Meeting(3, (10, 12), 0.9))
    >>> s = repair(Problem(slots, (Place(5, 2),), meetings), {1: (0, 5)}, time_limit_s=5)
    >>> sorted((p.meeting, p.slot) for p in s.placements), s.moved
    ([(1, 0), (3, 1)], 0)
    """
    started = time.perf_counter()
    _check(problem)
    known = {m.id for m in problem.meetings}
    before = {m: sp for m, sp in previous.items() if m in known}
    model = _Model(problem)
    keep = {m: KEEP_BONUS for m in before}
    model.maximise_weight(extra=keep)
    start = {m: slot for m, (slot, _) in before.items()}
    # The old schedule minus cancelled meetings is feasible unless rules changed; either way
    # it is a good start. Greedy fills standby meetings around it.
    model.hint(_greedy(problem, _value_order(problem), fixed=start))
    first = _solver(time_limit_s / 2, workers, seed)
    status = first.solve(model.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        chosen = _greedy(problem, _value_order(problem), fixed=start)
        return _finish(
            problem, chosen, before, method="repair", status="heuristic", started=started, bound=None
        )
    phase_one = model.chosen_slots(first)
    best = round(first.objective_value)
    bound = first.best_objective_bound
    # Phase two: the same weight, fewest slot changes.
    model.require_weight_at_least(best, extra=keep)
    model.minimise_moves(start)
    model.hint(phase_one)
    second = _solver(max(time_limit_s / 2 - (time.perf_counter() - started), 1.0), workers, seed)
    status2 = second.solve(model.model)
    chosen = model.chosen_slots(second) if status2 in (cp_model.OPTIMAL, cp_model.FEASIBLE) else phase_one
    kept_bonus = KEEP_BONUS * sum(1 for m in before if m in chosen)
    return _finish(
        problem,
        chosen,
        before,
        method="repair",
        status="optimal" if status == cp_model.OPTIMAL else "feasible",
        started=started,
        bound=bound - kept_bonus if bound is not None else None,
    )


class _Model:
    """The compact CP-SAT model (see the module docstring)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.model = cp_model.CpModel()
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        self.by_meeting: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        session_of = {s.id: s.session for s in problem.slots}
        per_party_slot: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
        per_party_session: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
        per_party: dict[int, list[cp_model.IntVar]] = defaultdict(list)
        per_slot_size: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
        thresholds = sorted({p.capacity for p in problem.places})
        for meeting in problem.meetings:
            # Seats needed, rounded up to the smallest place capacity that fits.
            level = next((c for c in thresholds if c >= meeting.size), None)
            for t in problem.candidate_slots(meeting):
                var = self.model.new_bool_var(f"x{meeting.id}_{t}")
                self.x[(meeting.id, t)] = var
                self.by_meeting[meeting.id].append((t, var))
                for party in meeting.parties:
                    per_party_slot[(party, t)].append(var)
                    per_party_session[(party, session_of[t])].append(var)
                    per_party[party].append(var)
                assert level is not None  # candidate_slots is empty when nothing fits
                per_slot_size[(t, level)].append(var)
            if len(self.by_meeting[meeting.id]) > 1:
                self.model.add_at_most_one(v for _, v in self.by_meeting[meeting.id])
        for group in per_party_slot.values():
            if len(group) > 1:
                self.model.add_at_most_one(group)
        for (party, _session), group in per_party_session.items():
            limit = problem.session_limit.get(party)
            if limit is not None and len(group) > limit:
                self.model.add(sum(group) <= limit)
        for party, group in per_party.items():
            limit = problem.total_limit.get(party)
            if limit is not None and len(group) > limit:
                self.model.add(sum(group) <= limit)
        # Per slot and seat threshold k: meetings needing >= k seats <= places with >= k seats.
        for slot in problem.slots:
            for k in thresholds:
                group = [v for level in thresholds if level >= k for v in per_slot_size[(slot.id, level)]]
                places = sum(1 for p in problem.places if p.capacity >= k)
                if len(group) > places:
                    self.model.add(sum(group) <= places)

    def _weight_expr(self, extra: Mapping[int, int]) -> cp_model.LinearExpr:
        weights = {m.id: self.problem.weight(m) + extra.get(m.id, 0) for m in self.problem.meetings}
        variables = [v for v in self.x.values()]
        coefficients = [weights[m] for (m, _t) in self.x]
        return cp_model.LinearExpr.weighted_sum(variables, coefficients)

    def maximise_weight(self, extra: Mapping[int, int] | None = None) -> None:
        self.model.maximize(self._weight_expr(extra or {}))

    def require_weight_at_least(self, value: int, extra: Mapping[int, int]) -> None:
        self.model.add(self._weight_expr(extra) >= value)

    def minimise_moves(self, start: Mapping[int, int]) -> None:
        stays = [self.x[(m, t)] for m, t in start.items() if (m, t) in self.x]
        # Moves = previously placed meetings not in their old slot; constants do not matter.
        self.model.maximize(sum(stays))

    def hint(self, chosen: Mapping[int, int]) -> None:
        self.model.clear_hints()
        for (m, t), var in self.x.items():
            self.model.add_hint(var, chosen.get(m) == t)

    def chosen_slots(self, solver: cp_model.CpSolver) -> dict[int, int]:
        return {m: t for (m, t), var in self.x.items() if solver.boolean_value(var)}


def _solver(time_limit_s: float, workers: int, seed: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, float(time_limit_s))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    return solver


# -- greedy placements ----------------------------------------------------------------------
def greedy_fcfs(problem: Problem) -> Schedule:
    """First-come first-served: each meeting, in ``problem.meetings`` order, goes to the
    earliest slot where both parties are free and within their limits and a place fits it;
    places are given best-fit (smallest free place that seats it). What organisers do today.

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.9), Meeting(2, (10, 12), 0.8),
    ...             Meeting(3, (11, 12), 0.7))
    >>> s = greedy_fcfs(Problem(slots, (Place(5, 2),), meetings))
    >>> [(p.meeting, p.slot) for p in s.placements], s.unplaced
    ([(1, 0), (2, 1)], (3,))
    """
    started = time.perf_counter()
    _check(problem)
    order = [m.id for m in problem.meetings]
    chosen, places = _greedy_with_places(problem, order)
    return _finish(
        problem, chosen, {}, method="greedy-fcfs", status="heuristic", started=started,
        bound=None, places=places,
    )


def _value_order(problem: Problem) -> list[int]:
    """Most valuable first; among equals, the hardest to place (fewest candidate slots)."""
    return [
        m.id
        for m in sorted(
            problem.meetings,
            key=lambda m: (-problem.weight(m), len(problem.candidate_slots(m)), m.id),
        )
    ]


def _greedy(
    problem: Problem, order: Sequence[int], fixed: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Slot per meeting, placing ``fixed`` meetings (when still valid) before ``order``."""
    chosen, _ = _greedy_with_places(problem, order, fixed)
    return chosen


def _greedy_with_places(
    problem: Problem, order: Sequence[int], fixed: Mapping[int, int] | None = None
) -> tuple[dict[int, int], dict[int, int]]:
    by_id = {m.id: m for m in problem.meetings}
    session_of = {s.id: s.session for s in problem.slots}
    busy: set[tuple[int, int]] = set()
    per_session: dict[tuple[int, int], int] = defaultdict(int)
    per_party: dict[int, int] = defaultdict(int)
    free_places: dict[int, list[Place]] = {
        s.id: sorted(problem.places, key=lambda p: (p.capacity, p.id)) for s in problem.slots
    }
    chosen: dict[int, int] = {}
    places: dict[int, int] = {}

    def fits(meeting: Meeting, t: int) -> Place | None:
        for party in meeting.parties:
            if (party, t) in busy:
                return None
            limit = problem.session_limit.get(party)
            if limit is not None and per_session[(party, session_of[t])] >= limit:
                return None
            total = problem.total_limit.get(party)
            if total is not None and per_party[party] >= total:
                return None
        return next((p for p in free_places[t] if p.capacity >= meeting.size), None)

    def take(meeting: Meeting, t: int, place: Place) -> None:
        chosen[meeting.id] = t
        places[meeting.id] = place.id
        free_places[t].remove(place)
        for party in meeting.parties:
            busy.add((party, t))
            per_session[(party, session_of[t])] += 1
            per_party[party] += 1

    first = [(m, t) for m, t in (fixed or {}).items() if m in by_id]
    for m, t in first:
        meeting = by_id[m]
        if t in problem.candidate_slots(meeting):
            place = fits(meeting, t)
            if place is not None:
                take(meeting, t, place)
    for m in order:
        if m in chosen:
            continue
        meeting = by_id[m]
        for t in problem.candidate_slots(meeting):
            place = fits(meeting, t)
            if place is not None:
                take(meeting, t, place)
                break
    return chosen, places


# -- places and the result ------------------------------------------------------------------
def assign_places(
    problem: Problem,
    chosen: Mapping[int, int],
    previous: Mapping[int, tuple[int, int]] | None = None,
) -> dict[int, int]:
    """A distinct place per meeting in each slot, keeping a meeting's previous place when it
    stays in the same slot (a minimum-cost assignment per slot: 0 to keep, 1 to change).

    Raises :class:`InfeasibleProblem` if a slot holds more meetings than fit, which the exact
    model rules out.

    >>> problem = Problem((Slot(0, 1),), (Place(1, 2), Place(2, 6)),
    ...                   (Meeting(7, (1, 2), 0.5, size=5), Meeting(8, (3, 4), 0.5)))
    >>> assign_places(problem, {7: 0, 8: 0})
    {7: 2, 8: 1}
    """
    previous = previous or {}
    by_id = {m.id: m for m in problem.meetings}
    per_slot: dict[int, list[int]] = defaultdict(list)
    for m, t in chosen.items():
        per_slot[t].append(m)
    places = list(problem.places)
    capacity = np.array([p.capacity for p in places])
    out: dict[int, int] = {}
    for t, meetings in per_slot.items():
        meetings.sort()
        size = np.array([by_id[m].size for m in meetings])
        big = len(meetings) + 1
        cost = np.where(size[:, None] <= capacity[None, :], 1, big * 10).astype(np.int64)
        for i, m in enumerate(meetings):
            old = previous.get(m)
            if old is not None and old[0] == t:
                for j, p in enumerate(places):
                    if p.id == old[1] and capacity[j] >= size[i]:
                        cost[i, j] = 0
        if len(meetings) > len(places):
            raise InfeasibleProblem(f"slot {t} holds more meetings than there are places")
        rows, cols = linear_sum_assignment(cost)
        if (cost[rows, cols] >= big * 10).any():
            raise InfeasibleProblem(f"slot {t} has meetings no free place can seat")
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            out[meetings[i]] = places[j].id
    return out


def _finish(
    problem: Problem,
    chosen: Mapping[int, int],
    previous: Mapping[int, tuple[int, int]],
    *,
    method: str,
    status: str,
    started: float,
    bound: float | None,
    places: Mapping[int, int] | None = None,
) -> Schedule:
    if places is None:
        places = assign_places(problem, chosen, previous)
    by_id = {m.id: m for m in problem.meetings}
    placements = tuple(
        Placement(m, chosen[m], places[m])
        for m in sorted(chosen, key=lambda m: (chosen[m], places[m]))
    )
    objective = sum(problem.weight(by_id[m]) for m in chosen)
    best_bound = float(objective) if bound is None else max(float(bound), float(objective))
    gap = (best_bound - objective) / best_bound if best_bound > 0 else 0.0
    unplaced = tuple(m for m in _value_order(problem) if m not in chosen)
    moved = sum(
        1 for m, (t, p) in previous.items() if m in chosen and (chosen[m], places[m]) != (t, p)
    )
    dropped = sum(1 for m in previous if m not in chosen)
    return Schedule(
        placements=placements,
        unplaced=unplaced,
        method=method,
        status=status,
        objective=objective,
        best_bound=best_bound,
        gap=gap,
        total_value=float(sum(by_id[m].value for m in chosen)),
        must_meets_placed=sum(1 for m in chosen if by_id[m].must_meet),
        solve_s=time.perf_counter() - started,
        moved=moved,
        dropped=dropped,
    )


def _check(problem: Problem) -> None:
    if not problem.slots:
        raise InfeasibleProblem("the event has no slots")
    if not problem.places:
        raise InfeasibleProblem("the event has no meeting places")
    ids = [m.id for m in problem.meetings]
    if len(set(ids)) != len(ids):
        raise ValueError("meeting ids must be unique")
    for m in problem.meetings:
        if m.parties[0] == m.parties[1]:
            raise ValueError(f"meeting {m.id} has the same party twice")


def violations(problem: Problem, placements: Iterable[Placement]) -> list[str]:
    """Every rule a schedule breaks, in words (empty when it is valid): double bookings,
    availability, place capacity and double use, session and total limits.

    >>> problem = Problem((Slot(0, 1),), (Place(1, 2),),
    ...                   (Meeting(1, (10, 11), 0.5), Meeting(2, (10, 12), 0.5)))
    >>> violations(problem, [Placement(1, 0, 1), Placement(2, 0, 1)])
    ['participant 10 has two meetings in slot 0', 'place 1 is used twice in slot 0']
    """
    by_id = {m.id: m for m in problem.meetings}
    place_cap = {p.id: p.capacity for p in problem.places}
    session_of = {s.id: s.session for s in problem.slots}
    problems: list[str] = []
    seen_party: set[tuple[int, int]] = set()
    seen_place: set[tuple[int, int]] = set()
    per_session: dict[tuple[int, int], int] = defaultdict(int)
    per_party: dict[int, int] = defaultdict(int)
    placed: set[int] = set()
    for pl in placements:
        meeting = by_id[pl.meeting]
        if pl.meeting in placed:
            problems.append(f"meeting {pl.meeting} is placed twice")
        placed.add(pl.meeting)
        if pl.slot not in session_of:
            problems.append(f"meeting {pl.meeting} is in unknown slot {pl.slot}")
            continue
        for party in meeting.parties:
            if (party, pl.slot) in seen_party:
                problems.append(f"participant {party} has two meetings in slot {pl.slot}")
            seen_party.add((party, pl.slot))
            allowed = problem.availability.get(party)
            if allowed is not None and pl.slot not in allowed:
                problems.append(f"participant {party} is not available in slot {pl.slot}")
            per_session[(party, session_of[pl.slot])] += 1
            per_party[party] += 1
        if (pl.place, pl.slot) in seen_place:
            problems.append(f"place {pl.place} is used twice in slot {pl.slot}")
        seen_place.add((pl.place, pl.slot))
        if place_cap.get(pl.place, 0) < meeting.size:
            problems.append(f"place {pl.place} cannot seat meeting {pl.meeting}")
    for (party, session), n in sorted(per_session.items()):
        limit = problem.session_limit.get(party)
        if limit is not None and n > limit:
            problems.append(f"participant {party} has {n} meetings in session {session}")
    for party, n in sorted(per_party.items()):
        limit = problem.total_limit.get(party)
        if limit is not None and n > limit:
            problems.append(f"participant {party} has {n} meetings in all")
    return problems
