"""Loading the collaboration graph from columns (start-up) gives the graph that loading the same
collaborations one object at a time gives, and rejects what a Collaboration rejects."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from graph import Collaboration, CollaborationGraph
from graph.proximity import GraphSnapshot

KINDS = ["project", "publication", "supply", "membership"]


def random_collaborations(seed: int, n_orgs: int = 60, n: int = 80) -> list[Collaboration]:
    rng = random.Random(seed)
    out = []
    for collab_id in rng.sample(range(1, 10 * n), n):  # ids neither dense nor sorted
        size = min(n_orgs, 2 + int(rng.paretovariate(1.5)))
        year = None if rng.random() < 0.1 else rng.randrange(2005, 2025)
        members = tuple(rng.sample(range(1, n_orgs + 1), size))
        weight = rng.choice([1.0, 0.5, 2.0])
        out.append(Collaboration(collab_id, members, rng.choice(KINDS), year, weight))
    return out


def columns(collaborations: list[Collaboration]) -> dict[str, Any]:
    return {
        "collaboration_ids": [c.id for c in collaborations],
        "kinds": [c.kind for c in collaborations],
        "years": [math.nan if c.year is None else c.year for c in collaborations],
        "weights": [c.weight for c in collaborations],
        "sizes": [len(c.organisation_ids) for c in collaborations],
        "members": [o for c in collaborations for o in c.organisation_ids],
    }


def assert_same_snapshot(got: GraphSnapshot, want: GraphSnapshot) -> None:
    assert np.array_equal(got.node_ids, want.node_ids)
    for part in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got.adjacency, part), getattr(want.adjacency, part)), part


@pytest.mark.parametrize("reference_year", [None, 2020])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_from_arrays_builds_the_graph_from_collaborations_builds(
    seed: int, reference_year: int | None
) -> None:
    collaborations = random_collaborations(seed)
    org_ids = range(1, 71)  # ten organisations without any collaboration
    want = CollaborationGraph.from_collaborations(
        org_ids, collaborations, reference_year=reference_year
    )
    got = CollaborationGraph.from_arrays(
        org_ids, **columns(collaborations), reference_year=reference_year
    )

    assert_same_snapshot(got.snapshot(), want.snapshot())
    assert got.reference_year == want.reference_year
    assert got.number_of_organisations == want.number_of_organisations == 70
    assert got.number_of_collaborations == len(collaborations)
    for collaboration in collaborations:
        assert got.collaboration(collaboration.id) == collaboration
        assert got.participants(collaboration.id) == collaboration.organisation_ids
    for org_id in (1, 5, 33, 70):
        assert got.neighbours(org_id) == want.neighbours(org_id)
        assert got.collaborations_of(org_id) == want.collaborations_of(org_id)
    assert got.link(1, 2) == want.link(1, 2)
    assert sorted(got.nx_graph.edges(data="weight")) == sorted(want.nx_graph.edges(data="weight"))


def test_a_graph_loaded_from_arrays_takes_later_changes_like_any_other() -> None:
    collaborations = random_collaborations(3)
    want = CollaborationGraph.from_collaborations(range(1, 61), collaborations)
    got = CollaborationGraph.from_arrays(range(1, 61), **columns(collaborations))
    first = got.snapshot()

    for graph in (want, got):
        graph.add_collaboration(Collaboration(99_999, (1, 2, 3), "project", 2030))
        graph.remove_collaboration(collaborations[0].id)
        graph.remove_organisation(7)
        graph.add_organisation(500)

    assert got.snapshot() is not first  # a change is never hidden by the loaded snapshot
    assert got.snapshot().version == got.version
    assert_same_snapshot(got.snapshot(), want.snapshot())
    assert got.reference_year == want.reference_year == 2030


def test_from_arrays_with_no_collaborations_has_every_organisation_and_no_link() -> None:
    graph = CollaborationGraph.from_arrays([3, 1, 2], [], [], [], [], [], [])
    assert graph.snapshot().node_ids.tolist() == [1, 2, 3]
    assert graph.number_of_links == 0
    assert graph.reference_year is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sizes": [1, 3], "members": [1, 2, 3, 4]}, "at least 2 organisations"),
        ({"members": [1, 1, 3, 4, 5]}, "lists an organisation twice"),
        ({"kinds": ["project", "lunch"]}, "unknown collaboration kinds"),
        ({"weights": [1.0, 0.0]}, "finite weight > 0"),
        ({"weights": [1.0, math.inf]}, "finite weight > 0"),
        ({"collaboration_ids": [4, 4]}, "unique"),
        ({"years": [2020.5, 2021]}, "whole numbers"),
        ({"kinds": ["project"]}, "one kind, year, weight and size"),
        ({"members": [1, 2, 3, 4]}, "add up"),
    ],
)
def test_from_arrays_rejects_what_a_collaboration_rejects(
    change: dict[str, Any], message: str
) -> None:
    good: dict[str, Any] = {
        "collaboration_ids": [4, 9],
        "kinds": ["project", "supply"],
        "years": [2020, 2021],
        "weights": [1.0, 1.0],
        "sizes": [2, 3],
        "members": [1, 2, 3, 4, 5],
    }
    with pytest.raises(ValueError, match=message):
        CollaborationGraph.from_arrays(range(1, 6), **{**good, **change})
