"""Declared error responses, shared by the routes' OpenAPI descriptions."""

from __future__ import annotations

from typing import Any

from app.schemas.common import Problem

# Every route may answer these: the per-key rate limit (app/limits.py).
ALWAYS = (429,)
# A route with a JSON body (it declares 415) may also answer these: JSON nested too deeply or a
# malformed Idempotency-Key (400), an Idempotency-Key reused or still in use (409).
WITH_BODY = (400, 409)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The declared problem responses of a route: ``codes``, :data:`ALWAYS`, and
    :data:`WITH_BODY` when ``codes`` has 415 (the route takes a body)."""
    declared = {*codes, *ALWAYS, *(WITH_BODY if 415 in codes else ())}
    text = {
        400: "Malformed request (e.g. JSON nested too deeply, or a malformed Idempotency-Key).",
        401: "No API key, or an unknown, expired or revoked one.",
        403: "The key's role may not do this to an object it can see.",
        429: "Too many requests for this key; retry after `Retry-After` seconds.",
        404: "No such object.",
        409: "Conflicts with stored data (e.g. an external id that is already taken), or the "
        "Idempotency-Key was used for another request or is still in use.",
        413: "Request body too large.",
        415: "Body is not JSON.",
        422: "Invalid input: the problem's `errors` list names each offending field.",
        503: "The service is starting or overloaded (too many ranking requests waiting, or "
        "one took too long); retry after `Retry-After` seconds. On a route that embeds texts, "
        "also when the embedding model failed to load (no `Retry-After`: `/health` says "
        "`degraded` until a restart); nothing was written.",
    }
    return {
        code: {
            "model": Problem,
            "description": text[code],
            "content": {"application/problem+json": {}},
            **({"headers": _RETRY_AFTER} if code in (429, 503) else {}),
        }
        for code in sorted(declared)
    }


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 1},
    }
}
