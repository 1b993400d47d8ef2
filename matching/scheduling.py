"""B2B meeting scheduling for brokerage events: an exact CP-SAT model with a proven bound, the
first-come first-served baseline organisers use today, and repair of a published schedule with
the fewest moves. Pure: plain data in, plain data out (no SQL, no HTTP).

**Compact model.** Slots of one session in which exactly the same participants are available
are interchangeable; they form a *block* (an event where people attend whole sessions or leave
at lunch has a handful of blocks, not dozens of slots). The selection model has one boolean
``y[m, b]`` per meeting ``m`` and block ``b`` where both parties are available, and bounds per
block what the slots could hold: a participant meets at most ``|b|`` times in ``b``; for every
seat threshold ``k``, meetings needing ``>= k`` seats are at most (places with ``>= k`` seats)
x ``|b|``; plus the per-session and total limits. Every schedule satisfies these, so a bound on
this model is a proven upper bound for the real problem. Its LP relaxation (HiGHS, through
scipy, well under a second) gives the first bound and a rounded start; CP-SAT improves the
selection and the bound when the start does not reach it (on the benchmark events the LP is
often integral, so the start is optimal at once). Then each block's meetings
get distinct slots (an edge colouring with a capacity per colour: greedy, CP-SAT if greedy
fails), anything left over is tried in any free slot, and places are given per slot: because
places are nested by capacity, a slot within the threshold counts can always be given distinct
places (Hall's condition). When the colouring succeeds, as it always does for buyer/seller
events (König), the schedule reaches the selection optimum and the reported gap is exact.
3,000 meetings x 36 slots thus become about 10,000 booleans instead of 100,000 (or six million
with a variable per place).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model
from scipy import sparse
from scipy.optimize import linear_sum_assignment, linprog

# Integer weight of a meeting: its value (a match score in [0, 1]) in thousandths, at least 1
# so that an extra meeting always counts. A must-meet adds MUST_MEET_BONUS, worth more than ten
# ordinary meetings, so must-meets are placed first.
VALUE_SCALE = 1000
MUST_MEET_BONUS = 10 * VALUE_SCALE
# Repair: keeping an already published meeting outweighs everything that could replace it.
KEEP_BONUS = 1_000_000
# Repair: what moving one already placed meeting to another slot costs (a score of 0.1).
MOVE_COST = VALUE_SCALE // 10
# Shares of the time limit for CP-SAT on the selection model and on the slot colouring.
SELECTION_SHARE = 0.6
COLOUR_SHARE = 0.25
# CP-SAT per block whose greedy colouring fell short: it rescues a few meetings at most (the
# rest are tried in other slots afterwards), so it gets little time.
COLOUR_BLOCK_S = 1.0
# The selection stops within this relative distance of its proven bound (0.01 %).
SELECTION_GAP = 1e-4


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
        """The meeting's integer weight in the objective."""
        base = max(1, round(min(max(meeting.value, 0.0), 1.0) * VALUE_SCALE))
        return base + (MUST_MEET_BONUS if meeting.must_meet else 0)

    def thresholds(self) -> list[int]:
        return sorted({p.capacity for p in self.places})

    def level(self, meeting: Meeting) -> int | None:
        """Smallest place capacity that seats the meeting (None: no place does)."""
        return next((c for c in self.thresholds() if c >= meeting.size), None)

    def places_with_at_least(self, seats: int) -> int:
        return sum(1 for p in self.places if p.capacity >= seats)

    def available(self, party: int, slot: int) -> bool:
        allowed = self.availability.get(party)
        return allowed is None or slot in allowed

    def candidate_slots(self, meeting: Meeting) -> list[int]:
        """Slot ids where both parties are available and some place seats the meeting."""
        if self.level(meeting) is None:
            return []
        a, b = meeting.parties
        return [s.id for s in self.slots if self.available(a, s.id) and self.available(b, s.id)]


@dataclass(frozen=True, slots=True)
class Block:
    """Slots of one session in which the same participants are available."""

    id: int
    session: int
    slots: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Placement:
    meeting: int
    slot: int
    place: int


