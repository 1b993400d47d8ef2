"""The audit log: every write is recorded with its key and ids only, the log cannot be changed
(not even with SQL), and staff read their cluster's entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from starlette.middleware import Middleware

from app.audit import AuditMiddleware
from app.main import create_app
from app.services.keys import create_api_key
from app.store.privacy_models import AuditEntry
from embeddings import Encoder
from tests.api.helpers import create_org, org_body
from tests.conftest import Service, make_settings


@asynccontextmanager
async def audited_service(
    store_url: str, tmp_path: Path, encoder: Encoder
) -> AsyncIterator[Service]:
    """The app with the audit middleware innermost (next to the routes), where app/main.py
    registers it; added here as well while main.py does not yet."""
    app = create_app(make_settings(store_url, tmp_path), encoder=encoder)
    if not any(m.cls is AuditMiddleware for m in app.user_middleware):
        app.user_middleware.append(Middleware(AuditMiddleware))
    async with LifespanManager(app, startup_timeout=120) as manager:
        yield Service(app, manager.app)


@pytest.fixture
async def service(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[Service]:
    async with audited_service(store_url, tmp_path, hashing_encoder) as running:
        yield running


async def keyed_client(
    service: Service, role: str, *, tenant: str | None = None, organisation_id: int | None = None
) -> tuple[httpx.AsyncClient, int]:
    """A client plus the id of its key (what the audit log names)."""
    created = await create_api_key(
        service.ctx.db, role=role, tenant=tenant, organisation_id=organisation_id
    )
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi),
        base_url="http://test",
        headers={"Authorization": f"Bearer {created.key}"},
    )
    return http, created.id


async def audit_rows(service: Service) -> list[dict[str, Any]]:
    async with service.ctx.db.read() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    return [{c.name: getattr(r, c.name) for c in AuditEntry.__table__.columns} for r in rows]


PERSON = {
    "full_name": "Laia Serra",
    "email": "laia.serra@example.org",
    "phone": "+34 600 111 222",
    "legal_basis": "consent",
    "consent_state": "given",
    "source": "BioMatch 2025 registration",
}


async def test_writes_are_audited_with_the_key_and_ids_only(service: Service) -> None:
    staff, key_id = await keyed_client(service, "staff", tenant="biocat")
    async with staff:
        org = await create_org(staff, "PathoVision")
        created = await staff.post("/v1/people", json={**PERSON, "organisation_id": org["id"]})
        assert created.status_code == 201
        person_id = created.json()["id"]
        patched = await staff.patch(
            f"/v1/people/{person_id}?note=laia.serra@example.org",
            json={"email": "laia@pathovision.example"},
        )
        assert patched.status_code == 200
        bad = await staff.patch(f"/v1/people/{person_id}", json={"email": "not an address"})
        assert bad.status_code == 422
        assert (await staff.get(f"/v1/people/{person_id}")).status_code == 200

    rows = await audit_rows(service)
    summary = [(r["action"], r["method"], r["path"], r["status"]) for r in rows]
    assert summary == [
        ("write", "POST", "/v1/organisations", 201),
        ("write", "POST", "/v1/people", 201),
        ("write", "PATCH", f"/v1/people/{person_id}", 200),
        ("write", "PATCH", f"/v1/people/{person_id}", 422),
    ]  # reads are not writes
    assert [(r["subject_kind"], r["subject_id"]) for r in rows] == [
        ("organisation", org["id"]),
        ("person", person_id),
        ("person", person_id),
        ("person", person_id),
    ]
    assert {r["actor_key_id"] for r in rows} == {key_id}
    assert {r["actor_role"] for r in rows} == {"staff"}
    assert {r["tenant"] for r in rows} == {"biocat"}
    # No personal data, not even from the query string.
    dumped = json.dumps(rows, default=str)
    for personal in ("Laia", "laia", "600 111", "PathoVision"):
        assert personal not in dumped


async def test_a_path_no_route_knows_is_recorded_without_its_words(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        response = await staff.post("/v1/people/laia.serra@example.org/consent", json={})
        assert response.status_code in (404, 405, 422)
    (row,) = await audit_rows(service)
    assert "laia" not in row["path"]
    assert row["path"].startswith("/v1/people/")


async def test_refused_writes_are_recorded_with_their_key(service: Service) -> None:
    staff, key_id = await keyed_client(service, "staff", tenant="biocat")
    async with staff:
        unreadable = await staff.post(
            "/v1/people", content=b"{", headers={"content-type": "application/json"}
        )
        assert unreadable.status_code == 422
        assert (await staff.delete("/v1/nowhere/12")).status_code == 404
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi), base_url="http://test"
    ) as anonymous:
        assert (await anonymous.post("/v1/people", json=PERSON)).status_code == 401
    rows = await audit_rows(service)
    assert [(r["actor_key_id"], r["method"], r["path"], r["status"]) for r in rows] == [
        (key_id, "POST", "/v1/people", 422),
        (key_id, "DELETE", "/v1/{}/12", 404),
        (None, "POST", "/v1/people", 401),
    ]


async def test_the_audit_log_cannot_be_changed_even_with_sql(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        await create_org(staff, "Logged")
    before = await audit_rows(service)
    assert len(before) == 1
    for statement in (
        "UPDATE audit_log SET status = 999",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with service.ctx.db.sessions() as session, session.begin():
                await session.execute(text(statement))
    assert await audit_rows(service) == before
    # No API changes it either; the attempts themselves are logged.
    async with await service.client("admin") as admin:
        for method in ("PUT", "PATCH", "DELETE"):
            response = await admin.request(method, "/v1/audit")
            assert response.status_code == 405
    after = await audit_rows(service)
    assert after[:1] == before
    assert [(r["method"], r["path"], r["status"]) for r in after[1:]] == [
        ("PUT", "/v1/audit", 405),
        ("PATCH", "/v1/audit", 405),
        ("DELETE", "/v1/audit", 405),
    ]


async def test_staff_read_their_clusters_entries_and_admin_reads_all(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as biocat:
        mine = await create_org(biocat, "Biocat SME")
        await biocat.patch(f"/v1/organisations/{mine['id']}", json={"region": "Catalonia"})
    async with await service.client("staff", tenant="eurasante") as eurasante:
        theirs = await create_org(eurasante, "Lille SME", country="FR")
        # A probe at another cluster's record: 404, and its owner sees the attempt.
        probe = await eurasante.patch(f"/v1/organisations/{mine['id']}", json={"region": "X"})
        assert probe.status_code == 404
        seen = (await eurasante.get("/v1/audit")).json()
        assert {i["subject_id"] for i in seen["items"]} == {theirs["id"], mine["id"]}
        assert {i["tenant"] for i in seen["items"]} == {"eurasante", "biocat"}

    async with await service.client("staff", tenant="biocat") as biocat:
        page = (await biocat.get("/v1/audit", params={"limit": 2})).json()
        assert page["total"] == 3
        assert [i["status"] for i in page["items"]] == [404, 200]  # newest first
        assert [i["method"] for i in page["items"]] == ["PATCH", "PATCH"]
        rest = (await biocat.get("/v1/audit", params={"limit": 2, "offset": 2})).json()
        assert [i["status"] for i in rest["items"]] == [201]
        assert {i["subject_id"] for i in page["items"] + rest["items"]} == {mine["id"]}

    async with await service.client("admin") as admin:
        everything = (await admin.get("/v1/audit")).json()
        assert everything["total"] == 4
        only = await admin.get(
            "/v1/audit", params={"subject_kind": "organisation", "subject_id": theirs["id"]}
        )
        assert [i["subject_id"] for i in only.json()["items"]] == [theirs["id"]]
        assert (await admin.get("/v1/audit", params={"action": "burn"})).status_code == 422

    for role, extra in (("organiser", {"tenant": "biocat"}), ("batch", {})):
        async with await service.client(role, **extra) as other:
            assert (await other.get("/v1/audit")).status_code == 403
    async with await service.client("member", organisation_id=mine["id"]) as member:
        assert (await member.get("/v1/audit")).status_code == 403


async def test_searches_are_not_recorded_as_writes(service: Service) -> None:
    async with await service.client("admin") as admin:
        await admin.post("/v1/organisations", json=org_body("Searchable", offers=["assays"]))
        response = await admin.post("/v1/search", json={"text": "assay partner"})
        assert response.status_code == 200
    rows = await audit_rows(service)
    assert [r["path"] for r in rows] == ["/v1/organisations"]


async def test_an_erasure_is_recorded_once_as_an_erasure(service: Service) -> None:
    staff, key_id = await keyed_client(service, "staff", tenant="biocat")
    async with staff:
        person = (await staff.post("/v1/people", json=PERSON)).json()
        assert (await staff.delete(f"/v1/people/{person['id']}")).status_code == 204
        # A second attempt finds nothing, and is recorded as a failed write.
        assert (await staff.delete(f"/v1/people/{person['id']}")).status_code == 404
    rows = await audit_rows(service)
    assert [(r["action"], r["status"]) for r in rows] == [
        ("write", 201),
        ("erasure", 204),
        ("write", 404),
    ]
    erasure = rows[1]
    assert erasure["subject_kind"] == "person"
    assert erasure["subject_id"] == person["id"]
    assert erasure["actor_key_id"] == key_id
    assert erasure["path"] == f"/v1/people/{person['id']}"
