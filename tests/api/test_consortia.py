"""Consortium builder through the HTTP API: rules, tenancy, unsatisfiable rules, bad input."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import count_orgs, create_org, link
from tests.conftest import Service

CALL = "Clinical validation of a wearable ECG monitor with hospitals and patients"


async def _members(http: httpx.AsyncClient) -> dict[str, int]:
    ids = {}
    for name, kind, country in [
        ("Cardio SME", "sme", "ES"),
        ("Uni Barcelona", "university", "ES"),
        ("Hospital Lyon", "hospital_or_care_provider", "FR"),
        ("Heart Patients DE", "patient_organisation", "DE"),
        ("Sensor GmbH", "sme", "DE"),
        ("Uni Lund", "university", "SE"),
        ("Hospital Skåne", "hospital_or_care_provider", "SE"),
        ("Data Oy", "sme", "FI"),
    ]:
        org = await create_org(
            http,
            name,
            kind=kind,
            country=country,
            offers=["clinical validation of wearable ECG monitors"]
            if name == "Hospital Lyon"
            else [],
        )
        ids[name] = int(org["id"])
    await link(http, ids["Cardio SME"], ids["Uni Barcelona"], ids["Hospital Lyon"])
    await link(http, ids["Hospital Lyon"], ids["Heart Patients DE"])
    await link(http, ids["Uni Lund"], ids["Hospital Skåne"])
    return ids


def _request(**rules: Any) -> dict[str, Any]:
    return {"call": CALL, "rules": rules, "alternatives": 2, "time_limit_s": 3}


async def test_suggested_consortia_meet_the_rules_with_scores_and_reasons(
    service: Service,
) -> None:
    async with await service.client("staff", tenant="biocat") as http:
        ids = await _members(http)
        response = await http.post(
            "/v1/consortia/suggest",
            json=_request(
                min_size=4,
                max_size=5,
                min_countries=3,
                min_eu_countries=2,
                roles=[
                    {"kind": "sme"},
                    {"kind": "university"},
                    {"kind": "hospital_or_care_provider"},
                    {"kind": "patient_organisation"},
                ],
                must_include=[ids["Cardio SME"]],
                exclude=[ids["Data Oy"]],
            ),
        )
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["candidates"] == 7 and len(body["consortia"]) == 2
    best = body["consortia"][0]
    assert best["rank"] == 1
    members = {m["organisation"]["name"]: m for m in best["members"]}
    assert "Cardio SME" in members and members["Cardio SME"]["required"]
    assert "Data Oy" not in members and "Heart Patients DE" in members
    assert len({m["organisation"]["country"] for m in best["members"]}) >= 3
    assert all(rule["satisfied"] for rule in best["rules"])
    assert {r["rule"] for r in best["rules"]} >= {"size", "countries", "roles", "must_include"}
    n = len(best["members"])
    assert len(best["pairs"]) == n * (n - 1) // 2
    assert any(p["worked_together"] for p in best["pairs"])
    assert best["explanation"][0].startswith(f"{n} members from")
    assert 0 <= members["Cardio SME"]["fit"] <= 1


async def test_unsatisfiable_rules_say_which_rule_and_why(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as http:
        await _members(http)
        too_many_countries = await http.post(
            "/v1/consortia/suggest", json=_request(min_size=3, max_size=8, min_countries=6)
        )
        assert too_many_countries.status_code == 422
        problem = too_many_countries.json()
        assert problem["detail"] == (
            "rule 'countries' cannot be met: at least 6 countries are required, but the "
            "candidates come from only 5 (DE, ES, FI, FR, SE)"
        )
        assert problem["errors"][0]["loc"] == ["body", "rules", "countries"]
        no_investor = await http.post(
            "/v1/consortia/suggest",
            json=_request(roles=[{"kind": "funder_or_investor", "at_least": 1}]),
        )
        assert no_investor.status_code == 422
        assert "funder or investor" in no_investor.json()["detail"]


async def test_another_clusters_organisation_cannot_be_required_or_proposed(
    service: Service,
) -> None:
    async with await service.client("staff", tenant="eurasante") as other:
        secret = await create_org(other, "Secret SAS", country="FR", kind="sme")
    async with await service.client("staff", tenant="biocat") as http:
        await _members(http)
        missing = await http.post(
            "/v1/consortia/suggest", json=_request(must_include=[secret["id"]])
        )
        assert missing.status_code == 404
        found = await http.post("/v1/consortia/suggest", json=_request())
        assert found.status_code == 200
        for consortium in found.json()["consortia"]:
            assert all(m["organisation"]["name"] != "Secret SAS" for m in consortium["members"])


async def test_bad_or_oversized_requests_are_422_and_change_nothing(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as http:
        await _members(http)
        before = await count_orgs(http)
        for body in (
            {"call": "x"},
            {"call": CALL, "rules": {"min_size": 5, "max_size": 3}},
            {"call": CALL, "rules": {"max_size": 500}},
            {"call": CALL, "pool_size": 10_000},
            {"call": CALL, "time_limit_s": 3600},
            {"call": CALL, "alternatives": 50},
            {"call": CALL, "rules": {"roles": [{"kind": "sme"}, {"kind": "sme"}]}},
            {"call": CALL, "rules": {"must_include": [0]}},
            {"call": CALL, "countries": ["Atlantis"]},
            {"call": CALL, "surprise": True},
            {"call": "a\u0000b"},
        ):
            response = await http.post("/v1/consortia/suggest", json=body)
            assert response.status_code == 422, body
            assert response.headers["content-type"] == "application/problem+json"
        assert await count_orgs(http) == before
    async with await service.client("organiser", tenant="biocat") as organiser:
        assert (await organiser.post("/v1/consortia/suggest", json=_request())).status_code == 403