@dataclass(frozen=True)
class Schedule:
    """A solution with the figures an organiser needs to trust it.

    ``objective`` is the integer weighted value; ``best_bound`` a proven upper bound on it
    (for heuristics, which prove nothing, the objective itself); ``gap`` =
    (bound - objective) / bound. ``unplaced`` is the standby list, most valuable first.
    For a repair the bound assumes every kept meeting stays, and ``moved`` counts previously
    placed meetings whose slot or place changed, ``dropped`` those that lost their place.
    """

    placements: tuple[Placement, ...]
    unplaced: tuple[int, ...]
    method: str
    status: str
    objective: int
    best_bound: float
    bound_source: str
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


# -- blocks ---------------------------------------------------------------------------------
def slot_blocks(problem: Problem) -> list[Block]:
    """Group interchangeable slots: same session, same participants unavailable.

    >>> slots = tuple(Slot(i, 1 + i // 3) for i in range(6))
    >>> p = Problem(slots, (Place(1, 2),), (), availability={7: frozenset({0, 1, 3, 4, 5})})
    >>> [(b.session, b.slots) for b in slot_blocks(p)]
    [(1, (0, 1)), (1, (2,)), (2, (3, 4, 5))]
    """
    absent: dict[int, set[int]] = defaultdict(set)
    for party, allowed in problem.availability.items():
        for slot in problem.slots:
            if slot.id not in allowed:
                absent[slot.id].add(party)
    groups: dict[tuple[int, frozenset[int]], list[int]] = {}
    for slot in sorted(problem.slots, key=lambda s: s.id):
        groups.setdefault((slot.session, frozenset(absent[slot.id])), []).append(slot.id)
    return [
        Block(i, session, tuple(slots)) for i, ((session, _), slots) in enumerate(groups.items())
    ]


