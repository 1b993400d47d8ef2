"""/v1/organisations/{id}/matches and /v1/search: ranked, explained partner suggestions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from app.auth import Reader, check_read
from app.dependencies import Ctx
from app.errors import NotFound
from app.routers.responses import errors
from app.schemas.common import Slug
from app.schemas.matches import MatchList, SearchRequest, SearchResult
from app.services import matches as service
from app.services import rerank as rerank_service
from app.services.context import ServiceContext
from matching.catalog import CandidateFilter
from matching.ranker import (
    DEFAULT_CROSS_PREFERENCE,
    DEFAULT_DIVERSITY,
    MatchQuery,
    ScoredMatch,
)
from matching.vocabulary import Sector, StakeholderKind

router = APIRouter(tags=["matches"])

MAX_LIMIT = 100


def match_item(match: ScoredMatch) -> dict[str, Any]:
    org = match.organisation
    c = match.components
    hop = int(c["hop_distance"])
    return {
        "organisation": {
            "id": org.id,
            "name": org.name,
            "kind": org.kind,
            "sectors": list(org.sectors),
            "country": org.country,
            "region": org.region,
            "clusters": list(org.clusters),
            "maturity": org.maturity,
        },
        "score": match.score,
        "components": {
            **{k: round(v, 6) for k, v in c.items()},
            "common_partners": int(c["common_partners"]),
            "candidate_degree": int(c["candidate_degree"]),
            "hop_distance": hop if hop <= 3 else None,
            "cross_sector": bool(c["cross_sector"]),
            "cross_country": bool(c["cross_country"]),
        },
        "explanation": match.explanation,
        "is_existing_partner": match.is_existing_partner,
    }


@router.get(
    "/v1/organisations/{org_id}/matches",
    response_model=MatchList,
    responses=errors(401, 403, 404, 422, 503),
)
async def get_matches(
    ctx: Ctx,
    principal: Reader,
    org_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many partners.")] = 10,
    kind: Annotated[list[StakeholderKind], Query(max_length=10)] = [],  # noqa: B006
    sector: Annotated[list[Sector], Query(max_length=12)] = [],  # noqa: B006
    country: Annotated[
        list[Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")]], Query(max_length=50)
    ] = [],  # noqa: B006
    cluster: Annotated[list[Slug], Query(max_length=20)] = [],  # noqa: B006
    min_maturity: Annotated[int | None, Query(ge=1, le=9, description="Lowest TRL.")] = None,
    cross_preference: Annotated[
        float,
        Query(
            ge=0,
            le=1,
            allow_inf_nan=False,
            description="0 = neutral; 1 = strongly prefer other sectors and countries.",
        ),
    ] = DEFAULT_CROSS_PREFERENCE,
    diversity: Annotated[
        float,
        Query(
            ge=0,
            le=1,
            allow_inf_nan=False,
            description="0 = pure score order; 1 = spread the list over countries, sectors "
            "and profiles as much as possible.",
        ),
    ] = DEFAULT_DIVERSITY,
    include_existing: Annotated[
        bool, Query(description="Also suggest organisations it already worked with.")
    ] = False,
    live: Annotated[
        bool,
        Query(
            description="Rank now, even when the nightly run's list is fresh: it then also "
            "weighs organisations added or changed since the run."
        ),
    ] = False,
) -> dict[str, Any]:
    """Who should this organisation meet that it does not know yet?

    Candidates come from vector search over profiles and offers/seeks and from the
    collaboration graph (2-3 hops). Each is scored on text similarity, reciprocal offer/seek
    fit, graph proximity (common partners, Adamic-Adar, hop distance) and cross-sector /
    cross-region terms, then the list is diversified. Every item says why, in words.
    Organisations without text still get graph-based suggestions and vice versa.

    With the default options, the list comes from the latest nightly re-ranking run when
    that run is still fresh for this organisation (`source: "batch"`, with `run_id` and
    `computed_at`); otherwise it is ranked now (`source: "live"`). Fresh means that neither
    this organisation (its profile, texts and links) nor anyone on its list changed since the
    run. Organisations added or changed since then that are not on the list show up after the
    next run, or now with `live=true` (any other non-default option also ranks live).
    """
    query = MatchQuery(
        limit=limit,
        filter=CandidateFilter(
            kinds=tuple(k.value for k in kind),
            sectors=tuple(s.value for s in sector),
            countries=tuple(c.upper() for c in country),
            clusters=tuple(cluster),
            min_maturity=min_maturity,
        ),
        cross_preference=cross_preference,
        diversity=diversity,
        include_existing=include_existing,
    )
    check_read(principal, _visibility(ctx, org_id))
    # The nightly run's list when it is fresh for this organisation (default query only).
    served = (
        await rerank_service.serve_from_latest(ctx, org_id, limit)
        if not live and rerank_service.is_servable(query)
        else None
    )
    if served is not None:
        return {
            "organisation_id": org_id,
            "model_version": ctx.derived.state.scorer.version,
            "source": "batch",
            "run_id": served.run_id,
            "computed_at": served.computed_at,
            "items": [match_item(m) for m in served.matches],
        }
    found = await service.find_matches(ctx, org_id, query)
    return {
        "organisation_id": org_id,
        "model_version": ctx.derived.state.scorer.version,
        "source": "live",
        "run_id": None,
        "computed_at": datetime.now(UTC),
        "items": [match_item(m) for m in found],
    }


@router.post(
    "/v1/search",
    response_model=SearchResult,
    responses=errors(401, 403, 404, 413, 415, 422, 503),
)
async def search_partners(ctx: Ctx, principal: Reader, body: SearchRequest) -> dict[str, Any]:
    """Free-text partner search: "AI-based diagnostics partner in Spain".

    The text is embedded and matched against profiles and offers; countries named in it
    lift organisations there (use `countries` to restrict instead). With `on_behalf_of`, the
    searching organisation's own network also counts and its partners are left out.
    """
    if body.on_behalf_of is not None:
        check_read(principal, _visibility(ctx, body.on_behalf_of))
    named = service.countries_named_in(body.text)
    found = await service.search(
        ctx,
        body.text,
        limit=body.limit,
        filter=CandidateFilter(
            kinds=tuple(k.value for k in body.kinds),
            sectors=tuple(s.value for s in body.sectors),
            countries=tuple(body.countries),
            clusters=tuple(body.clusters),
            min_maturity=body.min_maturity,
        ),
        boost_countries=tuple(named),
        on_behalf_of=body.on_behalf_of,
    )
    return {
        "organisation_id": body.on_behalf_of,
        "model_version": ctx.derived.state.scorer.version,
        "interpreted_countries": named,
        "items": [match_item(m) for m in found],
    }


def _visibility(ctx: ServiceContext, org_id: int) -> dict[str, Any]:
    """What access checks need, from memory: matching must not wait on the store."""
    profile = ctx.derived.state.catalog.get(org_id)
    if profile is None:
        raise NotFound(f"organisation {org_id} does not exist")
    return {"id": profile.id, "tenant": profile.tenant}
