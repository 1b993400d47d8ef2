"""GDPR use cases: the append-only audit log, erasure of a person or an organisation with
everything derived from it, and export of everything held about one."""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.auth import Forbidden, can_read_organisation
from app.errors import Conflict, NotFound
from app.services.context import ServiceContext
from app.services.derived import load_organisations
from app.services.keys import Principal, Role, forget_verified_keys
from app.services.organisations import delete_organisation_rows
from app.services.people import load_managed_person, person_view
from app.store import models as m
from app.store.database import Database
from app.store.grouping import GroupCommit
from app.store.models import Base, utcnow
from app.store.privacy_models import AuditEntry

log = logging.getLogger("multihelix")

# Exports are bounded so one request cannot build an unbounded document.
EXPORT_ROW_LIMIT = 10_000
# Column names never exported from other tables, whatever they hold.
_SECRET_MARKERS = ("secret", "password", "token")

EraseFromRuns = Callable[[AsyncSession, int], Awaitable[int]]


# -- audit log -------------------------------------------------------------------------------
def audit_entry(
    principal: Principal | None,
    *,
    action: str,
    method: str,
    path: str,
    status: int,
    subject_kind: str | None,
    subject_id: int | None,
    tenant: str | None,
    actor_role: str | None = None,
) -> AuditEntry:
    """An audit row: ids, kinds and codes only (never a name, e-mail or query string).
    ``actor_role`` names an actor without a key (the command line: ``cli``)."""
    actor_tenant = principal.tenant if principal is not None else None
    return AuditEntry(
        at=utcnow(),
        actor_key_id=principal.key_id if principal is not None else None,
        actor_role=principal.role.value if principal is not None else actor_role,
        actor_tenant=actor_tenant,
        action=action,
        method=method[:10],
        path=path[:300],
        status=status,
        subject_kind=subject_kind,
        subject_id=subject_id,
        tenant=tenant or actor_tenant,
    )


def _audit_entries(
    principal: Principal,
    subjects: list[tuple[str, int]],
    *,
    action: str,
    method: str,
    path: str,
    status: int,
    tenant: str | None,
) -> list[AuditEntry]:
    """One entry per (kind, id) subject of an export or erasure, in order."""
    return [
        audit_entry(
            principal,
            action=action,
            method=method,
            path=path,
            status=status,
            subject_kind=kind,
            subject_id=subject_id,
            tenant=tenant,
        )
        for kind, subject_id in subjects
    ]


async def record(db: Database, entry: AuditEntry) -> None:
    """Append one entry in its own transaction (the command line's writes)."""
    async with db.write_lock, db.sessions() as session, session.begin():
        session.add(entry)


async def append(ctx: ServiceContext, entry: AuditEntry) -> None:
    """Append one entry of an API write, committed when this returns; the entries of
    concurrent requests share one transaction (app/store/grouping.py)."""
    await ctx.group_commit("audit.append", _appends).submit(entry)


def _appends(ctx: ServiceContext) -> GroupCommit[AuditEntry, None, None]:
    async def add(session: AsyncSession, entries: Sequence[AuditEntry]) -> list[None]:
        session.add_all(entries)
        return [None] * len(entries)

    async def done(written: list[None]) -> list[None]:
        return written

    return GroupCommit(ctx.db, add, done)


async def person_tenant(db: Database, person_id: int) -> str | None:
    async with db.read() as session:
        tenant = await session.scalar(select(m.Person.tenant).where(m.Person.id == person_id))
    return tenant


async def key_tenant(db: Database, key_id: int) -> str | None:
    async with db.read() as session:
        tenant = await session.scalar(select(m.ApiKey.tenant).where(m.ApiKey.id == key_id))
    return tenant


