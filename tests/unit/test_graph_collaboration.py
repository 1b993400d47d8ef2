"""The collaboration graph: pair weighting, mutations, and the views derived from it."""

from __future__ import annotations

import ast
import itertools
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graph import Collaboration, CollaborationGraph

GRAPH_PACKAGE = Path(__file__).resolve().parents[2] / "graph"


def project(
    collab_id: int, orgs: tuple[int, ...], year: int | None = 2024, **kw: float
) -> Collaboration:
    return Collaboration(collab_id, orgs, "project", year, **kw)


def pair_weight(graph: CollaborationGraph, a: int, b: int) -> float:
    link = graph.link(a, b)
    assert link is not None, f"{a} and {b} never collaborated"
    return link.weight


def snapshot_edges(graph: CollaborationGraph) -> dict[tuple[int, int], float]:
    """Pair weights of the CSR view, after checking the networkx view holds the same pairs."""
    snap = graph.snapshot()
    upper = sp.triu(snap.adjacency).tocoo()
    ids = snap.node_ids
    edges = {
        (int(ids[r]), int(ids[c])): float(w)
        for r, c, w in zip(upper.row, upper.col, upper.data, strict=True)
    }
    nx_edges = {(min(u, v), max(u, v)): w for u, v, w in graph.nx_graph.edges(data="weight")}
    assert nx_edges == pytest.approx(edges)
    assert graph.number_of_links == len(edges)
    return edges


def reference_pairs(
    collaborations: dict[int, tuple[tuple[int, ...], int | None, float]],
    reference_year: int | None,
    half_life: float,
) -> dict[tuple[int, int], float]:
    """The pair weights, computed the slow, obvious way."""
    pairs: dict[tuple[int, int], float] = {}
    for orgs, year, weight in collaborations.values():
        if len(orgs) < 2:
            continue
        age = 0 if year is None or reference_year is None else max(reference_year - year, 0)
        share = weight * 0.5 ** (age / half_life) / (len(orgs) - 1)
        for a, b in itertools.combinations(sorted(orgs), 2):
            pairs[(a, b)] = pairs.get((a, b), 0.0) + share
    return pairs


class TestPairWeighting:
    def test_small_project_weighs_each_pair_more_than_a_large_consortium(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2, 3, 4)))
        graph.add_collaboration(project(2, tuple(range(100, 188))))  # 88 partners

        assert pair_weight(graph, 1, 2) == pytest.approx(1 / 3)
        assert pair_weight(graph, 100, 101) == pytest.approx(1 / 87)
        assert snapshot_edges(graph)[(1, 2)] == pytest.approx(1 / 3)

    def test_each_collaboration_adds_its_weight_to_every_participants_strength(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2, 3, 4), weight=2.0))
        graph.add_collaboration(project(2, tuple(range(100, 188)), weight=2.0))

        snap = graph.snapshot()
        strength = snap.strength[snap.index_of([1, 100])]

        np.testing.assert_allclose(strength, [2.0, 2.0])

    def test_older_collaborations_count_less_by_half_life(self) -> None:
        graph = CollaborationGraph(recency_half_life_years=4.0)
        graph.add_collaboration(project(1, (1, 2), year=2024))
        graph.add_collaboration(project(2, (3, 4), year=2020))
        graph.add_collaboration(project(3, (5, 6), year=2016))

        weights = [pair_weight(graph, a, b) for a, b in ((1, 2), (3, 4), (5, 6))]

        assert weights == pytest.approx([1.0, 0.5, 0.25])
        assert graph.reference_year == 2024

    def test_reference_year_follows_the_latest_collaboration(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2), year=2020))
        assert pair_weight(graph, 1, 2) == pytest.approx(1.0)

        graph.add_collaboration(project(2, (3, 4), year=2028))

        assert pair_weight(graph, 1, 2) == pytest.approx(0.25)
        snap = graph.snapshot()
        assert snap.strength[snap.index_of([1])[0]] == pytest.approx(0.25)

    def test_unknown_year_counts_as_current_and_future_years_are_capped(self) -> None:
        graph = CollaborationGraph(reference_year=2020)
        graph.add_collaboration(project(1, (1, 2), year=None))
        graph.add_collaboration(project(2, (3, 4), year=2030))

        assert pair_weight(graph, 1, 2) == pytest.approx(1.0)
        assert pair_weight(graph, 3, 4) == pytest.approx(1.0)

    def test_repeated_collaborations_add_up_and_are_listed(self) -> None:
        graph = CollaborationGraph(reference_year=2024)
        graph.add_collaboration(project(7, (1, 2, 3), year=2024))
        graph.add_collaboration(Collaboration(9, (1, 2), "publication", 2020, weight=2.0))
        graph.add_collaboration(Collaboration(8, (2, 1), "event_meeting", None))

        link = graph.link(2, 1)
        edge = graph.nx_graph.edges[1, 2]

        assert link is not None
        assert link.organisation_ids == (1, 2)
        assert link.weight == pytest.approx(0.5 + 1.0 + 1.0)
        assert (link.n_collaborations, link.first_year, link.last_year) == (3, 2020, 2024)
        assert link.collaboration_ids == (7, 8, 9)
        assert edge == {
            "weight": pytest.approx(2.5),
            "n_collaborations": 3,
            "first_year": 2020,
            "last_year": 2024,
            "collaboration_ids": (7, 8, 9),
        }

    def test_pairs_without_any_year_have_no_first_or_last_year(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2), year=None))

        edge = graph.nx_graph.edges[1, 2]

        assert (edge["first_year"], edge["last_year"]) == (None, None)
        assert graph.link(1, 3) is None


