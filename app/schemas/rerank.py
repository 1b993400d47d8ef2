"""Batch re-ranking run models: starting a run, its status and progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import InputModel

_RUN_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "status": "running",
    "is_current": False,
    "engine": "local",
    "top_k": 50,
    "only_changed": False,
    "base_run_id": None,
    "parameters": {
        "top_k": 50,
        "chunk_size": 500,
        "only_changed": False,
        "cross_preference": 0.25,
        "diversity": 0.25,
        "organisations": 10412,
    },
    "model_versions": {"ranker": "ranker-v1", "encoder": "sentence-transformers/all-MiniLM-L6-v2"},
    "snapshot_marker": "9f2c...e1",
    "started_at": "2026-11-21T02:00:00Z",
    "updated_at": "2026-11-21T02:03:10Z",
    "finished_at": None,
    "requested_by": "cli",
    "error": None,
    "progress": {
        "done_chunks": 9,
        "total_chunks": 21,
        "done_organisations": 4500,
        "total_organisations": 10412,
        "copied_organisations": 0,
        "fraction": 0.432,
    },
}


class RerankRunCreate(InputModel):
    """Start a run now, in the background (admin only)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"top": 50}, {"top": 50, "only_changed": True, "engine": "local"}]
        }
    )

    top: int = Field(default=50, ge=1, le=100, description="How many partners per organisation.")
    only_changed: bool = Field(
        default=False,
        description="Rank again only organisations whose inputs changed since the published "
        "run, and the lists those changes can reach; copy the other lists from it. The result "
        "equals a full run's (docs/rerank.md: 'Fresh, served, and --only-changed').",
    )
    engine: Literal["local", "ray"] = Field(
        default="local",
        description="'local' ranks in the API process; 'ray' on the Ray cluster the server "
        "reaches (or a local one).",
    )


class RerankProgress(BaseModel):
    done_chunks: int
    total_chunks: int
    done_organisations: int = Field(description="Organisations ranked so far.")
    total_organisations: int = Field(description="Organisations this run ranks.")
    copied_organisations: int = Field(description="Unchanged lists copied from the base run.")
    fraction: float = Field(ge=0, le=1)


class RerankRunRead(BaseModel):
    """A run: parameters and input snapshot fixed at its start, status, progress."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RUN_EXAMPLE]})

    id: int
    status: Literal["running", "published", "failed"] = Field(
        description="running -> published (readable), or failed."
    )
    is_current: bool = Field(description="The published run the matches endpoint serves from.")
    engine: str
    top_k: int
    only_changed: bool
    base_run_id: int | None = Field(description="The run unchanged lists were copied from.")
    parameters: dict[str, Any]
    model_versions: dict[str, Any]
    snapshot_marker: str | None = Field(description="Hash of every input the run ranks from.")
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    requested_by: str | None
    error: str | None
    progress: RerankProgress


class RerankRunList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [_RUN_EXAMPLE], "total": 1, "limit": 20, "offset": 0}]
        }
    )

    items: list[RerankRunRead]
    total: int
    limit: int
    offset: int
