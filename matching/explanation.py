"""Human-readable reasons for a suggested partner, in the staff's words."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pycountry

from matching.catalog import OrgProfile
from matching.vocabulary import KIND_LABELS, SECTOR_LABELS

# Cosine above which an offer/seek pair is worth quoting (all-MiniLM-L6-v2 scale: unrelated
# texts sit around 0.0-0.2, paraphrases above 0.6).
FIT_THRESHOLD = 0.45
SIMILAR_PROFILE_THRESHOLD = 0.5
RELATED_PROFILE_THRESHOLD = 0.35
# The ranker's ``offer_fit``/``need_fit`` are the same best cosines, summed in another order:
# a pair is looked for only when its feature comes within this of the threshold.
_FIT_ROUNDING = 1e-4


@cache
def country_name(code: str) -> str:
    """Common English name of an ISO alpha-2 code (the code itself if unknown).

    >>> country_name("ES"), country_name("XX")
    ('Spain', 'XX')
    """
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return code
    return str(getattr(country, "common_name", None) or country.name)


def best_item_pair(
    left: np.ndarray | None, right: np.ndarray | None
) -> tuple[int, int, float] | None:
    """Indices of the most similar (left item, right item) pair and their cosine."""
    if left is None or right is None or len(left) == 0 or len(right) == 0:
        return None
    sims = left @ right.T
    i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
    return int(i), int(j), float(sims[i, j])


def explain(
    query: OrgProfile,
    candidate: OrgProfile,
    features: dict[str, float],
    *,
    bridges: list[int],
    name_of: Callable[[int], str],
) -> list[str]:
    """Reasons, strongest first. ``bridges`` are the intermediaries on the shortest path."""
    reasons: list[str] = []
    offer = _fitting_pair(candidate.offer_vectors, query.seek_vectors, features.get("offer_fit"))
    if offer is not None and offer[2] >= FIT_THRESHOLD:
        reasons.append(
            f'Offers "{candidate.offers[offer[0]]}", which matches your need '
            f'"{query.seeks[offer[1]]}".'
        )
    need = _fitting_pair(candidate.seek_vectors, query.offer_vectors, features.get("need_fit"))
    if need is not None and need[2] >= FIT_THRESHOLD:
        reasons.append(
            f'Seeks "{candidate.seeks[need[0]]}", which you offer ("{query.offers[need[1]]}").'
        )
    if features.get("text_similarity", 0.0) >= SIMILAR_PROFILE_THRESHOLD:
        reasons.append(
            f"Works in a closely related field (profile similarity "
            f"{features['text_similarity']:.2f})."
        )

    hops = int(features.get("hop_distance", 4))
    names = [name_of(b) for b in bridges]
    if hops == 1:
        reasons.append("Already a direct partner of yours.")
    elif hops == 2 and names:
        common = int(features.get("common_partners", len(names)))
        via = _join(names)
        more = f" ({common} common partners in all)" if common > len(names) else ""
        who = "who worked with both" if len(names) == 1 else "who each worked with both"
        reasons.append(f"2 hops away via {via}, {who}{more}.")
    elif hops == 3 and names:
        reasons.append(f"3 hops away, through the network of {_join(names)}.")

    cross: list[str] = []
    if features.get("cross_country", 0.0) >= 1.0:
        cross.append(
            f"country ({country_name(candidate.country)} vs {country_name(query.country)})"
        )
    elif candidate.region and query.region and candidate.region != query.region:
        cross.append(f"region ({candidate.region} vs {query.region})")
    if features.get("cross_sector", 0.0) >= 1.0:
        cross.append(f"sector ({_sectors(candidate)} vs {_sectors(query)})")
    if cross:
        reasons.append("Different " + " and ".join(cross) + ".")

    if not reasons and features.get("text_similarity", 0.0) >= RELATED_PROFILE_THRESHOLD:
        reasons.append(
            f"Related profile (similarity {features['text_similarity']:.2f}): "
            f"{_kind(candidate)} in {_sectors(candidate)}."
        )
    degree = int(features.get("candidate_degree", 0))
    if hops >= 4 and degree >= 5 and len(reasons) < 2:
        reasons.append(f"Well connected: {degree} collaboration partners.")
    if not reasons:
        reasons.append(f"{_kind(candidate).capitalize()} you have not worked with yet.")
    return reasons


def _fitting_pair(
    left: np.ndarray | None, right: np.ndarray | None, fit: float | None
) -> tuple[int, int, float] | None:
    """:func:`best_item_pair`, skipped when the ranker's ``fit`` for it (its best cosine, if
    known) is below the threshold: most candidates on a page quote no pair."""
    if fit is not None and fit < FIT_THRESHOLD - _FIT_ROUNDING:
        return None
    return best_item_pair(left, right)


def _kind(profile: OrgProfile) -> str:
    """The kind with its article: 'an SME', 'a university'.

    >>> sme, uni = (OrgProfile(1, "x", k, (), "ES") for k in ("sme", "university"))
    >>> _kind(sme), _kind(uni)
    ('an SME', 'a university')
    """
    label = KIND_LABELS.get(profile.kind, profile.kind)
    return ("an " if label[0] in "AEIOSaeio" else "a ") + label


def _sectors(profile: OrgProfile) -> str:
    return ", ".join(SECTOR_LABELS.get(s, s) for s in profile.sectors) or "no sector"


def _join(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'.

    >>> _join(["A"]), _join(["A", "B"]), _join(["A", "B", "C"])
    ('A', 'A and B', 'A, B and C')
    """
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
