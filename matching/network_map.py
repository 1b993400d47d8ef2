"""The cluster's network as staff see it: the visible subgraph with its attributes, ecosystem
insights (bridges, gaps, under-connected members), and the slide-ready map (grouped layout,
existing links thin, the ranker's strongest suggested cross-group links dashed) as SVG, PNG
or JSON.

Pure and synchronous: callers run it off the event loop; the API and the benchmark script
call the same functions.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from graph.analytics import (
    brokerage,
    components,
    group_gaps,
    group_link_matrix,
    hop_betweenness,
    membership_matrix,
)
from matching.catalog import CandidateFilter, OrgProfile
from matching.explanation import country_name
from matching.ranker import MatchingState, MatchQuery, rank_partners
from matching.vocabulary import KIND_LABELS, SECTOR_LABELS, Sector, StakeholderKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ColorBy = Literal["sector", "kind"]
GroupBy = Literal["country", "cluster", "kind"]

NO_CLUSTER = "(no cluster)"
NO_SECTOR = "(no sector)"
# Fixed colours per code, so a sector keeps its colour from one map to the next.
SECTOR_COLOURS = dict(
    zip(
        [s.value for s in Sector],
        [
            "#1f77b4",
            "#2ca02c",
            "#d62728",
            "#9467bd",
            "#17becf",
            "#ff7f0e",
            "#8c564b",
            "#bcbd22",
            "#7f7f7f",
            "#e377c2",
            "#aec7e8",
            "#98df8a",
        ],
        strict=True,
    )
)
KIND_COLOURS = dict(
    zip(
        [k.value for k in StakeholderKind],
        [
            "#ff7f0e",
            "#8c564b",
            "#1f77b4",
            "#17becf",
            "#d62728",
            "#9467bd",
            "#2ca02c",
            "#bcbd22",
            "#e377c2",
            "#7f7f7f",
        ],
        strict=True,
    )
)
MISSING_COLOUR = "#c7c7c7"
SUGGESTION_COLOUR = "#e6550d"


# -- the visible subgraph -------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkView:
    """The organisations a caller may see (after filters), in ascending id order, and the
    links among them only: a link to an organisation the caller cannot see is not shown."""

    ids: IntArray
    profiles: list[OrgProfile]
    adjacency: sp.csr_array  # symmetric pair weights, rows aligned with ``ids``
    filter: CandidateFilter = field(default_factory=CandidateFilter)

    @property
    def degree(self) -> IntArray:
        return np.asarray(np.diff(self.adjacency.indptr), dtype=np.int64)

    @property
    def number_of_links(self) -> int:
        return int(self.adjacency.nnz // 2)

    def links(self) -> tuple[IntArray, IntArray, FloatArray]:
        """Each link once: (row, row, weight) with row < row."""
        upper = sp.triu(self.adjacency, k=1).tocoo()
        return (
            upper.row.astype(np.int64),
            upper.col.astype(np.int64),
            upper.data.astype(np.float64),
        )


def is_visible(profile: OrgProfile, tenants: tuple[str, ...] | None) -> bool:
    """Network-wide records (no tenant) are visible to all; ``tenants`` None sees everything.

    >>> p = OrgProfile(1, "x", "sme", (), "ES", tenant="biocat")
    >>> is_visible(p, None), is_visible(p, ("biocat",)), is_visible(p, ("eurasante",))
    (True, True, False)
    """
    return tenants is None or profile.tenant is None or profile.tenant in tenants


def network_view(
    state: MatchingState,
    *,
    tenants: tuple[str, ...] | None,
    filter: CandidateFilter | None = None,
) -> NetworkView:
    """The subgraph of the organisations visible to ``tenants`` that pass ``filter``."""
    catalog = state.catalog
    flt = filter or CandidateFilter()
    ids = np.sort(catalog.all_ids() if flt.is_empty else catalog.filtered_ids(flt))
    profiles_all = catalog.profiles(ids)
    keep = [p is not None and is_visible(p, tenants) for p in profiles_all]
    ids = ids[np.asarray(keep, dtype=np.bool_)] if len(ids) else ids
    profiles = [p for p, k in zip(profiles_all, keep, strict=True) if k and p is not None]
    snapshot = state.snapshot()
    rows = snapshot.index_of(ids)
    known = np.flatnonzero(rows >= 0)
    n, n_snap = len(ids), snapshot.number_of_organisations
    # Selection matrix: view position <- snapshot row; organisations added after the last
    # snapshot have no row yet and simply have no links.
    pick = sp.csr_array((np.ones(len(known)), (known, rows[known])), shape=(n, max(n_snap, 1)))
    full = snapshot.adjacency if n_snap else sp.csr_array((1, 1))
    adjacency = sp.csr_array(pick @ full @ pick.T)
    adjacency.sum_duplicates()
    return NetworkView(np.asarray(ids, dtype=np.int64), profiles, adjacency, flt)


# -- insights -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bridge:
    organisation: OrgProfile
    betweenness: float
    partners: int
    countries_reached: int
    clusters_reached: int
    brokered_country_pairs: int
    brokered_cluster_pairs: int


@dataclass(frozen=True)
class LinkMatrix:
    labels: list[str]
    organisations: list[int]
    links: list[list[int]]
    gaps: list[dict[str, Any]]


@dataclass(frozen=True)
class ClusterShare:
    cluster: str
    members: int
    links: int
    international_links: int

    @property
    def international_share(self) -> float:
        return self.international_links / self.links if self.links else 0.0


@dataclass(frozen=True)
class Insights:
    headline: dict[str, float]
    bridges: list[Bridge]
    isolated: list[OrgProfile]
    under_connected: list[tuple[OrgProfile, int]]
    domestic_only: list[tuple[OrgProfile, int]]
    sector_matrix: LinkMatrix
    country_matrix: LinkMatrix
    clusters: list[ClusterShare]
    betweenness_pivots: int
    betweenness_exact: bool


def _codes(labels: Sequence[str]) -> tuple[list[str], IntArray]:
    """Distinct labels (sorted) and each item's code."""
    distinct = sorted(set(labels))
    index = {label: i for i, label in enumerate(distinct)}
    return distinct, np.fromiter((index[x] for x in labels), dtype=np.int64, count=len(labels))


