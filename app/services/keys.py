"""API keys: creation (the key is shown once), verification, revocation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update

from app.errors import NotFound
from app.store import models as m
from app.store.database import Database


class Role(StrEnum):
    """What a key may do; see the README's access table."""

    admin = "admin"
    staff = "staff"
    organiser = "organiser"
    member = "member"
    batch = "batch"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller."""

    key_id: int
    role: Role
    tenant: str | None
    organisation_id: int | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


@dataclass(frozen=True, slots=True)
class CreatedKey:
    id: int
    key: str
    prefix: str
    role: Role
    tenant: str | None
    organisation_id: int | None
    expires_at: datetime | None


KEY_PREFIX = "mh"


def _hash(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    db: Database,
    *,
    role: Role | str,
    tenant: str | None = None,
    organisation_id: int | None = None,
    label: str | None = None,
    expires_in_days: float | None = None,
) -> CreatedKey:
    """Create a key and return it; only its hash is stored."""
    role = Role(role)
    if role in (Role.staff, Role.organiser) and not tenant:
        raise ValueError(f"a {role} key needs a tenant (the cluster it works for)")
    if role is Role.member and organisation_id is None:
        raise ValueError("a member key needs the organisation it belongs to")
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    expires = (
        datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days is not None else None
    )
    async with db.write_lock, db.sessions() as session, session.begin():
        if (
            organisation_id is not None
            and await session.get(m.Organisation, organisation_id) is None
        ):
            raise NotFound(f"organisation {organisation_id} does not exist")
        row = m.ApiKey(
            prefix=prefix,
            secret_hash=_hash(secret),
            role=role.value,
            tenant=tenant,
            organisation_id=organisation_id,
            label=label,
            expires_at=expires,
        )
        session.add(row)
        await session.flush()
        key_id = row.id
    return CreatedKey(
        id=key_id,
        key=f"{KEY_PREFIX}_{prefix}_{secret}",
        prefix=prefix,
        role=role,
        tenant=tenant,
        organisation_id=organisation_id,
        expires_at=expires,
    )


VERIFIED_FOR_SECONDS = 5.0
"""How long a verified key is trusted without reading the store again. Revoking a key in this
process forgets every verification at once; a key revoked by another process (the command
line, another worker) stops working within this time."""

_verified: weakref.WeakKeyDictionary[Database, dict[str, tuple[float, Principal]]] = (
    weakref.WeakKeyDictionary()
)


async def verify_api_key(db: Database, key: str) -> Principal | None:
    """The principal for a valid, unexpired, unrevoked key; None otherwise.

    Every request carries its key, so a successful verification is remembered for
    ``VERIFIED_FOR_SECONDS`` (never past the key's expiry): one store read per key and period
    instead of one per request. Failures are never remembered.
    """
    remembered = _verified.setdefault(db, {})
    digest = _hash(key)
    found = remembered.get(digest)
    if found is not None and time.monotonic() < found[0]:
        return found[1]
    principal, trusted_for = await _read_api_key(db, key)
    if principal is None:
        remembered.pop(digest, None)
    else:
        remembered[digest] = (time.monotonic() + trusted_for, principal)
    return principal


async def _read_api_key(db: Database, key: str) -> tuple[Principal | None, float]:
    """The principal for ``key`` from the store, and for how many seconds to trust it."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
        return None, 0.0
    async with db.read() as session:
        row = await session.scalar(select(m.ApiKey).where(m.ApiKey.prefix == parts[1]))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(parts[2])):
        return None, 0.0
    now = datetime.now(UTC)
    if row.revoked_at is not None:
        return None, 0.0
    trusted_for = VERIFIED_FOR_SECONDS
    if row.expires_at is not None:
        if row.expires_at <= now:
            return None, 0.0
        trusted_for = min(trusted_for, (row.expires_at - now).total_seconds())
    principal = Principal(
        key_id=row.id, role=Role(row.role), tenant=row.tenant, organisation_id=row.organisation_id
    )
    return principal, trusted_for


async def revoke_api_key(db: Database, key_or_prefix: str) -> int:
    """Revoke by key, prefix or id; returns the key id."""
    ident = (
        key_or_prefix.split("_")[1] if key_or_prefix.startswith(f"{KEY_PREFIX}_") else key_or_prefix
    )
    async with db.write_lock, db.sessions() as session, session.begin():
        condition = m.ApiKey.prefix == ident
        if ident.isdigit():
            condition = condition | (m.ApiKey.id == int(ident))
        row = await session.scalar(select(m.ApiKey).where(condition))
        if row is None:
            raise NotFound(f"no API key {ident!r}")
        await session.execute(
            update(m.ApiKey)
            .where(m.ApiKey.id == row.id, m.ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    forget_verified_keys(db)
    return row.id


def forget_verified_keys(db: Database) -> None:
    """Read every key from the store again on its next use (after a revocation, or when an
    organisation's member keys were deleted with it)."""
    _verified.pop(db, None)


async def count_api_keys(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(m.ApiKey)) or 0)


async def list_api_keys(db: Database) -> list[m.ApiKey]:
    async with db.read() as session:
        return list((await session.scalars(select(m.ApiKey).order_by(m.ApiKey.id))).all())
