"""Network map and ecosystem insights for what a key can see: build the view from the in-memory
state off the event loop, render or analyse it, and keep each insights run's headline numbers
so the next run reports what changed. Also serves the interactive map page's files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import anyio.to_thread
from sqlalchemy import delete, select

from app.errors import NotFound
from app.services.context import ServiceContext
from app.store.models import utcnow
from app.store.network_models import NetworkInsightRun
from matching.catalog import CandidateFilter, OrgProfile
from matching.network_map import (
    Insights,
    MapOptions,
    build_map,
    map_json,
    network_insights,
    network_view,
    render_map,
)
from matching.ranker import MatchingState

STATIC = Path(__file__).resolve().parents[1] / "static"
# name -> (path under app/static, media type); nothing else is ever served.
ASSETS: dict[str, tuple[str, str]] = {
    "map.js": ("map.js", "text/javascript; charset=utf-8"),
    "map.css": ("map.css", "text/css; charset=utf-8"),
    "cytoscape.min.js": ("vendor/cytoscape.min.js", "text/javascript; charset=utf-8"),
}
# Runs kept per scope: enough history to look back, bounded so a busy key cannot grow it.
RUNS_KEPT = 50
HEADLINE_WORDS = {
    "organisations": ("organisations", "more", "fewer"),
    "links": ("links", "more", "fewer"),
    "isolated": ("isolated organisations", "more", "fewer"),
    "under_connected": ("under-connected organisations", "more", "fewer"),
    "domestic_only": ("organisations with only domestic links", "more", "fewer"),
    "components": ("separate parts of the network", "more", "fewer"),
}


@dataclass(frozen=True)
class NetworkScope:
    """Who looks (visible tenants, None = all) and which part of the network."""

    tenants: tuple[str, ...] | None
    clusters: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    @property
    def filter(self) -> CandidateFilter:
        return CandidateFilter(
            clusters=self.clusters, countries=self.countries, sectors=self.sectors
        )

    @property
    def key(self) -> str:
        """A stable name for the scope, so runs compare like with like."""
        parts = [
            "tenants=" + ("*" if self.tenants is None else ",".join(sorted(self.tenants))),
            "cluster=" + ",".join(sorted(self.clusters)),
            "country=" + ",".join(sorted(self.countries)),
            "sector=" + ",".join(sorted(self.sectors)),
        ]
        text = ";".join(parts)
        if len(text) <= 200:
            return text
        return text[:150] + "#" + hashlib.sha256(text.encode()).hexdigest()[:40]


def organisation_ref(p: OrgProfile) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind,
        "sectors": list(p.sectors),
        "country": p.country,
        "clusters": list(p.clusters),
    }


# -- map ------------------------------------------------------------------------------------
def map_picture(
    state: MatchingState,
    scope: NetworkScope,
    options: MapOptions,
    fmt: Literal["svg", "png", "json"],
    title: str,
) -> bytes | dict[str, Any]:
    """The map in one format; sync (CPU-bound), the benchmark calls it too."""
    view = network_view(state, tenants=scope.tenants, filter=scope.filter)
    netmap = build_map(state, view, options)
    if fmt == "json":
        return map_json(netmap)
    return render_map(netmap, fmt, title=title)


async def network_map(
    ctx: ServiceContext,
    scope: NetworkScope,
    options: MapOptions,
    fmt: Literal["svg", "png", "json"],
) -> bytes | dict[str, Any]:
    title = "Collaboration map"
    if scope.clusters:
        title += ": " + ", ".join(scope.clusters)
    elif scope.tenants:
        title += ": " + ", ".join(scope.tenants)
    return await anyio.to_thread.run_sync(
        map_picture, ctx.derived.state, scope, options, fmt, title
    )


# -- insights -------------------------------------------------------------------------------
def insights_report(state: MatchingState, scope: NetworkScope, top: int) -> Insights:
    """Sync insights for a scope; the benchmark calls it too."""
    return network_insights(
        network_view(state, tenants=scope.tenants, filter=scope.filter), top=top
    )


async def network_report(
    ctx: ServiceContext, scope: NetworkScope, *, top: int, record: bool
) -> dict[str, Any]:
    """Insights plus the change since the previous recorded run of the same scope; records
    this run unless ``record`` is False (an identical headline is not recorded twice)."""
    insights = await anyio.to_thread.run_sync(insights_report, ctx.derived.state, scope, top)
    key = scope.key
    async with ctx.db.read() as session:
        previous = (
            await session.execute(
                select(NetworkInsightRun.created_at, NetworkInsightRun.headline)
                .where(NetworkInsightRun.scope == key)
                .order_by(NetworkInsightRun.id.desc())
                .limit(1)
            )
        ).first()
    headline = {k: v for k, v in insights.headline.items()}
    previous_at: datetime | None = previous.created_at if previous is not None else None
    previous_headline: dict[str, float] | None = (
        dict(previous.headline) if previous is not None else None
    )
    if record and previous_headline != headline:
        async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
            session.add(NetworkInsightRun(scope=key, created_at=utcnow(), headline=headline))
            await session.flush()
            keep = (
                select(NetworkInsightRun.id)
                .where(NetworkInsightRun.scope == key)
                .order_by(NetworkInsightRun.id.desc())
                .limit(RUNS_KEPT)
            )
            await session.execute(
                delete(NetworkInsightRun).where(
                    NetworkInsightRun.scope == key,
                    NetworkInsightRun.id.not_in(keep.scalar_subquery()),
                )
            )
    return _report(insights, _change(headline, previous_headline, previous_at))


def _change(
    now: dict[str, float], before: dict[str, float] | None, at: datetime | None
) -> dict[str, Any]:
    if before is None or at is None:
        return {
            "previous_run_at": None,
            "deltas": {},
            "summary": ["First run for this view of the network: nothing to compare yet."],
        }
    deltas = {k: round(v - float(before.get(k, 0.0)), 4) for k, v in now.items()}
    day = at.date().isoformat()
    summary = []
    for name, (words, up, down) in HEADLINE_WORDS.items():
        delta = deltas.get(name, 0.0)
        if delta:
            summary.append(f"{abs(int(delta))} {up if delta > 0 else down} {words} than on {day}.")
    share = deltas.get("international_link_share", 0.0)
    if share:
        summary.append(
            f"International share of links {'up' if share > 0 else 'down'} "
            f"{abs(share) * 100:.1f} points since {day}."
        )
    if not summary:
        summary.append(f"No change since the previous run on {day}.")
    return {"previous_run_at": at.isoformat(), "deltas": deltas, "summary": summary}


def _report(insights: Insights, change: dict[str, Any]) -> dict[str, Any]:
    def ref_with_partners(items: list[tuple[OrgProfile, int]]) -> list[dict[str, Any]]:
        return [{"organisation": organisation_ref(p), "partners": k} for p, k in items]

    bridges = []
    for b in insights.bridges:
        bridges.append(
            {
                "organisation": organisation_ref(b.organisation),
                "betweenness": round(b.betweenness, 5),
                "partners": b.partners,
                "countries_reached": b.countries_reached,
                "clusters_reached": b.clusters_reached,
                "brokered_country_pairs": b.brokered_country_pairs,
                "brokered_cluster_pairs": b.brokered_cluster_pairs,
                "summary": (
                    f"{b.organisation.name} links {b.partners} partners in "
                    f"{b.countries_reached} countries; {b.brokered_country_pairs} pairs of its "
                    "partners in different countries have no link of their own, so it is their "
                    "bridge."
                ),
            }
        )

    def matrix(m: Any) -> dict[str, Any]:
        return {
            "labels": m.labels,
            "organisations": m.organisations,
            "links": m.links,
            "gaps": m.gaps,
        }

    method = (
        "exact shortest-path betweenness (hop counts)"
        if insights.betweenness_exact
        else f"betweenness estimated from {insights.betweenness_pivots} randomly sampled source "
        "organisations (Brandes-Pich pivots): reliable for the top bridges, approximate below"
    )
    return {
        "headline": {k: v for k, v in insights.headline.items()},
        "change": change,
        "bridges": bridges,
        "isolated": [organisation_ref(p) for p in insights.isolated],
        "under_connected": ref_with_partners(insights.under_connected),
        "domestic_only": ref_with_partners(insights.domestic_only),
        "sectors": matrix(insights.sector_matrix),
        "countries": matrix(insights.country_matrix),
        "clusters": [
            {
                "cluster": c.cluster,
                "members": c.members,
                "links": c.links,
                "international_links": c.international_links,
                "international_share": round(c.international_share, 4),
            }
            for c in insights.clusters
        ],
        "method": {
            "betweenness": method,
            "pivots": insights.betweenness_pivots,
            "exact": insights.betweenness_exact,
        },
    }


# -- the interactive page -------------------------------------------------------------------
def map_page() -> str:
    return (STATIC / "map.html").read_text(encoding="utf-8")


def asset(name: str) -> tuple[bytes, str]:
    """A whitelisted file of the page; the vendored library exists only after build-web."""
    entry = ASSETS.get(name)
    if entry is None:
        raise NotFound(f"no asset {name!r}")
    path = STATIC / entry[0]
    if not path.is_file():
        raise NotFound(f"{name} is not built: run scripts/build-web")
    return path.read_bytes(), entry[1]
