"""Reproduce docs/quality.md: fit the ranker on the H2020 history, rank the dev queries with
the product, and print the quality tables (methods x metrics, preference trade-off, ablation).

    python -m scripts.quality_report --bench ../shared/benchmarks/h2020-health

Every row goes through the product's own commands (`multihelix bench fit|rank|evaluate`); the
store is imported once into --workdir and reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from matching.training import FEATURE_GROUPS


def cli(*args: str) -> None:
    """Run one `multihelix` command, failing loudly."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "scripts.cli", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"multihelix {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    print(f"  ({time.perf_counter() - started:.0f} s) multihelix {' '.join(args[:2])}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=Path("../shared/benchmarks/h2020-health"))
    parser.add_argument("--workdir", type=Path, default=Path("data/quality"))
    parser.add_argument("--skip-ablation", action="store_true")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    store = f"sqlite+aiosqlite:///{work.resolve() / 'h2020.sqlite3'}"
    queries = str(args.bench / "heldout_dev.csv")
    bench = str(args.bench)

    def rank(name: str, *extra: str) -> str:
        out = work / f"{name}.csv"
        cli(
            *("bench", "rank", "--bench", bench, "--queries", queries, "--top", "100"),
            *("--out", str(out), "--store", store, *extra),
        )
        return f"{name}={out}"

    print("fitting the ranker on the history (graph before 2017 -> new pairs of 2017)")
    model = work / "ranker.json"
    cli("bench", "fit", "--bench", bench, "--out", str(model), "--store", store)

    rows = [rank("MultiHelix (default settings)", "--model", str(model))]
    for preference in ("0", "0.5", "1"):
        rows.append(
            rank(
                f"cross preference {preference}",
                *("--model", str(model), "--cross-preference", preference),
            )
        )
    rows.append(rank("no diversification", "--model", str(model), "--diversity", "0"))
    if not args.skip_ablation:
        for group in FEATURE_GROUPS:
            dropped = work / f"ranker-without-{group.replace(' ', '_')}.json"
            cli(
                *("bench", "fit", "--bench", bench, "--out", str(dropped)),
                *("--store", store, "--drop", group),
            )
            rows.append(rank(f"without {group}", "--model", str(dropped)))

    out = work / "evaluation.json"
    evaluate = ["bench", "evaluate", "--bench", bench, "--heldout", queries, "--out", str(out)]
    for row in rows:
        evaluate += ["--rankings", row]
    cli(*evaluate)
    from matching.evaluation import format_table

    print(format_table(json.loads(out.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
