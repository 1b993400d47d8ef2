"""ASGI middleware at the edge: request body size limit and JSON-only bodies."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class BodyGuard:
    """Answers 413 for bodies over ``max_bytes`` (declared or streamed) and 415 for bodies that
    are not JSON, before any route runs."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _problem(
                send, 413, "Content too large", f"bodies are limited to {self.max_bytes} bytes"
            )
            return
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        has_body = length not in (None, "0") or "transfer-encoding" in headers
        if has_body and ctype != "application/json" and not ctype.endswith("+json"):
            await _problem(send, 415, "Unsupported media type", "send the body as application/json")
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _problem(
                send, 413, "Content too large", f"bodies are limited to {self.max_bytes} bytes"
            )


class _TooLarge(Exception):
    pass


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