# -- the exact model ------------------------------------------------------------------------
def solve_exact(
    problem: Problem,
    *,
    time_limit_s: float = 30.0,
    workers: int = 2,
    seed: int = 0,
) -> Schedule:
    """The schedule of maximum total weight (or the best found within ``time_limit_s``) with a
    proven upper bound; never worse than the value-ordered greedy schedule.

    The LP relaxation of the selection model (HiGHS, well under a second) gives a bound and a
    rounded start; CP-SAT then improves selection and bound. If the start already reaches the
    LP bound it is optimal and CP-SAT is not needed.

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.9), Meeting(2, (10, 12), 0.8),
    ...             Meeting(3, (11, 12), 0.7))
    >>> s = solve_exact(Problem(slots, (Place(5, 2),), meetings), time_limit_s=5)
    >>> s.status, s.meetings_placed, s.unplaced, round(s.gap, 3)
    ('optimal', 2, (3,), 0.0)
    """
    started = time.perf_counter()
    _check(problem)
    blocks = slot_blocks(problem)
    order = _value_order(problem)
    greedy = _greedy(problem, order)
    selection = _Selection(problem, blocks, extra={}, old_block={})
    selection_s = _budget(time_limit_s, SELECTION_SHARE, started)
    selected, bound, source = selection.solve(
        greedy, selection_s, workers, seed, relative_gap=SELECTION_GAP
    )
    colour_s = _budget(time_limit_s, COLOUR_SHARE, started)
    chosen = _colour(problem, blocks, selected, {}, colour_s, workers, seed)
    chosen = _fill(problem, chosen, order)
    if _weight(problem, chosen) < _weight(problem, greedy):
        chosen = greedy
    return _finish(problem, chosen, {}, "cp-sat", started, bound, source)


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
    longer in ``problem`` (cancelled) just free their slot. The objective adds to the weight a
    bonus for every previously placed meeting kept (so one is dropped only if it cannot be
    placed any more) and MOVE_COST for every one left in its old slot: freed slots are filled
    from the standby list and a newly accepted meeting gets in, but a meeting is moved only
    when that lets in more than MOVE_COST of value per move, and among equally valuable
    schedules the one with the fewest moves wins. Places are kept where possible. For a repair
    ``objective``/``best_bound``/``gap`` are on that objective, bonuses excluded.

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.5), Meeting(3, (10, 12), 0.9))
    >>> s = repair(Problem(slots, (Place(5, 2),), meetings), {1: (0, 5)}, time_limit_s=5)
    >>> sorted((p.meeting, p.slot) for p in s.placements), s.moved
    ([(1, 0), (3, 1)], 0)
    """
    started = time.perf_counter()
    _check(problem)
    by_id = {m.id: m for m in problem.meetings}
    slot_ids = {s.id for s in problem.slots}
    before = {m: sp for m, sp in previous.items() if m in by_id}
    old_slot = {m: slot for m, (slot, _) in before.items() if slot in slot_ids}
    blocks = slot_blocks(problem)
    block_of = {t: b.id for b in blocks for t in b.slots}
    keep = dict.fromkeys(before, KEEP_BONUS)
    old_block = {m: block_of[t] for m, t in old_slot.items()}
    order = _value_order(problem)
    start = _greedy(problem, order, fixed=old_slot)
    selection = _Selection(problem, blocks, extra=keep, old_block=old_block)
    selection_s = _budget(time_limit_s, SELECTION_SHARE, started)
    # A better repair by less than a move's worth is not worth the wait.
    selected, bound, source = selection.solve(
        start, selection_s, workers, seed, absolute_gap=MOVE_COST // 2
    )
    colour_s = _budget(time_limit_s, COLOUR_SHARE, started)
    chosen = _colour(problem, blocks, selected, old_slot, colour_s, workers, seed)
    chosen = _fill(problem, chosen, order)
    if _repair_value(problem, chosen, keep, old_slot) < _repair_value(
        problem, start, keep, old_slot
    ):
        chosen = start
    # The bound covers the bonuses too; take out those the chosen schedule earned, so the
    # gap compares like with like.
    earned = _repair_value(problem, chosen, keep, old_slot) - _weight(problem, chosen)
    return _finish(
        problem,
        chosen,
        before,
        "repair",
        started,
        None if bound is None else bound - earned,
        source,
    )


def _repair_value(
    problem: Problem,
    chosen: Mapping[int, int],
    keep: Mapping[int, int],
    old_slot: Mapping[int, int],
) -> int:
    stays = sum(1 for m, t in old_slot.items() if chosen.get(m) == t)
    return _weight(problem, chosen, keep) + MOVE_COST * stays


class _Selection:
    """Which block each meeting goes to (see the module docstring). ``extra`` adds to a
    meeting's weight; ``old_block`` earns MOVE_COST for staying in it. Every packing row is
    also kept as (variable indices, right-hand side) for the LP relaxation."""

    def __init__(
        self,
        problem: Problem,
        blocks: Sequence[Block],
        *,
        extra: Mapping[int, int],
        old_block: Mapping[int, int],
    ) -> None:
        self.problem = problem
        self.model = cp_model.CpModel()
        self.keys: list[tuple[int, int]] = []
        self.variables: list[cp_model.IntVar] = []
        self.rows: list[tuple[list[int], int]] = []
        self.block_of = {t: b.id for b in blocks for t in b.slots}
        weight = {m.id: problem.weight(m) + extra.get(m.id, 0) for m in problem.meetings}
        self.weights: list[int] = []
        thresholds = problem.thresholds()
        per_meeting: dict[int, list[int]] = defaultdict(list)
        per_party_block: dict[tuple[int, int], list[int]] = defaultdict(list)
        per_party_session: dict[tuple[int, int], list[int]] = defaultdict(list)
        per_party: dict[int, list[int]] = defaultdict(list)
        per_block_level: dict[tuple[int, int], list[int]] = defaultdict(list)
        for meeting in problem.meetings:
            level = problem.level(meeting)
            if level is None:
                continue
            a, b = meeting.parties
            for block in blocks:
                first = block.slots[0]
                if not (problem.available(a, first) and problem.available(b, first)):
                    continue
                index = len(self.keys)
                self.keys.append((meeting.id, block.id))
                self.variables.append(self.model.new_bool_var(f"y{meeting.id}_{block.id}"))
                stay = MOVE_COST if old_block.get(meeting.id) == block.id else 0
                self.weights.append(weight[meeting.id] + stay)
                per_meeting[meeting.id].append(index)
                per_block_level[(block.id, level)].append(index)
                for party in meeting.parties:
                    per_party_block[(party, block.id)].append(index)
                    per_party_session[(party, block.session)].append(index)
                    per_party[party].append(index)
        for group in per_meeting.values():
            self._limit(group, 1)
        size = {b.id: len(b.slots) for b in blocks}
        for (_party, block_id), group in per_party_block.items():
            self._limit(group, size[block_id])
        for (party, _session), group in per_party_session.items():
            self._limit(group, problem.session_limit.get(party))
        for party, group in per_party.items():
            self._limit(group, problem.total_limit.get(party))
        for block in blocks:
            for k in thresholds:
                group = [
                    i
                    for level in thresholds
                    if level >= k
                    for i in per_block_level[(block.id, level)]
                ]
                self._limit(group, problem.places_with_at_least(k) * len(block.slots))
        self.objective = cp_model.LinearExpr.weighted_sum(self.variables, self.weights)
        self.model.maximize(self.objective)

    def _limit(self, group: list[int], rhs: int | None) -> None:
        """sum(group) <= rhs, when it can bind."""
        if rhs is None or len(group) <= rhs:
            return
        variables = [self.variables[i] for i in group]
        if rhs == 1:
            self.model.add_at_most_one(variables)
        else:
            self.model.add(sum(variables) <= rhs)
        self.rows.append((group, rhs))

    def value(self, selected: Mapping[int, int]) -> int:
        index = {key: i for i, key in enumerate(self.keys)}
        return sum(self.weights[index[k]] for k in selected.items() if k in index)

    def solve(
        self,
        start_slots: Mapping[int, int],
        time_limit_s: float,
        workers: int,
        seed: int,
        *,
        relative_gap: float = 0.0,
        absolute_gap: float = 0.0,
    ) -> tuple[dict[int, int], float | None, str]:
        """(selection, proven upper bound or None, where the bound comes from). Stops as soon
        as the selection is within ``relative_gap`` or ``absolute_gap`` of the bound."""
        start = {m: self.block_of[t] for m, t in start_slots.items()}
        relaxed = self.relaxation()
        bound: float | None = None
        source = "none"
        if relaxed is not None:
            bound, rounded = relaxed
            source = "lp-relaxation"
            if self.value(rounded) > self.value(start):
                start = rounded
            if bound - self.value(start) <= max(absolute_gap, relative_gap * bound):
                return start, bound, source  # close enough to the LP bound: done
            # A valid cut: CP-SAT starts from the LP's bound instead of rediscovering it.
            self.model.add(self.objective <= int(bound))
        for (m, b), var in zip(self.keys, self.variables, strict=True):
            self.model.add_hint(var, start.get(m) == b)
        solver = _solver(time_limit_s, workers, seed)
        solver.parameters.relative_gap_limit = relative_gap
        solver.parameters.absolute_gap_limit = absolute_gap
        status = solver.solve(self.model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return start, bound, source
        found = {
            m: b
            for (m, b), v in zip(self.keys, self.variables, strict=True)
            if solver.boolean_value(v)
        }
        if bound is None or solver.best_objective_bound < bound:
            bound, source = solver.best_objective_bound, "cp-sat"
        return (found if self.value(found) >= self.value(start) else start), bound, source

    def relaxation(self) -> tuple[float, dict[int, int]] | None:
        """The LP relaxation's optimum (a proven upper bound on the objective) and a selection
        rounded from it: variables by LP value, then weight, each taken while every row it is
        in has room. None if the LP solver gives up."""
        n = len(self.keys)
        weights = np.array(self.weights, dtype=np.float64)
        if n == 0 or not self.rows:
            return float(weights.sum()), dict(self.keys)
        row_of = np.concatenate([np.full(len(g), r) for r, (g, _) in enumerate(self.rows)])
        col_of = np.concatenate([np.asarray(g, dtype=np.int64) for g, _ in self.rows])
        matrix = sparse.csr_matrix(
            (np.ones(len(col_of)), (row_of, col_of)), shape=(len(self.rows), n)
        )
        rhs = np.array([r for _, r in self.rows], dtype=np.float64)
        result = linprog(-weights, A_ub=matrix, b_ub=rhs, bounds=(0, 1), method="highs")
        if result.status != 0:
            return None
        # Integer weights: the integer optimum is at most the LP optimum rounded down (with a
        # margin for the LP solver's tolerances).
        bound = float(np.floor(-result.fun * (1 + 1e-9) + 1e-6))
        by_column = matrix.tocsc()
        room = rhs.copy()
        selected: dict[int, int] = {}
        for i in np.lexsort((-weights, -np.round(result.x, 6))).tolist():
            meeting, block = self.keys[i]
            rows = by_column.indices[by_column.indptr[i] : by_column.indptr[i + 1]]
            if meeting in selected or (room[rows] < 1).any():
                continue
            room[rows] -= 1
            selected[meeting] = block
        return bound, selected


def _budget(time_limit_s: float, share: float, started: float) -> float:
    """Seconds for the next stage: its share of the limit, within what is left of it."""
    left = time_limit_s - (time.perf_counter() - started)
    return max(0.2, min(share * time_limit_s, left))


def _solver(time_limit_s: float, workers: int, seed: int) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, float(time_limit_s))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.random_seed = seed
    return solver


# -- slots within blocks --------------------------------------------------------------------
def _colour(
    problem: Problem,
    blocks: Sequence[Block],
    selected: Mapping[int, int],
    old_slot: Mapping[int, int],
    time_limit_s: float,
    workers: int,
    seed: int,
) -> dict[int, int]:
    """A slot for each selected meeting inside its block; meetings that do not fit are left
    out (the caller tries them elsewhere). Kept meetings stay in their old slot if possible."""
    by_id = {m.id: m for m in problem.meetings}
    members: dict[int, list[Meeting]] = defaultdict(list)
    for m, b in selected.items():
        members[b].append(by_id[m])
    chosen: dict[int, int] = {}
    hard: list[tuple[Block, list[Meeting], dict[int, int]]] = []
    for block in blocks:
        meetings = members.get(block.id, [])
        if not meetings:
            continue
        greedy = _colour_greedy(problem, block, meetings, old_slot)
        moved = any(m.id in old_slot and greedy.get(m.id) != old_slot[m.id] for m in meetings)
        if len(greedy) == len(meetings) and not moved:
            chosen.update(greedy)
        else:
            hard.append((block, meetings, greedy))
    started = time.perf_counter()
    for i, (block, meetings, greedy) in enumerate(hard):
        left = (time_limit_s - (time.perf_counter() - started)) / (len(hard) - i)
        budget = min(left, COLOUR_BLOCK_S)
        chosen.update(
            _colour_exact(problem, block, meetings, greedy, old_slot, budget, workers, seed)
        )
    return chosen


def _colour_greedy(
    problem: Problem, block: Block, meetings: Sequence[Meeting], old_slot: Mapping[int, int]
) -> dict[int, int]:
    """Kept meetings in their old slots first, then the most constrained meetings first."""
    load: dict[int, int] = defaultdict(int)
    for m in meetings:
        for party in m.parties:
            load[party] += 1
    state = _Load(problem)
    chosen: dict[int, int] = {}
    for m in meetings:
        t = old_slot.get(m.id)
        if t is not None and t in block.slots and state.fits(m, t):
            state.take(m, t)
            chosen[m.id] = t
    rest = sorted(
        (m for m in meetings if m.id not in chosen),
        key=lambda m: (-max(load[p] for p in m.parties), -m.size, m.id),
    )
    for m in rest:
        for t in block.slots:
            if state.fits(m, t):
                state.take(m, t)
                chosen[m.id] = t
                break
    return chosen


def _colour_exact(
    problem: Problem,
    block: Block,
    meetings: Sequence[Meeting],
    greedy: Mapping[int, int],
    old_slot: Mapping[int, int],
    time_limit_s: float,
    workers: int,
    seed: int,
) -> dict[int, int]:
    """CP-SAT on one block: most weight, kept meetings first, MOVE_COST per slot change."""
    model = cp_model.CpModel()
    z: dict[tuple[int, int], cp_model.IntVar] = {}
    per_party_slot: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
    per_slot_level: dict[tuple[int, int], list[cp_model.IntVar]] = defaultdict(list)
    thresholds = problem.thresholds()
    coefficients: list[int] = []
    for m in meetings:
        level = problem.level(m)
        assert level is not None  # selected meetings fit some place
        base = problem.weight(m) + (KEEP_BONUS if m.id in old_slot else 0)
        for t in block.slots:
            var = model.new_bool_var(f"z{m.id}_{t}")
            z[(m.id, t)] = var
            coefficients.append(base + (MOVE_COST if old_slot.get(m.id) == t else 0))
            per_slot_level[(t, level)].append(var)
            for party in m.parties:
                per_party_slot[(party, t)].append(var)
        model.add_at_most_one(z[(m.id, t)] for t in block.slots)
    for group in per_party_slot.values():
        if len(group) > 1:
            model.add_at_most_one(group)
    for t in block.slots:
        for k in thresholds:
            group = [v for level in thresholds if level >= k for v in per_slot_level[(t, level)]]
            room = problem.places_with_at_least(k)
            if len(group) > room:
                model.add(sum(group) <= room)
    model.maximize(cp_model.LinearExpr.weighted_sum(list(z.values()), coefficients))
    for (mid, t), var in z.items():
        model.add_hint(var, greedy.get(mid) == t)
    solver = _solver(time_limit_s, workers, seed)
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return dict(greedy)
    return {m: t for (m, t), var in z.items() if solver.boolean_value(var)}


# -- greedy placements ----------------------------------------------------------------------
class _Load:
    """Who is busy when, and how full each slot is per seat threshold."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.session_of = {s.id: s.session for s in problem.slots}
        self.thresholds = problem.thresholds()
        self.room = {k: problem.places_with_at_least(k) for k in self.thresholds}
        self.busy: set[tuple[int, int]] = set()
        self.per_session: dict[tuple[int, int], int] = defaultdict(int)
        self.per_party: dict[int, int] = defaultdict(int)
        self.used: dict[tuple[int, int], int] = defaultdict(int)

    def fits(self, meeting: Meeting, t: int) -> bool:
        level = self.problem.level(meeting)
        if level is None:
            return False
        for party in meeting.parties:
            if (party, t) in self.busy or not self.problem.available(party, t):
                return False
            limit = self.problem.session_limit.get(party)
            if limit is not None and self.per_session[(party, self.session_of[t])] >= limit:
                return False
            total = self.problem.total_limit.get(party)
            if total is not None and self.per_party[party] >= total:
                return False
        return all(self.used[(t, k)] < self.room[k] for k in self.thresholds if k <= level)

    def take(self, meeting: Meeting, t: int) -> None:
        level = self.problem.level(meeting)
        for party in meeting.parties:
            self.busy.add((party, t))
            self.per_session[(party, self.session_of[t])] += 1
            self.per_party[party] += 1
        for k in self.thresholds:
            if level is not None and k <= level:
                self.used[(t, k)] += 1


