"""The local re-ranking engine keeps ranking while its caller stores earlier results."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from app.services.rerank import LocalEngine
from matching.batch import ChunkResult
from matching.ranker import MatchQuery


class _RecordingEngine(LocalEngine):
    """Ranking replaced by a short sleep that records when each chunk started."""

    def __init__(self, threads: int) -> None:
        super().__init__(batch=None, query=MatchQuery(), threads=threads)  # type: ignore[arg-type]
        self.started: list[tuple[int, float]] = []
        self._lock = threading.Lock()

    def _rank(self, ids: np.ndarray) -> ChunkResult:
        with self._lock:
            self.started.append((int(ids[0]), time.monotonic()))
        time.sleep(0.02)
        empty = np.zeros(0, dtype=np.int64)
        return ChunkResult(
            (), ids, np.zeros(len(ids)), empty, empty, empty, np.zeros(0), np.zeros((0, 0))
        )


async def test_chunks_are_ranked_while_the_caller_stores_results() -> None:
    engine = _RecordingEngine(threads=2)
    chunks = [(i, np.array([i], dtype=np.int64)) for i in range(8)]
    seen = []
    storing_started = None
    async for index, result in engine.results(chunks):
        seen.append(index)
        assert result.subjects.tolist() == [index]
        if storing_started is None:
            storing_started = time.monotonic()
            await asyncio.sleep(0.2)  # a slow commit: awaiting the store
    assert sorted(seen) == list(range(8))
    # While the first result was being stored, the threads went on with more chunks (two
    # running and two finished, waiting to be taken), not only with the one still running.
    assert storing_started is not None
    during = [i for i, at in engine.started if storing_started <= at < storing_started + 0.2]
    assert len(during) >= 2, engine.started


@pytest.mark.parametrize("threads", [1, 3])
async def test_every_chunk_comes_back_once(threads: int) -> None:
    engine = _RecordingEngine(threads=threads)
    chunks = [(i, np.array([10 * i], dtype=np.int64)) for i in range(7)]
    found = {index: result.subjects.tolist() async for index, result in engine.results(chunks)}
    assert found == {i: [10 * i] for i in range(7)}
