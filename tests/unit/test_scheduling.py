"""B2B meeting scheduling: the exact model, first-come first-served, repair, places."""

from __future__ import annotations

import pytest

from matching.scheduling import (
    InfeasibleProblem,
    Meeting,
    Place,
    Problem,
    Schedule,
    Slot,
    assign_places,
    greedy_fcfs,
    repair,
    session_slots,
    slot_blocks,
    solve_exact,
    violations,
)
from scripts.bench_schedule import synthetic_event

TWO_SLOTS = (Slot(0, 1), Slot(1, 1))
ONE_TABLE = (Place(100, 4),)


def placed(schedule: Schedule) -> dict[int, int]:
    return {p.meeting: p.slot for p in schedule.placements}


def test_exact_beats_first_come_first_served_where_order_matters() -> None:
    # A (10) can meet at 0 or 1; B (12) only at 0. FCFS gives A-11 slot 0 first, so A-12
    # no longer fits; the exact model moves A-11 to slot 1.
    problem = Problem(
        TWO_SLOTS,
        (Place(100, 4), Place(101, 4)),
        (Meeting(1, (10, 11), 0.5), Meeting(2, (10, 12), 0.5)),
        availability={12: frozenset({0})},
    )
    fcfs = greedy_fcfs(problem)
    exact = solve_exact(problem, time_limit_s=5)
    assert placed(fcfs) == {1: 0} and fcfs.unplaced == (2,)
    assert placed(exact) == {1: 1, 2: 0}
    assert exact.status == "optimal" and exact.gap == 0
    assert violations(problem, exact.placements) == []


def test_must_meets_come_first() -> None:
    # One slot, one table: the must-meet wins although its score is far lower.
    problem = Problem(
        (Slot(0, 1),),
        ONE_TABLE,
        (Meeting(1, (10, 11), 0.95), Meeting(2, (12, 13), 0.05, must_meet=True)),
    )
    schedule = solve_exact(problem, time_limit_s=5)
    assert placed(schedule) == {2: 0} and schedule.must_meets_placed == 1


def test_value_decides_between_meetings() -> None:
    problem = Problem(
        (Slot(0, 1),), ONE_TABLE, (Meeting(1, (10, 11), 0.3), Meeting(2, (12, 13), 0.8))
    )
    schedule = solve_exact(problem, time_limit_s=5)
    assert placed(schedule) == {2: 0} and schedule.unplaced == (1,)
    assert schedule.total_value == pytest.approx(0.8)


def test_seats_session_limits_and_availability_hold() -> None:
    slots = (Slot(0, 1), Slot(1, 1), Slot(2, 2), Slot(3, 2))
    problem = Problem(
        slots,
        (Place(100, 2), Place(101, 6)),
        (
            Meeting(1, (10, 11), 0.9, size=5),  # needs the 6-seat place
            Meeting(2, (10, 12), 0.8, size=5),
            Meeting(3, (10, 13), 0.7),
            Meeting(4, (14, 15), 0.6, size=7),  # no place seats 7
            Meeting(5, (16, 17), 0.5),
        ),
        availability={16: frozenset({3})},
        session_limit={10: 1},
    )
    schedule = solve_exact(problem, time_limit_s=5)
    assert violations(problem, schedule.placements) == []
    got = placed(schedule)
    assert 4 not in got and got[5] == 3
    # Participant 10 meets once per session: two of its three meetings.
    assert sum(1 for m in (1, 2, 3) if m in got) == 2
    for p in schedule.placements:
        if p.meeting in (1, 2):
            assert p.place == 101


def test_total_limit_holds() -> None:
    problem = Problem(
        TWO_SLOTS,
        (Place(100, 4), Place(101, 4)),
        (Meeting(1, (10, 11), 0.9), Meeting(2, (10, 12), 0.8)),
        total_limit={10: 1},
    )
    assert placed(solve_exact(problem, time_limit_s=5)) == {1: 0}
    assert placed(greedy_fcfs(problem)) == {1: 0}


def test_no_places_or_slots_is_infeasible() -> None:
    meeting = (Meeting(1, (10, 11), 0.5),)
    with pytest.raises(InfeasibleProblem):
        solve_exact(Problem(TWO_SLOTS, (), meeting))
    with pytest.raises(InfeasibleProblem):
        greedy_fcfs(Problem((), ONE_TABLE, meeting))
    with pytest.raises(ValueError, match="same party"):
        solve_exact(Problem(TWO_SLOTS, ONE_TABLE, (Meeting(1, (10, 10), 0.5),)))