def network_insights(
    view: NetworkView,
    *,
    top: int = 10,
    under_connected_max: int = 2,
    pivots: int | None = None,
) -> Insights:
    """Bridging organisations, isolated and under-connected members, sector x sector and
    country x country link matrices with their gaps, each cluster's international share.

    Betweenness is exact up to a few thousand organisations and estimated from sampled
    sources above (see :func:`graph.analytics.hop_betweenness`).
    """
    n = len(view.ids)
    profiles = view.profiles
    adjacency = view.adjacency
    degree = view.degree
    lo, hi, _ = view.links()
    n_links = len(lo)

    countries, country_of = _codes([p.country for p in profiles])
    primary_cluster = [p.clusters[0] if p.clusters else NO_CLUSTER for p in profiles]
    _, cluster_of = _codes(primary_cluster)

    between = hop_betweenness(adjacency, pivots=pivots)
    order = np.lexsort((view.ids, -between.values))
    top_rows = [int(r) for r in order[:top] if degree[r] > 0 and between.values[r] > 0]
    country_pairs, country_reach = brokerage(adjacency, top_rows, country_of)
    cluster_pairs, cluster_reach = brokerage(adjacency, top_rows, cluster_of)
    bridges = [
        Bridge(
            organisation=profiles[r],
            betweenness=float(between.values[r]),
            partners=int(degree[r]),
            countries_reached=int(country_reach[k]),
            clusters_reached=int(cluster_reach[k]),
            brokered_country_pairs=int(country_pairs[k]),
            brokered_cluster_pairs=int(cluster_pairs[k]),
        )
        for k, r in enumerate(top_rows)
    ]

    # International partners per organisation: links to another country.
    cross_country = country_of[lo] != country_of[hi]
    foreign = np.bincount(lo[cross_country], minlength=n) + np.bincount(
        hi[cross_country], minlength=n
    )
    isolated_rows = np.flatnonzero(degree == 0)
    weak_rows = np.flatnonzero((degree > 0) & (degree <= under_connected_max))
    domestic_rows = np.flatnonzero((degree > under_connected_max) & (foreign == 0))

    sector_lists = [p.sectors or (NO_SECTOR,) for p in profiles]
    sector_labels = sorted({s for ss in sector_lists for s in ss})
    sector_index = {s: i for i, s in enumerate(sector_labels)}
    sector_members = membership_matrix(
        [tuple(sector_index[s] for s in ss) for ss in sector_lists], len(sector_labels)
    )
    country_members = membership_matrix([(int(c),) for c in country_of], len(countries))
    density = n_links / (n * (n - 1) / 2) if n > 1 else 0.0
    sector_matrix = _matrix(
        adjacency, sector_members, [SECTOR_LABELS.get(s, s) for s in sector_labels], density, top
    )
    country_matrix = _matrix(
        adjacency, country_members, [country_name(c) for c in countries], density, top
    )

    cluster_shares = []
    for cluster in sorted({c for p in profiles for c in p.clusters}):
        member = np.fromiter((cluster in p.clusters for p in profiles), dtype=np.bool_, count=n)
        touching = member[lo] | member[hi]
        cluster_shares.append(
            ClusterShare(
                cluster=cluster,
                members=int(member.sum()),
                links=int(touching.sum()),
                international_links=int((touching & cross_country).sum()),
            )
        )

    n_components, labels = components(adjacency)
    largest = int(np.bincount(labels).max()) if n else 0
    sector_masks = np.fromiter((p.sector_mask for p in profiles), dtype=np.int64, count=n)
    with_sectors = (sector_masks[lo] != 0) & (sector_masks[hi] != 0)
    cross_sector = with_sectors & ((sector_masks[lo] & sector_masks[hi]) == 0)
    headline = {
        "organisations": float(n),
        "links": float(n_links),
        "isolated": float(len(isolated_rows)),
        "under_connected": float(len(weak_rows)),
        "domestic_only": float(len(domestic_rows)),
        "components": float(n_components),
        "largest_component_share": round(largest / n, 4) if n else 0.0,
        "international_link_share": round(float(cross_country.mean()), 4) if n_links else 0.0,
        "cross_sector_link_share": round(float(cross_sector.mean()), 4) if n_links else 0.0,
        "mean_partners": round(float(degree.mean()), 3) if n else 0.0,
    }

    def by_degree(rows: IntArray, limit: int) -> list[tuple[OrgProfile, int]]:
        ranked = rows[np.lexsort((view.ids[rows], degree[rows]))][:limit]
        return [(profiles[int(r)], int(degree[r])) for r in ranked]

    return Insights(
        headline=headline,
        bridges=bridges,
        isolated=[profiles[int(r)] for r in isolated_rows[: top * 5]],
        under_connected=by_degree(weak_rows, top * 5),
        domestic_only=[
            (profiles[int(r)], int(degree[r]))
            for r in domestic_rows[np.argsort(-degree[domestic_rows], kind="stable")][: top * 5]
        ],
        sector_matrix=sector_matrix,
        country_matrix=country_matrix,
        clusters=cluster_shares,
        betweenness_pivots=between.pivots,
        betweenness_exact=between.exact,
    )


