"""Constrained codes in the OpenAPI schema: wherever the API accepts a slug (clusters, event
groups) the schema publishes its pattern, and the pattern accepts exactly what the API does."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.api.helpers import count_orgs, org_body

SLUG_FIELDS = {"cluster", "clusters", "group", "groups", "allowed_pairs"}
# Accepted and refused codes, some only by case or by a look-alike letter (KELVIN SIGN).
SAMPLES = ["biocat", "BioCat", "a.b_c-d", "x" * 80, "x" * 81, "-x", "_x", "x y", "ä", "\u212a"]


def _strings(schema: Any) -> list[dict[str, Any]]:
    """The string schemas inside a property schema (items, anyOf branches, tuple items)."""
    if not isinstance(schema, dict):
        return []
    if schema.get("type") == "string":
        return [schema]
    found = []
    for key in ("items", "anyOf", "prefixItems"):
        value = schema.get(key)
        for part in value if isinstance(value, list) else [value]:
            found += _strings(part)
    return found


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        own = {schema["$ref"].rsplit("/", 1)[-1]} if "$ref" in schema else set()
        return own.union(*(_refs(v) for v in schema.values()))
    if isinstance(schema, list):
        return set().union(*(_refs(v) for v in schema))
    return set()


async def slug_inputs(http: httpx.AsyncClient) -> dict[str, list[dict[str, Any]]]:
    """Every slug-named query parameter and request-body property, with its string schemas."""
    spec = (await http.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    found: dict[str, list[dict[str, Any]]] = {}
    bodies: set[str] = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] in SLUG_FIELDS:
                    where = f"{method.upper()} {path} ?{parameter['name']}"
                    found[where] = _strings(parameter["schema"])
            bodies |= _refs(operation.get("requestBody", {}))
    while True:  # the models those bodies contain, too
        more = set().union(*(_refs(components[name]) for name in bodies)) - bodies
        if not more:
            break
        bodies |= more
    for name in sorted(bodies):
        for field, schema in components[name].get("properties", {}).items():
            if field in SLUG_FIELDS:
                found[f"{name}.{field}"] = _strings(schema)
    return found


async def test_every_slug_input_publishes_its_pattern(client: httpx.AsyncClient) -> None:
    inputs = await slug_inputs(client)
    # Query filters and the bodies of organisations, search, consortia and events.
    assert len(inputs) >= 10, sorted(inputs)
    unpublished = [
        where
        for where, strings in inputs.items()
        if not strings or any("pattern" not in s for s in strings)
    ]
    assert unpublished == []


async def test_the_published_pattern_accepts_exactly_what_the_api_accepts(
    client: httpx.AsyncClient,
) -> None:
    inputs = await slug_inputs(client)
    (pattern,) = {s["pattern"] for strings in inputs.values() for s in strings}
    published = re.compile(pattern)
    disagreements = []
    for code in SAMPLES:
        expected = published.search(code) is not None
        listed = await client.get("/v1/organisations", params={"cluster": code})
        created = await client.post("/v1/organisations", json=org_body("X", clusters=[code]))
        if (listed.status_code == 200) != expected or (created.status_code == 201) != expected:
            disagreements.append((code, expected, listed.status_code, created.status_code))
        elif expected:
            assert created.json()["clusters"] == [code.lower()]
    assert disagreements == []
    assert await count_orgs(client) == sum(1 for c in SAMPLES if published.search(c))


@pytest.mark.parametrize("code", ["BioCat", " biocat "])
async def test_slugs_are_stored_lower_case_and_trimmed(
    client: httpx.AsyncClient, code: str
) -> None:
    created = await client.post("/v1/organisations", json=org_body("X", clusters=[code]))
    assert created.status_code == 201, created.text
    assert created.json()["clusters"] == ["biocat"]
    found = await client.get("/v1/organisations", params={"cluster": code})
    assert found.json()["total"] == 1
