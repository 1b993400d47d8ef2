"""GDPR erasure and export: an erased organisation or person leaves no trace but an id-only
audit entry; an export holds everything kept about one."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict
from app.services.keys import create_api_key
from app.store import models as m
from app.store.models import Base
from embeddings import Encoder
from tests.api.helpers import create_org, link
from tests.api.test_audit import PERSON, audit_rows, audited_service, keyed_client
from tests.conftest import Service

STORE = Path(__file__).resolve().parents[2] / "app" / "store"
NAME = "Vetoryx Erasable Diagnostics"
OFFER = "rapid veterinary pathogen panels"


@pytest.fixture
async def service(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[Service]:
    async with audited_service(store_url, tmp_path, hashing_encoder) as running:
        yield running


def all_tables() -> list[Any]:
    for module in sorted(STORE.glob("*_models.py")):
        importlib.import_module(f"app.store.{module.stem}")
    return list(Base.metadata.sorted_tables)


async def rows_referring_to(service: Service, table_name: str, ids: list[int]) -> dict[str, int]:
    """Raw SQL counts of the rows with these ids, and of rows in every table that has a
    foreign key to ``table_name``.id (tables other features add included)."""
    tables = all_tables()
    target = Base.metadata.tables[table_name]
    counts: dict[str, int] = {}
    async with service.ctx.db.read() as session:
        counts[table_name] = int(
            await session.scalar(
                select(func.count()).select_from(target).where(target.c.id.in_(ids))
            )
            or 0
        )
        for table in tables:
            for fk in table.foreign_keys:
                if fk.column.table.name == table_name and fk.column.name == "id":
                    query = select(func.count()).select_from(table).where(fk.parent.in_(ids))
                    counts[f"{table.name}.{fk.parent.name}"] = int(await session.scalar(query) or 0)
    return counts


async def store_text(session: AsyncSession) -> str:
    """Every row of every table as text, binary columns included (e.g. kept responses)."""
    parts = []
    for table in all_tables():
        for row in (await session.execute(select(table))).all():
            parts.append(repr(tuple(row)))
    return "\n".join(parts)


async def kept_responses(service: Service) -> str:
    """The Idempotency-Key replay store as text ("" where that store is not installed)."""
    table = next((t for t in all_tables() if t.name == "idempotency_records"), None)
    if table is None:
        return ""
    async with service.ctx.db.read() as session:
        return "\n".join(repr(tuple(r)) for r in (await session.execute(select(table))).all())


async def build_network(service: Service) -> dict[str, Any]:
    """A target organisation with people, grants both ways, links, a member key and a kept
    response (Idempotency-Key), among partners that stay."""
    async with await service.client("staff", tenant="biocat") as staff:
        target = await create_org(
            staff, NAME, offers=[OFFER], seeks=["clinical validation site"], country="ES"
        )
        partner = await create_org(
            staff, "Partner Hospital", kind="hospital_or_care_provider", seeks=[OFFER], country="FR"
        )
        third = await create_org(staff, "Third Lab", offers=["biobank samples"], country="SE")
        pair = await link(staff, target["id"], partner["id"])
        consortium = await link(staff, target["id"], partner["id"], third["id"])
        people = []
        for name, email, phone in (
            ("Laia Serra", "laia@vetoryx.example", PERSON["phone"]),
            ("Jordi Vila", None, None),
        ):
            response = await staff.post(
                "/v1/people",
                json={
                    **PERSON,
                    "organisation_id": target["id"],
                    "full_name": name,
                    "email": email,
                    "phone": phone,
                },
                headers={"Idempotency-Key": f"person-{name.replace(' ', '-')}"},
            )
            assert response.status_code == 201, response.text
            people.append(response.json())
        outsider = (
            await staff.post(
                "/v1/people",
                json={**PERSON, "organisation_id": partner["id"], "full_name": "Ines Roca"},
            )
        ).json()
    async with service.ctx.db.sessions() as session, session.begin():
        session.add(
            m.ContactGrant(
                person_id=people[0]["id"], organisation_id=partner["id"], reason="meeting"
            )
        )
        session.add(
            m.ContactGrant(person_id=outsider["id"], organisation_id=target["id"], reason="meeting")
        )
    member_key = await create_api_key(service.ctx.db, role="member", organisation_id=target["id"])
    return {
        "target": target,
        "partner": partner,
        "third": third,
        "pair": pair,
        "consortium": consortium,
        "people": people,
        "outsider": outsider,
        "member_key": member_key.key,
    }


async def candidate_ids(http: httpx.AsyncClient, org_id: int) -> list[int]:
    response = await http.get(
        f"/v1/organisations/{org_id}/matches", params={"limit": 100, "include_existing": True}
    )
    assert response.status_code == 200
    return [item["organisation"]["id"] for item in response.json()["items"]]


async def searched_ids(http: httpx.AsyncClient) -> list[int]:
    response = await http.post("/v1/search", json={"text": OFFER, "limit": 100})
    assert response.status_code == 200
    return [item["organisation"]["id"] for item in response.json()["items"]]


async def test_an_erased_organisation_is_gone_from_everything(service: Service) -> None:
    net = await build_network(service)
    target_id = net["target"]["id"]
    person_ids = [p["id"] for p in net["people"]]
    state = service.ctx.derived.state
    staff, key_id = await keyed_client(service, "staff", tenant="biocat")
    async with staff:
        # Before: it is everywhere.
        assert target_id in await candidate_ids(staff, net["partner"]["id"])
        assert target_id in await searched_ids(staff)
        health_before = (await staff.get("/health")).json()
        assert any(target_id in index for index in state.vectors.values())
        async with service.ctx.db.read() as session:
            assert NAME in await store_text(session)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=service.asgi),
            base_url="http://test",
            headers={"Authorization": f"Bearer {net['member_key']}"},
        ) as member:  # verified now, so the service remembers the key (VERIFIED_FOR_SECONDS)
            assert (await member.get(f"/v1/organisations/{target_id}")).status_code == 200

        response = await staff.post(f"/v1/organisations/{target_id}/erase")
        assert response.status_code == 200, response.text
        receipt = response.json()
        assert receipt["subject_kind"] == "organisation"
        assert receipt["subject_id"] == target_id
        assert receipt["persons_erased"] == 2
        assert receipt["contact_grants_removed"] == 2
        assert receipt["collaborations_removed"] == 1  # the pair; the consortium keeps two
        assert receipt["rankings_removed"] is None or receipt["rankings_removed"] >= 0

        # Not readable, not a candidate, not found by search, not counted.
        assert (await staff.get(f"/v1/organisations/{target_id}")).status_code == 404
        for person_id in person_ids:
            assert (await staff.get(f"/v1/people/{person_id}")).status_code == 404
        for org_id in (net["partner"]["id"], net["third"]["id"]):
            assert target_id not in await candidate_ids(staff, org_id)
        assert target_id not in await searched_ids(staff)
        assert (await staff.get(f"/v1/organisations/{target_id}/matches")).status_code == 404
        health = (await staff.get("/health")).json()
        assert health["organisations"] == health_before["organisations"] - 1
        for space, count in health_before["vectors"].items():
            had_vector = space in ("profile", "offers", "seeks")
            assert health["vectors"][space] == count - (1 if had_vector else 0)
        assert (await staff.post(f"/v1/organisations/{target_id}/erase")).status_code == 404
        # The outsider's record stays; only the grant the erased organisation held went.
        outsider = await staff.get(f"/v1/people/{net['outsider']['id']}")
        assert outsider.status_code == 200

    # Not in the faiss indexes, the catalogue or the graph.
    for index in state.vectors.values():
        assert target_id not in index
        assert target_id not in index.ids().tolist()
    assert state.catalog.get(target_id) is None
    assert not state.graph.has_organisation(target_id)
    assert target_id not in state.graph.neighbours(net["partner"]["id"])
    assert net["third"]["id"] in state.graph.neighbours(net["partner"]["id"])
    assert not state.graph.has_collaboration(net["pair"]["id"])

    # Not in the store: every table referring to it or its people is empty for them.
    assert set((await rows_referring_to(service, "organisations", [target_id])).values()) == {0}
    assert set((await rows_referring_to(service, "persons", person_ids)).values()) == {0}
    # Nothing personal anywhere in the database, kept responses and audit log included.
    async with service.ctx.db.read() as session:
        everything = await store_text(session)
    for trace in (NAME, "Laia Serra", "laia@vetoryx.example", "Jordi Vila"):
        assert trace not in everything

    # The erasure is in the audit log: ids, kind, time and key only.
    erasures = [r for r in await audit_rows(service) if r["action"] == "erasure"]
    assert sorted((r["subject_kind"], r["subject_id"]) for r in erasures) == sorted(
        [("organisation", target_id)] + [("person", pid) for pid in person_ids]
    )
    assert {r["actor_key_id"] for r in erasures} == {key_id}
    assert receipt["audit_id"] in {r["id"] for r in erasures}

    # Its member key went with it.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi),
        base_url="http://test",
        headers={"Authorization": f"Bearer {net['member_key']}"},
    ) as member:
        assert (await member.get("/v1/people")).status_code == 401


def fake_ranking_store(eraser: Any) -> types.ModuleType:
    module = types.ModuleType("app.services.rerank")
    module.erase_from_runs = eraser  # type: ignore[attr-defined]
    return module


async def test_precomputed_rankings_are_erased_in_the_same_transaction(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = await build_network(service)
    target_id = net["target"]["id"]
    seen: list[tuple[int, int]] = []

    async def erase_from_runs(session: AsyncSession, organisation_id: int) -> int:
        # Called inside the erasure's transaction: the organisation is still there.
        count = await session.scalar(
            select(func.count())
            .select_from(m.Organisation)
            .where(m.Organisation.id == organisation_id)
        )
        seen.append((organisation_id, int(count or 0)))
        return 7

    monkeypatch.setitem(sys.modules, "app.services.rerank", fake_ranking_store(erase_from_runs))
    async with await service.client("admin") as admin:
        response = await admin.post(f"/v1/organisations/{target_id}/erase")
    assert response.status_code == 200
    assert response.json()["rankings_removed"] == 7
    assert seen == [(target_id, 1)]


async def test_a_failed_erasure_changes_nothing(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = await build_network(service)
    target_id = net["target"]["id"]

    async def erase_from_runs(session: AsyncSession, organisation_id: int) -> int:
        raise Conflict("a re-ranking run is being written; retry")

    monkeypatch.setitem(sys.modules, "app.services.rerank", fake_ranking_store(erase_from_runs))
    async with await service.client("admin") as admin:
        response = await admin.post(f"/v1/organisations/{target_id}/erase")
        assert response.status_code == 409
        assert (await admin.get(f"/v1/organisations/{target_id}")).status_code == 200
        for person in net["people"]:
            kept = await admin.get(f"/v1/people/{person['id']}")
            assert kept.json()["full_name"] == person["full_name"]
        assert target_id in await searched_ids(admin)
    assert target_id in service.ctx.derived.state.catalog
    assert [r for r in await audit_rows(service) if r["action"] == "erasure"] == []


async def test_erasing_a_person_removes_it_its_grants_and_kept_responses(
    service: Service,
) -> None:
    net = await build_network(service)
    laia = net["people"][0]
    kept_before = await kept_responses(service)
    assert not kept_before or "laia@vetoryx.example" in kept_before
    async with await service.client("staff", tenant="biocat") as staff:
        response = await staff.delete(f"/v1/people/{laia['id']}")
        assert response.status_code == 204
        assert (await staff.get(f"/v1/people/{laia['id']}")).status_code == 404
        names = [p["full_name"] for p in (await staff.get("/v1/people")).json()["items"]]
        assert "Laia Serra" not in names
        assert "Jordi Vila" in names
    async with await service.client("admin") as admin:
        assert (await admin.get(f"/v1/people/{laia['id']}")).status_code == 404
    assert set((await rows_referring_to(service, "persons", [laia["id"]])).values()) == {0}
    async with service.ctx.db.read() as session:
        everything = await store_text(session)
    assert "laia@vetoryx.example" not in everything
    assert "Laia Serra" not in everything
    assert NAME in everything  # the organisation stays
    if kept_before:  # Jordi's kept response stays: only the erased person's went
        assert "Jordi Vila" in await kept_responses(service)
    (erasure,) = [r for r in await audit_rows(service) if r["action"] == "erasure"]
    assert (erasure["subject_kind"], erasure["subject_id"]) == ("person", laia["id"])


async def test_only_admin_and_the_owning_clusters_staff_erase(service: Service) -> None:
    async with await service.client("admin") as admin:
        shared = await create_org(admin, "Network-wide Org")
    async with await service.client("staff", tenant="biocat") as staff:
        mine = await create_org(staff, "Biocat Org")
        laia = (
            await staff.post("/v1/people", json={**PERSON, "organisation_id": mine["id"]})
        ).json()
    async with await service.client("staff", tenant="eurasante") as other:
        assert (await other.post(f"/v1/organisations/{mine['id']}/erase")).status_code == 404
        assert (await other.get(f"/v1/organisations/{mine['id']}/export")).status_code == 404
        # Readable network-wide records are the admin's to erase.
        assert (await other.post(f"/v1/organisations/{shared['id']}/erase")).status_code == 403
        assert (await other.post("/v1/organisations/999999/erase")).status_code == 404
    async with await service.client("member", organisation_id=mine["id"]) as member:
        assert (await member.post(f"/v1/organisations/{mine['id']}/erase")).status_code == 403
    async with await service.client("organiser", tenant="biocat") as organiser:
        assert (await organiser.post(f"/v1/organisations/{mine['id']}/erase")).status_code == 403
        assert (await organiser.delete(f"/v1/people/{laia['id']}")).status_code == 403
    async with await service.client("admin") as admin:
        assert (await admin.get(f"/v1/organisations/{mine['id']}")).status_code == 200
        assert (await admin.get(f"/v1/people/{laia['id']}")).status_code == 200
        assert (await admin.post(f"/v1/organisations/{shared['id']}/erase")).status_code == 200
    assert [r["subject_id"] for r in await audit_rows(service) if r["action"] == "erasure"] == [
        shared["id"]
    ]


async def test_an_organisation_export_holds_everything_kept_about_it(service: Service) -> None:
    net = await build_network(service)
    target_id = net["target"]["id"]
    async with await service.client("staff", tenant="biocat") as staff:
        await staff.patch(
            f"/v1/organisations/{target_id}", json={"external_ids": {"pic": "912345678"}}
        )
        response = await staff.get(f"/v1/organisations/{target_id}/export")
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        doc = response.json()
        again = (await staff.get(f"/v1/organisations/{target_id}/export")).json()

    assert doc["kind"] == "organisation"
    assert doc["organisation"]["name"] == NAME
    assert doc["organisation"]["external_ids"] == {"pic": "912345678"}
    assert {c["id"]: sorted(c["partner_ids"]) for c in doc["collaborations"]} == {
        net["pair"]["id"]: [net["partner"]["id"]],
        net["consortium"]["id"]: sorted([net["partner"]["id"], net["third"]["id"]]),
    }
    fields = sorted((e["field"], e["position"]) for e in doc["embeddings"])
    assert fields == [("offer", 0), ("profile", 0), ("seek", 0)]
    assert all("vector" not in e and len(e["content_hash"]) == 64 for e in doc["embeddings"])
    assert {e["dimensions"] for e in doc["embeddings"]} == {service.ctx.derived.encoder.dim}
    assert [(p["full_name"], p["email"]) for p in doc["persons"]] == [
        ("Laia Serra", "laia@vetoryx.example"),
        ("Jordi Vila", None),
    ]
    assert sorted((g["person_id"], g["organisation_id"]) for g in doc["contact_grants"]) == sorted(
        [
            (net["people"][0]["id"], net["partner"]["id"]),
            (net["outsider"]["id"], target_id),
        ]
    )
    assert [k["role"] for k in doc["api_keys"]] == ["member"]
    assert "secret_hash" not in doc["api_keys"][0]
    audited = {(a["subject_kind"], a["subject_id"], a["method"]) for a in doc["audit"]}
    assert ("organisation", target_id, "POST") in audited
    assert ("organisation", target_id, "PATCH") in audited
    assert ("person", net["people"][0]["id"], "POST") in audited
    # Each export is audited, and the next export shows it.
    assert ("organisation", target_id, "GET") in {
        (a["subject_kind"], a["subject_id"], a["method"]) for a in again["audit"]
    }
    exports = [r for r in await audit_rows(service) if r["action"] == "export"]
    assert [(r["subject_kind"], r["subject_id"]) for r in exports] == [
        ("organisation", target_id)
    ] * 2


async def test_a_person_export_holds_the_record_grants_and_history(service: Service) -> None:
    net = await build_network(service)
    laia = net["people"][0]
    async with await service.client("staff", tenant="biocat") as staff:
        await staff.post(f"/v1/people/{laia['id']}/consent", json={"state": "withdrawn"})
        response = await staff.get(f"/v1/people/{laia['id']}/export")
        assert response.status_code == 200
    doc = response.json()
    assert doc["person"]["email"] == "laia@vetoryx.example"
    assert doc["person"]["consent_state"] == "withdrawn"  # still exportable before erasure
    assert doc["organisation"] == {"id": net["target"]["id"], "name": NAME}
    assert [(g["organisation_id"], g["reason"]) for g in doc["contact_grants"]] == [
        (net["partner"]["id"], "meeting")
    ]
    assert [(a["method"], a["path"]) for a in doc["audit"]] == [
        ("POST", f"/v1/people/{laia['id']}/consent"),
        ("POST", "/v1/people"),
    ]
    (export,) = [r for r in await audit_rows(service) if r["action"] == "export"]
    assert (export["subject_kind"], export["subject_id"]) == ("person", laia["id"])
    async with await service.client("organiser", tenant="biocat") as organiser:
        assert (await organiser.get(f"/v1/people/{laia['id']}/export")).status_code == 403


async def test_a_reference_that_forbids_the_erasure_is_a_409_and_changes_nothing(
    service: Service,
) -> None:
    net = await build_network(service)
    laia = net["people"][0]
    # A table some later feature might add without ON DELETE CASCADE.
    async with service.ctx.db.sessions() as session, session.begin():
        await session.execute(
            text(
                "CREATE TABLE blocker (id INTEGER PRIMARY KEY,"
                " person_id INTEGER REFERENCES persons(id))"
            )
        )
        await session.execute(text(f"INSERT INTO blocker VALUES (1, {laia['id']})"))
    async with await service.client("staff", tenant="biocat") as staff:
        assert (await staff.delete(f"/v1/people/{laia['id']}")).status_code == 409
        erase = await staff.post(f"/v1/organisations/{net['target']['id']}/erase")
        assert erase.status_code == 409
        assert erase.headers["content-type"] == "application/problem+json"
        assert (await staff.get(f"/v1/people/{laia['id']}")).json()["email"] == laia["email"]
        assert (await staff.get(f"/v1/organisations/{net['target']['id']}")).status_code == 200
    assert net["target"]["id"] in service.ctx.derived.state.catalog
    assert [r for r in await audit_rows(service) if r["action"] == "erasure"] == []
