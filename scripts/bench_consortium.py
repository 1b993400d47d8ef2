r"""Consortium builder quality on the H2020 health benchmark, from the history alone.

For every health project starting in the evaluation window (default 2016-2017, in
participations_hist) whose coordinator is a benchmark organisation known before the cut-off
(default 2016-01-01): seed = the coordinator (must include); rules = the real team's size,
its kinds (at least as many of each) and its number of countries, with at least one EU
member state; candidates = benchmark organisations with history before the cut-off. The team
counted is the participants a system could know on the cut-off day (benchmark organisations
with history before it). How many of the real partners does the suggested consortium
contain (precision = hits / proposed partners, recall = hits / real partners)? Compared with
a random rule-satisfying consortium and a popularity one (the most connected organisations
that satisfy the rules), both with the same seed and rules.

    .venv/bin/python -m scripts.bench_consortium --bench ../shared/benchmarks/h2020-health \
        --pool 80 --time-limit 2

Only participations before the cut-off build the graph (other programmes' projects weighted
as the importer weighs them); the window's projects supply the rules and the truth. Nothing
else from the benchmark is read (no held-out file). Choices are tuned on an earlier window,
never on 2016-2017; the affinity weights are fitted on one too (``--fit``):

    .venv/bin/python -m scripts.bench_consortium --cutoff 2015-07-01 --window-end 2016-01-01
    .venv/bin/python -m scripts.bench_consortium --cutoff 2015-07-01 --window-end 2016-01-01 \
        --programmes all --fit
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
from sklearn.linear_model import LogisticRegression

from app.services.importer import H2020_COUNTRIES, H2020_KINDS, H2020_OTHER_PROGRAMME_WEIGHT
from embeddings import VectorIndex
from graph import Collaboration, CollaborationGraph
from matching.catalog import CandidateFilter, Catalog, OrgProfile
from matching.consortium import (
    AFFINITY_FEATURES,
    EU_MEMBER_STATES,
    AffinityModel,
    ConsortiumRules,
    ConsortiumSearch,
    RoleRule,
    UnsatisfiableRules,
    affinity_columns,
    affinity_design,
    suggest_consortia,
)
from matching.ranker import MatchingState
from matching.scoring import LinearScorer

CLUSTER = "h2020-health"


@dataclass(frozen=True)
class Project:
    id: str
    coordinator: int
    team: tuple[int, ...]  # known participants, coordinator included
    all_partners: int  # benchmark-organisation partners, known or not


def load(
    bench: Path,
    cutoff: str,
    window_end: str,
    *,
    programmes: str = "health",
    other_weight: float = 1.0,
) -> tuple[MatchingState, list[Project], dict[int, int]]:
    """The state a system would hold on the ``cutoff`` day (ISO date) and the projects starting
    from then until before ``window_end`` (health ones, or every programme's)."""
    bench_orgs = {row["org_id"] for row in csv.DictReader((bench / "orgs.csv").open())}
    info: dict[str, tuple[str, str]] = {}
    projects: dict[str, list[tuple[str, str]]] = defaultdict(list)
    year: dict[str, int] = {}
    start: dict[str, str] = {}
    domain: dict[str, bool] = {}
    with gzip.open(bench / "participations_hist.csv.gz", "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            pid = row["project_id"]
            projects[pid].append((row["org_id"], row["role"]))
            start[pid] = row["start_date"]
            year[pid] = int(row["start_date"][:4])
            domain[pid] = row["is_domain"] == "1"
            if start[pid] < cutoff:
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
        if start[pid] >= cutoff:
            continue
        orgs = tuple(dict.fromkeys(ids[o] for o, _ in members))
        if len(orgs) >= 2:
            weight = 1.0 if domain[pid] else other_weight
            collaborations.append(Collaboration(n + 1, orgs, "project", year[pid], weight))
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
        in_window = cutoff <= start[pid] < window_end
        if not (in_window and (domain[pid] or programmes == "all")):
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


def fit_affinity(state: MatchingState, projects: list[Project]) -> AffinityModel:
    """Logistic weights of the affinity model: each project's coordinator against every other
    candidate, label = a member of the project."""
    candidates = np.sort(state.catalog.filtered_ids(CandidateFilter(clusters=(CLUSTER,))))
    designs, labels = [], []
    for project in projects:
        seed = state.catalog.get(project.coordinator)
        assert seed is not None
        ids = candidates[candidates != project.coordinator].astype(np.int64)
        designs.append(affinity_design(affinity_columns(state, seed, ids)))
        labels.append(np.isin(ids, project.team))
    fitted = LogisticRegression(C=1.0, max_iter=5000).fit(
        np.vstack(designs), np.concatenate(labels)
    )
    return AffinityModel(
        intercept=round(float(fitted.intercept_[0]), 4),
        terms=tuple(
            (name, how, round(float(c), 4))
            for (name, how), c in zip(AFFINITY_FEATURES, fitted.coef_[0], strict=True)
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bench", type=Path, default=Path("../shared/benchmarks/h2020-health"))
    parser.add_argument("--cutoff", default="2016-01-01", help="history before this day")
    parser.add_argument("--window-end", default="2018-01-01", help="projects before this day")
    parser.add_argument("--programmes", choices=("health", "all"), default="health")
    parser.add_argument("--other-weight", type=float, default=H2020_OTHER_PROGRAMME_WEIGHT)
    parser.add_argument("--limit", type=int, default=0, help="first N projects only")
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per consortium")
    parser.add_argument("--pool", type=int, default=60)
    parser.add_argument("--pair-weight", type=float, default=ConsortiumSearch.pair_weight)
    parser.add_argument("--methods", default="multihelix,random,popularity")
    parser.add_argument("--fit", action="store_true", help="print fitted affinity weights")
    parser.add_argument("--out", type=Path, default=None, help="per-project JSON lines")
    args = parser.parse_args()
    if not args.cutoff < args.window_end:
        parser.error("--cutoff must come before --window-end")

    t0 = time.process_time()
    state, projects, degree = load(
        args.bench,
        args.cutoff,
        args.window_end,
        programmes=args.programmes,
        other_weight=args.other_weight,
    )
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
        f"history < {args.cutoff}: {len(state.catalog):,} organisations, "
        f"{state.snapshot().number_of_links:,} links; {len(candidates):,} benchmark candidates; "
        f"{len(projects)} {args.programmes} projects starting {args.cutoff} .. <{args.window_end} "
        f"(loaded in {time.process_time() - t0:.1f} s CPU)"
    )
    if args.fit:
        print(fit_affinity(state, projects))
        return
    methods = args.methods.split(",")
    rng = np.random.default_rng(0)
    popularity = {p.id: float(np.log1p(degree.get(p.id, 0))) for p in candidates}
    results: dict[str, list[tuple[float, float]]] = defaultdict(list)
    total_hits: Counter[str] = Counter()
    lines = []
    failures = 0
    proven = 0
    gaps: list[float] = []
    started = time.process_time()
    for n, project in enumerate(projects, start=1):
        rules = rules_of(state, project)
        real = set(project.team) - {project.coordinator}
        chosen: dict[str, list[int]] = {}
        if "multihelix" in methods:
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
                        pair_weight=args.pair_weight,
                    ),
                )
                best = found.consortia[0]
                chosen["multihelix"] = [m.organisation.id for m in best.members]
                proven += best.proven_optimal
                gaps.append(best.optimality_gap)
            except (UnsatisfiableRules, IndexError) as exc:
                failures += 1
                print(f"  project {project.id}: no consortium ({exc})")
                chosen["multihelix"] = []
        random_weights = {p.id: float(rng.random()) for p in candidates}
        if "random" in methods:
            chosen["random"] = baseline(candidates, rules, random_weights, args.time_limit)
        if "popularity" in methods:
            chosen["popularity"] = baseline(candidates, rules, popularity, args.time_limit)
        row: dict[str, object] = {"project": project.id, "size": len(project.team)}
        for method, members in chosen.items():
            proposed = set(members) - {project.coordinator}
            hits = len(proposed & real)
            precision = hits / len(proposed) if proposed else 0.0
            recall = hits / len(real)
            results[method].append((precision, recall))
            total_hits[method] += hits
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
            print(f"  {n}/{len(projects)} projects ({time.process_time() - started:.0f} s CPU)")

    print(
        f"\n{'method':40s} {'precision':>9s} {'recall':>7s} {'hits':>5s}  "
        f"(mean over {len(projects)} projects)"
    )
    for method, values in results.items():
        p = float(np.mean([v[0] for v in values]))
        r = float(np.mean([v[1] for v in values]))
        shown = f"{total_hits[method]:5d}" if method in methods else ""
        print(f"{method:40s} {p:9.3f} {r:7.3f} {shown:>5s}")
    print(f"projects without a suggested consortium (counted as 0 hits): {failures}")
    if gaps:
        print(
            f"multihelix consortia proven optimal for their pool: {proven} of {len(gaps)}; "
            f"mean optimality gap {np.mean(gaps):.3f}"
        )
    if args.out:
        args.out.write_text("\n".join(json.dumps(row) for row in lines) + "\n")


if __name__ == "__main__":
    main()
