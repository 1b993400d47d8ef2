"""Network map, insights and the interactive page through the HTTP API."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from app.store.network_models import NetworkInsightRun
from tests.api.helpers import create_org, link
from tests.conftest import Service


async def _network(service: Service) -> dict[str, dict[str, object]]:
    """Spain and France joined by one bridge (Bridge SL); Biocat's own SME; Eurasanté's
    own organisation linked to the bridge; one isolated member."""
    orgs: dict[str, dict[str, object]] = {}
    async with await service.client("admin") as admin:
        for name, country, kind in [
            ("Hospital Norte", "ES", "hospital_or_care_provider"),
            ("Uni Sud", "ES", "university"),
            ("Bridge SL", "ES", "sme"),
            ("CHU Lille", "FR", "hospital_or_care_provider"),
            ("Université Nord", "FR", "university"),
            ("Lonely Oy", "FI", "sme"),
        ]:
            orgs[name] = await create_org(admin, name, country=country, kind=kind)
    async with await service.client("staff", tenant="biocat") as biocat:
        orgs["Biocat SME"] = await create_org(biocat, "Biocat SME", sectors=["medtech"])
    async with await service.client("staff", tenant="eurasante") as eurasante:
        orgs["Secret SAS"] = await create_org(eurasante, "Secret SAS", country="FR")
    ids = {name: int(o["id"]) for name, o in orgs.items()}  # type: ignore[call-overload]
    async with await service.client("admin") as admin:
        await link(admin, ids["Hospital Norte"], ids["Uni Sud"], ids["Bridge SL"])
        await link(admin, ids["Bridge SL"], ids["CHU Lille"])
        await link(admin, ids["CHU Lille"], ids["Université Nord"])
        await link(admin, ids["Biocat SME"], ids["Uni Sud"])
        await link(admin, ids["Secret SAS"], ids["Bridge SL"])
    return orgs


async def test_map_json_shows_what_the_staff_key_can_see(service: Service) -> None:
    orgs = await _network(service)
    async with await service.client("staff", tenant="biocat") as http:
        response = await http.get("/v1/network/map", params={"format": "json", "suggested": 5})
        assert response.status_code == 200
        body = response.json()
    names = {n["label"] for n in body["nodes"]}
    assert "Biocat SME" in names and "Secret SAS" not in names  # another cluster's record
    assert body["organisations"] == 7 and body["links_total"] == 6  # its link hidden too
    assert {g["label"] for g in body["groups"]} == {"Spain", "France", "Finland"}
    bridge = next(n for n in body["nodes"] if n["label"] == "Bridge SL")
    assert bridge["organisation_id"] == orgs["Bridge SL"]["id"] and bridge["partners"] == 3
    for suggestion in body["suggested"]:
        assert suggestion["reason"].startswith("Suggested for ")


async def test_map_pictures_and_filters(service: Service) -> None:
    await _network(service)
    async with await service.client("staff", tenant="biocat") as http:
        svg = await http.get("/v1/network/map", params={"country": "fr"})
        assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
        text = svg.text
        assert "France (2)" in text and "Spain" not in text
        png = await http.get(
            "/v1/network/map", params={"format": "png", "group_by": "kind", "color_by": "kind"}
        )
        assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        by_cluster = await http.get(
            "/v1/network/map", params={"format": "json", "group_by": "cluster"}
        )
        assert {g["label"] for g in by_cluster.json()["groups"]} == {"(no cluster)"}


async def test_insights_find_the_bridge_and_report_change_since_the_last_run(
    service: Service,
) -> None:
    orgs = await _network(service)
    async with await service.client("staff", tenant="biocat") as http:
        first = (await http.get("/v1/network/insights")).json()
        assert first["headline"]["organisations"] == 7
        assert first["headline"]["isolated"] == 1
        assert first["bridges"][0]["organisation"]["name"] == "Bridge SL"
        assert first["bridges"][0]["countries_reached"] == 2
        assert [o["name"] for o in first["isolated"]] == ["Lonely Oy"]
        assert first["countries"]["labels"] == ["Spain", "Finland", "France"]
        assert first["change"]["previous_run_at"] is None
        assert first["method"]["exact"] is True

        await link(http, orgs["Biocat SME"]["id"], orgs["Lonely Oy"]["id"])  # type: ignore[arg-type]
        second = (await http.get("/v1/network/insights")).json()
        assert second["change"]["deltas"]["links"] == 1
        assert second["change"]["deltas"]["isolated"] == -1
        assert "1 more links" in " ".join(second["change"]["summary"])

    # Another cluster's staff has its own history and sees its own organisation.
    async with await service.client("staff", tenant="eurasante") as other:
        theirs = (await other.get("/v1/network/insights", params={"record": False})).json()
        assert theirs["change"]["previous_run_at"] is None
        assert theirs["headline"]["organisations"] == 7
    async with service.ctx.db.read() as session:
        runs = await session.scalar(select(func.count()).select_from(NetworkInsightRun))
    assert runs == 2  # the unrecorded run left nothing behind


async def test_network_routes_need_a_staff_key(service: Service) -> None:
    async with await service.client("admin") as admin:
        own = await create_org(admin, "Member org")
    for role, tenant, org in (("member", None, own["id"]), ("organiser", "biocat", None)):
        async with await service.client(role, tenant=tenant, organisation_id=org) as http:
            assert (await http.get("/v1/network/map")).status_code == 403
            assert (await http.get("/v1/network/insights")).status_code == 403
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi), base_url="http://test"
    ) as anonymous:
        assert (await anonymous.get("/v1/network/map")).status_code == 401


async def test_bad_map_parameters_are_422_and_record_nothing(service: Service) -> None:
    async with await service.client("staff", tenant="biocat") as http:
        for params in (
            {"format": "gif"},
            {"max_nodes": 10_000},
            {"suggested": -1},
            {"country": "Spain"},
            {"sector": "rocket-science"},
        ):
            response = await http.get("/v1/network/map", params=params)
            assert response.status_code == 422, params
            assert response.headers["content-type"] == "application/problem+json"
        assert (await http.get("/v1/network/insights", params={"top": 0})).status_code == 422
    async with service.ctx.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(NetworkInsightRun)) == 0


async def test_map_page_is_public_and_serves_only_its_own_files(service: Service) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi), base_url="http://test"
    ) as browser:
        page = await browser.get("/map")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/map/assets/map.js" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        script = await browser.get("/map/assets/map.js")
        assert script.status_code == 200 and "sessionStorage" in script.text
        for name in ("map.html", "..%2Fmap.html", "settings.py", "vendor"):
            assert (await browser.get(f"/map/assets/{name}")).status_code == 404
