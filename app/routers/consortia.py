"""/v1/consortia/suggest: candidate consortia for a funding call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app.auth import require, visible_tenants
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.consortia import ConsortiumRequest, ConsortiumSuggestions
from app.services import consortia as service
from app.services.keys import Principal, Role

router = APIRouter(prefix="/v1/consortia", tags=["consortia"])


@router.post(
    "/suggest",
    response_model=ConsortiumSuggestions,
    responses=errors(401, 403, 404, 413, 415, 422),
)
async def suggest_consortia(
    ctx: Ctx,
    principal: Annotated[Principal, Depends(require(Role.staff))],
    body: ConsortiumRequest,
) -> dict[str, Any]:
    """Build consortia for a call: describe the call in words and give its rules (size,
    at least N countries with at least M EU member states, at most K per country, required
    roles such as >= 1 SME, >= 1 university, >= 1 hospital, >= 1 patient organisation,
    organisations that must be in or must stay out).

    Candidates are scored against the call text (their profile and offers), by their
    affinity to the required members, and pair by pair (existing ties, partners of partners,
    activity, complementary offers and needs; weights fitted on real H2020 consortia); an
    exact optimiser (OR-Tools CP-SAT) then picks the members that maximise fit plus ties
    under the rules, within the time limit, and returns several ranked alternatives. Each
    consortium comes with a score per member and per pair, the rules it meets, and reasons.

    Only organisations the key can see are proposed. Rules no consortium can meet answer 422
    naming the rule and why (e.g. "at least 4 countries are required, but the candidates come
    from only 2 (ES, FR)").
    """
    return await service.suggest(
        ctx, body.model_dump(mode="json"), tenants=visible_tenants(principal)
    )