def _matrix(
    adjacency: sp.csr_array,
    members: sp.csr_array,
    labels: list[str],
    density: float,
    top: int,
) -> LinkMatrix:
    links = group_link_matrix(adjacency, members)
    sizes = np.asarray(members.sum(axis=0), dtype=np.int64).reshape(-1)
    gaps = []
    for gap in group_gaps(links, sizes, density=density, limit=top):
        a, b = labels[gap.first], labels[gap.second]
        pair = f"{a} x {b}" if gap.first != gap.second else f"within {a}"
        gaps.append(
            {
                "first": a,
                "second": b,
                "organisations_first": gap.organisations_first,
                "organisations_second": gap.organisations_second,
                "links": gap.links,
                "expected_links": gap.expected_links,
                "summary": (
                    f"{pair}: {gap.links} links between {gap.organisations_first} and "
                    f"{gap.organisations_second} organisations, where the network's average "
                    f"density would give about {gap.expected_links:.0f}."
                ),
            }
        )
    return LinkMatrix(labels, sizes.tolist(), links.tolist(), gaps)


# -- the map --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapOptions:
    color_by: ColorBy = "sector"
    group_by: GroupBy = "country"
    max_nodes: int = 3_000
    # More lines than this turn a slide into grey fog and cost seconds to draw.
    max_links: int = 6_000
    suggested: int = 15
    suggestion_sample: int = 40


@dataclass
class MapNode:
    key: str
    label: str
    group: str
    category: str
    colour: str
    count: int  # organisations this node stands for (1 unless aggregated)
    degree: int
    organisation: OrgProfile | None = None
    x: float = 0.0
    y: float = 0.0
    r: float = 1.0


@dataclass(frozen=True)
class MapGroup:
    key: str
    label: str
    organisations: int
    x: float
    y: float
    r: float


@dataclass(frozen=True)
class SuggestedLink:
    source: int  # node index
    target: int
    score: float
    reason: str


