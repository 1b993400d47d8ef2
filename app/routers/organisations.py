"""/v1/organisations: the organisations a cluster works with."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from app.auth import Editor, Reader, Staff, check_read, check_write, visible_tenants
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.common import QueryText, Slug
from app.schemas.organisations import (
    OrganisationBulkCreate,
    OrganisationBulkResult,
    OrganisationCreate,
    OrganisationList,
    OrganisationRead,
    OrganisationUpdate,
)
from app.services import organisations as service
from app.services.keys import Role
from matching.vocabulary import Sector, StakeholderKind

router = APIRouter(prefix="/v1/organisations", tags=["organisations"])

OrgId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Organisation id.")]
# The id routes are registered as ``{org_id:int}``: a segment that is not digits (``bulk``) never
# reaches them, so PATCH /v1/organisations/bulk is a 405 naming POST, not a 422 about an id.


@router.get("", response_model=OrganisationList, responses=errors(401, 422))
async def list_organisations(
    ctx: Ctx,
    principal: Reader,
    kind: Annotated[list[StakeholderKind], Query(max_length=10)] = [],  # noqa: B006
    sector: Annotated[list[Sector], Query(max_length=12)] = [],  # noqa: B006
    country: Annotated[
        list[Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")]], Query(max_length=50)
    ] = [],  # noqa: B006
    cluster: Annotated[list[Slug], Query(max_length=20)] = [],  # noqa: B006
    q: Annotated[QueryText | None, Query(max_length=100, description="Name starts with.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """List organisations, filtered by kind, sector, country and cluster (repeat a parameter
    to allow several values), in id order, one page at a time."""
    items, total = await service.list_organisations(
        ctx,
        kinds=[k.value for k in kind],
        sectors=[s.value for s in sector],
        countries=[c.upper() for c in country],
        clusters=cluster,
        name_contains=q or None,
        limit=limit,
        offset=offset,
        tenants=visible_tenants(principal),
        only_id=principal.organisation_id if principal.role is Role.member else None,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "",
    response_model=OrganisationRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409, 413, 415, 422, 503),
)
async def create_organisation(
    ctx: Ctx, principal: Staff, body: OrganisationCreate, response: Response
) -> dict[str, Any]:
    """Register an organisation. Its profile, offers and seeks are embedded with
    all-MiniLM-L6-v2, and it is matchable as soon as this returns. It belongs to the key's
    cluster (tenant); an admin key creates network-wide records."""
    (created,) = await service.create_organisations(
        ctx, [body.model_dump(mode="json")], tenant=principal.tenant
    )
    response.headers["Location"] = f"/v1/organisations/{created['id']}"
    return created


@router.post(
    "/bulk",
    response_model=OrganisationBulkResult,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 409, 413, 415, 422, 503),
)
async def create_organisations_bulk(
    ctx: Ctx, principal: Staff, body: OrganisationBulkCreate
) -> dict[str, Any]:
    """Register up to 500 organisations in one transaction (all or none); texts are embedded
    in shared batches, the fastest way to load a member list."""
    created = await service.create_organisations(
        ctx, [item.model_dump(mode="json") for item in body.items], tenant=principal.tenant
    )
    return {"items": created}


@router.get(
    "/by-external-id/{scheme}/{value}",
    response_model=OrganisationRead,
    responses=errors(401, 404, 422),
)
async def get_organisation_by_external_id(
    ctx: Ctx,
    principal: Reader,
    scheme: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
    value: Annotated[str, Path(max_length=200)],
) -> dict[str, Any]:
    """Look an organisation up by an identifier from another register, e.g. its EU PIC."""
    org = await service.get_by_external_id(ctx, scheme, value)
    check_read(principal, org)
    return org


@router.get("/{org_id:int}", response_model=OrganisationRead, responses=errors(401, 404, 422))
async def get_organisation(ctx: Ctx, principal: Reader, org_id: OrgId) -> dict[str, Any]:
    """One organisation."""
    org = await service.get_organisation(ctx, org_id)
    check_read(principal, org)
    return org


@router.patch(
    "/{org_id:int}",
    response_model=OrganisationRead,
    responses=errors(401, 403, 404, 409, 413, 415, 422, 503),
)
async def update_organisation(
    ctx: Ctx, principal: Editor, org_id: OrgId, body: OrganisationUpdate
) -> dict[str, Any]:
    """Change some fields. Only texts that changed are embedded again. A member key may edit
    its own organisation's profile."""
    check_write(principal, await service.get_organisation(ctx, org_id))
    changes = body.model_dump(mode="json", exclude_unset=True)
    return await service.update_organisation(ctx, org_id, changes)


@router.delete(
    "/{org_id:int}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_organisation(ctx: Ctx, principal: Staff, org_id: OrgId) -> Response:
    """Delete an organisation with its vectors and links; it disappears from every match."""
    check_write(principal, await service.get_organisation(ctx, org_id))
    await service.delete_organisation(ctx, org_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
