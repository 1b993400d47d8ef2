"""A second thread that a ranking borrows while it has the process to itself.

A match request's costly parts are compiled loops that release the GIL: the graph sweeps
(two-step flow, proximity rows), the faiss searches and the item fits. The graph sweeps do not
need the text results and the text work does not need the graph's, so a ranking can run them
side by side. That helps only while a core is idle: under load every core already ranks
another request, and a second thread per ranking would only add hand-offs. So a ranking gets
the spare thread when it is the only one in flight (and the process may run on more than one
CPU); otherwise its work runs on its own thread, in the same order as before. Either way each
result comes from the same function with the same inputs, so it is the same to the last bit.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Generic, ParamSpec, Protocol, TypeVar

from embeddings.encoder import usable_cpus

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")


class Pending(Protocol[T_co]):
    """A result that :meth:`Helper.submit` started, or will compute when asked."""

    def result(self) -> T_co:
        """The value (waiting for it, or computing it now); re-raises what the work raised."""
        ...


class _OnAsk(Generic[T]):
    """Work that runs on the asking thread, once, when its result is first asked for."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._work: Callable[[], T] | None = work
        self._value: T | None = None

    def result(self) -> T:
        if self._work is not None:
            self._value, self._work = self._work(), None
        return self._value  # type: ignore[return-value]


class Helper:
    """What a ranking holds while it runs: ``submit`` starts work on the spare thread if the
    ranking got it, else defers the work to when its result is asked for."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._started: list[Future[object]] = []

    @property
    def is_parallel(self) -> bool:
        return self._pool is not None

    def submit(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Pending[T]:
        if self._pool is None:
            return _OnAsk(lambda: work(*args, **kwargs))
        future = self._pool.submit(work, *args, **kwargs)
        self._started.append(future)  # type: ignore[arg-type]
        return future

    def _settle(self) -> None:
        # A ranking that raised may leave work running; it ends before the thread is lent
        # again, so the next ranking never queues behind it.
        wait(self._started)


class SpareThread:
    """One spare thread, lent to a ranking when no other ranking is in flight.

    ``cpus`` is how many CPUs the process may use (default: its affinity mask); with one,
    nothing is ever lent.
    """

    def __init__(self, cpus: int | None = None) -> None:
        self._cpus = usable_cpus() if cpus is None else cpus
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0

    @contextmanager
    def borrowed(self) -> Iterator[Helper]:
        """A :class:`Helper` for one ranking: parallel when this ranking is alone."""
        with self._lock:
            self._in_flight += 1
            alone = self._in_flight == 1 and self._cpus > 1
            helper = Helper(self._thread() if alone else None)
        try:
            yield helper
        finally:
            helper._settle()
            with self._lock:
                self._in_flight -= 1

    def _thread(self) -> ThreadPoolExecutor:
        # A forked child (the re-ranking workers) has no copy of the parent's thread.
        if self._pool is None or self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ranking-spare")
            self._pool_pid = os.getpid()
        return self._pool
