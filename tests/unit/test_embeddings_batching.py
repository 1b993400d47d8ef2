"""Micro-batching: concurrent callers share model calls and get exactly their own rows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from embeddings import BatchingEncoder, HashingEncoder
from embeddings.encoder import FloatMatrix


class RecordingEncoder:
    """HashingEncoder that records each model call and fails on texts containing "boom"."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self._inner = HashingEncoder(dim=32)
        self.name = self._inner.name
        self.dim = self._inner.dim
        self.delay_s = delay_s
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self._in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self.batches.append(len(texts))
            self.threads.add(threading.get_ident())
            if self.delay_s:
                threading.Event().wait(self.delay_s)
            if any("boom" in text for text in texts):
                raise ValueError("model failed")
            return self._inner.encode(texts)
        finally:
            with self._lock:
                self._in_flight -= 1


def _requests(n: int) -> list[list[str]]:
    return [[f"org {i} offers assay {j}" for j in range(1 + i % 3)] for i in range(n)]


async def test_concurrent_callers_get_what_the_direct_encoder_returns() -> None:
    encoder = RecordingEncoder(delay_s=0.01)
    requests = _requests(50)

    async with BatchingEncoder(encoder, max_batch=64, max_wait_ms=5) as batcher:
        results = await asyncio.gather(*(batcher.encode(texts) for texts in requests))

    for texts, rows in zip(requests, results, strict=True):
        np.testing.assert_array_equal(rows, encoder._inner.encode(texts))
        assert rows.dtype == np.float32
    assert sum(encoder.batches) == sum(len(texts) for texts in requests)
    assert len(encoder.batches) <= 4  # 100 texts in batches of up to 64 (+ one caller overshoot)
    assert encoder.max_in_flight == 1
    assert threading.get_ident() not in encoder.threads  # the model ran off the event loop


async def test_a_lone_caller_waits_at_most_max_wait() -> None:
    encoder = RecordingEncoder()

    async with BatchingEncoder(encoder, max_wait_ms=1) as batcher:
        rows = await asyncio.wait_for(batcher.encode(["one text"]), timeout=5)

    assert rows.shape == (1, 32) and encoder.batches == [1]


async def test_errors_reach_every_caller_of_the_failing_batch_and_later_calls_work() -> None:
    encoder = RecordingEncoder(delay_s=0.01)

    async with BatchingEncoder(encoder, max_batch=64, max_wait_ms=20) as batcher:
        results = await asyncio.gather(
            batcher.encode(["fine"]), batcher.encode(["boom"]), return_exceptions=True
        )
        later = await batcher.encode(["fine again"])

    assert all(isinstance(result, ValueError) for result in results)
    assert later.shape == (1, 32)


async def test_wrong_shape_from_the_encoder_is_an_error_not_wrong_rows() -> None:
    class Broken(RecordingEncoder):
        def encode(self, texts: Sequence[str]) -> FloatMatrix:
            return super().encode(texts)[:-1]

    async with BatchingEncoder(Broken()) as batcher:
        with pytest.raises(RuntimeError, match="shape"):
            await batcher.encode(["a", "b"])


async def test_no_texts_needs_no_model_call() -> None:
    encoder = RecordingEncoder()

    async with BatchingEncoder(encoder) as batcher:
        rows = await batcher.encode([])

    assert rows.shape == (0, 32) and encoder.batches == []


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    encoder = RecordingEncoder(delay_s=0.05)

    async with BatchingEncoder(encoder, max_wait_ms=10) as batcher:
        doomed = asyncio.ensure_future(batcher.encode(["gone"]))
        kept = asyncio.ensure_future(batcher.encode(["kept"]))
        await asyncio.sleep(0)
        doomed.cancel()
        rows = await kept

    assert doomed.cancelled()
    np.testing.assert_array_equal(rows, encoder._inner.encode(["kept"]))


async def test_closing_serves_queued_texts_then_refuses_new_ones() -> None:
    encoder = RecordingEncoder(delay_s=0.01)
    batcher = BatchingEncoder(encoder, max_wait_ms=50)
    with pytest.raises(RuntimeError, match="not running"):
        await batcher.encode(["too early"])
    await batcher.start()

    pending = asyncio.ensure_future(batcher.encode(["queued"]))
    await asyncio.sleep(0)
    await batcher.aclose()

    assert (await pending).shape == (1, 32)
    with pytest.raises(RuntimeError, match="not running"):
        await batcher.encode(["too late"])


async def test_an_encoder_with_lanes_gets_one_batch_per_lane_at_a_time() -> None:
    encoder = RecordingEncoder(delay_s=0.02)
    encoder.lanes = 2  # type: ignore[attr-defined]
    requests = _requests(40)

    async with BatchingEncoder(encoder, max_batch=8, max_wait_ms=1) as batcher:
        assert batcher.lanes == 2
        results = await asyncio.gather(*(batcher.encode(texts) for texts in requests))

    assert encoder.max_in_flight == 2  # both lanes busy, never more
    for texts, rows in zip(requests, results, strict=True):
        np.testing.assert_array_equal(rows, encoder._inner.encode(texts))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BatchingEncoder(HashingEncoder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        BatchingEncoder(HashingEncoder(), max_wait_ms=-1)
    with pytest.raises(ValueError, match="lanes"):
        BatchingEncoder(HashingEncoder(), lanes=0)
    assert BatchingEncoder(HashingEncoder()).lanes == 1
