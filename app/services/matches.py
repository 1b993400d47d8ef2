"""Match and search use cases: hand the in-memory state to the ranker off the event loop."""

from __future__ import annotations

import re
from functools import lru_cache

import anyio.to_thread
import pycountry

from app.errors import NotFound
from app.services.context import ServiceContext
from matching.catalog import CandidateFilter
from matching.ranker import (
    MatchQuery,
    ScoredMatch,
    SearchQuery,
    UnknownOrganisation,
    rank_partners,
    search_partners,
)


async def find_matches(ctx: ServiceContext, org_id: int, query: MatchQuery) -> list[ScoredMatch]:
    state = ctx.derived.state
    try:
        return await anyio.to_thread.run_sync(rank_partners, state, org_id, query)
    except UnknownOrganisation:
        raise NotFound(f"organisation {org_id} does not exist") from None


async def search(
    ctx: ServiceContext,
    text: str,
    *,
    limit: int,
    filter: CandidateFilter,
    boost_countries: tuple[str, ...],
    on_behalf_of: int | None,
) -> list[ScoredMatch]:
    """Embed the free text and rank organisations against it."""
    (vector,) = await ctx.encoder.encode([without_countries(text) or text])
    query = SearchQuery(
        vector=vector,
        text=text,
        limit=limit,
        filter=filter,
        boost_countries=boost_countries,
        on_behalf_of=on_behalf_of,
    )
    state = ctx.derived.state
    try:
        return await anyio.to_thread.run_sync(search_partners, state, query)
    except UnknownOrganisation as exc:
        raise NotFound(f"organisation {exc.args[0]} does not exist") from None


def countries_named_in(text: str) -> list[str]:
    """ISO codes of countries named in free text, in order of appearance.

    >>> countries_named_in("AI-based diagnostics partner in Spain or the Netherlands")
    ['ES', 'NL']
    >>> countries_named_in("a partner for chad-based pathogens")  # lower-case words do not count
    []
    """
    found: list[tuple[int, str]] = []
    for name, code in _country_names().items():
        for hit in re.finditer(rf"\b{re.escape(name)}\b", text):
            found.append((hit.start(), code))
    return list(dict.fromkeys(code for _, code in sorted(found)))


def without_countries(text: str) -> str:
    """The text minus country phrases, which are handled as a country wish, not as meaning.

    >>> without_countries("AI-based diagnostics partner in Spain")
    'AI-based diagnostics partner'
    """
    names = "|".join(re.escape(n) for n in sorted(_country_names(), key=len, reverse=True))
    stripped = re.sub(rf"\s*\b(?:(?:in|from|based in)\s+)?(?:the\s+)?(?:{names})\b", "", text)
    return re.sub(r"\s{2,}", " ", stripped).strip(" ,.;")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                names[value] = country.alpha_2
    names.update(
        {
            "UK": "GB",
            "Britain": "GB",
            "England": "GB",
            "Wales": "GB",
            "Scotland": "GB",
            "USA": "US",
            "Holland": "NL",
        }
    )
    return names
