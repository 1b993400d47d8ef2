"""Benchmark of B2B meeting scheduling on a synthetic brokerage event: the exact CP-SAT model
against first-come first-served placement, then repair after late changes.

Run: ``.venv/bin/python -m scripts.bench_schedule [--participants 500] [--requests 3000]
[--time-limit 30] [--workers 2] [--seed 0] [--service]``

With ``--service`` the same event also goes through the service: an in-process app (hashing
encoder, throwaway SQLite file) gets the organisations, the event and the participants through
the API; the accepted requests and their meetings are written straight into the store (3,000
requests one by one would only time the request route); then ``POST /v1/events/{id}/schedule``
(scoring every meeting with the ranker in both directions, solving, writing) and
``GET /v1/events/{id}/recommendations`` are timed. Nothing here asserts on wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from matching.scheduling import (
    Meeting,
    Place,
    Problem,
    Schedule,
    Slot,
    greedy_fcfs,
    repair,
    solve_exact,
    violations,
)


def synthetic_event(
    *,
    participants: int = 500,
    sessions: int = 2,
    slots_per_session: int = 18,
    tables: int = 60,
    requests: int = 3000,
    must_meets: int = 40,
    session_limit: int = 12,
    seed: int = 0,
) -> Problem:
    """A brokerage day as organisers see it.

    Recipients follow a Zipf-like popularity (a few big players receive dozens of requests),
    senders are spread evenly; 15 % of participants attend one session only and 10 % leave
    half-way through a session; most meetings are one-to-one, some bring colleagues (tables
    seat 4, a few seat 6). Values are match scores in [0, 1]. ``meetings`` are in acceptance
    order (random), the order first-come first-served uses.
    """
    rng = np.random.default_rng(seed)
    slots = tuple(
        Slot(s * slots_per_session + i, s + 1)
        for s in range(sessions)
        for i in range(slots_per_session)
    )
    n_big = max(1, tables // 6)
    places = tuple(Place(100 + i, 6 if i < n_big else 4) for i in range(tables))
    popularity = 1.0 / np.arange(1, participants + 1) ** 0.8
    popularity /= popularity.sum()
    ids = np.arange(1, participants + 1)
    pairs: set[tuple[int, int]] = set()
    meetings: list[Meeting] = []
    while len(meetings) < requests:
        a = int(rng.integers(1, participants + 1))
        b = int(rng.choice(ids, p=popularity))
        key = (min(a, b), max(a, b))
        if a == b or key in pairs:
            continue
        pairs.add(key)
        size = int(rng.choice([2, 3, 4, 5], p=[0.7, 0.18, 0.08, 0.04]))
        meetings.append(Meeting(len(meetings) + 1, (a, b), float(rng.beta(2.0, 2.5)), size=size))
    must = rng.choice(len(meetings), size=must_meets, replace=False)
    meetings = [
        Meeting(m.id, m.parties, m.value, must_meet=True, size=m.size) if i in set(must) else m
        for i, m in enumerate(meetings)
    ]
    availability: dict[int, frozenset[int]] = {}
    for p in ids.tolist():
        draw = rng.random()
        if draw < 0.15:
            session = int(rng.integers(1, sessions + 1))
            availability[p] = frozenset(s.id for s in slots if s.session == session)
        elif draw < 0.25:
            session = int(rng.integers(1, sessions + 1))
            cut = slots_per_session // 2
            availability[p] = frozenset(
                s.id for s in slots if s.session != session or (s.id % slots_per_session) < cut
            )
    return Problem(
        slots=slots,
        places=places,
        meetings=tuple(meetings),
        availability=availability,
        session_limit={int(p): session_limit for p in ids},
    )


def report(name: str, schedule: Schedule, problem: Problem) -> None:
    broken = violations(problem, schedule.placements)
    print(
        f"{name:<22} placed {schedule.meetings_placed:>5}  must-meets "
        f"{schedule.must_meets_placed:>3}  value {schedule.total_value:9.2f}  objective "
        f"{schedule.objective:>9}  bound {schedule.best_bound:>11.1f}  gap "
        f"{100 * schedule.gap:6.3f} %  {schedule.status} ({schedule.bound_source})  "
        f"{schedule.solve_s:6.2f} s  violations {len(broken)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--tables", type=int, default=60)
    parser.add_argument("--slots", type=int, default=18, help="slots per session (2 sessions)")
    parser.add_argument("--time-limit", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--service", action="store_true", help="also schedule the event through the API"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    problem = synthetic_event(
        participants=args.participants,
        requests=args.requests,
        tables=args.tables,
        slots_per_session=args.slots,
        seed=args.seed,
    )
    print(
        f"event: {args.participants} participants, 2 sessions x {args.slots} slots, "
        f"{args.tables} tables, {len(problem.meetings)} accepted meetings "
        f"({sum(m.must_meet for m in problem.meetings)} must-meet); "
        f"{len(problem.slots) * args.tables} table-slots; built in "
        f"{time.perf_counter() - t0:.2f} s"
    )
    fcfs = greedy_fcfs(problem)
    report("first-come first-served", fcfs, problem)
    exact = solve_exact(problem, time_limit_s=args.time_limit, workers=args.workers)
    report("CP-SAT", exact, problem)
    print(
        f"CP-SAT vs FCFS: +{exact.meetings_placed - fcfs.meetings_placed} meetings, "
        f"value x{exact.total_value / max(fcfs.total_value, 1e-9):.3f}; CP-SAT objective is "
        f"{100 * exact.objective / exact.best_bound:.2f} % of its proven upper bound"
    )

    # Late changes after publishing: 20 meetings cancelled, 10 new ones accepted.
    rng = np.random.default_rng(args.seed + 1)
    placed = {p.meeting: (p.slot, p.place) for p in exact.placements}
    cancelled = set(rng.choice(sorted(placed), size=20, replace=False).tolist())
    n = args.participants
    pairs = {tuple(sorted(m.parties)) for m in problem.meetings}
    extra: list[Meeting] = []
    next_id = max(m.id for m in problem.meetings) + 1
    while len(extra) < 10:
        a, b = (int(v) for v in rng.integers(1, n + 1, size=2))
        if a != b and (min(a, b), max(a, b)) not in pairs:
            pairs.add((min(a, b), max(a, b)))
            extra.append(Meeting(next_id, (a, b), 0.9))
            next_id += 1
    changed = Problem(
        slots=problem.slots,
        places=problem.places,
        meetings=tuple(m for m in problem.meetings if m.id not in cancelled) + tuple(extra),
        availability=problem.availability,
        session_limit=problem.session_limit,
    )
    repaired = repair(
        changed, placed, time_limit_s=min(args.time_limit, 20.0), workers=args.workers
    )
    report("repair (20 out, 10 in)", repaired, changed)
    new_ids = {m.id for m in extra}
    new_placed = sum(1 for p in repaired.placements if p.meeting in new_ids)
    from_standby = sum(
        1 for p in repaired.placements if p.meeting not in placed and p.meeting not in new_ids
    )
    print(
        f"repair: {repaired.moved} meetings moved, {repaired.dropped} dropped, "
        f"{new_placed}/10 new meetings placed, {from_standby} standby meetings moved into "
        "freed slots"
    )
    if args.service:
        asyncio.run(bench_service(problem, args))


# -- through the service -------------------------------------------------------------------
TOPICS = (
    "clinical validation site for a diagnostic",
    "AI image analysis for pathology",
    "GMP manufacturing of viral vectors",
    "wearable ECG monitor",
    "regulatory support for CE marking",
    "biobank samples for oncology research",
    "real-world data for health economics",
    "probiotic functional food trials",
    "veterinary vaccine development",
    "seed investment for medtech start-ups",
)
SECTORS = ("diagnostics", "medtech", "biotech", "pharma", "ehealth", "ai_and_data")
COUNTRIES = ("ES", "FR", "DE", "SE", "DK", "NL", "IT", "BE")


async def bench_service(problem: Problem, args: argparse.Namespace) -> None:
    """Schedule the synthetic event through the API (see the module docstring)."""
    import httpx
    from asgi_lifespan import LifespanManager

    from app.main import create_app
    from app.services.keys import create_api_key
    from app.services.organisations import create_organisations
    from app.settings import Settings
    from app.store import events_models as ev

    rng = np.random.default_rng(args.seed)
    n = args.participants
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}",
            data_dir=Path(tmp) / "data",
            encoder="hashing",
            load_demo_data=False,
        )
        app = create_app(settings)
        async with LifespanManager(app, startup_timeout=300) as manager:
            ctx: Any = app.state.ctx
            t0 = time.perf_counter()
            orgs = await create_organisations(
                ctx,
                [
                    {
                        "name": f"Organisation {i:03d}",
                        "kind": "sme" if i % 3 else "university",
                        "sectors": [SECTORS[int(rng.integers(len(SECTORS)))]],
                        "country": COUNTRIES[int(rng.integers(len(COUNTRIES)))],
                        "offers": [TOPICS[int(rng.integers(len(TOPICS)))]],
                        "seeks": [TOPICS[int(rng.integers(len(TOPICS)))]],
                    }
                    for i in range(1, n + 1)
                ],
                tenant="bench",
            )
            org_of = {i + 1: int(o["id"]) for i, o in enumerate(orgs)}
            key = await create_api_key(ctx.db, role="organiser", tenant="bench")
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),
                base_url="http://bench",
                headers={"Authorization": f"Bearer {key.key}"},
                timeout=600,
            )
            per_session = args.slots
            sessions = [
                {
                    "name": f"Day {d}",
                    "date": f"2031-06-{10 + d}",
                    "start": "09:00",
                    "end": f"{9 + per_session * 20 // 60:02d}:{per_session * 20 % 60:02d}",
                    "slot_minutes": 20,
                }
                for d in (1, 2)
            ]
            n_big = max(1, args.tables // 6)
            created = await http.post(
                "/v1/events",
                json={
                    "name": "Benchmark partnering days",
                    "timezone": "Europe/Brussels",
                    "rules": {"max_meetings_per_session": 12},
                    "sessions": sessions,
                    "places": [
                        {"name": "Big table", "capacity": 6, "count": n_big},
                        {"name": "Table", "capacity": 4, "count": args.tables - n_big},
                    ],
                },
            )
            created.raise_for_status()
            event = created.json()
            session_ids = [s["id"] for s in event["sessions"]]
            must = {m.parties for m in problem.meetings if m.must_meet}
            items = []
            for p in range(1, n + 1):
                item: dict[str, Any] = {
                    "organisation_id": org_of[p],
                    "must_meet": [org_of[b] for a, b in must if a == p],
                }
                allowed = problem.availability.get(p)
                if allowed is not None:
                    item["availability"] = _windows(allowed, session_ids, per_session)
                items.append(item)
            registered = await http.post(
                f"/v1/events/{event['id']}/participants", json={"items": items}
            )
            registered.raise_for_status()
            pid = {r["organisation"]["id"]: r["id"] for r in registered.json()["items"]}
            async with ctx.db.sessions() as session, session.begin():
                for m in problem.meetings:
                    if m.must_meet:
                        continue
                    a, b = (pid[org_of[x]] for x in m.parties)
                    request = ev.EventRequest(
                        event_id=event["id"],
                        sender_id=a,
                        recipient_id=b,
                        message="",
                        status="accepted",
                    )
                    session.add(request)
                    await session.flush()
                    session.add(
                        ev.EventMeeting(
                            event_id=event["id"],
                            a_id=a,
                            b_id=b,
                            request_id=request.id,
                            kind="request",
                            status="active",
                        )
                    )
            print(f"service: event loaded in {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            made = await http.post(
                f"/v1/events/{event['id']}/schedule", json={"time_limit_s": args.time_limit}
            )
            wall = time.perf_counter() - t0
            made.raise_for_status()
            st = made.json()["schedule"]["stats"]
            print(
                f"service: POST /schedule {wall:.1f} s wall (solver {st['solve_s']:.1f} s): "
                f"{st['meetings_placed']}/{st['meetings_total']} placed "
                f"(FCFS {st['fcfs_meetings_placed']}), must-meets {st['must_meets_placed']}/"
                f"{st['must_meets_total']}, value {st['total_value']:.1f} (FCFS "
                f"{st['fcfs_total_value']:.1f}), gap {100 * st['gap']:.3f} % "
                f"({st['status']}, bound from {st['bound_source']})"
            )
            t0 = time.perf_counter()
            recs = await http.get(f"/v1/events/{event['id']}/recommendations", params={"limit": 5})
            recs.raise_for_status()
            print(
                f"service: GET /recommendations for {len(recs.json()['items'])} participants "
                f"{time.perf_counter() - t0:.1f} s"
            )
            await http.aclose()


def _windows(allowed: frozenset[int], session_ids: list[int], per_session: int) -> list[Any]:
    """Availability windows (whole sessions or their first half) for a set of slot ids."""
    out: list[dict[str, Any]] = []
    for s, session_id in enumerate(session_ids):
        mine = sorted(
            t - s * per_session for t in allowed if s * per_session <= t < (s + 1) * per_session
        )
        if not mine:
            continue
        end = 9 * 60 + (mine[-1] + 1) * 20
        out.append(
            {"session_id": session_id, "start": "09:00", "end": f"{end // 60:02d}:{end % 60:02d}"}
        )
    return out


if __name__ == "__main__":
    main()
