"""Explanations quote the same offer/need pairs whether or not the ranker's fits are passed."""

from __future__ import annotations

import numpy as np

from matching.catalog import ItemMatrix, OrgProfile
from matching.explanation import FIT_THRESHOLD, explain
from matching.features import best_item_fit

DIM = 8


def _items(rng: np.random.Generator, anchor: np.ndarray, count: int) -> np.ndarray:
    """Unit rows whose cosine to ``anchor`` spreads around the quoting threshold."""
    noise = rng.standard_normal((count, DIM))
    rows = anchor[None, :] * rng.uniform(0.2, 1.6, (count, 1)) + noise
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _profile(org_id: int, offers: np.ndarray, seeks: np.ndarray) -> OrgProfile:
    return OrgProfile(
        id=org_id,
        name=f"org {org_id}",
        kind="sme",
        sectors=("biotech",),
        country="ES",
        offers=tuple(f"offer {org_id}.{i}" for i in range(len(offers))),
        seeks=tuple(f"need {org_id}.{i}" for i in range(len(seeks))),
        offer_vectors=offers,
        seek_vectors=seeks,
    )


def test_fits_passed_by_the_ranker_change_no_explanation() -> None:
    rng = np.random.default_rng(7)
    anchor = rng.standard_normal(DIM)
    anchor /= np.linalg.norm(anchor)
    query = _profile(0, _items(rng, anchor, 2), _items(rng, anchor, 3))
    candidates = [
        _profile(i, _items(rng, anchor, int(rng.integers(0, 3))), _items(rng, anchor, 2))
        for i in range(1, 301)
    ]
    offers, seeks = ItemMatrix(len(candidates)), ItemMatrix(len(candidates))
    for row, candidate in enumerate(candidates):
        offers.set(row, candidate.offer_vectors)
        seeks.set(row, candidate.seek_vectors)
    rows = np.arange(len(candidates))
    offer_fit = best_item_fit(query.seek_vectors, offers, rows)
    need_fit = best_item_fit(query.offer_vectors, seeks, rows)
    # Both sides of the threshold are exercised.
    assert (offer_fit >= FIT_THRESHOLD).any() and (offer_fit < FIT_THRESHOLD).any()
    assert (need_fit >= FIT_THRESHOLD).any() and (need_fit < FIT_THRESHOLD).any()

    for row, candidate in enumerate(candidates):
        plain = explain(query, candidate, {}, bridges=[], name_of=str)
        with_fits = explain(
            query,
            candidate,
            {"offer_fit": float(offer_fit[row]), "need_fit": float(need_fit[row])},
            bridges=[],
            name_of=str,
        )
        assert with_fits == plain
