"""Consortium builder quality on the H2020 health benchmark, history before 2016 only.

For every health project starting in 2016-2017 (participations_hist) whose coordinator is a
benchmark organisation with history before 2016: seed = the coordinator (must include); rules
= the real team's size, its kinds (at least as many of each) and its number of countries,
with at least one EU member state; candidates = benchmark organisations with history before
2016. The team counted is the participants a 2015 system could know (benchmark organisations
with history before 2016). How many of the real partners does the suggested consortium
contain? Compared with a random rule-satisfying consortium and a popularity one (the most
connected organisations that satisfy the rules), both with the same seed and rules.

    .venv/bin/python -m scripts.bench_consortium --bench ../shared/benchmarks/h2020-health

Only participations before 2016 build the graph; 2016-2017 projects supply the rules and the
truth. Nothing else from the benchmark is read (no held-out file).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ortools.sat.python import cp_model

from app.services.importer import H2020_COUNTRIES, H2020_KINDS
from embeddings import VectorIndex
from graph import Collaboration, CollaborationGraph
from matching.catalog import CandidateFilter, Catalog, OrgProfile
from matching.consortium import (
    EU_MEMBER_STATES,
    ConsortiumRules,
    ConsortiumSearch,
    RoleRule,
    UnsatisfiableRules,
    suggest_consortia,
)
from matching.ranker import MatchingState
from matching.scoring import LinearScorer

CLUSTER = "h2020-health"
CUTOFF_YEAR = 2016


@dataclass(frozen=True)
class Project:
    id: str
    coordinator: int
    team: tuple[int, ...]  # known participants, coordinator included
    all_partners: int  # benchmark-organisation partners, known or not


def load(bench: Path) -> tuple[MatchingState, list[Project], dict[int, int]]:
    bench_orgs = {row["org_id"] for row in csv.DictReader((bench / "orgs.csv").open())}
    info: dict[str, tuple[str, str]] = {}
    projects: dict[str, list[tuple[str, str]]] = defaultdict(list)
    year: dict[str, int] = {}
    domain: dict[str, bool] = {}
    with gzip.open(bench / "participations_hist.csv.gz", "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            pid = row["project_id"]
            projects[pid].append((row["org_id"], row["role"]))
            year[pid] = int(row["start_date"][:4])
            domain[pid] = row["is_domain"] == "1"
            if year[pid] < CUTOFF_YEAR:
                info.setdefault(row["org_id"], (row["type"], row["country"]))
    ids = {pic: i + 1 for i, pic in enumerate(sorted(info))}
    profiles = [
        OrgProfile(
            id=ids[pic],
            name=pic,
            kind=H2020_KINDS.get(otype, "other"),
            sectors=(),
            country=H2020_COUNTRIES.get(country, country),
            clusters=(CLUSTER,) if pic in bench_orgs else (),
            offer_vectors=np.zeros((0, 8), np.float32),
            seek_vectors=np.zeros((0, 8), np.float32),
        )
        for pic, (otype, country) in sorted(info.items())
    ]
    catalog = Catalog(capacity=len(profiles) + 1)
    catalog.upsert_many(profiles)
    collaborations = []
    for n, (pid, members) in enumerate(sorted(projects.items())):
        if year[pid] >= CUTOFF_YEAR:
            continue
        orgs = tuple(dict.fromkeys(ids[o] for o, _ in members))
        if len(orgs) >= 2:
            collaborations.append(Collaboration(n + 1, orgs, "project", year[pid]))
    graph = CollaborationGraph.from_collaborations([p.id for p in profiles], collaborations)
    state = MatchingState(
        catalog=catalog,
        graph=graph,
        vectors={s: VectorIndex(8) for s in ("profile", "offers", "seeks")},
        scorer=LinearScorer.load(),
    )
    state.refresh_snapshot()

    tests = []
    for pid, members in sorted(projects.items()):
        if not (domain[pid] and CUTOFF_YEAR <= year[pid] <= CUTOFF_YEAR + 1):
            continue
        coordinators = [o for o, role in members if role == "coordinator"]
        if not coordinators or coordinators[0] not in ids or coordinators[0] not in bench_orgs:
            continue
        coordinator = ids[coordinators[0]]
        partners = {o for o, _ in members if o in bench_orgs} - {coordinators[0]}
        known = sorted({ids[o] for o in partners if o in ids})
        if len(known) >= 2:
            team = (coordinator, *known)
            tests.append(Project(pid, coordinator, team, len(partners)))
    degree = dict(
        zip(state.snapshot().node_ids.tolist(), state.snapshot().degree.tolist(), strict=True)
    )
    return state, tests, degree


def rules_of(state: MatchingState, project: Project) -> ConsortiumRules:
    team = [state.catalog.get(i) for i in project.team]
    kinds = Counter(p.kind for p in team if p is not None)
    countries = {p.country for p in team if p is not None}
    return ConsortiumRules(
        min_size=len(team),
        max_size=len(team),
        min_countries=len(countries),
        min_eu_countries=1 if countries & EU_MEMBER_STATES else 0,
        roles=tuple(RoleRule(k, n) for k, n in sorted(kinds.items())),
        must_include=(project.coordinator,),
    )


def baseline(
    candidates: list[OrgProfile],
    rules: ConsortiumRules,
    weights: dict[int, float],
    time_limit_s: float,
) -> list[int]:
    """The rule-satisfying consortium with the largest sum of ``weights`` (random weights give a
    random rule-satisfying consortium)."""
    model = cp_model.CpModel()
    x = {p.id: model.new_bool_var(str(p.id)) for p in candidates}
    for org in rules.must_include:
        model.add(x[org] == 1)
    model.add(sum(x.values()) >= rules.min_size)
    model.add(sum(x.values()) <= rules.max_size)
    for role in rules.roles:
        model.add(sum(x[p.id] for p in candidates if p.kind == role.kind) >= role.at_least)
    present = []
    eu = []
    for country in sorted({p.country for p in candidates}):
        z = model.new_bool_var(country)
        model.add(z <= sum(x[p.id] for p in candidates if p.country == country))
        present.append(z)
        if country in EU_MEMBER_STATES:
            eu.append(z)
    model.add(sum(present) >= rules.min_countries)
    model.add(sum(eu) >= rules.min_eu_countries)
    model.maximize(sum(round(1000 * weights[i]) * v for i, v in x.items()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = 2
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return []
    return [i for i, v in x.items() if solver.value(v)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bench", type=Path, default=Path("../shared/benchmarks/h2020-health"))
    parser.add_argument("--limit", type=int, default=0, help="first N projects only")
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per consortium")
    parser.add_argument("--pool", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None, help="per-project JSON lines")
    args = parser.parse_args()

    t0 = time.perf_counter()
    state, projects, degree = load(args.bench)
    if args.limit:
        projects = projects[: args.limit]
    candidates = [
        p
        for p in state.catalog.profiles(
            state.catalog.filtered_ids(CandidateFilter(clusters=(CLUSTER,)))
        )
        if p is not None
    ]
    print(
        f"history < {CUTOFF_YEAR}: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links; {len(candidates):,} benchmark candidates; "
        f"{len(projects)} health projects of 2016-2017 (loaded in {time.perf_counter() - t0:.1f} s)"
    )
    rng = np.random.default_rng(0)
    popularity = {p.id: float(np.log1p(degree.get(p.id, 0))) for p in candidates}
    results: dict[str, list[tuple[float, float]]] = defaultdict(list)
    lines = []
    failures = 0
    started = time.perf_counter()
    for n, project in enumerate(projects, start=1):
        rules = rules_of(state, project)
        real = set(project.team) - {project.coordinator}
        chosen: dict[str, list[int]] = {}
        try:
            found = suggest_consortia(
                state,
                ConsortiumSearch(
                    call_text="health research and innovation project",
                    call_vector=None,
                    rules=rules,
                    filter=CandidateFilter(clusters=(CLUSTER,)),
                    alternatives=1,
                    pool_size=args.pool,
                    time_limit_s=args.time_limit,
                ),
            )
            chosen["multihelix"] = [m.organisation.id for m in found.consortia[0].members]
        except (UnsatisfiableRules, IndexError) as exc:
            failures += 1
            print(f"  project {project.id}: no consortium ({exc})")
            chosen["multihelix"] = []
        random_weights = {p.id: float(rng.random()) for p in candidates}
        chosen["random"] = baseline(candidates, rules, random_weights, args.time_limit)
        chosen["popularity"] = baseline(candidates, rules, popularity, args.time_limit)
        row: dict[str, object] = {"project": project.id, "size": len(project.team)}
        for method, members in chosen.items():
            proposed = set(members) - {project.coordinator}
            hits = len(proposed & real)
            precision = hits / len(proposed) if proposed else 0.0
            recall = hits / len(real)
            results[method].append((precision, recall))
            results[method + " (recall of all partners)"].append(
                (precision, hits / max(project.all_partners, 1))
            )
            row[method] = {
                "hits": hits,
                "precision": round(precision, 4),
                "recall": round(recall, 4),
            }
        lines.append(row)
        if n % 25 == 0 or n == len(projects):
            print(f"  {n}/{len(projects)} projects ({time.perf_counter() - started:.0f} s)")

    print(
        f"\n{'method':40s} {'precision':>9s} {'recall':>7s}  (mean over {len(projects)} projects)"
    )
    for method, values in results.items():
        p = float(np.mean([v[0] for v in values]))
        r = float(np.mean([v[1] for v in values]))
        print(f"{method:40s} {p:9.3f} {r:7.3f}")
    print(f"projects without a suggested consortium (counted as 0 hits): {failures}")
    if args.out:
        args.out.write_text("\n".join(json.dumps(row) for row in lines) + "\n")


if __name__ == "__main__":
    main()