def test_repair_fills_a_freed_slot_from_standby_without_moving_anyone() -> None:
    slots = tuple(Slot(i, 1) for i in range(3))
    meetings = (
        Meeting(1, (10, 11), 0.9),
        Meeting(2, (12, 13), 0.8),
        Meeting(3, (14, 15), 0.7),
        Meeting(4, (16, 17), 0.2),
    )
    problem = Problem(slots, ONE_TABLE, meetings)
    first = solve_exact(problem, time_limit_s=5)
    assert first.unplaced == (4,)
    previous = {p.meeting: (p.slot, p.place) for p in first.placements}
    after = Problem(slots, ONE_TABLE, tuple(m for m in meetings if m.id != 2))
    repaired = repair(after, previous, time_limit_s=5)
    got = placed(repaired)
    assert got[4] == previous[2][0]  # the standby meeting takes the freed slot
    assert got[1] == previous[1][0] and got[3] == previous[3][0]
    assert repaired.moved == 0 and repaired.dropped == 0


def test_repair_moves_as_few_meetings_as_needed() -> None:
    # 10 meets 11 in slot 0; a new meeting of 10 with 12, who can only come at 0, needs one
    # move (10-11 to slot 1), and only one.
    problem = Problem(
        TWO_SLOTS,
        (Place(100, 4), Place(101, 4)),
        (Meeting(1, (10, 11), 0.5), Meeting(2, (20, 21), 0.5), Meeting(3, (10, 12), 0.9)),
        availability={12: frozenset({0})},
    )
    previous = {1: (0, 100), 2: (0, 101)}
    repaired = repair(problem, previous, time_limit_s=5)
    assert placed(repaired) == {1: 1, 2: 0, 3: 0}
    assert repaired.moved == 1 and repaired.dropped == 0
    # Meeting 2 stayed at its table too.
    assert next(p.place for p in repaired.placements if p.meeting == 2) == 101


def test_repair_keeps_published_meetings_over_more_valuable_new_ones() -> None:
    problem = Problem(
        (Slot(0, 1),), ONE_TABLE, (Meeting(1, (10, 11), 0.1), Meeting(2, (12, 13), 0.99))
    )
    repaired = repair(problem, {1: (0, 100)}, time_limit_s=5)
    assert placed(repaired) == {1: 0} and repaired.unplaced == (2,)


def test_places_are_kept_when_meetings_stay() -> None:
    problem = Problem(
        (Slot(0, 1),),
        (Place(1, 4), Place(2, 4), Place(3, 4)),
        (Meeting(7, (1, 2), 0.5), Meeting(8, (3, 4), 0.5)),
    )
    assert assign_places(problem, {7: 0, 8: 0}, {7: (0, 3), 8: (0, 2)}) == {7: 3, 8: 2}


def test_slots_and_blocks() -> None:
    assert session_slots(540, 640, 20, [(580, 600)]) == [
        (540, 560),
        (560, 580),
        (600, 620),
        (620, 640),
    ]
    assert session_slots(540, 550, 20) == []
    slots = tuple(Slot(i, 1) for i in range(4))
    blocks = slot_blocks(Problem(slots, ONE_TABLE, (), availability={5: frozenset({0, 1})}))
    assert [b.slots for b in blocks] == [(0, 1), (2, 3)]


def test_mid_size_event_is_valid_near_optimal_and_beats_fcfs() -> None:
    problem = synthetic_event(participants=120, requests=600, tables=15, seed=3)
    fcfs = greedy_fcfs(problem)
    exact = solve_exact(problem, time_limit_s=10)
    assert violations(problem, exact.placements) == []
    assert violations(problem, fcfs.placements) == []
    assert exact.meetings_placed >= fcfs.meetings_placed
    assert exact.total_value > fcfs.total_value
    assert exact.must_meets_placed == sum(m.must_meet for m in problem.meetings)
    assert exact.gap <= 0.01 and exact.objective <= exact.best_bound
    placed_ids = {p.meeting for p in exact.placements}
    assert set(exact.unplaced) == {m.id for m in problem.meetings} - placed_ids


def test_cp_sat_closes_the_gap_the_lp_leaves() -> None:
    # Three parties who all want to meet each other, one slot: the LP relaxation takes half of
    # each meeting (1.5 meetings); only CP-SAT proves that one meeting is the best there is.
    problem = Problem(
        (Slot(0, 1),),
        (Place(100, 4), Place(101, 4)),
        (Meeting(1, (10, 11), 0.6), Meeting(2, (11, 12), 0.6), Meeting(3, (10, 12), 0.6)),
    )
    schedule = solve_exact(problem, time_limit_s=5)
    assert schedule.meetings_placed == 1
    assert schedule.status == "optimal" and schedule.bound_source == "cp-sat"
    assert schedule.best_bound == schedule.objective == 600
