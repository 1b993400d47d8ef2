"""Service meta routes: health and the controlled vocabularies."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Depends

from app.auth import public
from app.dependencies import Ctx
from app.routers.responses import errors
from embeddings.encoder import LoadingEncoder
from matching.vocabulary import KIND_LABELS, SECTOR_LABELS, CollaborationKind

router = APIRouter(tags=["service"], dependencies=[Depends(public())])


@router.get("/health")
async def health(ctx: Ctx) -> dict[str, Any]:
    """Liveness plus what is loaded: organisations, links, vectors, model, and which
    process answered (with ``multihelix serve --workers N`` each worker holds its own copy)
    up to which entry of the store's change feed its copy holds.

    The service answers once the store is read; the embedding model then loads in the
    background (``model.status`` ``loading``, then ``ready``, with ``load_s``). Meanwhile
    matches, lists and reads are served, and requests with texts to embed (creates, updates,
    free-text search) wait for the model. ``status`` is ``degraded`` if the model failed to
    load (``model.error``): texts cannot be embedded, and those requests answer 503, until a
    restart."""
    state = ctx.derived.state
    model = ctx.derived.encoder
    model_health: dict[str, Any] = {"status": "ready", "load_s": None}  # handed in loaded
    if isinstance(model, LoadingEncoder):
        load_s = None if model.load_s is None else round(model.load_s, 2)
        model_health = {"status": model.status, "load_s": load_s}
        if model.error is not None:
            model_health["error"] = str(model.error)
    return {
        "status": "degraded" if model_health["status"] == "failed" else "ok",
        "organisations": len(state.catalog),
        "collaboration_links": state.graph.number_of_links,
        "vectors": {space: len(index) for space, index in state.vectors.items()},
        "encoder": ctx.encoder_name,
        "model": model_health,
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
