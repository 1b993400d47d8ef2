"""FastAPI dependencies: the service context built in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import Unavailable
from app.services.context import ServiceContext


async def get_context(request: Request) -> ServiceContext:
    """The running service's context. ``async`` although it never waits: FastAPI would run a
    plain ``def`` dependency in its thread pool, one thread hop per request for nothing."""
    ctx: ServiceContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise Unavailable("the service is still starting")
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_context)]
