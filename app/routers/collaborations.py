"""/v1/collaborations: who already worked with whom (projects, publications, supply, ...)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from app.auth import Reader, Staff, visible_tenants
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.collaborations import CollaborationCreate, CollaborationList, CollaborationRead
from app.schemas.common import QueryText
from app.services import collaborations as service
from matching.vocabulary import CollaborationKind

router = APIRouter(prefix="/v1/collaborations", tags=["collaborations"])

CollabId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Collaboration id.")]


@router.get("", response_model=CollaborationList, responses=errors(401, 422))
async def list_collaborations(
    ctx: Ctx,
    principal: Reader,
    organisation_id: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only those this organisation is in.")
    ] = None,
    kind: Annotated[list[CollaborationKind], Query(max_length=6)] = [],  # noqa: B006
    reference: Annotated[QueryText | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """List collaborations, newest first."""
    items, total = await service.list_collaborations(
        ctx,
        organisation_id=organisation_id,
        kinds=[k.value for k in kind],
        reference=reference,
        limit=limit,
        offset=offset,
        tenants=visible_tenants(principal),
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "",
    response_model=CollaborationRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 413, 415, 422),
)
async def create_collaboration(
    ctx: Ctx, principal: Staff, body: CollaborationCreate, response: Response
) -> dict[str, Any]:
    """Record a collaboration between two or more organisations. The collaboration graph,
    and so every match, reflects it as soon as this returns."""
    (created,) = await service.create_collaborations(
        ctx, [body.model_dump(mode="json")], tenants=visible_tenants(principal)
    )
    response.headers["Location"] = f"/v1/collaborations/{created['id']}"
    return created


@router.get("/{collab_id}", response_model=CollaborationRead, responses=errors(401, 403, 404, 422))
async def get_collaboration(ctx: Ctx, principal: Reader, collab_id: CollabId) -> dict[str, Any]:
    """One collaboration with its participants."""
    return await service.get_collaboration(ctx, collab_id, tenants=visible_tenants(principal))


@router.delete(
    "/{collab_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422)
)
async def delete_collaboration(ctx: Ctx, principal: Staff, collab_id: CollabId) -> Response:
    """Remove a collaboration (e.g. recorded by mistake) from the store and the graph."""
    await service.delete_collaboration(ctx, collab_id, tenants=visible_tenants(principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
