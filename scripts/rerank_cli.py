"""``multihelix rerank``: run (or resume) the batch re-ranking, list runs, export one."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

EXIT_CONFLICT = 3  # another run holds the lease


def add_parser(subparsers: Any) -> None:
    """Register ``rerank`` (and its ``list`` and ``export`` actions) on the main parser."""
    rerank = subparsers.add_parser(
        "rerank",
        help="compute every organisation's top partners as one versioned run",
        description="Rank every organisation's partners with the API's ranking code and "
        "publish them as one run (atomically, resumable after a crash). Without an action it "
        "runs; 'list' shows runs, 'export' writes one as CSV or Parquet.",
    )
    rerank.add_argument("--top", type=int, default=50, help="partners per organisation (1-100)")
    rerank.add_argument(
        "--only-changed",
        action="store_true",
        help="rank again only what changed since the published run, and the lists it can "
        "reach; copy the other lists (the same result as a full run)",
    )
    rerank.add_argument("--engine", choices=["local", "ray"], default="local")
    rerank.add_argument(
        "--ray-address", default=None, help="Ray cluster to join (default: start a local one)"
    )
    rerank.add_argument("--ray-workers", type=int, default=None, help="actors (default: CPUs)")
    rerank.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes the local engine ranks in, one chunk each (default: CPUs)",
    )
    rerank.add_argument(
        "--chunk-size", type=int, default=500, help="organisations per committed chunk"
    )
    rerank.add_argument("--no-progress", action="store_true", help="no progress bar")
    actions = rerank.add_subparsers(dest="rerank_command")
    actions.add_parser("list", help="runs, newest first, with status and progress")
    export = actions.add_parser("export", help="write a run's lists as CSV or Parquet")
    export.add_argument("--run", type=int, default=None, help="run id (default: the published)")
    export.add_argument("--out", type=Path, required=True, help="file to write (.csv/.parquet)")
    export.add_argument("--format", choices=["csv", "parquet"], default=None)


def run(args: argparse.Namespace) -> int:
    """Carry out ``multihelix rerank``; returns the exit status."""
    action = getattr(args, "rerank_command", None)
    if action == "list":
        return asyncio.run(_list())
    if action == "export":
        return asyncio.run(_export(args.run, args.out, args.format))
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from app.bootstrap import open_service
    from app.errors import Conflict, DomainError
    from app.services.rerank import RunOptions, run_rerank
    from app.settings import Settings

    options = RunOptions(
        top_k=args.top,
        only_changed=args.only_changed,
        engine=args.engine,
        ray_address=args.ray_address,
        ray_workers=args.ray_workers,
        chunk_size=args.chunk_size,
        workers=args.workers,
    )
    try:
        options.validate()
    except DomainError as exc:
        print(f"rerank: {exc.detail}", file=sys.stderr)
        return 2
    bar = None if args.no_progress else ProgressBar(sys.stderr)
    settings = Settings(load_demo_data=False)
    # Not following other processes' writes: the run ranks one fixed state from start to end.
    # The model loads only if a stored vector turns out stale (refresh_embeddings).
    async with open_service(settings, follow=False, model_on_demand=True) as ctx:
        try:
            report = await run_rerank(
                ctx,
                options,
                requested_by="cli",
                progress=bar.update if bar is not None else None,
                # This process serves nothing else: rank from the state it just loaded.
                private_state=False,
            )
        except Conflict as exc:
            print(f"rerank: {exc.detail}", file=sys.stderr)
            return EXIT_CONFLICT
        except DomainError as exc:
            print(f"rerank failed: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            if bar is not None:
                bar.close()
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    resumed = f" (resumed; {report.skipped_chunks} chunks were already committed)"
    print(
        f"run {report.run_id} {report.status}{resumed if report.resumed else ''}: "
        f"{report.ranked} organisations ranked, {report.copied} lists copied; {timings}"
    )
    return 0


async def _list() -> int:
    from app.services.rerank import list_runs
    from app.settings import Settings
    from app.store.database import Database
    from app.store.schema import upgrade_schema

    db = Database(Settings().database_url)
    try:
        await upgrade_schema(db)
        runs, _ = await list_runs(db, limit=50, offset=0)
    finally:
        await db.dispose()
    for r in runs:
        p = r["progress"]
        mark = "*" if r["is_current"] else " "
        print(
            f"{mark}{r['id']}\t{r['status']}\ttop {r['top_k']}\t"
            f"{'only-changed' if r['only_changed'] else 'full'}\t"
            f"{p['done_organisations']}/{p['total_organisations']} ranked, "
            f"{p['copied_organisations']} copied\tstarted {r['started_at']:%Y-%m-%d %H:%M}"
            + (f"\t{r['error']}" if r["error"] else "")
        )
    return 0


async def _export(run_id: int | None, out: Path, fmt: str | None) -> int:
    from app.errors import DomainError
    from app.services.rerank import export_run
    from app.settings import Settings
    from app.store.database import Database
    from app.store.schema import upgrade_schema

    db = Database(Settings().database_url)
    try:
        await upgrade_schema(db)
        exported, rows = await export_run(db, run_id, out, fmt=fmt)
    except DomainError as exc:
        print(f"rerank export failed: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    print(f"wrote {out}: run {exported}, {rows} rows")
    return 0


class ProgressBar:
    """A one-line progress bar on a terminal; a line per tenth of the work otherwise."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.is_tty = stream.isatty()
        self.last_tenth = -1
        self.started = time.perf_counter()
        self.drawn = False

    def update(self, progress: Any) -> None:
        total = progress.total_subjects
        fraction = min(progress.done_subjects / total, 1.0) if total else 1.0
        elapsed = time.perf_counter() - self.started
        rate = progress.done_subjects / elapsed if elapsed > 0 else 0.0
        remaining = (progress.total_subjects - progress.done_subjects) / rate if rate > 0 else 0.0
        filled = int(self.width * fraction)
        text = (
            f"run {progress.run_id} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{fraction:4.0%} {progress.done_subjects}/{progress.total_subjects} organisations, "
            f"chunk {progress.done_chunks}/{progress.total_chunks}, {elapsed:.0f} s"
            + (f", ~{remaining:.0f} s left" if 0 < fraction < 1 else "")
        )
        if self.is_tty:
            self.stream.write("\r" + text.ljust(110))
            self.drawn = True
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
