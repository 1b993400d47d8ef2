"""Ecosystem analytics on small hand-checkable graphs: betweenness, brokerage, link matrices,
gaps, insights and the map's layout."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from embeddings import VectorIndex
from graph import CollaborationGraph
from graph.analytics import (
    brokerage,
    components,
    group_gaps,
    group_link_matrix,
    hop_betweenness,
    membership_matrix,
)
from graph.collaboration import Collaboration
from matching.catalog import Catalog, OrgProfile
from matching.network_map import (
    MapOptions,
    build_map,
    map_json,
    network_insights,
    network_view,
    render_map,
)
from matching.ranker import MatchingState
from matching.scoring import LinearScorer


def _adjacency(graph: nx.Graph, n: int) -> sp.csr_array:
    return sp.csr_array(nx.to_scipy_sparse_array(graph, nodelist=range(n)))


def test_exact_betweenness_equals_networkx() -> None:
    graph = nx.gnm_random_graph(120, 300, seed=3)
    ours = hop_betweenness(_adjacency(graph, 120))
    reference = nx.betweenness_centrality(graph)
    assert ours.exact and ours.pivots == 120
    assert np.allclose(ours.values, [reference[i] for i in range(120)], atol=1e-12)


def test_sampled_betweenness_finds_the_same_top_bridge() -> None:
    # Two dense communities joined only through one broker (node 60).
    graph = nx.disjoint_union(nx.complete_graph(30), nx.complete_graph(30))
    graph.add_node(60)
    graph.add_edges_from([(60, 1), (60, 2), (60, 31), (60, 32)])
    estimate = hop_betweenness(_adjacency(graph, 61), pivots=20, seed=1)
    assert not estimate.exact and estimate.pivots == 20
    assert int(np.argmax(estimate.values)) == 60


def test_brokerage_counts_unlinked_partner_pairs_across_groups() -> None:
    # Hub 0 links 1 and 2 (Spain) and 3 (France); 1-3 already linked.
    a = sp.csr_array(
        np.array([[0, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 0], [1, 1, 0, 0]], dtype=float)
    )
    pairs, reached = brokerage(a, [0, 2], np.array([0, 0, 0, 1]))
    assert pairs.tolist() == [1, 0]  # only 2-3 relies on the hub
    assert reached.tolist() == [2, 1]


def test_link_matrix_and_gaps_in_staff_terms() -> None:
    # Group 0 (4 orgs) densely linked inside, group 1 (4 orgs) too, nothing across.
    graph = nx.disjoint_union(nx.complete_graph(4), nx.complete_graph(4))
    a = _adjacency(graph, 8)
    members = membership_matrix([(0,)] * 4 + [(1,)] * 4, 2)
    links = group_link_matrix(a, members)
    assert links.tolist() == [[6, 0], [0, 6]]
    density = 12 / (8 * 7 / 2)
    gaps = group_gaps(links, np.array([4, 4]), density=density)
    assert [(g.first, g.second, g.links) for g in gaps] == [(0, 1, 0)]
    assert gaps[0].expected_links == pytest.approx(16 * density, abs=0.01)
    assert components(a)[0] == 2


def _state(profiles: list[OrgProfile], collaborations: list[tuple[int, ...]]) -> MatchingState:
    catalog = Catalog()
    catalog.upsert_many(profiles)
    graph = CollaborationGraph.from_collaborations(
        [p.id for p in profiles],
        [Collaboration(i + 1, ids, "project", 2022) for i, ids in enumerate(collaborations)],
    )
    state = MatchingState(
        catalog=catalog,
        graph=graph,
        vectors={s: VectorIndex(8) for s in ("profile", "offers", "seeks")},
        scorer=LinearScorer.load(),
    )
    state.refresh_snapshot()
    return state


def _org(i: int, country: str, **kw: object) -> OrgProfile:
    fields: dict[str, object] = {"kind": "sme", "sectors": ("biotech",), "clusters": ("c1",)}
    fields.update(kw)
    return OrgProfile(i, f"Org {i}", country=country, **fields)  # type: ignore[arg-type]


@pytest.fixture
def two_countries() -> MatchingState:
    """Spain (1-4) and France (5-8), linked only through 4 - 5; 9 isolated; 10 belongs to
    another tenant."""
    profiles = [_org(i, "ES") for i in range(1, 5)] + [_org(i, "FR") for i in range(5, 9)]
    profiles.append(_org(9, "ES", sectors=("medtech",)))
    profiles.append(_org(10, "FR", tenant="other"))
    links = [(1, 2), (2, 3), (3, 4), (1, 4), (4, 5), (5, 6), (6, 7), (7, 8), (5, 8), (4, 10)]
    return _state(profiles, links)


def test_insights_name_the_bridge_the_isolated_and_the_country_gap(
    two_countries: MatchingState,
) -> None:
    view = network_view(two_countries, tenants=("mine",))
    assert 10 not in view.ids.tolist()  # another tenant's organisation is not in the view
    insights = network_insights(view, top=3)
    assert insights.headline["organisations"] == 9
    assert insights.headline["links"] == 9  # the link to organisation 10 is hidden too
    assert insights.headline["isolated"] == 1
    assert insights.headline["international_link_share"] == round(1 / 9, 4)
    assert {b.organisation.id for b in insights.bridges[:2]} == {4, 5}
    top = insights.bridges[0]
    assert top.countries_reached == 2 and top.brokered_country_pairs >= 1
    assert [p.id for p in insights.isolated] == [9]
    countries = insights.country_matrix
    assert countries.labels == ["Spain", "France"]  # by country code
    assert countries.links == [[4, 1], [1, 4]]
    assert insights.betweenness_exact


def test_map_lays_out_groups_and_renders_coloured_svg_and_png(
    two_countries: MatchingState,
) -> None:
    view = network_view(two_countries, tenants=None)
    netmap = build_map(two_countries, view, MapOptions(suggested=0))
    assert {g.label for g in netmap.groups} == {"Spain", "France"}
    spain = next(g for g in netmap.groups if g.key == "ES")
    for node in netmap.nodes:
        if node.group == "ES":  # every Spanish organisation sits inside Spain's disc
            assert np.hypot(node.x - spain.x, node.y - spain.y) <= spain.r
    data = map_json(netmap)
    assert len(data["nodes"]) == 10 and len(data["links"]) == 10
    svg = render_map(netmap, "svg", title="Test map").decode()
    assert svg.startswith("<?xml") and "Test map" in svg and "Spain (5)" in svg
    png = render_map(netmap, "png", title="Test map")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_aggregates_beyond_max_nodes(two_countries: MatchingState) -> None:
    view = network_view(two_countries, tenants=None)
    netmap = build_map(two_countries, view, MapOptions(max_nodes=5, suggested=0))
    assert netmap.aggregated
    # One bubble per (country, colour): ES biotech, ES medtech, FR biotech.
    assert sorted((n.group, n.category, n.count) for n in netmap.nodes) == [
        ("ES", "biotech", 4),
        ("ES", "medtech", 1),
        ("FR", "biotech", 5),
    ]
    assert any("bubble" in note for note in netmap.notes)
