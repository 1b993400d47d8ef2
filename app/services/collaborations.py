"""Collaboration use cases: record who worked with whom, list, delete."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, or_, select

from app.errors import NotFound, Unprocessable
from app.services.changes import record_changes
from app.services.context import ServiceContext
from app.store import models as m


async def create_collaborations(
    ctx: ServiceContext,
    payloads: Sequence[dict[str, Any]],
    *,
    is_demo: bool = False,
    tenants: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Create collaborations atomically; every participant must exist (and be visible to the
    caller: ``tenants`` as in :func:`visible_condition`)."""
    wanted = {p["organisation_id"] for payload in payloads for p in payload["participants"]}
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        known = set(
            (
                await session.scalars(
                    select(m.Organisation.id).where(
                        m.Organisation.id.in_(wanted), *_org_visible(tenants)
                    )
                )
            ).all()
        )
        missing = sorted(wanted - known)
        if missing:
            shown = ", ".join(map(str, missing[:20]))
            raise Unprocessable(f"participants do not exist: organisation ids {shown}")
        rows = []
        for payload in payloads:
            row = m.Collaboration(
                kind=str(payload["kind"]),
                year=payload.get("year"),
                weight=float(payload.get("weight", 1.0)),
                reference=payload.get("reference"),
                title=payload.get("title"),
                is_demo=is_demo,
            )
            row.participants = [
                m.CollaborationParticipant(
                    organisation_id=p["organisation_id"],
                    role=str(p.get("role", "participant")),
                    position=i,
                )
                for i, p in enumerate(payload["participants"])
            ]
            session.add(row)
            rows.append(row)
        await session.flush()
        ids = [row.id for row in rows]
        await record_changes(session, collaborations=ids)
    await ctx.derived.catch_up(ctx.db)
    return await get_collaborations(ctx, ids)


async def get_collaborations(ctx: ServiceContext, ids: Sequence[int]) -> list[dict[str, Any]]:
    collab_t = m.Collaboration.__table__
    part = m.CollaborationParticipant
    async with ctx.db.read() as session:
        rows = (
            (await session.execute(select(collab_t).where(collab_t.c.id.in_(ids)))).mappings().all()
        )
        parts = (
            await session.execute(
                select(part.collaboration_id, part.organisation_id, part.role, m.Organisation.name)
                .join(m.Organisation, m.Organisation.id == part.organisation_id)
                .where(part.collaboration_id.in_(ids))
                .order_by(part.collaboration_id, part.position)
            )
        ).all()
    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for cid, oid, role, name in parts:
        members[cid].append({"organisation_id": oid, "role": role, "name": name})
    by_id = {r["id"]: {**r, "participants": members.get(r["id"], [])} for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def _org_visible(tenants: tuple[str, ...] | None) -> list[Any]:
    """Conditions on Organisation for records of these tenants or network-wide (None = all)."""
    if tenants is None:
        return []
    return [or_(m.Organisation.tenant.in_(tenants), m.Organisation.tenant.is_(None))]


def _collab_visible(tenants: tuple[str, ...] | None) -> list[Any]:
    """A collaboration is visible when one of its participants is."""
    if tenants is None:
        return []
    part = m.CollaborationParticipant
    return [
        m.Collaboration.id.in_(
            select(part.collaboration_id)
            .join(m.Organisation, m.Organisation.id == part.organisation_id)
            .where(*_org_visible(tenants))
        )
    ]


async def get_collaboration(
    ctx: ServiceContext, collab_id: int, *, tenants: tuple[str, ...] | None = None
) -> dict[str, Any]:
    if tenants is not None:
        async with ctx.db.read() as session:
            visible = await session.scalar(
                select(m.Collaboration.id).where(
                    m.Collaboration.id == collab_id, *_collab_visible(tenants)
                )
            )
        if visible is None:
            raise NotFound(f"collaboration {collab_id} does not exist")
    found = await get_collaborations(ctx, [collab_id])
    if not found:
        raise NotFound(f"collaboration {collab_id} does not exist")
    return found[0]


async def list_collaborations(
    ctx: ServiceContext,
    *,
    organisation_id: int | None = None,
    kinds: Sequence[str] = (),
    reference: str | None = None,
    limit: int = 50,
    offset: int = 0,
    tenants: tuple[str, ...] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    collab = m.Collaboration
    conditions: list[Any] = _collab_visible(tenants)
    if organisation_id is not None:
        conditions.append(
            collab.id.in_(
                select(m.CollaborationParticipant.collaboration_id).where(
                    m.CollaborationParticipant.organisation_id == organisation_id
                )
            )
        )
    if kinds:
        conditions.append(collab.kind.in_(kinds))
    if reference:
        conditions.append(collab.reference == reference)
    async with ctx.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(collab).where(*conditions))
        ids = (
            await session.scalars(
                select(collab.id)
                .where(*conditions)
                .order_by(collab.year.desc().nulls_last(), collab.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
    return await get_collaborations(ctx, list(ids)), int(total or 0)


async def delete_collaboration(
    ctx: ServiceContext, collab_id: int, *, tenants: tuple[str, ...] | None = None
) -> None:
    await get_collaboration(ctx, collab_id, tenants=tenants)
    async with ctx.db.write_lock, ctx.db.sessions() as session, session.begin():
        result = await session.execute(
            delete(m.Collaboration).where(m.Collaboration.id == collab_id)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound(f"collaboration {collab_id} does not exist")
        await record_changes(session, collaborations=[collab_id])
    await ctx.derived.catch_up(ctx.db)
