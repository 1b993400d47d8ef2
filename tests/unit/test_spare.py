"""A ranking alone in its process borrows the spare thread; others run their work inline."""

from __future__ import annotations

import threading

import pytest

from matching import ranker
from matching.ranker import MatchQuery, rank_partners
from matching.spare import SpareThread
from tests.unit.test_batch import make_state


def test_a_lone_ranking_runs_submitted_work_on_the_spare_thread() -> None:
    spare = SpareThread(cpus=2)
    with spare.borrowed() as helper:
        assert helper.is_parallel
        ran_on = helper.submit(threading.get_ident).result()
    assert ran_on != threading.get_ident()


def test_a_second_ranking_in_flight_runs_its_work_inline_when_asked() -> None:
    spare = SpareThread(cpus=2)
    calls: list[int] = []
    with spare.borrowed() as first, spare.borrowed() as second:
        assert first.is_parallel and not second.is_parallel
        pending = second.submit(lambda: calls.append(threading.get_ident()) or len(calls))
        assert calls == []  # deferred until asked
        assert pending.result() == 1 and pending.result() == 1  # computed once
        assert calls == [threading.get_ident()]
    with spare.borrowed() as again:  # both ended: the next one is alone again
        assert again.is_parallel


def test_one_cpu_never_lends_the_thread() -> None:
    with SpareThread(cpus=1).borrowed() as helper:
        assert not helper.is_parallel
        assert helper.submit(threading.get_ident).result() == threading.get_ident()


def test_work_left_running_by_a_failed_ranking_ends_before_the_thread_is_lent_again() -> None:
    spare = SpareThread(cpus=2)
    release, finished = threading.Event(), threading.Event()

    def slow() -> None:
        release.wait(5)
        finished.set()

    def fail_while_it_runs() -> None:
        with spare.borrowed() as helper:
            helper.submit(slow)
            threading.Timer(0.05, release.set).start()
            raise RuntimeError("ranking failed")

    with pytest.raises(RuntimeError, match="ranking failed"):
        fail_while_it_runs()
    assert finished.is_set()


def test_errors_in_submitted_work_reach_the_ranking() -> None:
    def broken() -> None:
        raise ValueError("bad row")

    for cpus in (1, 2):
        with SpareThread(cpus=cpus).borrowed() as helper:
            pending = helper.submit(broken)
            with pytest.raises(ValueError, match="bad row"):
                pending.result()


def test_rank_partners_gives_the_same_lists_with_and_without_the_spare_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Candidate generation (graph expansion beside the searches) as on a large network.
    monkeypatch.setattr(ranker, "EXHAUSTIVE_LIMIT", 50)
    monkeypatch.setattr(ranker, "TEXT_CANDIDATES", 25)
    monkeypatch.setattr(ranker, "GRAPH_CANDIDATES", 30)
    state = make_state(400, seed=3)
    ids = state.catalog.all_ids().tolist()[::13]
    query = MatchQuery(limit=20)
    answers, spares = {}, {cpus: SpareThread(cpus=cpus) for cpus in (2, 1)}
    for cpus, spare in spares.items():
        state.spare = spare
        answers[cpus] = [
            [(m.organisation.id, m.score, m.components, m.explanation) for m in found]
            for found in (rank_partners(state, org_id, query) for org_id in ids)
        ]
    assert answers[2] == answers[1]
    assert spares[2]._pool is not None and spares[1]._pool is None  # lent, and never
    assert sum(len(found) for found in answers[2]) == 20 * len(ids)
