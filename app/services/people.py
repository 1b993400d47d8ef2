"""People use cases (delegates, experts, contact persons): create, read, list, update, consent,
and the rules for who sees a person and their contact details."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Forbidden
from app.errors import NotFound, Unprocessable
from app.services.context import ServiceContext
from app.services.keys import Principal, Role
from app.store import models as m
from app.store.models import utcnow

WITHDRAWN = "withdrawn"
PERSON_FIELDS = ("organisation_id", "full_name", "job_title", "email", "phone", "expertise")


# -- who sees what -------------------------------------------------------------------------
def may_manage(principal: Principal, person: m.Person) -> bool:
    """Admin and staff of the person's cluster: they see withdrawn records and contact
    details, and may erase and export."""
    if principal.is_admin:
        return True
    return (
        principal.role is Role.staff
        and person.tenant is not None
        and person.tenant == principal.tenant
    )


def may_read(principal: Principal, person: m.Person, *, granted: bool) -> bool:
    """Whether the caller may see the record at all (withdrawn consent hides it from everyone
    but its managers)."""
    if may_manage(principal, person):
        return True
    if person.consent_state == WITHDRAWN:
        return False
    if granted or _own_organisation(principal, person):
        return True
    if principal.role in (Role.staff, Role.organiser):
        return person.tenant is None or person.tenant == principal.tenant
    return False


def may_write(principal: Principal, person: m.Person) -> bool:
    return may_manage(principal, person) or (
        principal.role is Role.member and _own_organisation(principal, person)
    )


def sees_contact(principal: Principal, person: m.Person, *, granted: bool) -> bool:
    """Contact details go to managers, to the person's own organisation, and to organisations
    holding a contact grant (given when a meeting between them is accepted)."""
    return may_manage(principal, person) or granted or _own_organisation(principal, person)


def _own_organisation(principal: Principal, person: m.Person) -> bool:
    return principal.organisation_id is not None and (
        person.organisation_id == principal.organisation_id
    )


def listed_condition() -> ColumnElement[bool]:
    """SQL condition for people who may appear in any output other than their managers' views:
    every feature that shows people (events, exports to third parties) filters with this."""
    return m.Person.consent_state != WITHDRAWN


def _visible_condition(principal: Principal) -> ColumnElement[bool]:
    """:func:`may_read` as SQL, for lists."""
    person = m.Person
    if principal.is_admin:
        return true()
    manage: ColumnElement[bool] = false()
    if principal.role is Role.staff and principal.tenant:
        manage = person.tenant == principal.tenant
    scope: ColumnElement[bool] = false()
    if principal.role in (Role.staff, Role.organiser):
        scope = (
            or_(person.tenant.is_(None), person.tenant == principal.tenant)
            if principal.tenant
            else person.tenant.is_(None)
        )
    own: ColumnElement[bool] = false()
    granted: ColumnElement[bool] = false()
    if principal.organisation_id is not None:
        own = person.organisation_id == principal.organisation_id
        granted = exists().where(
            m.ContactGrant.person_id == person.id,
            m.ContactGrant.organisation_id == principal.organisation_id,
        )
    return or_(manage, and_(listed_condition(), or_(scope, own, granted)))


async def granted_ids(
    session: AsyncSession, principal: Principal, person_ids: Sequence[int]
) -> set[int]:
    """Which of these people the caller's organisation holds a contact grant for."""
    if principal.organisation_id is None or not person_ids:
        return set()
    rows = await session.scalars(
        select(m.ContactGrant.person_id).where(
            m.ContactGrant.organisation_id == principal.organisation_id,
            m.ContactGrant.person_id.in_(person_ids),
        )
    )
    return set(rows.all())


def person_view(principal: Principal, person: m.Person, *, granted: bool) -> dict[str, Any]:
    """The record as this caller may see it: contact fields null unless allowed."""
    shown = sees_contact(principal, person, granted=granted)
    return {
        "id": person.id,
        "organisation_id": person.organisation_id,
        "tenant": person.tenant,
        "full_name": person.full_name,
        "job_title": person.job_title,
        "email": person.email if shown else None,
        "phone": person.phone if shown else None,
        "contact_hidden": not shown,
        "expertise": list(person.expertise or []),
        "consent_state": person.consent_state,
        "legal_basis": person.legal_basis,
        "source": person.source,
        "consent_updated_at": person.consent_updated_at,
        "created_at": person.created_at,
        "updated_at": person.updated_at,
    }


