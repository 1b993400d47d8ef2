"""People with consent: who sees a person and their contact details, and withdrawn consent
hiding a person at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.store import models as m
from embeddings import Encoder
from tests.api.helpers import create_org
from tests.api.test_audit import PERSON, audited_service
from tests.conftest import Service


@pytest.fixture
async def service(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[Service]:
    async with audited_service(store_url, tmp_path, hashing_encoder) as running:
        yield running


async def add_person(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post("/v1/people", json={**PERSON, **fields})
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v1/people/{response.json()['id']}"
    return dict(response.json())


async def grant(service: Service, person_id: int, organisation_id: int) -> None:
    """What the events feature does when a meeting is accepted."""
    async with service.ctx.db.sessions() as session, session.begin():
        session.add(
            m.ContactGrant(
                person_id=person_id, organisation_id=organisation_id, reason="meeting accepted"
            )
        )


async def count_people(service: Service) -> int:
    async with service.ctx.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(m.Person)) or 0)


async def test_staff_register_list_and_page_through_people(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        org = await create_org(staff, "PathoVision")
        laia = await add_person(staff, organisation_id=org["id"], expertise=["pathology"] * 2)
        await add_person(staff, organisation_id=org["id"], full_name="Marc Puig", email=None)
        await add_person(staff, full_name="Independent Expert")
        assert laia["tenant"] == "biocat"
        assert laia["email"] == PERSON["email"]
        assert laia["contact_hidden"] is False
        assert laia["expertise"] == ["pathology"]
        assert laia["consent_updated_at"] is not None

        page = (
            await staff.get("/v1/people", params={"organisation_id": org["id"], "limit": 1})
        ).json()
        assert page["total"] == 2
        assert [p["full_name"] for p in page["items"]] == ["Laia Serra"]
        rest = await staff.get(
            "/v1/people", params={"organisation_id": org["id"], "limit": 1, "offset": 1}
        )
        assert [p["full_name"] for p in rest.json()["items"]] == ["Marc Puig"]
        assert (await staff.get("/v1/people")).json()["total"] == 3

        patched = await staff.patch(f"/v1/people/{laia['id']}", json={"job_title": "CEO"})
        assert patched.json()["job_title"] == "CEO"
        assert patched.json()["email"] == PERSON["email"]


async def test_contact_details_only_for_staff_own_organisation_and_grant_holders(
    service: Service,
) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        home = await create_org(staff, "PathoVision")
        visitor = await create_org(staff, "Visitor SME")
        laia = await add_person(staff, organisation_id=home["id"])

    def contact(response: httpx.Response) -> tuple[int, Any, Any]:
        body = response.json()
        return response.status_code, body.get("email"), body.get("contact_hidden")

    path = f"/v1/people/{laia['id']}"
    async with await service.client("organiser", tenant="biocat") as organiser:
        assert contact(await organiser.get(path)) == (200, None, True)
        listed = (await organiser.get("/v1/people")).json()["items"]
        assert [(p["email"], p["phone"], p["contact_hidden"]) for p in listed] == [
            (None, None, True)
        ]
    async with await service.client("member", organisation_id=home["id"]) as own:
        assert contact(await own.get(path)) == (200, PERSON["email"], False)
    async with await service.client("member", organisation_id=visitor["id"]) as member:
        # Not its person and no grant: it does not exist for this key.
        assert (await member.get(path)).status_code == 404
        assert (await member.get("/v1/people")).json()["total"] == 0
        await grant(service, laia["id"], visitor["id"])  # their meeting was accepted
        assert contact(await member.get(path)) == (200, PERSON["email"], False)
        assert [p["email"] for p in (await member.get("/v1/people")).json()["items"]] == [
            PERSON["email"]
        ]
    async with await service.client("staff", tenant="eurasante") as other_cluster:
        assert (await other_cluster.get(path)).status_code == 404
        assert (await other_cluster.get("/v1/people")).json()["total"] == 0
    async with await service.client("admin") as admin:
        assert contact(await admin.get(path)) == (200, PERSON["email"], False)
        # A network-wide person is readable by every cluster's staff, without contacts.
        shared = await add_person(admin, full_name="Network Expert")
        assert shared["tenant"] is None
    async with await service.client("staff", tenant="eurasante") as other_cluster:
        seen = await other_cluster.get(f"/v1/people/{shared['id']}")
        assert contact(seen) == (200, None, True)
    async with await service.client("batch") as batch:
        assert (await batch.get(path)).status_code == 403


async def test_withdrawn_consent_hides_the_person_at_once(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        home = await create_org(staff, "PathoVision")
        visitor = await create_org(staff, "Visitor SME")
        laia = await add_person(staff, organisation_id=home["id"])
        await add_person(staff, organisation_id=home["id"], full_name="Marc Puig")
    await grant(service, laia["id"], visitor["id"])
    path = f"/v1/people/{laia['id']}"
    organiser = await service.client("organiser", tenant="biocat")
    member = await service.client("member", organisation_id=home["id"])
    grantee = await service.client("member", organisation_id=visitor["id"])
    async with organiser, member, grantee:
        assert (await organiser.get("/v1/people")).json()["total"] == 2
        assert (await grantee.get(path)).status_code == 200

        async with await service.client("staff", tenant="biocat") as staff:
            withdrawn = await staff.post(
                f"{path}/consent", json={"state": "withdrawn", "source": "e-mail of 2025-03-04"}
            )
            assert withdrawn.status_code == 200
            assert withdrawn.json()["consent_state"] == "withdrawn"
            assert withdrawn.json()["consent_updated_at"] > laia["consent_updated_at"]
            assert withdrawn.json()["source"] == "e-mail of 2025-03-04"

            # Gone for everyone else, at once.
            for http in (organiser, member, grantee):
                assert (await http.get(path)).status_code == 404
                listed = (await http.get("/v1/people")).json()
                assert laia["id"] not in [p["id"] for p in listed["items"]]
                assert (await http.get("/v1/people", params={"consent_state": "withdrawn"})).json()[
                    "total"
                ] == 0
            assert (await member.patch(path, json={"job_title": "x"})).status_code == 404
            assert (
                await member.post(f"{path}/consent", json={"state": "given"})
            ).status_code == 404

            # Staff of its cluster still see it, flagged, so they can erase it.
            flagged = await staff.get("/v1/people", params={"consent_state": "withdrawn"})
            assert [(p["id"], p["consent_state"]) for p in flagged.json()["items"]] == [
                (laia["id"], "withdrawn")
            ]
            assert (await staff.get(path)).json()["consent_state"] == "withdrawn"

            # Consent given again brings it back.
            again = await staff.post(
                f"{path}/consent", json={"state": "given", "legal_basis": "consent"}
            )
            assert again.status_code == 200
            assert (await grantee.get(path)).json()["email"] == PERSON["email"]


async def test_members_manage_people_of_their_own_organisation_only(service: Service) -> None:
    async with await service.client("admin") as admin:
        own = await create_org(admin, "Own")
        other = await create_org(admin, "Other")
        stranger = await add_person(admin, organisation_id=other["id"], full_name="Stranger")
    async with await service.client("member", organisation_id=own["id"]) as member:
        mine = await add_person(member)  # organisation defaults to the key's own
        assert mine["organisation_id"] == own["id"]
        assert mine["email"] == PERSON["email"]
        before = await count_people(service)
        refused = await member.post("/v1/people", json={**PERSON, "organisation_id": other["id"]})
        assert refused.status_code == 422
        assert await count_people(service) == before

        assert (
            await member.patch(f"/v1/people/{mine['id']}", json={"phone": "+32 2 000 00 00"})
        ).json()["phone"] == "+32 2 000 00 00"
        moved = await member.patch(
            f"/v1/people/{mine['id']}", json={"organisation_id": other["id"]}
        )
        assert moved.status_code == 422
        assert (await member.get(f"/v1/people/{mine['id']}")).json()["organisation_id"] == own["id"]
        assert (
            await member.patch(f"/v1/people/{stranger['id']}", json={"job_title": "x"})
        ).status_code == 404
        # Erasure and export are for the cluster's staff and admin.
        assert (await member.delete(f"/v1/people/{mine['id']}")).status_code == 403
        assert (await member.get(f"/v1/people/{mine['id']}/export")).status_code == 403
    async with await service.client("organiser", tenant="biocat") as organiser:
        assert (await organiser.post("/v1/people", json=PERSON)).status_code == 403


async def test_other_clusters_people_answer_404_to_every_verb(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        laia = await add_person(staff)
    path = f"/v1/people/{laia['id']}"
    async with await service.client("staff", tenant="eurasante") as other:
        assert (await other.get(path)).status_code == 404
        assert (await other.patch(path, json={"job_title": "x"})).status_code == 404
        assert (await other.post(f"{path}/consent", json={"state": "withdrawn"})).status_code == 404
        assert (await other.delete(path)).status_code == 404
        assert (await other.get(f"{path}/export")).status_code == 404
        assert (await other.get("/v1/people/999999")).status_code == 404
    async with await service.client("staff", tenant="biocat") as staff:
        unchanged = (await staff.get(path)).json()
        assert unchanged["consent_state"] == "given"
        assert unchanged["job_title"] is None


BAD_BODIES: list[dict[str, Any]] = [
    {k: v for k, v in PERSON.items() if k != "legal_basis"},
    {**PERSON, "legal_basis": "because"},
    {**PERSON, "email": "laia at example.org"},
    {**PERSON, "phone": "call me"},
    {**PERSON, "full_name": "Laia\x00Serra"},
    {**PERSON, "full_name": "x" * 201},
    {**PERSON, "full_name": "   "},
    {**PERSON, "consent_state": "withdrawn"},
    {**PERSON, "expertise": ["x"] * 31},
    {**PERSON, "nickname": "L"},
    {**PERSON, "organisation_id": 424242},
    {**PERSON, "organisation_id": 0},
]

BAD_CHANGES: list[tuple[str, dict[str, Any]]] = [
    ("", {"full_name": None}),
    ("", {"email": "nope"}),
    ("", {"consent_state": "withdrawn"}),
    ("", {"organisation_id": 424242}),
    ("/consent", {"state": "maybe"}),
    ("/consent", {"state": "given", "legal_basis": "vibes"}),
    ("/consent", {}),
]


async def test_bad_person_input_is_refused_and_changes_nothing(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        for body in BAD_BODIES:
            response = await staff.post("/v1/people", json=body)
            assert response.status_code == 422, body
            assert response.headers["content-type"] == "application/problem+json"
        assert await count_people(service) == 0
        assert (await staff.get("/v1/people")).json()["total"] == 0


async def test_bad_changes_are_refused_and_change_nothing(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as staff:
        laia = await add_person(staff)
        for path, body in BAD_CHANGES:
            url = f"/v1/people/{laia['id']}{path}"
            response = await (staff.post(url, json=body) if path else staff.patch(url, json=body))
            assert response.status_code == 422, (path, body)
            assert (await staff.get(f"/v1/people/{laia['id']}")).json() == laia