async def list_audit(
    ctx: ServiceContext,
    principal: Principal,
    *,
    action: str | None = None,
    subject_kind: str | None = None,
    subject_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first. Admin reads every entry; staff the entries about their cluster's records
    and those made by their cluster's keys."""
    entry = AuditEntry
    conditions: list[ColumnElement[bool]] = []
    if not principal.is_admin:
        conditions.append(
            or_(entry.tenant == principal.tenant, entry.actor_tenant == principal.tenant)
        )
    if action is not None:
        conditions.append(entry.action == action)
    if subject_kind is not None:
        conditions.append(entry.subject_kind == subject_kind)
    if subject_id is not None:
        conditions.append(entry.subject_id == subject_id)
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(entry).where(*conditions))
        rows = (
            await session.scalars(
                select(entry)
                .where(*conditions)
                .order_by(entry.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
    return [_audit_dict(r) for r in rows], int(total or 0)


def _audit_dict(row: AuditEntry) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in AuditEntry.__table__.columns}


# -- erasure ---------------------------------------------------------------------------------
async def erase_person(
    ctx: ServiceContext, principal: Principal, person_id: int, *, path: str
) -> dict[str, Any]:
    """Remove a person, its contact grants and every row that refers to it, in one transaction
    with its audit entry."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        row = await load_managed_person(session, principal, person_id)
        tenant = row.tenant
        await forget_cached_responses(session, persons=[row], organisation=None)
        grants = await _delete_count(
            session, delete(m.ContactGrant).where(m.ContactGrant.person_id == person_id)
        )
        async with _blocked_is_conflict("person", person_id):
            await session.delete(row)
            await session.flush()
        (entry,) = _audit_entries(
            principal,
            [("person", person_id)],
            action="erasure",
            method="DELETE",
            path=path,
            status=204,
            tenant=tenant,
        )
        session.add(entry)
        await session.flush()
        return _receipt(entry, persons=1, grants=grants, collaborations=0, rankings=None)


async def erase_organisation(
    ctx: ServiceContext, principal: Principal, org_id: int, *, path: str
) -> dict[str, Any]:
    """Remove an organisation and everything derived from it, in one transaction: its rows
    (sectors, clusters, external ids, embeddings, links, member keys, by cascade), its people
    and their contact grants, grants it holds, collaborations left with one participant, and
    every precomputed ranking naming it; then its vectors, catalogue entry and graph node.
    One audit entry per erased subject records it without personal data."""
    erase_from_runs = _ranking_eraser()
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        org = await _organisation_for_staff(session, principal, org_id, "erase")
        tenant = org.tenant
        persons = list(
            (
                await session.scalars(select(m.Person).where(m.Person.organisation_id == org_id))
            ).all()
        )
        person_ids = [p.id for p in persons]
        await forget_cached_responses(session, persons=persons, organisation=org)
        async with _blocked_is_conflict("organisation", org_id):
            grants = await _delete_count(
                session,
                delete(m.ContactGrant).where(
                    or_(
                        m.ContactGrant.organisation_id == org_id,
                        m.ContactGrant.person_id.in_(person_ids),
                    )
                ),
            )
            await session.execute(delete(m.Person).where(m.Person.organisation_id == org_id))
            rankings = None if erase_from_runs is None else await erase_from_runs(session, org_id)
            orphaned = await delete_organisation_rows(session, org)
        # One entry per erased subject; the organisation's is the receipt's.
        entry, *_ = entries = _audit_entries(
            principal,
            [("organisation", org_id)] + [("person", i) for i in person_ids],
            action="erasure",
            method="POST",
            path=path,
            status=200,
            tenant=tenant,
        )
        session.add_all(entries)
        await session.flush()
        receipt = _receipt(
            entry,
            persons=len(person_ids),
            grants=grants,
            collaborations=len(orphaned),
            rankings=rankings,
        )
    await ctx.derived.catch_up(ctx.db)
    forget_verified_keys(ctx.db)  # the organisation's member keys went with it
    return receipt


async def forget_cached_responses(
    session: AsyncSession, *, persons: list[m.Person], organisation: m.Organisation | None
) -> int:
    """Delete kept responses (the Idempotency-Key replay store) that are about the erased
    subjects: requests on their paths, requests that created them, and responses containing
    their name or e-mail. A replay of such a request then runs again instead of handing back
    erased data."""
    table = _response_cache()
    if table is None:
        return 0
    subjects: list[tuple[str, str, int]] = [("people", "persons", p.id) for p in persons]
    needles = [
        value.encode()
        for p in persons
        for value in (p.email, p.phone, p.full_name)
        if value and len(value) >= 3
    ]
    if organisation is not None:
        subjects.append(("organisations", "organisations", organisation.id))
        needles.append(organisation.name.encode())
    paths = re.compile(
        "|".join(
            rf"^/v1/{collection}/{subject_id}(?:/|$)" for collection, _, subject_id in subjects
        )
    )
    created = {(table_name, subject_id) for _, table_name, subject_id in subjects}
    doomed = []
    result = await session.stream(
        select(
            table.c.scope, table.c.key, table.c.path, table.c.created_rows, table.c.response_body
        ).execution_options(yield_per=200)
    )
    async for scope, key, path, created_rows, body in result:
        rows = {(str(t), i) for t, i in (created_rows or []) if isinstance(i, int)}
        blob = bytes(body or b"")
        if paths.match(path or "") or rows & created or any(needle in blob for needle in needles):
            doomed.append((scope, key))
    for scope, key in doomed:
        await session.execute(delete(table).where(table.c.scope == scope, table.c.key == key))
    return len(doomed)


def _response_cache() -> Table | None:
    """The replay store of app.limits, found through the metadata so erasure works with or
    without it installed."""
    _import_all_models()
    table = Base.metadata.tables.get("idempotency_records")
    needed = {"scope", "key", "path", "created_rows", "response_body"}
    return table if table is not None and needed <= set(table.c.keys()) else None


RANKING_MODULE = "app.services.rerank"


def _ranking_eraser() -> EraseFromRuns | None:
    """``erase_from_runs(session, organisation_id) -> int`` of the re-ranking store, when that
    store is installed; looked up at call time so the two features can land in any order."""
    try:
        module = importlib.import_module(RANKING_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != RANKING_MODULE:
            raise
        return None
    eraser: EraseFromRuns | None = getattr(module, "erase_from_runs", None)
    return eraser


def _receipt(
    entry: AuditEntry, *, persons: int, grants: int, collaborations: int, rankings: int | None
) -> dict[str, Any]:
    return {
        "subject_kind": entry.subject_kind,
        "subject_id": entry.subject_id,
        "erased_at": entry.at,
        "audit_id": entry.id,
        "persons_erased": persons,
        "contact_grants_removed": grants,
        "collaborations_removed": collaborations,
        "rankings_removed": rankings,
    }


async def _delete_count(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


@asynccontextmanager
async def _blocked_is_conflict(kind: str, subject_id: int) -> AsyncIterator[None]:
    """A foreign key that forbids the delete (a table added later that refers to the subject
    without ON DELETE CASCADE / SET NULL) is a 409, and the transaction rolls back whole."""
    try:
        yield
    except IntegrityError:
        log.exception("erasure of %s %d blocked by a foreign key", kind, subject_id)
        raise Conflict(
            f"{kind} {subject_id} is still referenced by a record that cannot be removed "
            "automatically; nothing was erased"
        ) from None


async def _organisation_for_staff(
    session: AsyncSession, principal: Principal, org_id: int, action: str
) -> m.Organisation:
    """The organisation, if the caller may ``action`` (erase, export) it: 404 when it is
    missing or out of sight, 403 for a key that sees it but is not its cluster's staff."""
    org = await session.get(m.Organisation, org_id)
    if org is None or not _may_read_organisation(principal, org):
        raise NotFound(f"organisation {org_id} does not exist")
    if not (principal.is_admin or _owning_staff(principal, org.tenant)):
        raise Forbidden(
            f"only admin and the staff of its cluster may {action} organisation {org_id}"
        )
    return org


def _may_read_organisation(principal: Principal, org: m.Organisation) -> bool:
    return can_read_organisation(principal, {"id": org.id, "tenant": org.tenant})


def _owning_staff(principal: Principal, tenant: str | None) -> bool:
    return principal.role is Role.staff and tenant is not None and tenant == principal.tenant


# -- export ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _SubjectKind:
    """What an export covers for one kind of subject: the table its ids are in, the contact
    grant column that names it, and the tables whose rows the export shows in sections of
    its own (every other row referring to it lands in ``other_records``)."""

    table: str
    grant_column: InstrumentedAttribute[int]
    shown: frozenset[str]


_EXPORT_KINDS = {
    "organisation": _SubjectKind(
        "organisations",
        m.ContactGrant.organisation_id,
        frozenset(
            {
                "organisation_sectors",
                "organisation_clusters",
                "external_ids",
                "collaboration_participants",
                "embeddings",
                "api_keys",
                "persons",
                "contact_grants",
            }
        ),
    ),
    "person": _SubjectKind("persons", m.ContactGrant.person_id, frozenset({"contact_grants"})),
}


@dataclass(slots=True)
class _Found:
    """The subject an export found (after its access checks), with the people it covers too
    and the sections only its kind has."""

    kind: str
    subject_id: int
    tenant: str | None
    person_ids: list[int]
    sections: dict[str, Any]


async def export_person(
    ctx: ServiceContext, principal: Principal, person_id: int, *, path: str
) -> dict[str, Any]:
    """Everything held about a person, read in the transaction that appends its audit entry."""

    async def find(session: AsyncSession) -> _Found:
        row = await load_managed_person(session, principal, person_id)
        employer = None
        if row.organisation_id is not None:
            name = await session.scalar(
                select(m.Organisation.name).where(m.Organisation.id == row.organisation_id)
            )
            employer = {"id": row.organisation_id, "name": name}
        sections = {
            "person": person_view(principal, row, granted=False),
            "organisation": employer,
        }
        return _Found("person", person_id, row.tenant, [], sections)

    return await _export(ctx, principal, find, path=path)


async def export_organisation(
    ctx: ServiceContext, principal: Principal, org_id: int, *, path: str
) -> dict[str, Any]:
    """Everything held about an organisation and its people, with an audit entry."""

    async def find(session: AsyncSession) -> _Found:
        # Inside the writer lock nothing changes between this read and the transaction's.
        records = await load_organisations(ctx.db, [org_id])
        org_row = await _organisation_for_staff(session, principal, org_id, "export")
        persons = (
            await session.scalars(
                select(m.Person).where(m.Person.organisation_id == org_id).order_by(m.Person.id)
            )
        ).all()
        sections = {
            "organisation": records[0],
            "collaborations": await _collaborations_of(session, org_id),
            "embeddings": await _embedding_meta(session, org_id),
            # Own organisation: contacts of its own people are shown (see people rules).
            "persons": [person_view(principal, p, granted=False) for p in persons],
            "api_keys": await _api_keys_of(session, org_id),
        }
        return _Found("organisation", org_id, org_row.tenant, [p.id for p in persons], sections)

    return await _export(ctx, principal, find, path=path)


async def _export(
    ctx: ServiceContext,
    principal: Principal,
    find: Callable[[AsyncSession], Awaitable[_Found]],
    *,
    path: str,
) -> dict[str, Any]:
    """One export, whatever its subject: under the writer lock and in one transaction, find the
    subject (``find`` checks access and reads what only its kind has), add the sections every
    export has about the subject and the people it covers (contact grants, audit entries,
    rows of other tables), and append the export's own audit entry."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        found = await find(session)
        subjects = [(found.kind, found.subject_id)] + [("person", i) for i in found.person_ids]
        document = {
            "kind": found.kind,
            "exported_at": utcnow(),
            **found.sections,
            **await _shared_sections(session, subjects),
        }
        session.add_all(
            _audit_entries(
                principal,
                subjects[:1],
                action="export",
                method="GET",
                path=path,
                status=200,
                tenant=found.tenant,
            )
        )
    return document


async def _shared_sections(
    session: AsyncSession, subjects: list[tuple[str, int]]
) -> dict[str, Any]:
    """Contact grants on the subjects, audit entries about them, and other tables' rows that
    refer to them (keyed by table; ``persons:TABLE`` for the people an export covers besides
    its subject)."""
    ids_by_kind: dict[str, list[int]] = {}
    for kind, subject_id in subjects:
        ids_by_kind.setdefault(kind, []).append(subject_id)
    grants_on = or_(
        *(_EXPORT_KINDS[kind].grant_column.in_(ids) for kind, ids in ids_by_kind.items())
    )
    other_records: dict[str, list[dict[str, Any]]] = {}
    for kind, ids in ids_by_kind.items():
        covers = _EXPORT_KINDS[kind]
        prefix = "" if kind == subjects[0][0] else f"{covers.table}:"
        rows = await _referring_rows(session, covers.table, ids, covers.shown)
        other_records.update({prefix + table: found for table, found in rows.items()})
    return {
        "contact_grants": await _grants(session, grants_on),
        "audit": await _audit_about(session, ids_by_kind),
        "other_records": other_records,
    }


async def _collaborations_of(session: AsyncSession, org_id: int) -> list[dict[str, Any]]:
    part = m.CollaborationParticipant
    own = (
        await session.execute(
            select(m.Collaboration, part.role)
            .join(part, part.collaboration_id == m.Collaboration.id)
            .where(part.organisation_id == org_id)
            .order_by(m.Collaboration.id)
            .limit(EXPORT_ROW_LIMIT)
        )
    ).all()
    out = []
    for collab, role in own:
        out.append(
            {
                "id": collab.id,
                "kind": collab.kind,
                "year": collab.year,
                "weight": collab.weight,
                "reference": collab.reference,
                "title": collab.title,
                "role": role,
                "partner_ids": [
                    p.organisation_id for p in collab.participants if p.organisation_id != org_id
                ],
            }
        )
    return out


async def _embedding_meta(session: AsyncSession, org_id: int) -> list[dict[str, Any]]:
    emb = m.Embedding
    rows = (
        await session.execute(
            select(emb.field, emb.position, emb.model, emb.content_hash, func.length(emb.vector))
            .where(emb.organisation_id == org_id)
            .order_by(emb.field, emb.position)
        )
    ).all()
    # float32 vectors: four bytes per dimension.
    return [
        {
            "field": f,
            "position": p,
            "model": model,
            "content_hash": h,
            "dimensions": int(n or 0) // 4,
        }
        for f, p, model, h, n in rows
    ]


async def _grants(session: AsyncSession, condition: ColumnElement[bool]) -> list[dict[str, Any]]:
    grant = m.ContactGrant
    rows = (
        await session.scalars(
            select(grant)
            .where(condition)
            .order_by(grant.person_id, grant.organisation_id)
            .limit(EXPORT_ROW_LIMIT)
        )
    ).all()
    return [
        {
            "person_id": g.person_id,
            "organisation_id": g.organisation_id,
            "reason": g.reason,
            "created_at": g.created_at,
        }
        for g in rows
    ]


async def _api_keys_of(session: AsyncSession, org_id: int) -> list[dict[str, Any]]:
    rows = (
        await session.scalars(
            select(m.ApiKey).where(m.ApiKey.organisation_id == org_id).order_by(m.ApiKey.id)
        )
    ).all()
    return [
        {
            "id": k.id,
            "prefix": k.prefix,
            "role": k.role,
            "label": k.label,
            "created_at": k.created_at,
            "expires_at": k.expires_at,
            "revoked_at": k.revoked_at,
        }
        for k in rows
    ]


async def _audit_about(
    session: AsyncSession, ids_by_kind: dict[str, list[int]]
) -> list[dict[str, Any]]:
    entry = AuditEntry
    condition = or_(
        *(
            and_(entry.subject_kind == kind, entry.subject_id.in_(ids))
            for kind, ids in ids_by_kind.items()
        )
    )
    rows = (
        await session.scalars(
            select(entry).where(condition).order_by(entry.id.desc()).limit(EXPORT_ROW_LIMIT)
        )
    ).all()
    return [_audit_dict(r) for r in rows]


# -- rows of other tables that refer to a subject ----------------------------------------------
def referring_columns(target_table: str) -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) with a foreign key to ``target_table``.id, over all store models,
    including tables other features add later."""
    _import_all_models()
    found = []
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == target_table and fk.column.name == "id":
                found.append((table, fk.parent))
    return found


@lru_cache(maxsize=1)
def _import_all_models() -> None:
    store = Path(__file__).resolve().parents[1] / "store"
    for module in sorted(store.glob("*_models.py")):
        importlib.import_module(f"app.store.{module.stem}")


async def _referring_rows(
    session: AsyncSession, target_table: str, ids: list[int], skip: Collection[str]
) -> dict[str, list[dict[str, Any]]]:
    if not ids:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for table, column in referring_columns(target_table):
        if table.name in skip:
            continue
        rows = (
            (await session.execute(select(table).where(column.in_(ids)).limit(EXPORT_ROW_LIMIT)))
            .mappings()
            .all()
        )
        if rows:
            out.setdefault(table.name, []).extend(dict(_exportable(row)) for row in rows)
    return out


def _exportable(row: Any) -> Iterator[tuple[str, Any]]:
    for key, value in row.items():
        if any(marker in key.lower() for marker in _SECRET_MARKERS):
            continue
        if isinstance(value, bytes | bytearray | memoryview):
            yield key, f"<{len(bytes(value))} bytes>"
        elif isinstance(value, datetime | date):
            yield key, value.isoformat()
        else:
            yield key, value
