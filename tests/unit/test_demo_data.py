"""The demo data set loaded into an empty store: valid, complete and reproducible."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pycountry
import pytest

from scripts import make_demo_data

# The contract, restated here rather than imported, so a change to the generator's vocabulary
# cannot silently change what the test accepts.
KINDS = {
    "sme",
    "large_company",
    "university",
    "research_organisation",
    "hospital_or_care_provider",
    "public_body",
    "patient_organisation",
    "funder_or_investor",
    "cluster_or_science_park",
    "other",
}
SECTORS = {
    "pharma",
    "biotech",
    "medtech",
    "diagnostics",
    "ehealth",
    "ai_and_data",
    "nanohealth",
    "functional_food",
    "business_services",
    "digital_therapeutics",
    "cosmetics",
    "veterinary",
}
COLLABORATION_KINDS = {"project", "publication", "supply", "membership", "event_meeting", "other"}
ORGANISATION_FIELDS = {
    "key",
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
}
COLLABORATION_FIELDS = {"kind", "year", "weight", "reference", "title", "participants"}
KINDS_WITHOUT_TRL = {
    "patient_organisation",
    "funder_or_investor",
    "public_body",
    "cluster_or_science_park",
}


@pytest.fixture(scope="module")
def demo_bytes() -> bytes:
    return resources.files("app.demo").joinpath("organisations.json").read_bytes()


@pytest.fixture(scope="module")
def demo(demo_bytes: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(demo_bytes.decode("utf-8"))
    return data


@pytest.fixture(scope="module")
def organisations(demo: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = demo["organisations"]
    return result


@pytest.fixture(scope="module")
def collaborations(demo: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = demo["collaborations"]
    return result


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _partner_counts(demo: dict[str, Any]) -> dict[str, int]:
    partners: dict[str, set[str]] = {o["key"]: set() for o in demo["organisations"]}
    for collaboration in demo["collaborations"]:
        for key in collaboration["participants"]:
            partners[key].update(collaboration["participants"])
            partners[key].discard(key)
    return {key: len(value) for key, value in partners.items()}


def test_file_has_the_documented_shape(demo: dict[str, Any]) -> None:
    assert set(demo) == {"about", "organisations", "collaborations"}
    assert "fictional" in demo["about"].lower()
    for organisation in demo["organisations"]:
        assert set(organisation) == ORGANISATION_FIELDS, organisation["key"]
        assert organisation["external_ids"] == {"demo": organisation["key"]}
    for collaboration in demo["collaborations"]:
        assert set(collaboration) == COLLABORATION_FIELDS, collaboration["reference"]


def test_sizes_suit_a_demo_and_the_file_stays_small(
    demo_bytes: bytes, organisations: list[dict[str, Any]], collaborations: list[dict[str, Any]]
) -> None:
    assert 250 <= len(organisations) <= 350
    assert 250 <= len(collaborations) <= 400
    assert len(demo_bytes) < 1_000_000


def test_every_kind_and_every_sector_is_represented(organisations: list[dict[str, Any]]) -> None:
    assert {o["kind"] for o in organisations} == KINDS
    assert {s for o in organisations for s in o["sectors"]} == SECTORS


def test_fields_use_the_fixed_vocabularies(
    organisations: list[dict[str, Any]], collaborations: list[dict[str, Any]]
) -> None:
    for organisation in organisations:
        assert organisation["kind"] in KINDS
        sectors = organisation["sectors"]
        assert 1 <= len(sectors) <= 3 and len(set(sectors)) == len(sectors)
        assert set(sectors) <= SECTORS
        assert all(re.fullmatch(r"[a-z0-9-]+", slug) for slug in organisation["clusters"])
    assert {c["kind"] for c in collaborations} == COLLABORATION_KINDS


def test_keys_names_and_websites_are_unique(organisations: list[dict[str, Any]]) -> None:
    keys = [o["key"] for o in organisations]
    names = [o["name"] for o in organisations]
    websites = [o["website"] for o in organisations if o["website"] is not None]
    assert len(set(keys)) == len(keys)
    assert len(set(names)) == len(names)
    assert len(set(websites)) == len(websites)
    assert all(re.fullmatch(r"https://[a-z0-9-]+\.example", w) for w in websites)


def test_collaborations_reference_existing_organisations(
    organisations: list[dict[str, Any]], collaborations: list[dict[str, Any]]
) -> None:
    keys = {o["key"] for o in organisations}
    for collaboration in collaborations:
        participants = collaboration["participants"]
        assert len(set(participants)) == len(participants) >= 2, collaboration["reference"]
        assert set(participants) <= keys, collaboration["reference"]
    references = [c["reference"] for c in collaborations]
    assert len(set(references)) == len(references)


def test_collaboration_years_and_weights_are_plausible(
    collaborations: list[dict[str, Any]],
) -> None:
    for collaboration in collaborations:
        assert 2012 <= collaboration["year"] <= 2025
        assert 0.5 <= collaboration["weight"] <= 3.0
    supply = [c for c in collaborations if c["kind"] == "supply"]
    assert supply and all(len(c["participants"]) == 2 for c in supply)


def test_countries_are_iso_alpha2(organisations: list[dict[str, Any]]) -> None:
    for organisation in organisations:
        code = organisation["country"]
        assert len(code) == 2 and code.isupper(), code
        assert pycountry.countries.get(alpha_2=code) is not None, code


def test_maturity_is_a_trl_or_null(organisations: list[dict[str, Any]]) -> None:
    for organisation in organisations:
        maturity = organisation["maturity"]
        if organisation["kind"] in KINDS_WITHOUT_TRL:
            assert maturity is None, organisation["key"]
        elif maturity is not None:
            assert type(maturity) is int and 1 <= maturity <= 9, organisation["key"]
    assert any(o["maturity"] is not None for o in organisations)


def test_texts_are_clean_and_bounded(demo: dict[str, Any]) -> None:
    assert all("\x00" not in text for text in _strings(demo))
    for organisation in demo["organisations"]:
        assert 0 < len(organisation["name"]) <= 200
        assert len(organisation["offers"]) <= 4 and len(organisation["seeks"]) <= 4
        assert all(0 < len(text) <= 300 for text in organisation["offers"])
        assert all(0 < len(text) <= 300 for text in organisation["seeks"])
        description = organisation["description"]
        assert description is None or 0 < len(description) <= 2000
    for collaboration in demo["collaborations"]:
        assert 0 < len(collaboration["title"]) <= 300


def test_some_profiles_have_no_text_and_some_no_collaborations(
    demo: dict[str, Any], organisations: list[dict[str, Any]]
) -> None:
    textless = [o for o in organisations if not (o["description"] or o["offers"] or o["seeks"])]
    isolated = [key for key, count in _partner_counts(demo).items() if count == 0]
    assert 0.03 <= len(textless) / len(organisations) <= 0.08
    assert 0.07 <= len(isolated) / len(organisations) <= 0.13


def test_collaboration_graph_has_hubs(demo: dict[str, Any]) -> None:
    counts = sorted(_partner_counts(demo).values())
    assert counts[-1] >= 5 * statistics.median(counts)


def test_collaborations_are_mostly_regional_with_some_cross_border_consortia(
    demo: dict[str, Any],
) -> None:
    region_of = {o["key"]: (o["country"], o["region"]) for o in demo["organisations"]}
    country_of = {o["key"]: o["country"] for o in demo["organisations"]}
    collaborations = demo["collaborations"]
    regional = [c for c in collaborations if len({region_of[k] for k in c["participants"]}) == 1]
    consortia = [
        c
        for c in collaborations
        if len(c["participants"]) >= 5 and len({country_of[k] for k in c["participants"]}) >= 3
    ]
    assert len(regional) > len(collaborations) / 2
    assert len(consortia) >= 10


def test_seeks_find_offers_in_other_sectors_and_countries(
    organisations: list[dict[str, Any]],
) -> None:
    """Cross-sector, cross-border matches exist to be found (judged here by shared words)."""
    stop = {"with", "from", "that", "this", "into", "under", "their", "other", "partner"}

    def words(text: str) -> set[str]:
        return {w for w in re.findall(r"[a-z0-9-]+", text.lower()) if len(w) >= 4} - stop

    matched = 0
    for seeker in organisations:
        for seek in seeker["seeks"]:
            wanted = words(seek)
            matched += any(
                provider["country"] != seeker["country"]
                and not set(provider["sectors"]) & set(seeker["sectors"])
                and any(len(wanted & words(offer)) >= 2 for offer in provider["offers"])
                for provider in organisations
            )
    assert matched >= 50


def test_regenerating_yields_identical_bytes(demo_bytes: bytes, tmp_path: Path) -> None:
    output = tmp_path / "organisations.json"

    exit_code = make_demo_data.main(["--output", str(output), "--quiet"])

    assert exit_code == 0
    assert output.read_bytes() == demo_bytes