@dataclass
class NetworkMap:
    nodes: list[MapNode]
    links: list[tuple[int, int, float]]
    suggested: list[SuggestedLink]
    groups: list[MapGroup]
    legend: list[tuple[str, str, int]]  # (label, colour, organisations)
    organisations: int
    total_links: int
    aggregated: bool
    links_shown: int
    width: float
    height: float
    options: MapOptions
    notes: list[str] = field(default_factory=list)
    ranker_calls: int = 0  # organisations whose matches were asked for the suggested links


def _group_key(profile: OrgProfile, group_by: GroupBy) -> tuple[str, str]:
    if group_by == "country":
        return profile.country, country_name(profile.country)
    if group_by == "cluster":
        key = profile.clusters[0] if profile.clusters else NO_CLUSTER
        return key, key
    return profile.kind, KIND_LABELS.get(profile.kind, profile.kind)


def _category(profile: OrgProfile, color_by: ColorBy) -> tuple[str, str, str]:
    """(code, label, colour) of the organisation's colour category: its first sector or kind."""
    if color_by == "kind":
        code = profile.kind
        return code, KIND_LABELS.get(code, code), KIND_COLOURS.get(code, MISSING_COLOUR)
    if not profile.sectors:
        return NO_SECTOR, "no sector", MISSING_COLOUR
    code = profile.sectors[0]
    return code, SECTOR_LABELS.get(code, code), SECTOR_COLOURS.get(code, MISSING_COLOUR)


