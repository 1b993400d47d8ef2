"""Who may call what: bearer API keys, roles, and object-level visibility by tenant.

Every route declares its access with :func:`require` (or :func:`public`); a test walks all
routes and fails if one does neither. Objects of another tenant answer 404, exactly like
missing ones, so a key cannot probe for what exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.dependencies import Ctx
from app.errors import DomainError, NotFound
from app.services.keys import Principal, Role, verify_api_key

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer mh_xxxxxxxx_...`. The first start of an "
    "empty store prints an admin key; `multihelix keys create` makes more.",
)


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a valid key with one of ``roles`` (admin is always admitted)."""
    allowed = frozenset(roles) | {Role.admin}

    async def dependency(
        request: Request,
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        principal = await verify_api_key(ctx.db, credentials.credentials)
        if principal is None:
            raise Unauthenticated("the API key is unknown, expired or revoked")
        request.state.principal = principal  # the audit middleware records who wrote
        if principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs one of the roles: {names}")
        return principal

    dependency.__multihelix_roles__ = allowed  # type: ignore[attr-defined]
    return dependency


def public() -> Callable[[Request], Awaitable[None]]:
    """Marks a route as deliberately open (health, vocabulary)."""

    async def dependency(request: Request) -> None:  # async: see get_context
        return None

    dependency.__multihelix_public__ = True  # type: ignore[attr-defined]
    return dependency


# -- object-level rules --------------------------------------------------------------------
def visible_tenants(principal: Principal) -> tuple[str, ...] | None:
    """Tenants whose organisations the caller may read; None = all. Network-wide records
    (tenant None) are readable by every staff, organiser and batch key."""
    if principal.role in (Role.admin, Role.batch):
        return None
    return (principal.tenant,) if principal.tenant else ()


def can_read_organisation(principal: Principal, org: dict[str, Any]) -> bool:
    if principal.role in (Role.admin, Role.batch):
        return True
    if principal.role is Role.member:
        return bool(org["id"] == principal.organisation_id)
    return bool(org.get("tenant") is None or org.get("tenant") == principal.tenant)


def can_write_organisation(principal: Principal, org: dict[str, Any]) -> bool:
    if principal.is_admin:
        return True
    if principal.role is Role.member:
        return bool(org["id"] == principal.organisation_id)
    if principal.role is Role.staff:
        return bool(org.get("tenant") == principal.tenant)
    return False


def check_read(principal: Principal, org: dict[str, Any]) -> None:
    if not can_read_organisation(principal, org):
        raise NotFound(f"organisation {org['id']} does not exist")


def check_write(principal: Principal, org: dict[str, Any]) -> None:
    check_read(principal, org)
    if not can_write_organisation(principal, org):
        raise Forbidden(f"this key may read organisation {org['id']} but not change it")


Admin = Annotated[Principal, Depends(require())]
Staff = Annotated[Principal, Depends(require(Role.staff))]
Reader = Annotated[Principal, Depends(require(Role.staff, Role.organiser, Role.member, Role.batch))]
Editor = Annotated[Principal, Depends(require(Role.staff, Role.member))]
Batch = Annotated[Principal, Depends(require(Role.batch))]
