"""Partner matches and search through the HTTP API (hashing encoder: behaviour, not quality)."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_org, link


async def test_matches_leave_out_self_and_existing_partners(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me", seeks=["GMP manufacturing of viral vectors"])
    partner = await create_org(client, "Old partner", offers=["GMP manufacturing of viral vectors"])
    other = await create_org(client, "Stranger", offers=["GMP manufacturing of viral vectors"])
    await link(client, me["id"], partner["id"])

    items = (await client.get(f"/v1/organisations/{me['id']}/matches")).json()["items"]
    ids = [m["organisation"]["id"] for m in items]
    assert me["id"] not in ids and partner["id"] not in ids
    assert other["id"] in ids

    with_existing = (
        await client.get(f"/v1/organisations/{me['id']}/matches", params={"include_existing": True})
    ).json()["items"]
    flagged = {m["organisation"]["id"]: m["is_existing_partner"] for m in with_existing}
    assert flagged[partner["id"]] is True and flagged[other["id"]] is False


async def test_match_items_carry_score_components_and_reasons(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Seeker", seeks=["clinical validation site for a diagnostic"])
    hub = await create_org(client, "Hospital hub", kind="hospital_or_care_provider", country="SE")
    cand = await create_org(
        client,
        "Validator",
        country="SE",
        sectors=["medtech"],
        offers=["clinical validation site for a diagnostic"],
    )
    await link(client, me["id"], hub["id"])
    await link(client, hub["id"], cand["id"])

    body = (await client.get(f"/v1/organisations/{me['id']}/matches")).json()
    assert body["organisation_id"] == me["id"] and body["model_version"]
    top = body["items"][0]
    assert top["organisation"]["id"] == cand["id"]
    assert 0 <= top["score"] <= 1
    c = top["components"]
    assert c["hop_distance"] == 2 and c["common_partners"] == 1
    assert c["offer_fit"] > 0.9 and c["cross_country"] is True and c["cross_sector"] is True
    text = " ".join(top["explanation"])
    assert "clinical validation site for a diagnostic" in text
    assert "via Hospital hub" in text
    assert "Different country (Sweden vs Spain)" in text


async def test_org_without_text_gets_graph_suggestions(client: httpx.AsyncClient) -> None:
    bare = await create_org(client, "No text at all")
    mid = await create_org(client, "Middle")
    far = await create_org(client, "Two hops")
    await link(client, bare["id"], mid["id"])
    await link(client, mid["id"], far["id"])
    items = (await client.get(f"/v1/organisations/{bare['id']}/matches")).json()["items"]
    assert items[0]["organisation"]["id"] == far["id"]
    assert items[0]["components"]["text_similarity"] == 0


async def test_org_without_links_gets_text_suggestions(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Loner", seeks=["probiotic functional food trials"])
    good = await create_org(client, "Food lab", offers=["probiotic functional food trials"])
    await create_org(client, "Unrelated", offers=["veterinary vaccines for poultry"])
    items = (await client.get(f"/v1/organisations/{me['id']}/matches")).json()["items"]
    assert items[0]["organisation"]["id"] == good["id"]
    assert items[0]["components"]["hop_distance"] is None


async def test_filters_restrict_candidates(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me")
    for country, kind, maturity in [("DK", "sme", 7), ("DK", "university", None), ("FR", "sme", 3)]:
        await create_org(client, f"{country} {kind}", country=country, kind=kind, maturity=maturity)
    url = f"/v1/organisations/{me['id']}/matches"
    dk = (await client.get(url, params={"country": "dk"})).json()["items"]
    assert {m["organisation"]["country"] for m in dk} == {"DK"}
    unis = (await client.get(url, params={"kind": "university"})).json()["items"]
    assert [m["organisation"]["name"] for m in unis] == ["DK university"]
    mature = (await client.get(url, params={"min_maturity": 5})).json()["items"]
    assert [m["organisation"]["name"] for m in mature] == ["DK sme"]


async def test_limit_is_capped_and_unknown_org_is_404(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me")
    assert (
        await client.get(f"/v1/organisations/{me['id']}/matches", params={"limit": 101})
    ).status_code == 422
    assert (await client.get("/v1/organisations/424242/matches")).status_code == 404


async def test_diversity_spreads_countries(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me", country="IT", seeks=["GMP manufacturing of viral vectors"])
    for i in range(6):
        await create_org(
            client, f"FR {i}", country="FR", offers=["GMP manufacturing of viral vectors"]
        )
    await create_org(
        client, "DE", country="DE", offers=["GMP manufacturing of viral vector batches"]
    )
    url = f"/v1/organisations/{me['id']}/matches"
    plain = (await client.get(url, params={"limit": 3, "diversity": 0})).json()["items"]
    spread = (await client.get(url, params={"limit": 3, "diversity": 1})).json()["items"]
    assert {m["organisation"]["country"] for m in plain} == {"FR"}
    assert "DE" in {m["organisation"]["country"] for m in spread}


async def test_cross_preference_lifts_other_countries(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me", country="ES", seeks=["pharmacovigilance services"])
    await create_org(client, "Local", country="ES", offers=["pharmacovigilance services"])
    foreign = await create_org(
        client, "Foreign", country="IE", offers=["pharmacovigilance services"]
    )
    url = f"/v1/organisations/{me['id']}/matches"
    neutral = (await client.get(url, params={"cross_preference": 0, "diversity": 0})).json()
    keen = (await client.get(url, params={"cross_preference": 1, "diversity": 0})).json()
    score = lambda body: {m["organisation"]["id"]: m["score"] for m in body["items"]}  # noqa: E731
    assert score(keen)[foreign["id"]] > score(neutral)[foreign["id"]]
    assert keen["items"][0]["organisation"]["id"] == foreign["id"]


async def test_search_ranks_by_text_and_named_country(client: httpx.AsyncClient) -> None:
    es = await create_org(client, "ES AI", country="ES", offers=["AI diagnostics for radiology"])
    await create_org(client, "FR AI", country="FR", offers=["AI diagnostics for radiology"])
    await create_org(client, "Food", country="ES", offers=["functional food ingredients"])
    response = await client.post(
        "/v1/search", json={"text": "AI diagnostics for radiology partner in Spain"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["interpreted_countries"] == ["ES"]
    assert body["items"][0]["organisation"]["id"] == es["id"]


async def test_search_on_behalf_leaves_out_own_partners(client: httpx.AsyncClient) -> None:
    me = await create_org(client, "Me")
    mine = await create_org(client, "Mine", offers=["cell therapy manufacturing"])
    other = await create_org(client, "Other", offers=["cell therapy manufacturing"])
    await link(client, me["id"], mine["id"])
    body = (
        await client.post(
            "/v1/search", json={"text": "cell therapy manufacturing", "on_behalf_of": me["id"]}
        )
    ).json()
    ids = [m["organisation"]["id"] for m in body["items"]]
    assert other["id"] in ids and mine["id"] not in ids and me["id"] not in ids
