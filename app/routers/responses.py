"""Declared error responses, shared by the routes' OpenAPI descriptions."""

from __future__ import annotations

from typing import Any

from app.schemas.common import Problem


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request (e.g. JSON nested too deeply).",
        401: "No API key, or an unknown, expired or revoked one.",
        403: "The key's role may not do this to an object it can see.",
        429: "Too many requests for this key; retry after `Retry-After` seconds.",
        404: "No such object.",
        409: "Conflicts with stored data (e.g. an external id that is already taken).",
        413: "Request body too large.",
        415: "Body is not JSON.",
        422: "Invalid input: the problem's `errors` list names each offending field.",
        503: "The service is starting or overloaded; retry later.",
    }
    return {
        code: {
            "model": Problem,
            "description": text[code],
            "content": {"application/problem+json": {}},
        }
        for code in codes
    }