def greedy_fcfs(problem: Problem) -> Schedule:
    """First-come first-served: each meeting, in ``problem.meetings`` order, goes to the
    earliest slot where both parties are free and within their limits and a place is free.
    What organisers do today.

    >>> slots = (Slot(0, 1), Slot(1, 1))
    >>> meetings = (Meeting(1, (10, 11), 0.9), Meeting(2, (10, 12), 0.8),
    ...             Meeting(3, (11, 12), 0.7))
    >>> s = greedy_fcfs(Problem(slots, (Place(5, 2),), meetings))
    >>> [(p.meeting, p.slot) for p in s.placements], s.unplaced
    ([(1, 0), (2, 1)], (3,))
    """
    started = time.perf_counter()
    _check(problem)
    chosen = _greedy(problem, [m.id for m in problem.meetings])
    return _finish(problem, chosen, {}, "greedy-fcfs", started, None, "none")


def _value_order(problem: Problem) -> list[int]:
    """Most valuable first; among equals, the hardest to place (fewest candidate slots)."""
    n_slots = {m.id: len(problem.candidate_slots(m)) for m in problem.meetings}
    return [
        m.id
        for m in sorted(problem.meetings, key=lambda m: (-problem.weight(m), n_slots[m.id], m.id))
    ]


def _greedy(
    problem: Problem, order: Sequence[int], fixed: Mapping[int, int] | None = None
) -> dict[int, int]:
    """Slot per meeting: ``fixed`` ones first (where still valid), then ``order``, each in the
    earliest slot that fits."""
    by_id = {m.id: m for m in problem.meetings}
    state = _Load(problem)
    chosen: dict[int, int] = {}
    for m, t in (fixed or {}).items():
        if m in by_id and t in state.session_of and state.fits(by_id[m], t):
            state.take(by_id[m], t)
            chosen[m] = t
    return _place_in_order(problem, state, chosen, order)


