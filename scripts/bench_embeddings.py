"""Benchmark of the embeddings package: model throughput, micro-batching and vector index search.

Run: ``.venv/bin/python -m scripts.bench_embeddings`` (5-10 minutes on 2 idle cores; ``--quick``
skips the 100k index). Prints figures only; nothing here asserts on wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import faiss
import numpy as np
import numpy.typing as npt
import torch
from threadpoolctl import threadpool_limits

from embeddings import BatchingEncoder, SentenceTransformerEncoder, VectorIndex, profile_texts

_KINDS = ("university", "sme", "startup", "hospital", "research_institute", "large_company")
_SECTORS = ("biotech", "pharma", "medtech", "digital_health", "diagnostics", "nutrition", "ai")
_METHODS = (
    "deep-learning image analysis",
    "CRISPR-based gene editing",
    "mass-spectrometry proteomics",
    "microfluidic point-of-care assays",
    "wearable ECG sensors",
    "single-cell RNA sequencing",
    "organ-on-chip models",
    "mRNA formulation in lipid nanoparticles",
    "federated analysis of health records",
    "fermentation of probiotic strains",
    "high-content phenotypic screening",
    "natural-language processing of clinical notes",
)
_TARGETS = (
    "digital pathology",
    "early cancer detection",
    "antimicrobial resistance",
    "rare-disease diagnosis",
    "cardiac monitoring at home",
    "functional foods for the elderly",
    "neurodegenerative disease",
    "type 2 diabetes management",
    "veterinary diagnostics",
    "sepsis prediction in intensive care",
    "personalised oncology",
    "orthopaedic implants",
)
_SENTENCES = (
    "We develop {m} for {t}.",
    "Our team of {n} researchers applies {m} to {t} together with university hospitals.",
    "The group has run {n} clinical studies on {t} and validated {m} in a multicentre trial.",
    "We operate a certified laboratory offering {m} as a service to companies.",
    "Our platform combines {m} with {m2} to shorten development times in {t}.",
    "We are looking for industrial partners to scale up {m} and reach the market for {t}.",
    "Since {y} we have coordinated European projects on {t}.",
    "The unit hosts core facilities for {m} and trains PhD students in {t}.",
)


def realistic_profiles(n: int, seed: int = 0) -> list[str]:
    """``n`` plausible life-science profile texts of about 40-120 words, via ``profile_texts``."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        sentences = []
        for _ in range(rng.randint(2, 6)):
            m, m2 = rng.sample(_METHODS, 2)
            template = rng.choice(_SENTENCES)
            n_staff, year = rng.randint(5, 300), rng.randint(1990, 2022)
            sentences.append(template.format(m=m, m2=m2, t=rng.choice(_TARGETS), n=n_staff, y=year))
        texts.append(
            profile_texts(
                name=f"Org {i} {rng.choice(['Bio', 'Med', 'Gen', 'Neuro', 'Cardio'])}"
                f"{rng.choice(['Labs', 'Tech', 'Health', 'Sciences'])}",
                kind=rng.choice(_KINDS),
                sectors=rng.sample(_SECTORS, rng.randint(1, 3)),
                description=" ".join(sentences),
                offers=rng.sample(_METHODS, rng.randint(1, 3)),
                seeks=[],
                keywords=rng.sample(_TARGETS, rng.randint(1, 4)),
            )["profile"]
        )
    return texts


def bench_model(encoder: SentenceTransformerEncoder, texts: list[str]) -> None:
    """Texts/s per batch size, whole list per call (wall clock, and CPU time per text)."""
    words = [len(text.split()) for text in texts]
    print(
        f"\n## Real model ({encoder.name}), {len(texts)} profile texts, "
        f"{min(words)}-{max(words)} words (mean {statistics.mean(words):.0f}), best of 3, "
        f"{encoder.lanes} lanes, torch threads {torch.get_num_threads()}"
    )
    encoder.encode(texts[:64])  # warm-up: first calls allocate
    default = encoder.batch_size
    for size in (16, 32, 64, 128):
        encoder.batch_size = size
        rate, cpu_ms = _rate(lambda: encoder.encode(texts), len(texts))
        print(f"batch_size {size:4d}: {rate:6.1f} texts/s  {cpu_ms:5.1f} CPU-ms/text")
    encoder.batch_size = default


async def _batched(
    encoder: SentenceTransformerEncoder, texts: list[str], callers: int, per_call: int
) -> None:
    calls = iter([texts[i : i + per_call] for i in range(0, len(texts), per_call)])

    async def caller(batcher: BatchingEncoder) -> None:
        for chunk in calls:  # callers share the work: a closed loop, like HTTP clients
            await batcher.encode(chunk)

    async with BatchingEncoder(encoder, max_batch=64, max_wait_ms=5) as batcher:
        await asyncio.gather(*(caller(batcher) for _ in range(callers)))


def bench_batching(encoder: SentenceTransformerEncoder, texts: list[str]) -> None:
    """BatchingEncoder against the raw model, interleaved so machine load hits all three alike."""
    print(
        f"\n## BatchingEncoder (max_batch 64, max_wait 5 ms) vs raw model, batch_size "
        f"{encoder.batch_size}, 32 concurrent callers x 3 texts, best of 3 interleaved rounds"
    )
    # The whole list at once lets the model sort all texts by length before batching (least
    # padding), which a server never can; chunks of 64 in arrival order are what it sees.
    runs: dict[str, Callable[[], object]] = {
        "raw, whole list": lambda: encoder.encode(texts),
        "raw, chunks of 64": lambda: [
            encoder.encode(texts[i : i + 64]) for i in range(0, len(texts), 64)
        ],
        "BatchingEncoder": lambda: asyncio.run(_batched(encoder, texts, 32, 3)),
    }
    best = dict.fromkeys(runs, (0.0, 0.0))
    for _ in range(3):
        for name, work in runs.items():
            rate, cpu_ms = _rate(work, len(texts), repeats=1)
            best[name] = max(best[name], (rate, cpu_ms))
    for name, (rate, cpu_ms) in best.items():
        share = rate / best["raw, whole list"][0]
        print(f"{name:18s}: {rate:6.1f} texts/s  {cpu_ms:5.1f} CPU-ms/text  {share:4.0%} of raw")


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms: npt.NDArray[np.float32] = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / norms).astype(np.float32)


