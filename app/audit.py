"""The audit log's writers: ASGI middleware that appends every write request (POST/PUT/PATCH/
DELETE answered below 500) before the response leaves, so an acknowledged write is always
audited, and the same record for each write of the ``multihelix`` command line."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import DomainError
from app.services import privacy
from app.services.context import ServiceContext
from app.services.keys import Principal, verify_api_key
from app.store.database import Database

log = logging.getLogger("multihelix")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# POST routes that only read (a query too large for a URL): not writes, so not audited.
READ_ONLY_POSTS = frozenset({"/v1/search"})
# Set by a route that already wrote its own audit entry in its transaction (erasure).
_RECORDED = "audit_recorded"
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_SUBJECT_KINDS = {"people": "person", "persons": "person", "matches": "match"}
# How command-line writes appear in the log: no key, this role, this method, the command as path.
CLI_ACTOR = "cli"
CLI_METHOD = "CLI"


def mark_audited(request: Request) -> None:
    """Tell the middleware this request's audit entry was written with the change itself."""
    request.state.audit_recorded = True


class AuditMiddleware:
    """Register it innermost (the first ``app.add_middleware`` call), so it records what the
    routes answered, not rate-limit refusals or idempotent replays. It resolves the caller from
    ``request.state.principal`` (set by app.auth) or, for requests refused before auth ran
    (unknown path, unreadable JSON), from the bearer key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._literals: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        # A per-request copy (as the ASGI lifespan-state spec asks of servers; some test
        # transports share one dict across requests), so neither the caller nor the "already
        # audited" mark of one request can leak into another; the route's request.state and
        # this middleware then share it.
        state: dict[str, Any] = {
            k: v for k, v in scope.get("state", {}).items() if k not in (_RECORDED, "principal")
        }
        scope["state"] = state
        started = False

        async def audited_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                status = int(message["status"])
                if status < 500 and not state.get(_RECORDED):
                    try:
                        await self._record(scope, state, status, message.get("headers", []))
                    except Exception:
                        # The change is committed; failing the response would make the client
                        # retry a write that happened. Shout instead.
                        log.exception(
                            "audit entry for %s %s could not be written", scope["method"], status
                        )
            await send(message)

        await self.app(scope, receive, audited_send)

    async def _record(
        self, scope: Scope, state: dict[str, Any], status: int, headers: list[Any]
    ) -> None:
        ctx: ServiceContext | None = getattr(scope["app"].state, "ctx", None)
        if ctx is None:
            return
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        if template in READ_ONLY_POSTS and scope["method"] == "POST":
            return
        path = (
            _fill(template, scope.get("path_params", {}))
            if template
            else self._scrub(scope, scope.get("path", ""))
        )
        subject_kind, subject_id = subject_of(path)
        location = _header(headers, b"location")
        if status < 300 and location:
            created_kind, created_id = subject_of(self._scrub(scope, location.split("?")[0]))
            if created_id is not None:
                subject_kind, subject_id = created_kind, created_id
        principal = state.get("principal")
        if not isinstance(principal, Principal):
            principal = await _principal_from_header(ctx, scope)
        tenant = await _subject_tenant(ctx, subject_kind, subject_id)
        entry = privacy.audit_entry(
            principal,
            action="write",
            method=scope["method"],
            path=path,
            status=status,
            subject_kind=subject_kind,
            subject_id=subject_id,
            tenant=tenant,
        )
        await privacy.append(ctx, entry)

    def _scrub(self, scope: Scope, raw: str) -> str:
        """A path no route matched: keep ids and the words routes use, blank everything else
        (it could be a name or an e-mail typed into a URL)."""
        if self._literals is None:
            words: set[str] = set()
            for template in _route_paths(getattr(scope["app"], "routes", [])):
                words.update(p for p in template.split("/") if p and "{" not in p)
            self._literals = frozenset(words)
        parts = [
            p if (p.isdigit() and len(p) <= 12) or p in self._literals or not p else "{}"
            for p in raw.split("/")
        ]
        return "/".join(parts)[:300]


def _route_paths(routes: list[Any]) -> list[str]:
    """Every route template and include prefix, through nested and included routers."""
    found: list[str] = []
    for route in routes:
        for attr in ("path", "path_format"):
            value = getattr(route, attr, None)
            if isinstance(value, str):
                found.append(value)
        prefix = getattr(getattr(route, "include_context", None), "prefix", None)
        if isinstance(prefix, str):
            found.append(prefix)
        for child in ("original_router", "app"):
            inner = getattr(getattr(route, child, None), "routes", None)
            if isinstance(inner, list):
                found.extend(_route_paths(inner))
    return found


def _fill(template: str, params: dict[str, Any]) -> str:
    """The route with its integer parameters filled in; other parameters stay placeholders."""

    def value(match: re.Match[str]) -> str:
        raw = params.get(match.group(1))
        text = str(raw) if raw is not None else ""
        return text if text.isdigit() and len(text) <= 12 else "{" + match.group(1) + "}"

    return _PARAM.sub(value, template)[:300]


def subject_of(path: str) -> tuple[str | None, int | None]:
    """The object a write path is about: the last id and the collection before it.

    >>> subject_of("/v1/people/12/consent")
    ('person', 12)
    >>> subject_of("/v1/organisations/bulk")
    ('organisation', None)
    """
    parts = [p for p in path.split("/") if p and p != "v1"]
    for i in range(len(parts) - 1, 0, -1):
        if parts[i].isdigit() and not parts[i - 1].isdigit() and "{" not in parts[i - 1]:
            return _kind(parts[i - 1]), int(parts[i])
    if parts and "{" not in parts[0] and not parts[0].isdigit():
        return _kind(parts[0]), None
    return None, None


def _kind(collection: str) -> str:
    return _SUBJECT_KINDS.get(collection, collection.removesuffix("s"))[:40]


def _header(headers: list[Any], name: bytes) -> str | None:
    for key, value in headers:
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _principal_from_header(ctx: ServiceContext, scope: Scope) -> Principal | None:
    auth = _header(scope.get("headers", []), b"authorization")
    if not auth or not auth.lower().startswith("bearer "):
        return None
    return await verify_api_key(ctx.db, auth[7:].strip())


async def _subject_tenant(
    ctx: ServiceContext, kind: str | None, subject_id: int | None
) -> str | None:
    """The cluster owning the subject, so its staff find the entry (None if unknown/gone)."""
    if subject_id is None or subject_id > 2**31 - 1:
        return None
    if kind == "organisation":
        profile = ctx.derived.state.catalog.get(subject_id)
        return profile.tenant if profile is not None else None
    if kind == "person":
        return await privacy.person_tenant(ctx.db, subject_id)
    return None


@dataclass
class CliWrite:
    """What one command-line write did, completed by the command while it runs."""

    status: int
    subject_kind: str | None
    subject_id: int | None = None
    tenant: str | None = None


@asynccontextmanager
async def cli_write(
    db: Database, command: str, *, status: int, subject_kind: str | None
) -> AsyncIterator[CliWrite]:
    """Audit one write of ``multihelix COMMAND`` like an API write, once the block ends.

    The entry has actor role ``cli`` and no key, method ``CLI``, path ``multihelix COMMAND``
    (never its arguments: file names and labels can name people), and the status the API
    would answer: ``status`` when the block succeeds; when the store refuses the write, the
    domain error's status (404, 409, 422; 422 for a ValueError too), and the error goes on.
    Other failures are not recorded, as the middleware does not record 5xx. The command may
    set the subject id, tenant and status on the yielded :class:`CliWrite`; an ``api_key``
    subject's tenant is looked up when left unset.
    """
    write = CliWrite(status=status, subject_kind=subject_kind)
    try:
        yield write
    except DomainError as exc:
        write.status = exc.status
        await _record_cli_write(db, command, write)
        raise
    except ValueError:
        write.status = 422
        await _record_cli_write(db, command, write)
        raise
    await _record_cli_write(db, command, write)


async def _record_cli_write(db: Database, command: str, write: CliWrite) -> None:
    try:
        tenant = write.tenant
        if tenant is None and write.subject_kind == "api_key" and write.subject_id is not None:
            tenant = await privacy.key_tenant(db, write.subject_id)
        entry = privacy.audit_entry(
            None,
            action="write",
            method=CLI_METHOD,
            path=f"multihelix {command}",
            status=write.status,
            subject_kind=write.subject_kind,
            subject_id=write.subject_id,
            tenant=tenant,
            actor_role=CLI_ACTOR,
        )
        await privacy.record(db, entry)
    except Exception:
        # The change is committed (and a new key must still be shown): shout, as the
        # middleware does, rather than hide the outcome of the write.
        log.exception("audit entry for multihelix %s could not be written", command)