# -- use cases ------------------------------------------------------------------------------
async def create_person(
    ctx: ServiceContext, principal: Principal, payload: dict[str, Any]
) -> dict[str, Any]:
    """Create a person. Staff records belong to the staff's cluster; admin and member records
    to the organisation's cluster. A member key may only add people of its own organisation."""
    now = utcnow()
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        org_id = payload.get("organisation_id")
        if principal.role is Role.member and org_id is None:
            org_id = principal.organisation_id
        org = await _employer(session, principal, org_id)
        tenant = principal.tenant if principal.role is Role.staff else None
        if tenant is None and org is not None:
            tenant = org.tenant
        row = m.Person(
            organisation_id=org_id,
            tenant=tenant,
            full_name=payload["full_name"],
            job_title=payload.get("job_title"),
            email=payload.get("email"),
            phone=payload.get("phone"),
            expertise=list(payload.get("expertise") or []),
            consent_state=str(payload.get("consent_state") or "pending"),
            legal_basis=str(payload["legal_basis"]),
            source=payload["source"],
            consent_updated_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        await session.flush()
        granted = bool(await granted_ids(session, principal, [row.id]))
        return person_view(principal, row, granted=granted)


async def get_person(ctx: ServiceContext, principal: Principal, person_id: int) -> dict[str, Any]:
    async with ctx.db.read() as session:
        row, granted = await _readable(session, principal, person_id)
        return person_view(principal, row, granted=granted)


async def list_people(
    ctx: ServiceContext,
    principal: Principal,
    *,
    organisation_id: int | None = None,
    consent_state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """People the caller may see, in id order; withdrawn ones only for their managers."""
    person = m.Person
    conditions: list[ColumnElement[bool]] = [_visible_condition(principal)]
    if organisation_id is not None:
        conditions.append(person.organisation_id == organisation_id)
    if consent_state is not None:
        conditions.append(person.consent_state == consent_state)
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(person).where(*conditions))
        rows = (
            await session.scalars(
                select(person).where(*conditions).order_by(person.id).limit(limit).offset(offset)
            )
        ).all()
        granted = await granted_ids(session, principal, [r.id for r in rows])
    items = [person_view(principal, r, granted=r.id in granted) for r in rows]
    return items, int(total or 0)


async def update_person(
    ctx: ServiceContext, principal: Principal, person_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply a partial update; moving a person to another organisation needs access to it."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        row, granted = await _writable(session, principal, person_id)
        if "organisation_id" in changes and changes["organisation_id"] != row.organisation_id:
            if principal.role is Role.member:
                raise Unprocessable("a member key may only hold people of its own organisation")
            await _employer(session, principal, changes["organisation_id"])
        for key in PERSON_FIELDS:
            if key in changes:
                value = changes[key]
                setattr(row, key, list(value or []) if key == "expertise" else value)
        row.updated_at = utcnow()
        await session.flush()
        return person_view(principal, row, granted=granted)


async def change_consent(
    ctx: ServiceContext,
    principal: Principal,
    person_id: int,
    *,
    state: str,
    legal_basis: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Record a consent change with its time; withdrawn hides the person at once."""
    now = utcnow()
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        row, granted = await _writable(session, principal, person_id)
        row.consent_state = state
        if legal_basis is not None:
            row.legal_basis = legal_basis
        if source is not None:
            row.source = source
        row.consent_updated_at = now
        row.updated_at = now
        await session.flush()
        return person_view(principal, row, granted=granted)


# -- helpers --------------------------------------------------------------------------------
async def load_managed_person(
    session: AsyncSession, principal: Principal, person_id: int
) -> m.Person:
    """The person, if the caller may erase or export it (404 if it may not see it, 403 if it
    sees it but does not manage it)."""
    row, _ = await _readable(session, principal, person_id)
    if not may_manage(principal, row):
        raise Forbidden(f"only admin and the staff of its cluster may do this to person {row.id}")
    return row


async def _readable(
    session: AsyncSession, principal: Principal, person_id: int
) -> tuple[m.Person, bool]:
    row = await session.get(m.Person, person_id)
    granted = row is not None and bool(await granted_ids(session, principal, [person_id]))
    if row is None or not may_read(principal, row, granted=granted):
        raise NotFound(f"person {person_id} does not exist")
    return row, granted


async def _writable(
    session: AsyncSession, principal: Principal, person_id: int
) -> tuple[m.Person, bool]:
    row, granted = await _readable(session, principal, person_id)
    if not may_write(principal, row):
        raise Forbidden(f"this key may read person {person_id} but not change it")
    return row, granted


async def _employer(
    session: AsyncSession, principal: Principal, org_id: int | None
) -> m.Organisation | None:
    """The organisation a person is attached to, if the caller may attach people to it."""
    if org_id is None:
        if principal.role is Role.member:
            raise Unprocessable("a member key may only hold people of its own organisation")
        return None
    org = await session.get(m.Organisation, org_id)
    if org is None or not _may_attach(principal, org):
        raise Unprocessable(f"organisation {org_id} does not exist")
    return org


def _may_attach(principal: Principal, org: m.Organisation) -> bool:
    if principal.is_admin:
        return True
    if principal.role is Role.member:
        return org.id == principal.organisation_id
    if principal.role is Role.staff:
        return org.tenant is None or org.tenant == principal.tenant
    return False