def _fill(problem: Problem, chosen: Mapping[int, int], order: Sequence[int]) -> dict[int, int]:
    """Try every unplaced meeting, in ``order``, in any slot still free for it."""
    by_id = {m.id: m for m in problem.meetings}
    state = _Load(problem)
    for m, t in chosen.items():
        state.take(by_id[m], t)
    return _place_in_order(problem, state, dict(chosen), order)


def _place_in_order(
    problem: Problem, state: _Load, chosen: dict[int, int], order: Sequence[int]
) -> dict[int, int]:
    by_id = {m.id: m for m in problem.meetings}
    slots = [s.id for s in sorted(problem.slots, key=lambda s: s.id)]
    for m in order:
        if m in chosen:
            continue
        meeting = by_id[m]
        for t in slots:
            if state.fits(meeting, t):
                state.take(meeting, t)
                chosen[m] = t
                break
    return chosen


def _weight(
    problem: Problem, chosen: Mapping[int, int], extra: Mapping[int, int] | None = None
) -> int:
    extra = extra or {}
    by_id = {m.id: m for m in problem.meetings}
    return sum(problem.weight(by_id[m]) + extra.get(m, 0) for m in chosen)


# -- places and the result ------------------------------------------------------------------
def assign_places(
    problem: Problem,
    chosen: Mapping[int, int],
    previous: Mapping[int, tuple[int, int]] | None = None,
) -> dict[int, int]:
    """A distinct place per meeting in each slot, keeping a meeting's previous place when it
    stays in the same slot (a minimum-cost assignment per slot: 0 to keep, 1 to change).

    Raises :class:`InfeasibleProblem` if a slot holds more meetings than its places seat,
    which the threshold counts rule out.

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
    for t in sorted(per_slot):
        meetings = sorted(per_slot[t])
        if len(meetings) > len(places):
            raise InfeasibleProblem(f"slot {t} holds more meetings than there are places")
        size = np.array([by_id[m].size for m in meetings])
        too_small = 10 * (len(meetings) + 1)
        cost = np.where(size[:, None] <= capacity[None, :], 1, too_small).astype(np.int64)
        for i, m in enumerate(meetings):
            old = previous.get(m)
            if old is not None and old[0] == t:
                for j, p in enumerate(places):
                    if p.id == old[1] and capacity[j] >= size[i]:
                        cost[i, j] = 0
        rows, cols = linear_sum_assignment(cost)
        if (cost[rows, cols] >= too_small).any():
            raise InfeasibleProblem(f"slot {t} has meetings no free place can seat")
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            out[meetings[i]] = places[j].id
    return out


def _finish(
    problem: Problem,
    chosen: Mapping[int, int],
    previous: Mapping[int, tuple[int, int]],
    method: str,
    started: float,
    bound: float | None,
    bound_source: str,
) -> Schedule:
    places = assign_places(problem, chosen, previous)
    by_id = {m.id: m for m in problem.meetings}
    placements = tuple(
        Placement(m, chosen[m], places[m])
        for m in sorted(chosen, key=lambda m: (chosen[m], places[m]))
    )
    objective = _weight(problem, chosen)
    best_bound = float(objective) if bound is None else max(float(bound), float(objective))
    gap = (best_bound - objective) / best_bound if best_bound > 0 else 0.0
    status = "heuristic" if bound is None else "optimal" if objective >= bound else "feasible"
    return Schedule(
        placements=placements,
        unplaced=tuple(m for m in _value_order(problem) if m not in chosen),
        method=method,
        status=status,
        objective=objective,
        best_bound=best_bound,
        bound_source=bound_source if bound is not None else "none",
        gap=gap,
        total_value=float(sum(by_id[m].value for m in chosen)),
        must_meets_placed=sum(1 for m in chosen if by_id[m].must_meet),
        solve_s=time.perf_counter() - started,
        moved=sum(
            1 for m, (t, p) in previous.items() if m in chosen and (chosen[m], places[m]) != (t, p)
        ),
        dropped=sum(1 for m in previous if m not in chosen),
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
    found: list[str] = []
    seen_party: set[tuple[int, int]] = set()
    seen_place: set[tuple[int, int]] = set()
    per_session: dict[tuple[int, int], int] = defaultdict(int)
    per_party: dict[int, int] = defaultdict(int)
    placed: set[int] = set()
    for pl in placements:
        meeting = by_id[pl.meeting]
        if pl.meeting in placed:
            found.append(f"meeting {pl.meeting} is placed twice")
        placed.add(pl.meeting)
        if pl.slot not in session_of:
            found.append(f"meeting {pl.meeting} is in unknown slot {pl.slot}")
            continue
        for party in meeting.parties:
            if (party, pl.slot) in seen_party:
                found.append(f"participant {party} has two meetings in slot {pl.slot}")
            seen_party.add((party, pl.slot))
            if not problem.available(party, pl.slot):
                found.append(f"participant {party} is not available in slot {pl.slot}")
            per_session[(party, session_of[pl.slot])] += 1
            per_party[party] += 1
        if (pl.place, pl.slot) in seen_place:
            found.append(f"place {pl.place} is used twice in slot {pl.slot}")
        seen_place.add((pl.place, pl.slot))
        if place_cap.get(pl.place, 0) < meeting.size:
            found.append(f"place {pl.place} cannot seat meeting {pl.meeting}")
    for (party, session), n in sorted(per_session.items()):
        limit = problem.session_limit.get(party)
        if limit is not None and n > limit:
            found.append(f"participant {party} has {n} meetings in session {session}")
    for party, n in sorted(per_party.items()):
        limit = problem.total_limit.get(party)
        if limit is not None and n > limit:
            found.append(f"participant {party} has {n} meetings in all")
    return found


# -- the time grid --------------------------------------------------------------------------
def session_slots(
    start_minute: int,
    end_minute: int,
    slot_minutes: int,
    breaks: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """(start, end) minutes of each slot: back to back from the start, restarting after each
    break; a slot never overlaps a break or runs past the end.

    >>> session_slots(540, 660, 30, [(600, 615)])  # 9:00-11:00, 30 min, break 10:00-10:15
    [(540, 570), (570, 600), (615, 645)]
    """
    slots: list[tuple[int, int]] = []
    t = start_minute
    ordered = sorted(breaks)
    while t + slot_minutes <= end_minute:
        clash = next((b for b in ordered if b[0] < t + slot_minutes and t < b[1]), None)
        if clash is not None:
            t = clash[1]
            continue
        slots.append((t, t + slot_minutes))
        t += slot_minutes
    return slots
