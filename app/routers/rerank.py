"""/v1/rerank/runs: nightly batch re-ranking runs, their status and progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status

from app.auth import require
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.rerank import RerankRunCreate, RerankRunList, RerankRunRead
from app.services import rerank as service
from app.services.keys import Principal, Role

router = APIRouter(prefix="/v1/rerank/runs", tags=["rerank"])

Viewer = Annotated[Principal, Depends(require(Role.staff, Role.organiser, Role.batch))]
Admin = Annotated[Principal, Depends(require())]
RunId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Run id.")]


@router.get("", response_model=RerankRunList, responses=errors(401, 403, 422))
async def list_runs(
    ctx: Ctx,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    """Re-ranking runs, newest first, with status and progress. The one marked
    `is_current` is what `GET /v1/organisations/{id}/matches` serves from."""
    items, total = await service.list_runs(ctx.db, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{run_id}", response_model=RerankRunRead, responses=errors(401, 403, 404, 422))
async def get_run(ctx: Ctx, principal: Viewer, run_id: RunId) -> dict[str, Any]:
    """One run: parameters, input snapshot marker, model versions, status and progress."""
    return await service.get_run(ctx.db, run_id)


@router.post(
    "",
    response_model=RerankRunRead,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors(401, 403, 409, 413, 415, 422),
)
async def start_run(
    ctx: Ctx, principal: Admin, body: RerankRunCreate, response: Response
) -> dict[str, Any]:
    """Start a run in the background (admin only) and return it at once; follow it with
    `GET /v1/rerank/runs/{id}`. Only one run at a time: while one holds the lease this
    answers 409 with the running run's id. An interrupted run with the same options is
    resumed from its last committed chunk."""
    run = await service.start_background_run(
        ctx,
        service.RunOptions(top_k=body.top, only_changed=body.only_changed, engine=body.engine),
        requested_by=f"key {principal.key_id}",
    )
    response.headers["Location"] = f"/v1/rerank/runs/{run['id']}"
    return run