def build_map(state: MatchingState, view: NetworkView, options: MapOptions) -> NetworkMap:
    """Nodes, links, groups and suggested links with a grouped layout.

    Up to ``options.max_nodes`` organisations are drawn one by one; above that each group
    shows one bubble per colour category, sized by its organisations, and links add up.
    """
    profiles = view.profiles
    n = len(profiles)
    degree = view.degree
    lo, hi, weight = view.links()
    aggregated = n > options.max_nodes
    group_info = [_group_key(p, options.group_by) for p in profiles]
    categories = [_category(p, options.color_by) for p in profiles]

    nodes: list[MapNode] = []
    node_of_row = np.zeros(n, dtype=np.int64)
    if not aggregated:
        for row, p in enumerate(profiles):
            node_of_row[row] = row
            nodes.append(
                MapNode(
                    key=str(p.id),
                    label=p.name,
                    group=group_info[row][0],
                    category=categories[row][0],
                    colour=categories[row][2],
                    count=1,
                    degree=int(degree[row]),
                    organisation=p,
                )
            )
    else:
        bucket_index: dict[tuple[str, str], int] = {}
        for row in range(n):
            key = (group_info[row][0], categories[row][0])
            if key not in bucket_index:
                bucket_index[key] = len(nodes)
                nodes.append(
                    MapNode(
                        key=f"{key[0]}|{key[1]}",
                        label=f"{categories[row][1]} in {group_info[row][1]}",
                        group=key[0],
                        category=key[1],
                        colour=categories[row][2],
                        count=0,
                        degree=0,
                    )
                )
            node = nodes[bucket_index[key]]
            node.count += 1
            node.degree += int(degree[row])
            node_of_row[row] = bucket_index[key]
        for node in nodes:
            node.label = f"{node.count} {node.label}"

    links = _node_links(node_of_row[lo], node_of_row[hi], weight, aggregated)
    total_node_links = len(links)
    if len(links) > options.max_links:
        links = sorted(links, key=lambda t: -t[2])[: options.max_links]
    groups, width, height = _layout(nodes, group_info, aggregated)
    suggested, ranker_calls = _suggestions(state, view, nodes, node_of_row, options)
    counts = Counter(categories)
    legend = [
        (label, colour, count)
        for (code, label, colour), count in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    notes = []
    if aggregated:
        notes.append(
            f"{n:,} organisations are more than {options.max_nodes:,}: each bubble stands for "
            "the organisations of one colour in a group, sized by their number."
        )
    if len(links) < total_node_links:
        notes.append(f"The {len(links):,} strongest of {total_node_links:,} links are drawn.")
    return NetworkMap(
        nodes=nodes,
        links=links,
        suggested=suggested,
        groups=groups,
        legend=legend,
        organisations=n,
        total_links=view.number_of_links,
        aggregated=aggregated,
        links_shown=len(links),
        width=width,
        height=height,
        options=options,
        notes=notes,
        ranker_calls=ranker_calls,
    )


def _node_links(
    a: IntArray, b: IntArray, weight: FloatArray, aggregated: bool
) -> list[tuple[int, int, float]]:
    if not aggregated:
        return list(zip(a.tolist(), b.tolist(), weight.tolist(), strict=True))
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = lo[keep] * np.int64(max(int(hi.max(initial=0)) + 1, 1)) + hi[keep]
    unique, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse)
    base = max(int(hi.max(initial=0)) + 1, 1)
    return [
        (int(k // base), int(k % base), float(c))
        for k, c in zip(unique.tolist(), counts.tolist(), strict=True)
    ]


GOLDEN_ANGLE = math.pi * (3.0 - math.sqrt(5.0))


def _layout(
    nodes: list[MapNode], group_info: list[tuple[str, str]], aggregated: bool
) -> tuple[list[MapGroup], float, float]:
    """Groups as discs packed in rows (largest first); inside a disc, one pie wedge per colour
    category with the best-connected organisations towards the centre (a sunflower spiral), so
    a group reads as its mix of sectors at a glance. O(n log n): 5,000 nodes take milliseconds.
    """
    labels = dict(group_info)
    members: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        members.setdefault(node.group, []).append(i)
    for node in nodes:
        node.r = 1.0 + 0.35 * math.log1p(node.degree) if not aggregated else math.sqrt(node.count)
    spacing = 2.3
    discs: list[tuple[str, float]] = []
    for key, idx in members.items():
        area = sum((spacing * nodes[i].r) ** 2 for i in idx)
        discs.append((key, max(math.sqrt(area / math.pi) * 1.15, 3.0 * spacing)))
    discs.sort(key=lambda kv: (-kv[1], kv[0]))
    total_area = sum((2 * r + 6) ** 2 for _, r in discs)
    row_width = max(math.sqrt(total_area * 16 / 9), 2 * discs[0][1] + 6) if discs else 1.0

    groups: list[MapGroup] = []
    x = y = 0.0
    row_height = 0.0
    placed: list[tuple[str, float, float, float]] = []
    for key, radius in discs:
        d = 2 * radius + 6  # margin for the label
        if x > 0 and x + d > row_width:
            x, y = 0.0, y + row_height
            row_height = 0.0
        placed.append((key, x + d / 2, y + d / 2 + 2, radius))
        x += d
        row_height = max(row_height, d + 2)
    width = max((cx + r + 3 for _, cx, _, r in placed), default=1.0)
    height = y + row_height
    for key, cx, cy, radius in placed:
        idx = members[key]
        _place_in_disc(nodes, idx, cx, cy, radius / 1.15)
        count = sum(nodes[i].count for i in idx)
        groups.append(MapGroup(key, labels.get(key, key), count, cx, cy, radius))
    return groups, width, height


def _place_in_disc(nodes: list[MapNode], idx: list[int], cx: float, cy: float, r: float) -> None:
    n = len(idx)
    k = np.arange(n)
    radius = r * np.sqrt((k + 0.5) / n) if n > 1 else np.zeros(1)
    angle = (k * GOLDEN_ANGLE) % (2 * math.pi)
    # Points in angle order are cut into consecutive wedges, one per category (largest
    # first); within a wedge the nearest-to-centre points go to the best-connected nodes.
    by_angle = np.argsort(angle, kind="stable")
    cats = Counter(nodes[i].category for i in idx)
    order = sorted(idx, key=lambda i: (-cats[nodes[i].category], nodes[i].category))
    start = 0
    for category, size in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0])):
        points = by_angle[start : start + size]
        start += size
        wedge = [i for i in order if nodes[i].category == category]
        wedge.sort(key=lambda i: (-nodes[i].degree, nodes[i].key))
        points = points[np.argsort(radius[points], kind="stable")]
        for i, p in zip(wedge, points.tolist(), strict=True):
            nodes[i].x = cx + float(radius[p] * math.cos(angle[p]))
            nodes[i].y = cy + float(radius[p] * math.sin(angle[p]))


