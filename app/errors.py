"""Domain errors and their one mapping to HTTP problem responses (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from embeddings.encoder import ModelLoadError

log = logging.getLogger("multihelix")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """Base of errors the services raise; routers never build HTTP errors themselves."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unprocessable(DomainError):
    status = 422
    title = "Unprocessable content"


class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"


def problem(
    status: int, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


# The order an Allow header lists methods in.
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    One path is often served by several routes (GET, PATCH and DELETE /v1/organisations/{id}
    are three), and the router's 405 names only the first route's methods; an Allow header
    must list them all (RFC 9110, section 10.2.1).
    """
    # The path the router matches: without the prefix the app is served under (root_path).
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        path = path[len(root_path) :]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods.update(route.methods)
    rank = {method: i for i, method in enumerate(_METHOD_ORDER)}
    return sorted(methods, key=lambda method: (rank.get(method, len(rank)), method))


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors without echoing the (possibly huge or binary) input back."""
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", ""))[:300],
                "type": str(err.get("type", "")),
            }
        )
    return out[:50]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _safe_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"]) or "request"
        return problem(422, "Invalid request", f"{where}: {first['msg']}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}.get(
            exc.status_code, "Error"
        )
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
            headers["Allow"] = allow
            detail = f"{request.method} is not supported here; allowed: {allow or 'none'}"
        response = problem(exc.status_code, title, detail)
        for key, value in headers.items():
            response.headers[key] = value
        return response

    @app.exception_handler(ModelLoadError)
    async def _no_model(_: Request, exc: ModelLoadError) -> JSONResponse:
        # Raised before anything is written: texts are embedded ahead of the transaction.
        return problem(503, "Service unavailable", f"{exc}; nothing was written")

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, __: RecursionError) -> JSONResponse:
        return problem(400, "Bad request", "request body is nested too deeply")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal server error", "an unexpected error occurred; it was logged")