class TestCollaborationValidation:
    @pytest.mark.parametrize(
        ("orgs", "kind", "weight"),
        [
            ((1,), "project", 1.0),
            ((1, 1), "project", 1.0),
            ((1, 2), "grant", 1.0),
            ((1, 2), "project", 0.0),
            ((1, 2), "project", float("nan")),
        ],
    )
    def test_invalid_collaborations_are_rejected(
        self, orgs: tuple[int, ...], kind: str, weight: float
    ) -> None:
        with pytest.raises(ValueError):
            Collaboration(1, orgs, kind, 2024, weight)

    def test_half_life_must_be_positive(self) -> None:
        with pytest.raises(ValueError):
            CollaborationGraph(recency_half_life_years=0)


class TestMutations:
    def test_unknown_participants_become_organisations(self) -> None:
        graph = CollaborationGraph()
        graph.add_organisation(5)
        graph.add_collaboration(project(1, (1, 2, 3)))

        assert graph.number_of_organisations == 4
        assert all(graph.has_organisation(o) for o in (1, 2, 3, 5))
        assert graph.neighbours(1) == {2, 3}
        assert graph.degree(5) == 0
        assert graph.number_of_links == 3

    def test_re_adding_a_collaboration_replaces_it(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2, 3)))

        graph.add_collaboration(project(1, (1, 4)))

        assert graph.neighbours(1) == {4}
        assert graph.neighbours(2) == set()
        assert graph.number_of_collaborations == 1
        assert pair_weight(graph, 1, 4) == pytest.approx(1.0)
        assert graph.number_of_links == 1

    def test_removing_a_collaboration_keeps_its_participants(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2)))
        graph.add_collaboration(project(2, (2, 3)))

        graph.remove_collaboration(1)

        assert graph.has_organisation(1)
        assert graph.neighbours(2) == {3}
        assert graph.snapshot().direct_partners(1).tolist() == []

    def test_removing_an_organisation_shrinks_its_collaborations(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2, 3)))
        graph.add_collaboration(project(2, (1, 4)))

        graph.remove_organisation(1)

        assert not graph.has_organisation(1)
        assert graph.participants(1) == (2, 3)
        assert graph.participants(2) == (4,)
        # The 3-party project is now a 2-party one; the pair left alone adds nothing.
        assert pair_weight(graph, 2, 3) == pytest.approx(1.0)
        assert graph.degree(4) == 0
        snap = graph.snapshot()
        assert snap.index_of([1]).tolist() == [-1]
        assert snap.number_of_links == 1

    def test_unknown_ids_raise_key_error_and_change_nothing(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2)))
        version = graph.version

        with pytest.raises(KeyError):
            graph.remove_collaboration(99)
        with pytest.raises(KeyError):
            graph.remove_organisation(99)
        with pytest.raises(KeyError):
            graph.neighbours(99)

        assert graph.version == version
        assert graph.number_of_links == 1

    def test_snapshot_is_cached_until_the_next_mutation(self) -> None:
        graph = CollaborationGraph()
        graph.add_collaboration(project(1, (1, 2)))
        first = graph.snapshot()

        assert graph.snapshot() is first
        graph.add_organisation(1)  # already there: not a mutation
        assert graph.snapshot() is first

        graph.add_collaboration(project(2, (2, 3)))
        second = graph.snapshot()

        assert second is not first
        assert second.version == graph.version > first.version
        assert first.direct_partners(2).tolist() == [1]  # old readers keep their view
        assert second.direct_partners(2).tolist() == [1, 3]

    def test_bulk_load_matches_adding_one_by_one(self) -> None:
        collaborations = [
            project(1, (1, 2, 3), year=2019),
            project(2, (3, 4), year=2023),
            project(1, (1, 2, 5), year=2021),  # replaces the first
        ]
        bulk = CollaborationGraph.from_collaborations([9], collaborations)
        incremental = CollaborationGraph()
        incremental.add_organisation(9)
        for c in collaborations:
            incremental.add_collaboration(c)

        assert snapshot_edges(bulk) == pytest.approx(snapshot_edges(incremental))
        assert bulk.number_of_organisations == incremental.number_of_organisations == 6


