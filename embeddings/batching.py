"""Micro-batching of concurrent encode calls, so many small HTTP requests share model calls.

The model costs far less per text in a batch of 32 than one text at a time. ``BatchingEncoder``
collects the texts of concurrent callers for up to ``max_wait_ms`` (or until ``max_batch`` texts),
runs one model call off the event loop, and hands each caller its own rows. Texts that arrive while
the model is busy form the next batch at once, so under load the wait costs nothing. An encoder
with several lanes (``SentenceTransformerEncoder.lanes``) gets one batch per lane at a time.

Batch jobs call the wrapped encoder directly (``batcher.encoder.encode``): same model, no loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio
import anyio.to_thread
import numpy as np

from embeddings.encoder import Encoder, FloatMatrix, LoadingEncoder, ModelLoadError


@dataclass(slots=True)
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[FloatMatrix]
    enqueued_at: float


class BatchingEncoder:
    """Async micro-batcher around an ``Encoder``; one model call per lane of the encoder at a
    time (``lanes``, default ``encoder.lanes`` or 1), each in a worker thread.

    Use as ``async with BatchingEncoder(encoder) as batcher: rows = await batcher.encode(texts)``,
    or call ``start()`` and ``aclose()``. Closing serves what is already queued, then stops.
    A caller's texts are never split across batches, so a batch can exceed ``max_batch`` by one
    caller's texts (the encoder still chunks by its own batch size).
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        lanes: int | None = None,
    ) -> None:
        if lanes is not None and lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.encoder = encoder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self._lanes = lanes
        self._queue: asyncio.Queue[_Request | None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._limiter: anyio.CapacityLimiter | None = None
        self._free_lanes: asyncio.Semaphore | None = None
        self._running: dict[asyncio.Task[None], list[_Request]] = {}
        self._closing = False

    @property
    def lanes(self) -> int:
        """Model calls at a time: as given, else the encoder's own ``lanes`` (a model still
        loading has its lanes read once it has loaded)."""
        return self._lanes if self._lanes is not None else int(getattr(self.encoder, "lanes", 1))

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    async def start(self) -> None:
        """Start the batching task on the running event loop."""
        if self._worker is not None:
            raise RuntimeError("BatchingEncoder already started")
        self._queue = asyncio.Queue()
        self._closing = False
        self._worker = asyncio.create_task(self._serve(), name="embeddings-batching")

    async def aclose(self) -> None:
        """Encode what is already queued, then stop; later ``encode`` calls raise RuntimeError.
        A model still loading is waited for first."""
        if self._worker is None or self._queue is None:
            return
        self._closing = True
        self._queue.put_nowait(None)
        try:
            await self._worker
        finally:
            self._worker = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Rows for ``texts``, exactly as ``encoder.encode(texts)`` would return them.

        Raises whatever the encoder raised for the batch these texts were in.
        """
        if self._queue is None or self._worker is None or self._closing:
            raise RuntimeError("BatchingEncoder is not running: use 'async with' or start()")
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        loop = asyncio.get_running_loop()
        request = _Request(list(texts), loop.create_future(), loop.time())
        self._queue.put_nowait(request)
        return await request.future

    async def _serve(self) -> None:
        assert self._queue is not None
        queue = self._queue
        if isinstance(self.encoder, LoadingEncoder):
            # Texts queue up while the model loads; a failed load fails each batch below.
            with contextlib.suppress(ModelLoadError):
                await self.encoder.loaded()
        # A private limiter, one thread per lane: batches do not compete with other to_thread
        # work for anyio's default 40 threads.
        self._limiter = anyio.CapacityLimiter(self.lanes)
        self._free_lanes = free_lanes = asyncio.Semaphore(self.lanes)
        batch: list[_Request] = []
        stopping = False
        try:
            while not stopping:
                # Start collecting once a lane is free: what queues meanwhile joins this batch.
                await free_lanes.acquire()
                free_lanes.release()
                first = await queue.get()
                if first is None:
                    break
                batch = [first]
                n_texts = len(first.texts)
                # The deadline counts from the oldest request: texts that queued up while the
                # model was busy have waited long enough and go at once.
                deadline = first.enqueued_at + self.max_wait_s
                while n_texts < self.max_batch:
                    try:
                        if queue.empty():
                            async with asyncio.timeout_at(deadline):
                                item = await queue.get()
                        else:
                            item = queue.get_nowait()
                    except TimeoutError:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                    n_texts += len(item.texts)
                await free_lanes.acquire()
                running = asyncio.create_task(self._run_batch(batch))
                self._running[running] = batch
                running.add_done_callback(self._lane_done)
                batch = []
            if self._running:  # closing: finish the batches under way
                await asyncio.wait(list(self._running))
        finally:
            # Only reached with callers still waiting if the task was cancelled (loop shutdown).
            for under_way in self._running.values():
                batch.extend(under_way)
            while not queue.empty():
                if (item := queue.get_nowait()) is not None:
                    batch.append(item)
            _fail(batch, RuntimeError("BatchingEncoder closed"))

    def _lane_done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        assert self._free_lanes is not None
        self._free_lanes.release()

    async def _run_batch(self, batch: list[_Request]) -> None:
        live = [request for request in batch if not request.future.done()]  # drop cancelled callers
        if not live:
            return
        texts = [text for request in live for text in request.texts]
        try:
            rows = await anyio.to_thread.run_sync(self.encoder.encode, texts, limiter=self._limiter)
            if rows.shape != (len(texts), self.encoder.dim):
                raise RuntimeError(
                    f"encoder {self.encoder.name!r} returned shape {rows.shape} "
                    f"for {len(texts)} texts of dim {self.encoder.dim}"
                )
        except Exception as error:
            _fail(live, error)
            return
        start = 0
        for request in live:
            end = start + len(request.texts)
            if not request.future.done():
                request.future.set_result(rows[start:end])
            start = end


def _fail(requests: list[_Request], error: BaseException) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)
