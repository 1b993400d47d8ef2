"""Load proof: a fixed-rate mixed load (reads, matches, writes) against ``multihelix serve`` on a
10k-organisation store, then a ramp to saturation.

Run: ``.venv/bin/python -m scripts.bench_load [--orgs 10000] [--rate 50] [--seconds 60]
[--ramp 50,100,200,400,800] [--ramp-seconds 15] [--keys 8] [--workdir DIR]``
(about 4 minutes after the store exists; the store is built once in ``--workdir`` with
synthetic vectors, no model, by scripts/bench_service.py's builder, and copied for every run so
the writes of one run never leak into the next).

1. The server (real all-MiniLM-L6-v2 for the texts that writes and searches embed) starts as a
   subprocess on a loopback port; API keys are made directly in the store.
2. A second process generates the load open-loop: Poisson arrivals at the offered rate, each
   request sent at its arrival time whatever the server's speed (no coordinated omission), its
   latency counted from that time. Mix: 60% reads (40% one organisation, 20% a filtered page),
   25% matches (20% ``/matches``, 5% ``/v1/search``), 15% writes (10% create with an
   Idempotency-Key, 5% update of a description, re-embedded). Requests are spread over
   ``--keys`` API keys, as several staff and batch clients would be.
3. Fixed rate for ``--seconds`` (after 5 s of warm-up): p50/p95/p99 per class, status counts.
   Then each ramp step for ``--ramp-seconds``: achieved 2xx/s, the share answered 429/503 (the
   service shedding load on purpose) and the share of errors (5xx, timeouts, refused
   connections), which should stay zero.

Both processes share the machine's two cores; the generator's CPU time is printed. Nothing here
asserts: figures are printed, and a JSON line with all of them closes the output.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MULTIHELIX = Path(sys.executable).parent / "multihelix"
WARMUP_S = 5.0
REQUEST_TIMEOUT_S = 30.0
MAX_IN_FLIGHT = 2000
# httpx's pool gets slow (O(connections) per request) with thousands of connections; beyond
# this many, requests wait for a connection in the generator, and that wait counts in latency.
CONNECTIONS = 128
TARGETS_MS = {"read": 150.0, "match": 250.0, "write": 150.0}

# class, weight, kind
MIX: list[tuple[str, float, str]] = [
    ("read", 0.40, "get_organisation"),
    ("read", 0.20, "list_organisations"),
    ("match", 0.20, "matches"),
    ("match", 0.05, "search"),
    ("write", 0.10, "create_organisation"),
    ("write", 0.05, "update_organisation"),
]
COUNTRIES = ("ES", "FR", "DE", "IT", "NL", "SE", "DK", "BE", "PT", "PL")
NEEDS = (
    "AI-based diagnostics partner in Spain",
    "clinical validation site for a wearable ECG patch",
    "GMP manufacturing of viral vectors",
    "investors for a digital therapeutics start-up",
    "hospital partner to pilot federated learning on health records",
)


# -- the load generator (second process) ---------------------------------------------------------


def plan(rate: float, seconds: float, seed: int) -> list[tuple[float, str]]:
    """Poisson arrival times (s from start) with a request kind for each, from ``MIX``."""
    rng = random.Random(seed)
    kinds = [kind for _, _, kind in MIX]
    weights = [weight for _, weight, _ in MIX]
    out = []
    t = rng.expovariate(rate)
    while t < seconds:
        out.append((t, rng.choices(kinds, weights)[0]))
        t += rng.expovariate(rate)
    return out


def request_for(kind: str, rng: random.Random, n_orgs: int) -> tuple[str, str, Any, dict[str, str]]:
    org_id = rng.randint(1, n_orgs)
    if kind == "get_organisation":
        return "GET", f"/v1/organisations/{org_id}", None, {}
    if kind == "list_organisations":
        country = rng.choice(COUNTRIES)
        return "GET", f"/v1/organisations?country={country}&limit=20", None, {}
    if kind == "matches":
        return "GET", f"/v1/organisations/{org_id}/matches", None, {}
    if kind == "search":
        return "POST", "/v1/search", {"text": rng.choice(NEEDS), "limit": 10}, {}
    if kind == "create_organisation":
        body = {
            "name": f"Load test organisation {uuid.uuid4().hex[:12]}",
            "kind": "sme",
            "sectors": ["diagnostics"],
            "country": rng.choice(COUNTRIES),
            "description": "A small company developing rapid assays for infectious diseases, "
            "looking for clinical partners and distributors.",
            "offers": ["rapid antigen assays", "assay development services"],
            "seeks": ["hospital partner for clinical validation"],
        }
        return "POST", "/v1/organisations", body, {"Idempotency-Key": str(uuid.uuid4())}
    body = {"description": f"Updated profile {uuid.uuid4().hex[:8]}: imaging and AI diagnostics."}
    return "PATCH", f"/v1/organisations/{org_id}", body, {}


async def generate(
    base_url: str, keys: list[str], rate: float, seconds: float, n_orgs: int, seed: int
) -> dict[str, Any]:
    """Send the planned requests open-loop; returns raw samples per kind."""
    arrivals = plan(rate, seconds, seed)
    rng = random.Random(seed + 1)
    samples: dict[str, list[tuple[float, int]]] = defaultdict(list)  # kind -> (latency s, status)
    in_flight = 0
    dropped = 0
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    cpu_before = time.process_time()
    async with httpx.AsyncClient(
        base_url=base_url, transport=transport, timeout=REQUEST_TIMEOUT_S
    ) as client:

        async def one(due: float, kind: str, number: int) -> None:
            nonlocal in_flight
            method, url, body, headers = request_for(kind, rng, n_orgs)
            headers = {**headers, "Authorization": f"Bearer {keys[number % len(keys)]}"}
            in_flight += 1
            try:
                response = await client.request(method, url, json=body, headers=headers)
                status = response.status_code
            except httpx.PoolTimeout:
                status = -3  # never sent: the generator had no free connection in time
            except httpx.TimeoutException:
                status = -1  # timed out
            except httpx.HTTPError:
                status = -2  # refused, reset, ...
            finally:
                in_flight -= 1
            samples[kind].append((time.perf_counter() - due, status))

        start = time.perf_counter() + 0.2
        tasks = []
        for number, (offset, kind) in enumerate(arrivals):
            due = start + offset
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if in_flight >= MAX_IN_FLIGHT:
                dropped += 1
                samples[kind].append((REQUEST_TIMEOUT_S, -3))  # the generator gave up
                continue
            tasks.append(asyncio.create_task(one(due, kind, number)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    return {
        "offered_rate": rate,
        "seconds": seconds,
        "wall_s": wall,
        "sent": len(arrivals),
        "dropped_by_generator": dropped,
        "generator_cpu_s": time.process_time() - cpu_before,
        "samples": {kind: list(values) for kind, values in samples.items()},
    }


def generator_main(config: dict[str, Any]) -> None:
    result = asyncio.run(
        generate(
            config["base_url"],
            config["keys"],
            config["rate"],
            config["seconds"],
            config["n_orgs"],
            config["seed"],
        )
    )
    json.dump(result, sys.stdout)


def run_generator(config: dict[str, Any]) -> dict[str, Any]:
    """The load generator in a second process (its own interpreter, its own event loop)."""
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench_load", "--generator"],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- figures -------------------------------------------------------------------------------------

CLASS_OF = {kind: cls for cls, _, kind in MIX}


def percentiles(latencies_s: Sequence[float]) -> dict[str, float]:
    if not latencies_s:
        return {"p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    ms = np.asarray(latencies_s) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 1),
        "p95": round(float(np.percentile(ms, 95)), 1),
        "p99": round(float(np.percentile(ms, 99)), 1),
        "max": round(float(ms.max()), 1),
    }


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    by_class: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for kind, values in result["samples"].items():
        by_class[CLASS_OF[kind]].extend((lat, status) for lat, status in values)
    classes = {}
    everything: list[tuple[float, int]] = []
    for cls, values in sorted(by_class.items()):
        everything.extend(values)
        ok = [lat for lat, status in values if 200 <= status < 400]
        classes[cls] = {
            "requests": len(values),
            "latency_ms_2xx": percentiles(ok),
            "statuses": dict(Counter(_status_name(s) for _, s in values)),
        }
    total = len(everything) or 1
    ok_count = sum(1 for _, s in everything if 200 <= s < 400)
    shed = sum(1 for _, s in everything if s in (429, 503))
    errors = sum(1 for _, s in everything if (s >= 500 and s != 503) or s in (-1, -2))
    not_sent = sum(1 for _, s in everything if s == -3)
    client_errors = sum(1 for _, s in everything if 400 <= s < 500 and s != 429)
    return {
        "offered_rate": result["offered_rate"],
        "achieved_2xx_per_s": round(ok_count / result["wall_s"], 1),
        "requests": len(everything),
        "share_2xx": round(ok_count / total, 4),
        "share_shed_429_503": round(shed / total, 4),
        "share_errors": round(errors / total, 4),
        "other_4xx": client_errors,
        "latency_ms_2xx": percentiles([lat for lat, s in everything if 200 <= s < 400]),
        "classes": classes,
        "generator_cpu_cores": round(result["generator_cpu_s"] / result["wall_s"], 2),
        "not_sent_by_generator": not_sent,
    }


def _status_name(status: int) -> str:
    return {-1: "timeout", -2: "connection error", -3: "not sent (generator saturated)"}.get(
        status, str(status)
    )


# -- the server ----------------------------------------------------------------------------------


def prepared_store(workdir: Path, n_orgs: int, seed: int) -> Path:
    """A copy of the bulk-built store for this run (the build is reused across runs)."""
    from scripts.bench_service import build_store

    built = workdir / f"store-{n_orgs}.sqlite3"
    meta = build_store(built, n_orgs, seed)
    how = "reused" if meta["reused"] else f"built in {meta['build_s']} s"
    collaborations = meta["rows"].get("collaborations", "?")
    print(f"store: {n_orgs} organisations, {collaborations} collaborations ({how})", flush=True)
    run = workdir / "run.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{run}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(built, run)
    return run


async def make_keys(database_url: str, count: int) -> list[str]:
    from app.services.keys import create_api_key
    from app.store.database import Database
    from app.store.schema import upgrade_schema

    db = Database(database_url)
    try:
        await upgrade_schema(db)
        return [
            (await create_api_key(db, role="admin", label=f"bench_load {i}")).key
            for i in range(count)
        ]
    finally:
        await db.dispose()


@contextlib.contextmanager
def server(database_url: str, workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MULTIHELIX_DATABASE_URL": database_url,
        "MULTIHELIX_DATA_DIR": str(workdir / "data"),
        "MULTIHELIX_ENCODER": "minilm",
        "MULTIHELIX_LOAD_DEMO_DATA": "false",
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(MULTIHELIX), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        started = time.perf_counter()
        deadline = started + 600
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"server not ready after 600 s; see {log_path}")
        print(f"server ready in {time.perf_counter() - started:.1f} s (log: {log_path})")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the session this script created
            process.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def print_step(title: str, figures: dict[str, Any]) -> None:
    print(f"\n## {title}")
    print(
        f"  offered {figures['offered_rate']:g} req/s, achieved {figures['achieved_2xx_per_s']} "
        f"2xx/s over {figures['requests']} requests; 2xx {figures['share_2xx']:.1%}, "
        f"shed (429/503) {figures['share_shed_429_503']:.1%}, errors {figures['share_errors']:.1%}"
        f", other 4xx {figures['other_4xx']}, not sent (generator saturated) "
        f"{figures['not_sent_by_generator']}; generator CPU {figures['generator_cpu_cores']} cores"
    )
    for cls, data in figures["classes"].items():
        lat = data["latency_ms_2xx"]
        target = TARGETS_MS.get(cls)
        verdict = ""
        if target is not None and figures["offered_rate"] <= 50:
            met = "met" if lat["p99"] <= target else "MISSED"
            verdict = f"  (target p99 <= {target:g} ms: {met})"
        print(
            f"  {cls:<6} n={data['requests']:<6} p50 {lat['p50']:>7} ms  p95 {lat['p95']:>7} ms  "
            f"p99 {lat['p99']:>7} ms  max {lat['max']:>8} ms  {data['statuses']}{verdict}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50.0, help="fixed offered rate, req/s")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp", default="50,100,200,400,800", help="offered rates, req/s")
    parser.add_argument("--ramp-seconds", type=float, default=15.0)
    parser.add_argument("--keys", type=int, default=8, help="API keys the load is spread over")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/multihelix-bench-load"))
    parser.add_argument("--generator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generator:
        generator_main(json.load(sys.stdin))
        return 0

    args.workdir.mkdir(parents=True, exist_ok=True)
    store = prepared_store(args.workdir, args.orgs, args.seed)
    url = f"sqlite+aiosqlite:///{store}"
    keys = asyncio.run(make_keys(url, args.keys))
    port = free_port()
    results: dict[str, Any] = {"orgs": args.orgs, "keys": args.keys, "cores": os.cpu_count()}
    load_before = os.getloadavg()
    with server(url, args.workdir, port):
        base = {"base_url": f"http://127.0.0.1:{port}", "keys": keys, "n_orgs": args.orgs}
        run_generator({**base, "rate": args.rate, "seconds": WARMUP_S, "seed": 0})
        fixed = summarise(
            run_generator({**base, "rate": args.rate, "seconds": args.seconds, "seed": 1})
        )
        print_step(f"fixed rate {args.rate:g} req/s for {args.seconds:g} s", fixed)
        results["fixed"] = fixed
        results["ramp"] = []
        for step, rate in enumerate(float(r) for r in args.ramp.split(",")):
            figures = summarise(
                run_generator(
                    {**base, "rate": rate, "seconds": args.ramp_seconds, "seed": 100 + step}
                )
            )
            print_step(f"ramp: {rate:g} req/s for {args.ramp_seconds:g} s", figures)
            results["ramp"].append(figures)
            time.sleep(2)  # let the queue drain between steps
    clean = [r for r in results["ramp"] if r["share_errors"] == 0 and r["share_2xx"] >= 0.99]
    results["sustained_2xx_per_s"] = max(
        (r["achieved_2xx_per_s"] for r in results["ramp"]), default=0.0
    )
    results["highest_clean_offered_rate"] = max((r["offered_rate"] for r in clean), default=0.0)
    results["load_average_before"] = load_before
    results["load_average_after"] = os.getloadavg()
    print(
        f"\nsustained: {results['sustained_2xx_per_s']} 2xx/s at best; every request answered "
        f"2xx up to {results['highest_clean_offered_rate']:g} req/s offered; errors (5xx, "
        f"timeouts, refused) over the whole ramp: "
        f"{sum(r['share_errors'] * r['requests'] for r in results['ramp']):.0f}"
    )
    print(f"machine load average before/after: {load_before} / {results['load_average_after']}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
