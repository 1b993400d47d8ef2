"""The H2020 quality benchmark through the product: import the history with the product's
importer, rank each query with the same function the matches endpoint calls, evaluate."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np

from app.errors import Unprocessable
from app.services.context import ServiceContext
from app.services.derived import load_collaborations
from app.services.importer import H2020_CLUSTER, import_batch, read_h2020
from graph import CollaborationGraph
from matching.catalog import CandidateFilter
from matching.ranker import MatchingState, MatchQuery, rank_partners
from matching.scoring import DEFAULT_MODEL
from matching.training import build_training_set, fit_artefact, write_artefact

Say = Callable[[str], None]


def read_query_ids(path: Path) -> list[str]:
    """The ``query_id`` column of a queries CSV (e.g. heldout_dev.csv), distinct, in order."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if "query_id" not in (reader.fieldnames or []):
                raise Unprocessable(f"{path}: no query_id column")
            ids = list(dict.fromkeys(row["query_id"].strip() for row in reader))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"{path}: unreadable ({exc})") from None
    ids = [i for i in ids if i]
    if not ids:
        raise Unprocessable(f"{path}: no queries")
    return ids


async def rank_benchmark(
    ctx: ServiceContext,
    bench_dir: Path,
    query_ids: list[str],
    *,
    top: int,
    out: Path,
    say: Say,
    query: MatchQuery | None = None,
) -> dict[str, float]:
    """Import (or reuse) the benchmark history, rank every query, write the rankings CSV
    atomically. ``query`` defaults to the API's defaults restricted to the benchmark's
    organisations. Returns timings in seconds."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    batch = read_h2020(bench_dir)
    report = await import_batch(ctx, batch, progress=say, chunk_size=2_000)
    timings["import"] = time.perf_counter() - t0
    say(
        f"store: {report.organisations_created} organisations imported, "
        f"{report.organisations_existing} reused; {report.collaborations_created} collaborations "
        f"imported, {report.collaborations_existing} reused"
    )

    id_of_pic, pic_of_id = await _pic_maps(ctx)
    unknown = [q for q in query_ids if q not in id_of_pic]
    if unknown:
        raise Unprocessable(
            f"{len(unknown)} query ids are not benchmark organisations, e.g. {unknown[:5]}"
        )
    base = query or MatchQuery()
    query = MatchQuery(
        limit=top,
        filter=CandidateFilter(clusters=(H2020_CLUSTER,)),
        cross_preference=base.cross_preference,
        diversity=base.diversity,
        include_existing=False,
        explain=False,
    )
    state = ctx.derived.state

    def rank_all() -> list[tuple[str, int, str, float]]:
        rows = []
        started = time.perf_counter()
        for n, pic in enumerate(query_ids, start=1):
            for rank, match in enumerate(rank_partners(state, id_of_pic[pic], query), start=1):
                rows.append((pic, rank, pic_of_id[match.organisation.id], match.score))
            if n % 100 == 0 or n == len(query_ids):
                say(f"ranked {n}/{len(query_ids)} ({time.perf_counter() - started:.1f} s)")
        return rows

    t0 = time.perf_counter()
    rows = await anyio.to_thread.run_sync(rank_all)
    timings["rank"] = time.perf_counter() - t0
    write_atomically(out, rows)
    return timings


def write_atomically(out: Path, rows: list[tuple[str, int, str, float]]) -> None:
    """Write the rankings CSV so that a crash never leaves a partial file behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["query_id", "rank", "candidate_id", "score"])
            for pic, rank, cand, score in rows:
                writer.writerow([pic, rank, cand, f"{score:.6f}"])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_rankings(path: Path) -> dict[str, list[str]]:
    """A rankings CSV (query_id,rank,candidate_id,score) as {query: [candidates by rank]}."""
    by_query: dict[str, list[tuple[int, str]]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"query_id", "rank", "candidate_id"} - set(reader.fieldnames or [])
            if missing:
                raise Unprocessable(f"{path}: missing columns {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                try:
                    rank = int(row["rank"])
                except ValueError:
                    raise Unprocessable(
                        f"{path}:{line}: rank {row['rank']!r} is not a number"
                    ) from None
                by_query.setdefault(row["query_id"], []).append((rank, row["candidate_id"]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"{path}: unreadable ({exc})") from None
    return {q: [c for _, c in sorted(items)] for q, items in by_query.items()}


async def _pic_maps(ctx: ServiceContext) -> tuple[dict[str, int], dict[int, str]]:
    from sqlalchemy import select

    from app.store import models as m

    async with ctx.db.read() as session:
        rows = (
            await session.execute(
                select(m.ExternalId.value, m.ExternalId.organisation_id).where(
                    m.ExternalId.scheme == "pic"
                )
            )
        ).all()
    return {v: i for v, i in rows}, {i: v for v, i in rows}


async def fit_ranker(
    ctx: ServiceContext,
    bench_dir: Path,
    *,
    train_year: int,
    out: Path,
    say: Say,
    drop_groups: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Fit the ranker on the product's own features: graph of collaborations before
    ``train_year`` -> pairs of benchmark organisations that first worked together in it."""
    batch = read_h2020(bench_dir)
    await import_batch(ctx, batch, progress=say, chunk_size=2_000)
    current = ctx.derived.state
    collaborations = await load_collaborations(ctx.db)
    before = [c for c in collaborations if c.year is not None and c.year < train_year]
    window = [c for c in collaborations if c.year == train_year]
    members = set(current.catalog.filtered_ids(CandidateFilter(clusters=(H2020_CLUSTER,))).tolist())

    def fit() -> dict[str, Any]:
        graph = CollaborationGraph.from_collaborations(
            current.catalog.all_ids().tolist(), before, reference_year=train_year - 1
        )
        past = MatchingState(
            catalog=current.catalog, graph=graph, vectors=current.vectors, scorer=current.scorer
        )
        snapshot = past.snapshot()
        positives: dict[int, set[int]] = {}
        for collab in window:
            inside = [o for o in collab.organisation_ids if o in members]
            for a in inside:
                partners = set(snapshot.direct_partners(a).tolist())
                positives.setdefault(a, set()).update(
                    b for b in inside if b != a and b not in partners
                )
        positives = {q: p for q, p in positives.items() if p}
        say(f"training window {train_year}: {len(positives)} queries with new partners")
        training = build_training_set(
            past,
            positives,
            np.array(sorted(members), dtype=np.int64),
            drop_groups=drop_groups,
        )
        base = json.loads(DEFAULT_MODEL.read_text())
        suffix = (
            ""
            if not drop_groups
            else "-without-" + "-".join(g.replace(" ", "_") for g in drop_groups)
        )
        return fit_artefact(
            training,
            base,
            version=f"ranker-v2-h2020-{train_year}{suffix}",
            description=(
                f"Graph weights fitted by logistic regression on the H2020 health history: graph "
                f"of collaborations before {train_year}, labels = new pairs of {train_year}. "
                "Text weights hand-set (the benchmark has no text)."
            ),
        )

    artefact = await anyio.to_thread.run_sync(fit)
    write_artefact(out, artefact)
    return artefact