def _suggestions(
    state: MatchingState,
    view: NetworkView,
    nodes: list[MapNode],
    node_of_row: IntArray,
    options: MapOptions,
) -> tuple[list[SuggestedLink], int]:
    """The strongest new links across groups or colours, from the ranker's top matches of a
    sample of organisations: each group's best-connected members in turn, so every region of
    the map gets a say. Also returns how many organisations the ranker was asked about."""
    if options.suggested <= 0 or len(view.ids) < 2:
        return [], 0
    profiles = view.profiles
    degree = view.degree
    by_group: dict[str, list[int]] = {}
    for row in np.lexsort((view.ids, -degree)).tolist():
        by_group.setdefault(nodes[int(node_of_row[row])].group, []).append(row)
    sample: list[int] = []
    queues = sorted(by_group.values(), key=len, reverse=True)
    depth = 0
    while len(sample) < options.suggestion_sample and any(depth < len(q) for q in queues):
        for queue in queues:
            if depth < len(queue) and len(sample) < options.suggestion_sample:
                sample.append(queue[depth])
        depth += 1
    row_of = {int(i): r for r, i in enumerate(view.ids.tolist())}
    best: dict[tuple[int, int], SuggestedLink] = {}
    query = MatchQuery(
        limit=8, filter=view.filter, cross_preference=1.0, diversity=0.0, explain=True
    )
    for row in sample:
        source = profiles[row]
        for match in rank_partners(state, source.id, query):
            other = row_of.get(match.organisation.id)
            if other is None:  # not visible, or filtered out of this map
                continue
            a, b = int(node_of_row[row]), int(node_of_row[other])
            if a == b:
                continue
            if nodes[a].group == nodes[b].group and nodes[a].category == nodes[b].category:
                continue
            key = (min(a, b), max(a, b))
            why = match.explanation[0] if match.explanation else ""
            reason = f"Suggested for {source.name}: {match.organisation.name}. {why}".strip()
            if key not in best or best[key].score < match.score:
                best[key] = SuggestedLink(key[0], key[1], match.score, reason)
    ranked = sorted(best.values(), key=lambda s: (-s.score, s.source, s.target))
    return ranked[: options.suggested], len(sample)


# -- rendering ------------------------------------------------------------------------------
_RENDER_LOCK = threading.Lock()


def render_map(netmap: NetworkMap, fmt: Literal["svg", "png"], *, title: str) -> bytes:
    """The map as a 16:9 slide picture (1600 x 900 px for PNG; in SVG each organisation is a
    ``<circle>`` and many links are one embedded image)."""
    # Imported here: matplotlib costs a second at import, and only map requests need it.
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch, Patch

    fig = Figure(figsize=(16, 9), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.01, 0.06, 0.78, 0.84))
    ax.set_axis_off()
    ax.set_aspect("equal")
    pad = 2.0
    ax.set_xlim(-pad, netmap.width + pad)
    ax.set_ylim(netmap.height + pad, -pad)  # first row at the top

    # Axes units -> points, to size markers in data units whatever the map's extent.
    scale = min(0.78 * 16 / (netmap.width + 2 * pad), 0.84 * 9 / (netmap.height + 2 * pad))
    points_per_unit = scale * 72.0

    for g in netmap.groups:
        ax.add_patch(Circle((g.x, g.y), g.r, facecolor="#f4f4f4", edgecolor="#dddddd", lw=0.6))
        size = 7 if len(netmap.groups) > 30 else 9
        ax.text(
            g.x,
            g.y - g.r - 0.6,
            f"{g.label} ({g.organisations:,})",
            ha="center",
            va="bottom",
            fontsize=size,
            color="#333333",
        )

    nodes = netmap.nodes
    xy = np.array([(nd.x, nd.y) for nd in nodes]) if nodes else np.zeros((0, 2))
    diameters = np.array([nd.r for nd in nodes]) * points_per_unit  # points, as scatter's
    colours = [nd.colour for nd in nodes]
    links = _link_lines(netmap.links, xy) if netmap.links else None
    # SVG: the dots, and the links once they are many, are written by _svg_dots and
    # _svg_link_image into empty groups matplotlib leaves at their place in the drawing order.
    links_as_image = fmt == "svg" and len(netmap.links) > RASTER_LINKS
    if links is not None:
        ax.add_collection(_svg_layer(SVG_LINKS_ID, 1) if links_as_image else links)
    if nodes and fmt == "svg":
        ax.add_collection(_svg_layer(SVG_DOTS_ID, 2), autolim=False)
    elif nodes:
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=diameters**2,
            c=_rgba(colours),
            edgecolors="white",
            linewidths=0.3,
            zorder=2,
        )
    for s in netmap.suggested:
        ax.add_patch(
            FancyArrowPatch(
                tuple(xy[s.source]),
                tuple(xy[s.target]),
                connectionstyle="arc3,rad=0.25",
                arrowstyle="-",
                linestyle=(0, (4, 2)),
                linewidth=1.6,
                color=SUGGESTION_COLOUR,
                alpha=0.95,
                zorder=3,
            )
        )

    colour_title = "sector" if netmap.options.color_by == "sector" else "kind of organisation"
    handles: list[Any] = [
        Patch(facecolor=colour, edgecolor="none", label=f"{label} ({count:,})")
        for label, colour, count in netmap.legend[:14]
    ]
    handles.append(Line2D([], [], color="#7a7a7a", lw=1.0, label="existing collaboration"))
    handles.append(
        Line2D(
            [],
            [],
            color=SUGGESTION_COLOUR,
            lw=1.6,
            linestyle=(0, (4, 2)),
            label="suggested new link",
        )
    )
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.795, 0.88),
        frameon=False,
        fontsize=9,
        title=f"Colour: {colour_title}",
        title_fontsize=10,
        alignment="left",
    )
    fig.text(0.01, 0.955, title, fontsize=17, weight="bold", color="#222222")
    group_word = {"country": "country", "cluster": "cluster", "kind": "kind"}[
        netmap.options.group_by
    ]
    subtitle = (
        f"{netmap.organisations:,} organisations, {netmap.total_links:,} collaboration links, "
        f"grouped by {group_word}; dashed: the {len(netmap.suggested)} strongest suggested "
        "new links across groups or sectors"
    )
    fig.text(0.01, 0.925, subtitle, fontsize=10.5, color="#444444")
    footer = " ".join(netmap.notes) or "Node size: number of collaboration partners."
    fig.text(0.01, 0.02, footer + "  MultiHelix", fontsize=8, color="#777777")

    buffer = io.BytesIO()
    with _RENDER_LOCK, rc_context({"svg.fonttype": "none", "svg.hashsalt": "multihelix"}):
        if fmt == "png":
            # zlib level 3 instead of 6: half the encoding time and a slightly smaller file
            # for this picture (anti-aliased lines leave little for the slower levels to find).
            fig.savefig(
                buffer,
                format=fmt,
                dpi=100,
                metadata=_metadata(fmt),
                pil_kwargs={"compress_level": 3},
            )
            return buffer.getvalue()
        fig.savefig(buffer, format=fmt, dpi=100, metadata=_metadata(fmt))
        svg = buffer.getvalue().decode("utf-8")
        # After savefig the axes sit where the equal aspect put them: data -> page is final.
        if links is not None and links_as_image:
            svg = _fill_svg_layer(svg, SVG_LINKS_ID, _svg_link_image(ax, links))
        if nodes:
            svg = _fill_svg_layer(svg, SVG_DOTS_ID, _svg_dots(ax, xy, diameters, colours))
    return svg.encode("utf-8")


