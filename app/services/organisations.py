"""Organisation use cases: create, read, list, update, delete, with embedding on every change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, NotFound
from app.services.changes import record_changes
from app.services.context import ServiceContext
from app.services.derived import EmbeddingItem, embedding_items, load_organisations
from app.services.keys import forget_verified_keys
from app.store import models as m
from app.store.grouping import GroupCommit
from app.store.models import utcnow

ORG_FIELDS = (
    "name",
    "kind",
    "sectors",
    "country",
    "region",
    "clusters",
    "description",
    "offers",
    "seeks",
    "keywords",
    "maturity",
    "website",
    "external_ids",
)


async def get_organisation(ctx: ServiceContext, org_id: int) -> dict[str, Any]:
    found = await load_organisations(ctx.db, [org_id])
    if not found:
        raise NotFound(f"organisation {org_id} does not exist")
    return found[0]


async def get_by_external_id(ctx: ServiceContext, scheme: str, value: str) -> dict[str, Any]:
    async with ctx.db.read() as session:
        org_id = await session.scalar(
            select(m.ExternalId.organisation_id).where(
                m.ExternalId.scheme == scheme, m.ExternalId.value == value
            )
        )
    if org_id is None:
        raise NotFound(f"no organisation has {scheme} {value!r}")
    return await get_organisation(ctx, org_id)


async def list_organisations(
    ctx: ServiceContext,
    *,
    kinds: Sequence[str] = (),
    sectors: Sequence[str] = (),
    countries: Sequence[str] = (),
    clusters: Sequence[str] = (),
    name_contains: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenants: tuple[str, ...] | None = None,
    only_id: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """``tenants``: only records of these tenants plus network-wide ones (None = all)."""
    org = m.Organisation
    conditions: list[Any] = []
    if tenants is not None:
        conditions.append(or_(org.tenant.in_(tenants), org.tenant.is_(None)))
    if only_id is not None:
        conditions.append(org.id == only_id)
    if kinds:
        conditions.append(org.kind.in_(kinds))
    if countries:
        conditions.append(org.country.in_(countries))
    if sectors:
        conditions.append(
            exists().where(
                m.OrganisationSector.organisation_id == org.id,
                m.OrganisationSector.sector.in_(sectors),
            )
        )
    if clusters:
        conditions.append(
            exists().where(
                m.OrganisationCluster.organisation_id == org.id,
                m.OrganisationCluster.cluster.in_(clusters),
            )
        )
    if name_contains:
        pattern = "%" + name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(func.lower(org.name).like(pattern.lower() + "%", escape="\\"))
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(org).where(*conditions))
        ids = (
            await session.scalars(
                select(org.id).where(*conditions).order_by(org.id).limit(limit).offset(offset)
            )
        ).all()
    items = await load_organisations(ctx.db, list(ids)) if ids else []
    return items, int(total or 0)


@dataclass(frozen=True, slots=True)
class _NewOrganisations:
    """One create request's organisations, embedded and ready to insert."""

    payloads: Sequence[dict[str, Any]]
    items: list[list[EmbeddingItem]]
    vectors: dict[EmbeddingItem, np.ndarray]
    is_demo: bool
    tenant: str | None
    at: datetime


