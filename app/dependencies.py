"""FastAPI dependencies: the service context built in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import Unavailable
from app.services.context import ServiceContext


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise Unavailable("the service is still starting")
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_context)]
