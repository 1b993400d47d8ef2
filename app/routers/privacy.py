"""/v1/people, erasure, export and the audit log: personal data held lawfully and removable."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from app.audit import mark_audited
from app.auth import require
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.people import (
    AuditList,
    ConsentChange,
    ConsentState,
    ErasureReceipt,
    OrganisationExport,
    PersonCreate,
    PersonExport,
    PersonList,
    PersonRead,
    PersonUpdate,
)
from app.services import people, privacy
from app.services.keys import Principal, Role

router = APIRouter(prefix="/v1")

PersonId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Person id.")]
OrgId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Organisation id.")]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]

Manager = Annotated[Principal, Depends(require(Role.staff))]
Editor = Annotated[Principal, Depends(require(Role.staff, Role.member))]
Reader = Annotated[Principal, Depends(require(Role.staff, Role.organiser, Role.member))]


@router.post(
    "/people",
    tags=["people"],
    response_model=PersonRead,
    status_code=status.HTTP_201_CREATED,
    responses=errors(401, 403, 413, 415, 422),
)
async def create_person(
    ctx: Ctx, principal: Editor, body: PersonCreate, response: Response
) -> dict[str, Any]:
    """Register a delegate, expert or contact person with the legal basis it is held on and
    where the data came from. Staff records belong to the staff's cluster; a member key adds
    people of its own organisation."""
    created = await people.create_person(ctx, principal, body.model_dump(mode="json"))
    response.headers["Location"] = f"/v1/people/{created['id']}"
    return created


@router.get("/people", tags=["people"], response_model=PersonList, responses=errors(401, 403, 422))
async def list_people(
    ctx: Ctx,
    principal: Reader,
    organisation_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    consent_state: ConsentState | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """People the key may see, in id order, one page at a time. Contact details are null
    (`contact_hidden`) unless the key may see them; people who withdrew consent are listed
    only for admin and their cluster's staff."""
    items, total = await people.list_people(
        ctx,
        principal,
        organisation_id=organisation_id,
        consent_state=consent_state.value if consent_state else None,
        limit=limit,
        offset=offset,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/people/{person_id}",
    tags=["people"],
    response_model=PersonRead,
    responses=errors(401, 403, 404, 422),
)
async def get_person(ctx: Ctx, principal: Reader, person_id: PersonId) -> dict[str, Any]:
    """One person, with contact details only for admin, the person's cluster's staff, its own
    organisation, and organisations holding a contact grant (after an accepted meeting)."""
    return await people.get_person(ctx, principal, person_id)


@router.patch(
    "/people/{person_id}",
    tags=["people"],
    response_model=PersonRead,
    responses=errors(401, 403, 404, 413, 415, 422),
)
async def update_person(
    ctx: Ctx, principal: Editor, person_id: PersonId, body: PersonUpdate
) -> dict[str, Any]:
    """Change some fields of a person."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    return await people.update_person(ctx, principal, person_id, changes)


@router.post(
    "/people/{person_id}/consent",
    tags=["people"],
    response_model=PersonRead,
    responses=errors(401, 403, 404, 413, 415, 422),
)
async def change_consent(
    ctx: Ctx, principal: Editor, person_id: PersonId, body: ConsentChange
) -> dict[str, Any]:
    """Record that consent was given or withdrawn (and, optionally, a new legal basis or
    source), stamped with the time. Withdrawn consent takes the person out of every list and
    result at once; admin and the cluster's staff still see it, flagged, so they can erase it."""
    return await people.change_consent(
        ctx,
        principal,
        person_id,
        state=body.state.value,
        legal_basis=body.legal_basis.value if body.legal_basis else None,
        source=body.source,
    )


@router.delete(
    "/people/{person_id}",
    tags=["privacy"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 422),
)
async def erase_person(
    ctx: Ctx, principal: Manager, person_id: PersonId, request: Request
) -> Response:
    """Erase a person (GDPR art. 17): the record, its contact grants and every row referring
    to it go in one transaction. The audit log keeps an `erasure` entry with ids only."""
    await privacy.erase_person(ctx, principal, person_id, path=request.url.path)
    mark_audited(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/people/{person_id}/export",
    tags=["privacy"],
    response_model=PersonExport,
    responses=errors(401, 403, 404, 422),
)
async def export_person(
    ctx: Ctx, principal: Manager, person_id: PersonId, request: Request, response: Response
) -> dict[str, Any]:
    """Everything held about a person as one JSON document (GDPR art. 15 and 20): the record,
    its employer, contact grants, audit entries about it and rows of other features that
    refer to it. Each export is itself audited."""
    document = await privacy.export_person(ctx, principal, person_id, path=request.url.path)
    response.headers["Content-Disposition"] = f'attachment; filename="person-{person_id}.json"'
    return document


@router.post(
    "/organisations/{org_id}/erase",
    tags=["privacy"],
    response_model=ErasureReceipt,
    responses=errors(401, 403, 404, 409, 422),
)
async def erase_organisation(
    ctx: Ctx, principal: Manager, org_id: OrgId, request: Request
) -> dict[str, Any]:
    """Erase an organisation and everything derived from it, in one transaction: its record,
    external ids, embeddings, its people and their contact grants, member keys, collaborations
    left with one participant, and precomputed rankings naming it (as subject or candidate);
    then its vectors, catalogue entry and graph node. Unlike DELETE, the erasure is recorded
    in the audit log (ids only) and reaches the precomputed rankings."""
    receipt = await privacy.erase_organisation(ctx, principal, org_id, path=request.url.path)
    mark_audited(request)
    return receipt


@router.get(
    "/organisations/{org_id}/export",
    tags=["privacy"],
    response_model=OrganisationExport,
    responses=errors(401, 403, 404, 422),
)
async def export_organisation(
    ctx: Ctx, principal: Manager, org_id: OrgId, request: Request, response: Response
) -> dict[str, Any]:
    """Everything held about an organisation as one JSON document: record and external ids,
    collaborations, what is embedded (model and content hash; not the vectors, which the
    model recomputes from the texts), its people with their contact grants, member keys
    (never their secrets), audit entries and rows of other features that refer to it."""
    document = await privacy.export_organisation(ctx, principal, org_id, path=request.url.path)
    response.headers["Content-Disposition"] = f'attachment; filename="organisation-{org_id}.json"'
    return document


@router.get("/audit", tags=["privacy"], response_model=AuditList, responses=errors(401, 403, 422))
async def list_audit(
    ctx: Ctx,
    principal: Manager,
    action: Annotated[str | None, Query(pattern=r"^(write|export|erasure)$")] = None,
    subject_kind: Annotated[str | None, Query(pattern=r"^[a-z_]{1,40}$")] = None,
    subject_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The append-only audit log, newest first: every write, export and erasure with the key
    that made it. Entries hold ids only, never personal data. Admin reads all; staff read the
    entries about their cluster's records and those made by their cluster's keys."""
    items, total = await privacy.list_audit(
        ctx,
        principal,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        limit=limit,
        offset=offset,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}
