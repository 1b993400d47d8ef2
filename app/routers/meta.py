"""Service meta routes: health and the controlled vocabularies."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends

from app.auth import public
from app.dependencies import Ctx
from app.routers.responses import errors
from matching.vocabulary import KIND_LABELS, SECTOR_LABELS, CollaborationKind

router = APIRouter(tags=["service"], dependencies=[Depends(public())])


@router.get("/health")
async def health(ctx: Ctx) -> dict[str, Any]:
    """Liveness plus what is loaded: organisations, links, vectors, model, and which
    process answered (with ``multihelix serve --workers N`` each worker holds its own copy)
    up to which entry of the store's change feed its copy holds."""
    state = ctx.derived.state
    return {
        "status": "ok",
        "organisations": len(state.catalog),
        "collaboration_links": state.graph.number_of_links,
        "vectors": {space: len(index) for space, index in state.vectors.items()},
        "encoder": ctx.encoder_name,
        "ranker": state.scorer.version,
        "store": ctx.db.engine.dialect.name,
        "process": {"pid": os.getpid(), "changes_applied": ctx.derived.applied_seq},
    }


@router.get("/v1/vocabulary", responses=errors())
async def vocabulary() -> dict[str, Any]:
    """The codes the API accepts, with the labels shown to people."""
    return {
        "kinds": [{"code": k, "label": v} for k, v in KIND_LABELS.items()],
        "sectors": [{"code": k, "label": v} for k, v in SECTOR_LABELS.items()],
        "collaboration_kinds": [k.value for k in CollaborationKind],
    }