# More links than this are drawn as one embedded image in SVG: thousands of faint lines are
# texture, not something to edit, and as vectors they would make the file tens of megabytes.
RASTER_LINKS = 2_000
SVG_LINKS_ID = "multihelix-links"
SVG_DOTS_ID = "multihelix-dots"


def _link_lines(links: list[tuple[int, int, float]], xy: FloatArray) -> Any:
    """Existing links as thin grey lines, wider for heavier pairs, fainter when many."""
    from matplotlib.collections import LineCollection

    ends = np.array([(a, b) for a, b, _ in links], dtype=np.int64)
    weights = np.array([w for _, _, w in links], dtype=np.float64)
    return LineCollection(
        cast("Sequence[FloatArray]", xy[ends]),  # (links, 2 ends, x and y)
        colors="#7a7a7a",
        linewidths=0.25 + 1.2 * np.sqrt(weights / weights.max()),
        alpha=0.35 if len(ends) < RASTER_LINKS else 0.18,
        zorder=1,
    )


def _rgba(colours: list[str]) -> FloatArray:
    """Hex colours as RGBA rows, converting each distinct colour once."""
    from matplotlib.colors import to_rgba_array

    palette, colour_of = np.unique(np.asarray(colours), return_inverse=True)
    return np.asarray(to_rgba_array(palette.tolist())[colour_of], dtype=np.float64)


def _svg_layer(gid: str, zorder: int) -> Any:
    """An empty collection: matplotlib writes it as ``<g id="gid"/>`` in z-order."""
    from matplotlib.collections import LineCollection

    layer = LineCollection([], zorder=zorder)
    layer.set_gid(gid)
    return layer


def _fill_svg_layer(svg: str, gid: str, content: str) -> str:
    empty = f'<g id="{gid}"/>'
    if svg.count(empty) != 1:
        raise RuntimeError(f"matplotlib did not write the {gid} layer as {empty}")
    return svg.replace(empty, f'<g id="{gid}">\n{content}</g>')