@pytest.mark.parametrize("seed", range(8))
def test_random_mutations_keep_every_view_consistent(seed: int) -> None:
    rng = random.Random(seed)
    kinds = ["project", "publication", "supply", "membership", "event_meeting", "other"]
    graph = CollaborationGraph(recency_half_life_years=3.0)
    truth: dict[int, tuple[tuple[int, ...], int | None, float]] = {}
    orgs: set[int] = set()
    for step in range(60):
        action = rng.random()
        if action < 0.6 or not truth:
            members = tuple(rng.sample(range(1, 40), rng.choice([2, 2, 3, 4, 8])))
            year = rng.choice([None, 2015, 2019, 2021, 2024])
            weight = rng.choice([0.5, 1.0, 3.0])
            collab_id = rng.randrange(30)
            graph.add_collaboration(
                Collaboration(collab_id, members, rng.choice(kinds), year, weight)
            )
            truth[collab_id] = (members, year, weight)
            orgs.update(members)
        elif action < 0.8:
            collab_id = rng.choice(sorted(truth))
            graph.remove_collaboration(collab_id)
            del truth[collab_id]
        else:
            org = rng.choice(sorted(orgs))
            graph.remove_organisation(org)
            orgs.discard(org)
            truth = {
                cid: (tuple(o for o in m if o != org), y, w) for cid, (m, y, w) in truth.items()
            }
        if step % 5 == 0:
            years = [y for _, y, _ in truth.values() if y is not None]
            expected = reference_pairs(truth, max(years) if years else None, 3.0)
            assert snapshot_edges(graph) == pytest.approx(expected)
            snap = graph.snapshot()
            assert set(snap.node_ids.tolist()) == orgs
            for org in orgs:
                partners = {b for a, b in expected if a == org} | {
                    a for a, b in expected if b == org
                }
                assert graph.neighbours(org) == partners
                assert snap.direct_partners(org).tolist() == sorted(partners)
                assert snap.degree[snap.index_of([org])[0]] == len(partners)


def test_graph_package_imports_only_numeric_libraries_and_the_standard_library() -> None:
    allowed = {"numpy", "scipy", "numba", "networkx", "graph", "__future__"} | set(
        sys.stdlib_module_names
    )
    for path in GRAPH_PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.name} imports {roots - allowed}"