async def create_organisations(
    ctx: ServiceContext,
    payloads: Sequence[dict[str, Any]],
    *,
    is_demo: bool = False,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Create organisations atomically (all or none), embedding their texts first.

    Concurrent calls commit together (app/store/grouping.py): one transaction, one catch-up
    and one read-back for every request waiting, each still all or none on its own."""
    _check_external_id_duplicates(payloads)
    items = [embedding_items(p, ctx.encoder_name) for p in payloads]
    vectors = await ctx.embed([it for group in items for it in group])
    new = _NewOrganisations(payloads, items, vectors, is_demo, tenant, utcnow())
    return await ctx.group_commit("organisations.create", _creates).submit(new)


def _creates(
    ctx: ServiceContext,
) -> GroupCommit[_NewOrganisations, list[int], list[dict[str, Any]]]:
    """The group commit of creates: every waiting request's rows in one transaction, then one
    catch-up of the state and one read-back of all of them."""
    model = ctx.encoder_name

    async def insert(session: AsyncSession, batch: Sequence[_NewOrganisations]) -> list[list[int]]:
        rows = []
        for new in batch:
            for payload, group in zip(new.payloads, new.items, strict=True):
                row = m.Organisation(
                    created_at=new.at, updated_at=new.at, is_demo=new.is_demo, tenant=new.tenant
                )
                _assign(row, payload)
                session.add(row)
                rows.append((row, group, new.vectors))
        await _flush_or_conflict(session)
        for row, group, vectors in rows:
            _write_embeddings(session, row.id, group, vectors, model)
        await _flush_or_conflict(session)
        ids = iter([row.id for row, _, _ in rows])
        written = [[next(ids) for _ in new.payloads] for new in batch]
        await record_changes(session, organisations=[i for one in written for i in one])
        return written

    async def read_back(written: list[list[int]]) -> list[list[dict[str, Any]]]:
        await ctx.derived.catch_up(ctx.db)
        found = {
            org["id"]: org
            for org in await load_organisations(ctx.db, [i for one in written for i in one])
        }
        return [[found[i] for i in one] for one in written]

    return GroupCommit(ctx.db, insert, read_back, size=lambda new: len(new.payloads))


async def update_organisation(
    ctx: ServiceContext, org_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply a partial update; only texts whose content hash changed are embedded again."""
    current = await get_organisation(ctx, org_id)
    merged = {**current, **changes}
    if "external_ids" in changes and changes["external_ids"] is None:
        merged["external_ids"] = {}
    for key in ("clusters", "offers", "seeks", "keywords"):
        if merged.get(key) is None:
            merged[key] = []
    items = embedding_items(merged, ctx.encoder_name)
    stored = await _stored_embeddings(ctx, org_id)
    fresh = [
        it for it in items if stored.get((it.field, it.position), (None,))[0] != it.content_hash
    ]
    vectors = await ctx.embed(fresh)
    for it in items:
        if it not in vectors:
            vectors[it] = stored[(it.field, it.position)][1]
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        row = await session.get(m.Organisation, org_id)
        if row is None:
            raise NotFound(f"organisation {org_id} does not exist")
        _assign(row, {k: merged[k] for k in ORG_FIELDS})
        row.updated_at = utcnow()
        await _flush_or_conflict(session)
        await session.execute(delete(m.Embedding).where(m.Embedding.organisation_id == org_id))
        _write_embeddings(session, org_id, items, vectors, ctx.encoder_name)
        await _flush_or_conflict(session)
        await record_changes(session, organisations=[org_id])
    await ctx.derived.catch_up(ctx.db)
    return await get_organisation(ctx, org_id)


async def delete_organisation(ctx: ServiceContext, org_id: int) -> None:
    """Delete an organisation, its links and vectors; collaborations left with fewer than two
    participants go too."""
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        row = await session.get(m.Organisation, org_id)
        if row is None:
            raise NotFound(f"organisation {org_id} does not exist")
        await delete_organisation_rows(session, row)
    await ctx.derived.catch_up(ctx.db)
    forget_verified_keys(ctx.db)  # the organisation's member keys went with it


async def delete_organisation_rows(session: AsyncSession, org: m.Organisation) -> list[int]:
    """The store part of deleting an organisation, inside the caller's transaction (erasure
    uses it too), with its change-feed entries: the organisation and every collaboration it
    took part in. Returns the collaborations removed for having fewer than two participants
    left; the caller catches the derived state up after the commit."""
    collab_ids = (
        await session.scalars(
            select(m.CollaborationParticipant.collaboration_id).where(
                m.CollaborationParticipant.organisation_id == org.id
            )
        )
    ).all()
    await session.delete(org)
    await session.flush()
    await record_changes(session, organisations=[org.id], collaborations=collab_ids)
    if not collab_ids:
        return []
    counts = await session.execute(
        select(m.Collaboration.id, func.count(m.CollaborationParticipant.organisation_id))
        .outerjoin(m.CollaborationParticipant)
        .where(m.Collaboration.id.in_(collab_ids))
        .group_by(m.Collaboration.id)
    )
    orphaned = [cid for cid, n in counts.all() if n < 2]
    if orphaned:
        await session.execute(delete(m.Collaboration).where(m.Collaboration.id.in_(orphaned)))
    return orphaned


def _check_external_id_duplicates(payloads: Sequence[dict[str, Any]]) -> None:
    seen: set[tuple[str, str]] = set()
    for payload in payloads:
        for scheme, value in (payload.get("external_ids") or {}).items():
            if (scheme, value) in seen:
                raise Conflict(f"external id {scheme} {value!r} appears twice in the request")
            seen.add((scheme, value))


def _assign(row: m.Organisation, data: dict[str, Any]) -> None:
    for key in ("name", "kind", "country", "region", "description", "maturity", "website"):
        if key in data:
            setattr(row, key, data[key])
    for key in ("offers", "seeks", "keywords"):
        if key in data:
            setattr(row, key, list(data[key] or []))
    if "sectors" in data:
        row.sectors = [
            m.OrganisationSector(sector=str(s), position=i) for i, s in enumerate(data["sectors"])
        ]
    if "clusters" in data:
        row.clusters = [
            m.OrganisationCluster(cluster=c, position=i)
            for i, c in enumerate(data["clusters"] or [])
        ]
    if "external_ids" in data:
        row.external_ids = [
            m.ExternalId(scheme=k, value=v) for k, v in (data["external_ids"] or {}).items()
        ]


def _write_embeddings(
    session: AsyncSession,
    org_id: int,
    items: Sequence[EmbeddingItem],
    vectors: dict[EmbeddingItem, np.ndarray],
    model: str,
) -> None:
    for it in items:
        session.add(
            m.Embedding(
                organisation_id=org_id,
                field=it.field,
                position=it.position,
                model=model,
                content_hash=it.content_hash,
                vector=np.ascontiguousarray(vectors[it], dtype=np.float32).tobytes(),
            )
        )


async def _stored_embeddings(
    ctx: ServiceContext, org_id: int
) -> dict[tuple[str, int], tuple[str, np.ndarray]]:
    async with ctx.db.read() as session:
        rows = (
            await session.execute(
                select(
                    m.Embedding.field,
                    m.Embedding.position,
                    m.Embedding.content_hash,
                    m.Embedding.vector,
                ).where(
                    m.Embedding.organisation_id == org_id, m.Embedding.model == ctx.encoder_name
                )
            )
        ).all()
    return {(f, p): (h, np.frombuffer(v, dtype=np.float32)) for f, p, h, v in rows}


async def _flush_or_conflict(session: AsyncSession) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:
        message = str(exc.orig).lower()
        if "external" in message or "scheme" in message or "unique" in message:
            raise Conflict(
                "an external id in this request already belongs to another organisation"
            ) from None
        raise