def _page_points(ax: Any, xy: FloatArray) -> FloatArray:
    """Data coordinates -> SVG page coordinates (points, y down)."""
    fig = ax.figure
    points: FloatArray = np.asarray(ax.transData.transform(xy), dtype=np.float64)
    points *= 72.0 / float(fig.dpi)
    points[:, 1] = fig.get_figheight() * 72.0 - points[:, 1]
    return points


def _svg_dots(ax: Any, xy: FloatArray, diameters_pt: FloatArray, colours: list[str]) -> str:
    """One white-edged ``<circle>`` per dot, as scatter would draw it: matplotlib writes each
    dot as a full Bezier path with its own style, five times the bytes and most of the time
    of the whole SVG at a few thousand dots."""
    centres = _page_points(ax, xy).tolist()
    radii = (diameters_pt / 2.0).tolist()
    rows = [
        f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{r:.3f}" fill="{c}"/>\n'
        for (x, y), r, c in zip(centres, radii, colours, strict=True)
    ]
    return '<g style="stroke: #ffffff; stroke-width: 0.3">\n' + "".join(rows) + "</g>\n"


def _svg_link_image(ax: Any, links: Any) -> str:
    """The links drawn by Agg on a transparent copy of the axes at the picture's resolution,
    cropped to what they cover, as one PNG ``<image>`` (what matplotlib's rasterised layer
    does, with a zlib level that halves the encoding time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    fig = ax.figure
    layer = Figure(figsize=tuple(fig.get_size_inches()), dpi=fig.dpi)
    canvas: Any = FigureCanvasAgg(layer)  # draw and buffer_rgba are untyped
    layer.patch.set_alpha(0.0)
    layer_ax = layer.add_axes(ax.get_position().bounds)
    layer_ax.set_axis_off()
    layer_ax.set_xlim(ax.get_xlim())
    layer_ax.set_ylim(ax.get_ylim())
    layer_ax.add_collection(links, autolim=False)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    covered = pixels[:, :, 3] > 0
    rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if len(rows) == 0:
        return ""
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    png = io.BytesIO()
    Image.fromarray(pixels[top:bottom, left:right]).save(png, format="png", compress_level=3)
    k = 72.0 / fig.dpi
    data = base64.b64encode(png.getvalue()).decode("ascii")
    return (
        f'<image x="{left * k:.2f}" y="{top * k:.2f}" width="{(right - left) * k:.2f}" '
        f'height="{(bottom - top) * k:.2f}" preserveAspectRatio="none" '
        f'xlink:href="data:image/png;base64,{data}"/>\n'
    )


def _metadata(fmt: str) -> dict[str, Any]:
    # Dates in the file would make identical maps differ byte for byte.
    if fmt == "svg":
        return {"Date": None, "Creator": "MultiHelix"}
    return {"Software": "MultiHelix"}


def map_json(netmap: NetworkMap) -> dict[str, Any]:
    """The map as plain data for the interactive page (positions included)."""
    nodes = []
    for nd in netmap.nodes:
        org = nd.organisation
        nodes.append(
            {
                "key": nd.key,
                "organisation_id": org.id if org is not None else None,
                "label": nd.label,
                "group": nd.group,
                "category": nd.category,
                "colour": nd.colour,
                "organisations": nd.count,
                "partners": nd.degree,
                "kind": org.kind if org is not None else None,
                "sectors": list(org.sectors) if org is not None else [],
                "country": org.country if org is not None else None,
                "clusters": list(org.clusters) if org is not None else [],
                "x": round(nd.x, 3),
                "y": round(nd.y, 3),
                "size": round(nd.r, 3),
            }
        )
    return {
        "organisations": netmap.organisations,
        "links_total": netmap.total_links,
        "links_shown": netmap.links_shown,
        "aggregated": netmap.aggregated,
        "color_by": netmap.options.color_by,
        "group_by": netmap.options.group_by,
        "width": round(netmap.width, 3),
        "height": round(netmap.height, 3),
        "nodes": nodes,
        "links": [{"source": a, "target": b, "weight": round(w, 4)} for a, b, w in netmap.links],
        "suggested": [
            {"source": s.source, "target": s.target, "score": round(s.score, 4), "reason": s.reason}
            for s in netmap.suggested
        ],
        "groups": [
            {
                "key": g.key,
                "label": g.label,
                "organisations": g.organisations,
                "x": round(g.x, 3),
                "y": round(g.y, 3),
                "r": round(g.r, 3),
            }
            for g in netmap.groups
        ],
        "legend": [
            {"label": label, "colour": colour, "organisations": count}
            for label, colour, count in netmap.legend
        ],
        "notes": netmap.notes,
    }
