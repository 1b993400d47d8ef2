"""Comparing two derived states (catalogue, vector indexes, graph) bit for bit."""

from __future__ import annotations

import numpy as np

from app.services.derived import DerivedState
from matching.features import VECTOR_SPACES


def assert_same_state(got: DerivedState, want: DerivedState) -> None:
    """Every profile (vectors included), every index row and the graph's CSR arrays agree."""
    ids = sorted(want.state.catalog.all_ids().tolist())
    assert sorted(got.state.catalog.all_ids().tolist()) == ids
    for org_id in ids:
        got_profile, want_profile = got.state.catalog.get(org_id), want.state.catalog.get(org_id)
        assert got_profile == want_profile  # every field but the vectors
        assert got_profile is not None and want_profile is not None
        for field in ("offer_vectors", "seek_vectors"):
            got_rows, want_rows = getattr(got_profile, field), getattr(want_profile, field)
            assert np.array_equal(got_rows, want_rows), (org_id, field)
    for space in VECTOR_SPACES:
        got_index, want_index = got.state.vectors[space], want.state.vectors[space]
        space_ids = np.sort(want_index.ids())
        assert np.array_equal(np.sort(got_index.ids()), space_ids), space
        assert np.array_equal(got_index.get(space_ids), want_index.get(space_ids)), space
    got_graph, want_graph = got.state.snapshot(), want.state.snapshot()
    assert np.array_equal(got_graph.node_ids, want_graph.node_ids)
    for part in ("indptr", "indices", "data"):
        got_part = getattr(got_graph.adjacency, part)
        assert np.array_equal(got_part, getattr(want_graph.adjacency, part)), part
