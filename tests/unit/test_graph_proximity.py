"""Snapshot features (proximity, expansion, bridges), checked by hand and against networkx."""

from __future__ import annotations

import itertools
import math
import random

import networkx as nx
import numpy as np
import numpy.typing as npt
import pytest

from graph import (
    UNREACHABLE_HOPS,
    Collaboration,
    CollaborationGraph,
    GraphSnapshot,
    ProximityFeatures,
)
from graph.kernels import top_rows


def diamond() -> GraphSnapshot:
    """0 - 1 - 3 and 0 - 2 - 3 (0-2 three times as strong), then 3 - 4 - 5; 6 is alone.

    Strengths: 0: 4, 1: 2, 2: 4, 3: 3, 4: 2, 5: 1.
    """
    return GraphSnapshot.from_edges(
        range(7), [0, 0, 1, 2, 3, 4], [1, 2, 3, 3, 4, 5], [1.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    )


def random_graph(seed: int) -> CollaborationGraph:
    """A small graph with a hub (organisation 0 joins many collaborations), isolated nodes and
    several components."""
    rng = random.Random(seed)
    graph = CollaborationGraph(reference_year=2024)
    for org in range(60):
        graph.add_organisation(org)
    for collab_id in range(45):
        members = set(rng.sample(range(1, 50), rng.choice([2, 2, 2, 3, 4, 6])))
        if rng.random() < 0.3:
            members.add(0)
        graph.add_collaboration(
            Collaboration(
                collab_id,
                tuple(members),
                "project",
                rng.choice([2016, 2020, 2024, None]),
                rng.choice([0.5, 1.0, 2.0]),
            )
        )
    return graph


def dense_reference(graph: nx.Graph, order: list[int]) -> npt.NDArray[np.float64]:
    return np.asarray(nx.to_numpy_array(graph, nodelist=order, weight="weight"))


class TestProximityByHand:
    def test_common_partner_features(self) -> None:
        f = diamond().proximity(0, [3])

        assert f.common_partners.tolist() == [2.0]
        assert f.adamic_adar[0] == pytest.approx(2 / math.log(2))
        assert f.resource_allocation[0] == pytest.approx(1.0)
        # via 1: 1 * 1 / 2, via 2: 3 * 1 / 4
        assert f.weighted_ra[0] == pytest.approx(0.5 + 0.75)
        assert f.hop_distance.tolist() == [2.0]

    def test_hop_distances_cap_at_four(self) -> None:
        f = diamond().proximity(0, [1, 2, 3, 4, 5, 6])

        assert f.hop_distance.tolist() == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
        assert UNREACHABLE_HOPS == 4

    def test_paths3_counts_normalised_walks_of_length_three(self) -> None:
        snap = diamond()
        strength = np.array([4.0, 2.0, 4.0, 3.0, 2.0, 1.0])
        s = 1 / np.sqrt(strength)
        # q=0 -> c=4 only along 0-1-3-4 and 0-2-3-4.
        expected = s[0] * s[4] * (1 * 1 / 2 * 1 / 3 * 1 + 3 * 1 / 4 * 1 / 3 * 1)

        f = snap.proximity(0, [4, 5])

        assert f.paths3[0] == pytest.approx(expected)
        assert f.paths3[1] == 0.0

    def test_paths3_is_symmetric(self) -> None:
        snap = diamond()

        assert snap.proximity(0, [4]).paths3[0] == pytest.approx(snap.proximity(4, [0]).paths3[0])

    def test_degrees_are_reported(self) -> None:
        f = diamond().proximity(3, [0, 5, 6, 99])

        assert f.query_degree == 3
        assert f.candidate_degree.tolist() == [2.0, 1.0, 0.0, 0.0]

    def test_unknown_and_self_candidates_get_zeros_and_unreachable(self) -> None:
        f = diamond().proximity(0, [99, 0, 3, 3])

        assert f.candidate_ids.tolist() == [99, 0, 3, 3]
        for name in ("common_partners", "adamic_adar", "resource_allocation", "weighted_ra"):
            values = getattr(f, name)
            assert values[0] == values[1] == 0.0
            assert values[2] == values[3] > 0.0
        assert f.hop_distance.tolist() == [4.0, 4.0, 2.0, 2.0]

    def test_unknown_or_isolated_query_gets_all_zeros(self) -> None:
        for query in (99, 6):
            f = diamond().proximity(query, [0, 3])

            assert f.as_matrix()[:, [0, 1, 2, 3, 5]].sum() == 0.0
            assert f.hop_distance.tolist() == [4.0, 4.0]

    def test_no_candidates(self) -> None:
        f = diamond().proximity(0, np.array([], dtype=np.int64))

        assert f.as_matrix().shape == (0, len(ProximityFeatures.feature_names))

    def test_as_matrix_follows_feature_names(self) -> None:
        f = diamond().proximity(0, [3, 4])

        matrix = f.as_matrix()

        assert matrix.shape == (2, 7)
        hop_column = ProximityFeatures.feature_names.index("hop_distance")
        assert matrix[:, hop_column].tolist() == [2.0, 3.0]


class TestSnapshotLookups:
    def test_index_of_marks_unknown_ids(self) -> None:
        snap = GraphSnapshot.from_edges([30, 10, 20], [10], [30], [1.0])

        assert snap.node_ids.tolist() == [10, 20, 30]
        assert snap.index_of([30, 5, 10, 40]).tolist() == [2, -1, 0, -1]

    def test_direct_partners_are_sorted_ids(self) -> None:
        snap = diamond()

        assert snap.direct_partners(3).tolist() == [1, 2, 4]
        assert snap.direct_partners(99).tolist() == []

    def test_edge_list_adds_repeats_and_drops_self_loops(self) -> None:
        snap = GraphSnapshot.from_edges([1, 2], [1, 2, 1], [2, 1, 1], [1.0, 2.0, 5.0])

        assert snap.number_of_links == 1
        assert snap.strength.tolist() == [3.0, 3.0]

    def test_edge_list_with_unknown_ids_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            GraphSnapshot.from_edges([1, 2], [1], [3], [1.0])

    def test_arrays_are_read_only(self) -> None:
        snap = diamond()

        for array in (snap.node_ids, snap.degree, snap.strength, snap.adjacency.data):
            with pytest.raises(ValueError):
                array[0] = 0

    def test_empty_graph(self) -> None:
        snap = CollaborationGraph().snapshot()

        assert snap.number_of_organisations == 0
        assert snap.index_of([1]).tolist() == [-1]
        assert snap.proximity(1, [2]).hop_distance.tolist() == [4.0]
        assert snap.expand(1, 5)[0].tolist() == []


class TestExpand:
    def test_distance_two_first_then_distance_three(self) -> None:
        ids, scores = diamond().expand(0, 10)

        assert ids.tolist() == [3, 4]
        # distance 2: weighted RA = 1 * 1/2 + 3 * 1/4; distance 3: that flow split at 3
        assert scores[0] == pytest.approx(1.25)
        assert scores[1] == pytest.approx(1.25 / 3)

    def test_excludes_query_and_direct_partners(self) -> None:
        snap = diamond()

        ids, _ = snap.expand(3, 10)

        assert 3 not in ids.tolist()
        assert set(ids.tolist()).isdisjoint(snap.direct_partners(3).tolist())
        assert ids.tolist() == [0, 5]

    def test_limit_keeps_the_best(self) -> None:
        ids, scores = diamond().expand(0, 1)

        assert ids.tolist() == [3]
        assert len(scores) == 1

    @pytest.mark.parametrize("seed", range(4))
    def test_top_rows_is_a_sort_by_value_then_row(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        values = rng.integers(0, 6, 400).astype(np.float64)  # many ties
        rows = rng.permutation(400)[:300].astype(np.int64)
        skip = (rng.random(400) < 0.2).astype(np.uint8)
        kept = rows[skip[rows] == 0]
        by_value_then_row = kept[np.lexsort((kept, -values[kept]))]

        for limit in (1, 7, 50, len(kept), len(kept) + 5):
            assert top_rows(values, rows, limit, skip).tolist() == (
                by_value_then_row[:limit].tolist()
            )
        assert top_rows(values, rows[:0], 5, skip).tolist() == []

    def test_unknown_isolated_or_zero_limit_is_empty(self) -> None:
        snap = diamond()

        for query, limit in ((99, 5), (6, 5), (0, 0)):
            ids, scores = snap.expand(query, limit)
            assert ids.tolist() == [] and scores.tolist() == []


class TestBridges:
    def test_common_partners_strongest_first(self) -> None:
        # 2 is tied to 0 three times as strongly as 1 is.
        assert diamond().bridges(0, 3) == [2, 1]
        assert diamond().bridges(0, 3, limit=1) == [2]

    def test_distance_three_gives_the_querys_first_hop(self) -> None:
        assert diamond().bridges(0, 4) == [2, 1]
        assert diamond().bridges(4, 0) == [3]

    def test_no_bridge_for_direct_only_far_or_unknown_pairs(self) -> None:
        snap = diamond()

        assert snap.bridges(0, 1) == []  # direct partners, nobody in common
        assert snap.bridges(0, 5) == []  # 4 hops
        assert snap.bridges(0, 6) == []
        assert snap.bridges(0, 99) == []
        assert snap.bridges(0, 0) == []

    def test_many_candidates_at_once_equal_the_definition(self) -> None:
        rng = np.random.default_rng(7)
        for _ in range(40):
            n = int(rng.integers(6, 40))
            src, dst = rng.integers(0, n, 3 * n), rng.integers(0, n, 3 * n)
            weights = rng.random(3 * n) + 0.1
            snap = GraphSnapshot.from_edges(range(n), src, dst, weights)
            adj: dict[int, dict[int, float]] = {i: {} for i in range(n)}
            for a, b, w in zip(src.tolist(), dst.tolist(), weights.tolist(), strict=True):
                if a != b:
                    adj[a][b] = adj[b][a] = adj[a].get(b, 0.0) + w
            strength = {i: sum(adj[i].values()) for i in range(n)}
            for q in range(0, n, 5):
                candidates = [*range(n), 999]
                got = snap.bridges_many(q, candidates, limit=2)
                want = [_bridges_by_definition(adj, strength, q, c, 2) for c in candidates]
                assert got == want


def _bridges_by_definition(
    adj: dict[int, dict[int, float]], strength: dict[int, float], q: int, c: int, limit: int
) -> list[int]:
    if c not in adj or c == q:
        return []
    common = {w: adj[q][w] * adj[c][w] / strength[w] for w in adj[q] if w in adj[c]}
    if not common and c in adj[q]:
        return []
    if not common:
        common = {
            a: sum(adj[a][b] / strength[b] * adj[c][b] for b in adj[a] if b in adj[c])
            * (adj[q][a] / strength[a])
            for a in adj[q]
        }
    ranked = sorted((-score, w) for w, score in common.items() if score > 0)
    return [w for _, w in ranked[:limit]]


class TestHubs:
    def star(self, leaves: int) -> GraphSnapshot:
        return GraphSnapshot.from_edges(
            range(leaves + 1),
            np.zeros(leaves, dtype=np.int64),
            np.arange(1, leaves + 1),
            np.ones(leaves),
        )

    def test_leaves_of_a_big_hub_are_barely_related(self) -> None:
        snap = self.star(5000)

        f = snap.proximity(1, np.arange(2, 302))

        assert f.common_partners.tolist() == [1.0] * 300
        np.testing.assert_allclose(f.adamic_adar, 1 / math.log(5000))
        np.testing.assert_allclose(f.resource_allocation, 1 / 5000)
        assert f.hop_distance.tolist() == [2.0] * 300

    def test_hub_query_reaches_all_leaves_directly(self) -> None:
        snap = self.star(5000)

        f = snap.proximity(0, np.arange(1, 301))

        assert f.query_degree == 5000
        assert f.hop_distance.tolist() == [1.0] * 300
        assert f.common_partners.sum() == 0.0

    def test_expand_from_a_leaf_returns_limit_leaves_ties_by_id(self) -> None:
        snap = self.star(5000)

        ids, scores = snap.expand(17, 200)

        assert ids.tolist() == [i for i in range(1, 202) if i != 17]
        np.testing.assert_allclose(scores, 1 / 5000)
        assert snap.bridges(17, 4000) == [0]


@pytest.mark.parametrize("seed", range(6))
class TestAgainstNetworkx:
    def test_proximity_matches_networkx(self, seed: int) -> None:
        graph = random_graph(seed)
        snap, g = graph.snapshot(), graph.nx_graph
        order = snap.node_ids.tolist()
        adjacency = dense_reference(g, order)
        strength = adjacency.sum(axis=1)
        s = np.divide(1.0, np.sqrt(strength), out=np.zeros_like(strength), where=strength > 0)
        walks3 = np.linalg.matrix_power(s[:, None] * adjacency * s[None, :], 3)

        for q in order[:25]:
            candidates = np.array([c for c in order if c != q])
            f = snap.proximity(q, candidates)
            hops = nx.single_source_shortest_path_length(g, q, cutoff=3)
            pairs = [(q, c) for c in candidates.tolist()]
            common = [len(list(nx.common_neighbors(g, q, c))) for _, c in pairs]
            weighted = [
                sum(
                    g[q][w]["weight"] * g[w][c]["weight"] / g.degree(w, weight="weight")
                    for w in nx.common_neighbors(g, q, c)
                )
                for _, c in pairs
            ]

            np.testing.assert_allclose(f.common_partners, common)
            np.testing.assert_allclose(
                f.adamic_adar, [p for *_, p in nx.adamic_adar_index(g, pairs)]
            )
            np.testing.assert_allclose(
                f.resource_allocation, [p for *_, p in nx.resource_allocation_index(g, pairs)]
            )
            np.testing.assert_allclose(f.weighted_ra, weighted, atol=1e-12)
            np.testing.assert_allclose(f.hop_distance, [hops.get(c, 4) for _, c in pairs])
            np.testing.assert_allclose(
                f.paths3, walks3[order.index(q), snap.index_of(candidates)], atol=1e-12
            )
            np.testing.assert_allclose(f.candidate_degree, [g.degree(c) for _, c in pairs])

    def test_features_do_not_depend_on_which_candidates_are_asked_together(self, seed: int) -> None:
        snap = random_graph(seed).snapshot()
        order = snap.node_ids

        for q in order[:10].tolist():
            together = snap.proximity(q, order).as_matrix()
            alone = np.vstack([snap.proximity(q, [c]).as_matrix() for c in order.tolist()])

            np.testing.assert_allclose(together, alone, atol=1e-12)

    def test_expand_returns_distance_two_then_three_by_resource_flow(self, seed: int) -> None:
        graph = random_graph(seed)
        snap, g = graph.snapshot(), graph.nx_graph
        order = snap.node_ids.tolist()
        adjacency = dense_reference(g, order)
        strength = adjacency.sum(axis=1)
        transition = np.divide(
            adjacency, strength[:, None], out=np.zeros_like(adjacency), where=strength[:, None] > 0
        )

        for q in order[:25]:
            hops = nx.single_source_shortest_path_length(g, q, cutoff=3)
            flow2 = adjacency[order.index(q)] @ transition
            flow3 = flow2 @ transition
            two = [c for c, d in hops.items() if d == 2]
            three = [c for c, d in hops.items() if d == 3]

            ids, scores = snap.expand(q, 1000)

            n2 = len(two)
            assert sorted(ids[:n2].tolist()) == sorted(two)
            assert sorted(ids[n2:].tolist()) == sorted(three)
            rows = snap.index_of(ids)
            np.testing.assert_allclose(scores[:n2], flow2[rows[:n2]], rtol=1e-9)
            np.testing.assert_allclose(scores[n2:], flow3[rows[n2:]], rtol=1e-9)
            assert np.all(np.diff(scores[:n2]) <= 1e-12)
            assert np.all(np.diff(scores[n2:]) <= 1e-12)

            top, top_scores = snap.expand(q, 3)
            assert top.tolist() == ids[:3].tolist()
            np.testing.assert_allclose(top_scores, scores[:3])

    def test_bridges_are_common_partners_or_first_hops(self, seed: int) -> None:
        graph = random_graph(seed)
        snap, g = graph.snapshot(), graph.nx_graph

        for q in snap.node_ids[:15].tolist():
            hops = nx.single_source_shortest_path_length(g, q, cutoff=3)
            for c, d in hops.items():
                if c == q:
                    continue
                found = snap.bridges(q, c, limit=100)
                common = set(nx.common_neighbors(g, q, c))
                if common:
                    assert set(found) == common
                    strength = [
                        g[q][w]["weight"] * g[w][c]["weight"] / g.degree(w, weight="weight")
                        for w in found
                    ]
                    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(strength))
                elif d == 3:
                    first_hops = {a for a in g[q] if any(b != q and c in g[b] for b in g[a])}
                    assert set(found) == first_hops
                else:
                    assert found == []


class TestHubWalkTable:
    """The best-connected organisations' shortcut (graph.proximity.HUB_COUNT) gives the same
    features as reading their rows."""

    @staticmethod
    def graph(seed: int) -> tuple[list[int], list[int], list[int], list[float]]:
        rng = random.Random(seed)
        nodes = list(range(80))
        src, dst, weight = [], [], []
        for hub, reach in ((0, 70), (1, 40), (2, 25)):
            for other in rng.sample(range(3, 80), reach):
                src.append(hub)
                dst.append(other)
                weight.append(rng.choice([0.5, 1.0, 2.0]))
        for _ in range(60):
            a, b = rng.sample(range(3, 80), 2)
            src.append(a)
            dst.append(b)
            weight.append(rng.choice([0.5, 1.0, 3.0]))
        return nodes, src, dst, weight

    def snapshots(
        self, seed: int, monkeypatch: pytest.MonkeyPatch
    ) -> tuple[GraphSnapshot, GraphSnapshot]:
        """The graph of ``seed`` without hub table, and with organisations 0, 1 and 2 in it."""
        import graph.proximity as proximity

        edges = self.graph(seed)
        monkeypatch.setattr(proximity, "HUB_COUNT", 0)
        plain = GraphSnapshot.from_edges(*edges)
        monkeypatch.setattr(proximity, "HUB_COUNT", 3)
        monkeypatch.setattr(proximity, "HUB_MIN_DEGREE", 20)
        return plain, GraphSnapshot.from_edges(*edges)

    @pytest.mark.parametrize("seed", range(4))
    def test_table_and_row_sweep_agree(self, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
        plain, with_hubs = self.snapshots(seed, monkeypatch)
        assert with_hubs.hub_walk_table().shape == (80, 3)
        assert plain.hub_walk_table().shape == (80, 0)

        everyone = np.arange(80)
        shortcut_used = 0
        for q in range(3, 80):
            expected = plain.proximity(q, everyone).as_matrix()
            got = with_hubs.proximity(q, everyone).as_matrix()
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
            shortcut_used += int(plain.degree[q] * 3 <= plain.degree[0])
        assert shortcut_used > 10

    @pytest.mark.parametrize("seed", range(4))
    def test_a_hub_query_reads_its_flow_from_the_table(
        self, seed: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        plain, with_hubs = self.snapshots(seed, monkeypatch)
        everyone = np.arange(80)
        for hub in (0, 1, 2):
            assert with_hubs._hub_slot[hub] >= 0 and plain._hub_slot[hub] < 0
            swept, swept_reached = plain.resource_flow(hub)
            read, read_reached = with_hubs.resource_flow(hub)
            np.testing.assert_array_equal(read, swept)  # the same sums, to the last bit
            np.testing.assert_array_equal(np.sort(read_reached), np.sort(swept_reached))
            for limit in (5, 60):
                for got, expected in zip(
                    with_hubs.expand(hub, limit), plain.expand(hub, limit), strict=True
                ):
                    np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(
                with_hubs.proximity(hub, everyone).as_matrix(),
                plain.proximity(hub, everyone).as_matrix(),
            )
