"""Features of (query, candidate) pairs: text fit in both directions, graph proximity, and the
cross-sector / cross-region terms. One column per feature name, aligned with the candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embeddings import VectorIndex
from embeddings.kernels import best_item_dot
from graph import GraphSnapshot, ProximityFeatures
from matching.catalog import Catalog, OrgProfile

VECTOR_SPACES = ("profile", "offers", "seeks")


@dataclass(frozen=True, slots=True)
class QueryVectors:
    """The query's vectors; None where it has no such text."""

    profile: np.ndarray | None
    offers: np.ndarray | None
    seeks: np.ndarray | None


def query_vectors(vectors: dict[str, VectorIndex], org_id: int) -> QueryVectors:
    def one(space: str) -> np.ndarray | None:
        index = vectors[space]
        return index.get([org_id])[0] if org_id in index else None

    return QueryVectors(one("profile"), one("offers"), one("seeks"))


def reciprocal_fit(offer_fit: np.ndarray, need_fit: np.ndarray) -> np.ndarray:
    """Harmonic mean of the two directions' positive parts: high only when both sides gain.

    >>> [round(float(v), 2) for v in reciprocal_fit(np.array([0.6, 0.6, 0.0]),
    ...                                             np.array([0.6, 0.1, 0.9]))]
    [0.6, 0.17, 0.0]
    """
    a = np.clip(offer_fit, 0.0, None)
    b = np.clip(need_fit, 0.0, None)
    total = a + b
    return np.asarray(np.divide(2 * a * b, total, out=np.zeros_like(total), where=total > 0))


class ItemSource(Protocol):
    """Per-row item vectors: ``ItemMatrix`` and the batch's packed copy."""

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(item vectors, ``(start, count)`` per row)."""
        ...


def best_item_fit(
    query_items: np.ndarray | None, source: ItemSource, rows: np.ndarray
) -> np.ndarray:
    """Per candidate row, the best cosine between any of the query's items (e.g. its needs)
    and any of the candidate's items (e.g. its offers): one precise match is what makes a
    meeting worth having, and averaging items would dilute it. Unknown rows (-1) and
    candidates without items get 0.

    >>> from matching.catalog import ItemMatrix
    >>> offers = ItemMatrix(2)
    >>> offers.set(0, np.array([[0.0, 1.0], [0.6, 0.8]], dtype=np.float32))  # row 1 has none
    >>> best_item_fit(np.array([[1.0, 0.0]]), offers, np.array([0, 1, -1])).round(3).tolist()
    [0.6, 0.0, 0.0]
    """
    if query_items is None or len(query_items) == 0 or len(rows) == 0:
        return np.zeros(len(rows), dtype=np.float64)
    items, span = source.view()
    return best_item_dot(
        items,
        span,
        np.asarray(rows, dtype=np.int64),
        np.ascontiguousarray(query_items, dtype=np.float32),
    )


def compute_features(
    *,
    query: OrgProfile,
    qvec: QueryVectors,
    candidate_ids: np.ndarray,
    catalog: Catalog,
    vectors: dict[str, VectorIndex],
    snapshot: GraphSnapshot,
    proximity: Callable[[], ProximityFeatures] | None = None,
) -> dict[str, np.ndarray]:
    """All feature columns for ``candidate_ids`` (int64 array) against ``query``.

    ``proximity`` gives ``snapshot.proximity(query.id, candidate_ids)`` when it is started
    elsewhere (the ranker runs it on another thread); it is asked for after the text
    features.
    """
    n = len(candidate_ids)
    zeros = np.zeros(n, dtype=np.float64)

    def sim(space: str, vec: np.ndarray | None) -> np.ndarray:
        if vec is None or n == 0:
            return zeros.copy()
        return np.asarray(vectors[space].similarity(vec, candidate_ids), dtype=np.float64)

    rows = catalog.rows_of(candidate_ids)
    cols: dict[str, np.ndarray] = {
        "text_similarity": sim("profile", qvec.profile),
        # The candidate offers what the query seeks ...
        "offer_fit": best_item_fit(query.seek_vectors, catalog.offer_items, rows),
        # ... and seeks what the query offers.
        "need_fit": best_item_fit(query.offer_vectors, catalog.seek_items, rows),
    }
    cols["reciprocal_fit"] = reciprocal_fit(cols["offer_fit"], cols["need_fit"])

    prox = proximity() if proximity is not None else snapshot.proximity(query.id, candidate_ids)
    cols["common_partners"] = np.asarray(prox.common_partners, dtype=np.float64)
    cols["adamic_adar"] = np.asarray(prox.adamic_adar, dtype=np.float64)
    cols["resource_allocation"] = np.asarray(prox.resource_allocation, dtype=np.float64)
    cols["weighted_ra"] = np.asarray(prox.weighted_ra, dtype=np.float64)
    cols["paths3"] = np.asarray(prox.paths3, dtype=np.float64)
    cols["hop_distance"] = np.asarray(prox.hop_distance, dtype=np.float64)
    cols["candidate_degree"] = np.asarray(prox.candidate_degree, dtype=np.float64)
    cols["two_hops"] = (cols["hop_distance"] == 2).astype(np.float64)
    cols["three_hops"] = (cols["hop_distance"] == 3).astype(np.float64)
    graph_rows = snapshot.index_of(candidate_ids)
    strength = np.zeros(n, dtype=np.float64)
    on_graph = graph_rows >= 0
    strength[on_graph] = snapshot.strength[graph_rows[on_graph]]
    # Recency- and consortium-size-weighted activity: how much the candidate collaborates now.
    cols["candidate_strength"] = strength

    known = rows >= 0
    safe = np.where(known, rows, 0)
    q_sectors = query.sector_mask
    cand_sectors = catalog.sector_masks[safe]
    has_sectors = (cand_sectors != 0) & (q_sectors != 0)
    cols["cross_sector"] = (has_sectors & ((cand_sectors & q_sectors) == 0) & known).astype(
        np.float64
    )
    q_country = catalog.country_code_of(query.country)
    cols["cross_country"] = ((catalog.country_code[safe] != q_country) & known).astype(np.float64)
    query_row = catalog.rows_of(np.array([query.id]))[0]
    query_kind = catalog.kind_code[query_row] if query_row >= 0 else -2
    cols["same_kind"] = ((catalog.kind_code[safe] == query_kind) & known).astype(np.float64)
    return cols
