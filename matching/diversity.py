"""Diversified re-ranking (maximal marginal relevance) so a top 10 is not ten near-copies."""

from __future__ import annotations

import numpy as np


def mmr_select(
    relevance: np.ndarray, similarity: np.ndarray, k: int, *, trade_off: float = 0.75
) -> list[int]:
    """Pick ``k`` indices greedily by ``trade_off * relevance - (1 - trade_off) * redundancy``.

    ``relevance`` is scaled to [0, 1] by its maximum; ``similarity`` is the (n, n) pairwise
    similarity of the candidates in [0, 1]; redundancy is the highest similarity to anything
    already picked. ``trade_off=1`` returns the plain top-k by relevance.

    >>> rel = np.array([1.0, 0.99, 0.5])
    >>> sim = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    >>> mmr_select(rel, sim, 2, trade_off=0.6)
    [0, 2]
    >>> mmr_select(rel, sim, 2, trade_off=1.0)
    [0, 1]
    """
    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    top = float(np.max(relevance))
    rel = relevance / top if top > 0 else np.zeros(n)
    redundancy = np.zeros(n)
    chosen: list[int] = []
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        gain = np.where(available, trade_off * rel - (1.0 - trade_off) * redundancy, -np.inf)
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return chosen


def profile_similarity(
    vectors: np.ndarray, has_vector: np.ndarray, country: np.ndarray, sectors: np.ndarray
) -> np.ndarray:
    """Pairwise similarity of candidates for diversification, in [0, 1].

    Half text (cosine of profile vectors, 0 where a profile is missing), a quarter for the same
    country and a quarter for sharing a sector.

    >>> v = np.array([[1.0, 0.0], [1.0, 0.0]])
    >>> sim = profile_similarity(v, np.array([True, True]), np.array([1, 1]), np.array([1, 2]))
    >>> float(sim[0, 1])
    0.75
    """
    cos = np.clip(vectors @ vectors.T, 0.0, 1.0) * np.outer(has_vector, has_vector)
    same_country = (country[:, None] == country[None, :]).astype(np.float64)
    share_sector = ((sectors[:, None] & sectors[None, :]) != 0).astype(np.float64)
    return np.asarray(0.5 * cos + 0.25 * same_country + 0.25 * share_sector)