def random_vectors(n: int, dim: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    return _unit(rng.standard_normal((n, dim), dtype=np.float32))


def clustered_vectors(n: int, dim: int, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Topic mixture: each vector near one of n/50 topic centres, like embedded profiles."""
    centres = random_vectors(max(1, n // 50), dim, rng)
    noise = rng.standard_normal((n, dim), dtype=np.float32) * 0.06
    return _unit(centres[rng.integers(0, len(centres), n)] + noise)


def bench_index(vectors: npt.NDArray[np.float32], data: str, exact_threshold: int) -> VectorIndex:
    """Build time, query latency and recall@50 against the exact answer; returns the index."""
    n, dim = vectors.shape
    rng = np.random.default_rng(1)
    ids = rng.permutation(10 * n)[:n].astype(np.int64) + 1_000_000  # arbitrary, not positions
    index = VectorIndex(dim, exact_threshold=exact_threshold)
    build_s = _timed(lambda: index.build(ids, vectors))
    queries = rng.choice(n, size=200, replace=False)
    k = 50
    exact = vectors[queries] @ vectors.T
    exact[np.arange(len(queries)), queries] = -np.inf  # a query is not its own neighbour
    recall_hits = 0
    latencies = []
    for row, q in enumerate(queries):
        started = time.perf_counter()
        found, _ = index.search(vectors[q], k, exclude={int(ids[q])})
        latencies.append(time.perf_counter() - started)
        recall_hits += len(np.intersect1d(found, ids[np.argpartition(-exact[row], k - 1)[:k]]))
    ms = np.array(latencies) * 1000
    layout = index.kind if index.nprobe is None else f"ivf nprobe {index.nprobe}"
    print(
        f"{data:9s} {n:7d}  threshold {exact_threshold:6d}  {layout:15s} build {build_s:6.2f} s  "
        f"query p50 {np.median(ms):6.3f} ms  p99 {np.percentile(ms, 99):6.3f} ms  "
        f"recall@50 {recall_hits / (len(queries) * k):.3f}"
    )
    return index


def bench_threads(flat: VectorIndex, ivf: VectorIndex, queries: npt.NDArray[np.float32]) -> None:
    """Single-query latency with 1 or 2 BLAS threads (flat scan) and OpenMP threads (faiss IVF)."""
    for label, index in (("flat", flat), (f"ivf nprobe {ivf.nprobe}", ivf)):
        for threads in (1, 2):
            with threadpool_limits(limits=threads):
                ms = [1000 * _timed(functools.partial(index.search, q, 50)) for q in queries]
            print(
                f"{label:15s} {len(index):7d}, BLAS/OpenMP threads {threads}: "
                f"p50 {np.median(ms):6.3f} ms  p99 {np.percentile(ms, 99):6.3f} ms"
            )


def _rate(work: Callable[[], object], n_texts: int, repeats: int = 3) -> tuple[float, float]:
    """Best texts/s over ``repeats`` runs, and the CPU milliseconds per text of that run."""
    best = (0.0, 0.0)
    for _ in range(repeats):
        cpu_started = time.process_time()
        seconds = _timed(work)
        cpu_s = time.process_time() - cpu_started
        best = max(best, (n_texts / seconds, 1000 * cpu_s / n_texts))
    return best


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def bench_indexes(*, quick: bool) -> None:
    print("\n## VectorIndex, 384-d unit vectors, 200 queries (indexed vectors, self excluded)")
    rng = np.random.default_rng(0)
    for n in (10_000,) if quick else (10_000, 100_000):
        for data in ("random", "clustered"):
            make = random_vectors if data == "random" else clustered_vectors
            vectors = make(n, 384, rng)
            flat = bench_index(vectors, data, exact_threshold=n)  # exact scan
            auto = bench_index(vectors, data, exact_threshold=n // 10)  # IVF where it pays
        if auto.kind == "ivf":
            bench_threads(flat, auto, vectors[:300])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--texts", type=int, default=512, help="profile texts for the model runs")
    parser.add_argument("--quick", action="store_true", help="skip the 100k-vector index runs")
    parser.add_argument(
        "--parts", default="model,batching,index", help="comma-separated subset to run"
    )
    parser.add_argument(
        "--lanes", type=int, help="model lanes (default: one per CPU; 1 = torch's threads)"
    )
    parser.add_argument("--torch-threads", type=int, help="torch intra-op threads with --lanes 1")
    args = parser.parse_args(argv)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # show progress while it runs
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at start")
    print(
        f"torch {torch.__version__} threads {torch.get_num_threads()}, "
        f"faiss {faiss.__version__} omp threads {faiss.omp_get_max_threads()}"
    )

    parts = set(args.parts.split(","))
    if parts & {"model", "batching"}:
        started = time.perf_counter()
        encoder = SentenceTransformerEncoder(lanes=args.lanes)
        print(f"model load: {time.perf_counter() - started:.1f} s")
        texts = realistic_profiles(args.texts)
        if "model" in parts:
            bench_model(encoder, texts)
        if "batching" in parts:
            bench_batching(encoder, texts)
    if "index" in parts:
        bench_indexes(quick=args.quick)
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
