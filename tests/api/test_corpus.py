"""A fixed corpus of hostile input against every route of the app: huge numbers, NaN and
Infinity, NUL bytes, lone surrogates, 1 MB strings, deep JSON, wrong types and content types,
SQL and script injection, in every path parameter, query parameter and body field.

Expected: a 4xx problem, never a 5xx, and no row added or changed. The only exception is text
that is legitimate in a free-text field (an injection string is a valid name): it may be
accepted, is then stored verbatim, and must not have been executed.
"""

from __future__ import annotations

import copy
import importlib
import itertools
import json
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from app.main import create_app
from app.services.keys import create_api_key
from app.store.models import Base
from embeddings import Encoder
from tests.conftest import Service, make_settings

STORE = Path(__file__).resolve().parents[2] / "app" / "store"
# Rows these tables gain from a rejected request are bookkeeping, not stored input.
BOOKKEEPING = {"audit_log", "api_keys", "idempotency_records"}

SQL = "' OR '1'='1'; DROP TABLE organisations; --"
SCRIPT = "<script>alert(1)</script>"
MEGABYTE = "x" * 1_000_000


@dataclass(frozen=True)
class Hostile:
    """One hostile value: as a JSON value, and as a raw (already percent-encoded) URL part."""

    name: str
    json_value: Any
    url_value: str
    valid_text: bool = False  # legitimate content of a free-text field or parameter


CORPUS = [
    Hostile("huge-int", 10**40, str(10**40)),
    Hostile("minus-huge-int", -(10**40), str(-(10**40))),
    Hostile("int64-overflow", 2**63, str(2**63)),
    Hostile("nan", math.nan, "NaN"),
    Hostile("infinity", math.inf, "Infinity"),
    Hostile("minus-infinity", -math.inf, "-Infinity"),
    Hostile("float-overflow", 1e308, "1e400"),
    Hostile("nul-byte", "a\x00b", "a%00b"),
    Hostile("lone-surrogate", "\ud800", "%ED%A0%80"),
    # httpx refuses URLs over 64 KiB (servers answer 414 long before): 60 000 characters there.
    Hostile("megabyte", MEGABYTE, "x" * 60_000),
    Hostile("sql-injection", SQL, quote(SQL, safe=""), valid_text=True),
    Hostile("script-injection", SCRIPT, quote(SCRIPT, safe=""), valid_text=True),
    Hostile("object", {"$gt": ""}, "%7B%22%24gt%22%3A%22%22%7D"),
    Hostile("deep-list", [[[[[[[[[[1]]]]]]]]]], "%5B%5B%5B1%5D%5D%5D"),
]
# In the URL a lone surrogate arrives as invalid UTF-8, which is decoded with replacement
# characters: harmless text. The others stay invalid for any typed parameter.
URL_TEXT_OK = {"huge-int", "minus-huge-int", "int64-overflow", "nan", "infinity",
               "minus-infinity", "float-overflow", "lone-surrogate", "sql-injection",
               "script-injection", "object", "deep-list"}  # fmt: skip
PATH_EXTRA = [
    Hostile("zero", 0, "0"),
    Hostile("negative", -1, "-1"),
    Hostile("fraction", 1.5, "1.5"),
    Hostile("nul-only", "\x00", "%00"),
]


@dataclass(frozen=True)
class WholeBody:
    name: str
    content: bytes
    content_type: str | None


WHOLE_BODIES = [
    WholeBody("deep-json", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    WholeBody("deep-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
    WholeBody("truncated-json", b'{"name": ', "application/json"),
    WholeBody("not-utf8", b"\xff\xfe\x00garbage", "application/json"),
    WholeBody("empty", b"", "application/json"),
    WholeBody("json-array", b"[]", "application/json"),
    WholeBody("json-string", b'"text"', "application/json"),
    WholeBody("raw-nan", b"NaN", "application/json"),
    WholeBody("lone-surrogate-escape", b'{"name": "\\ud800"}', "application/json"),
    WholeBody("text-plain", b'{"name": "x"}', "text/plain"),
    WholeBody("form", b"name=x&kind=sme", "application/x-www-form-urlencoded"),
    WholeBody("xml", b"<organisation><name>x</name></organisation>", "application/xml"),
    WholeBody("multipart", b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    WholeBody("no-content-type", b'{"name": "x"}', None),
    WholeBody("three-megabytes", b'{"name": "' + b"x" * 3_000_000 + b'"}', "application/json"),
]


@dataclass
class Operation:
    method: str
    path: str
    spec: dict[str, Any]


@pytest.fixture
async def corpus_service(
    store_url: str, tmp_path: Path, hashing_encoder: Encoder
) -> AsyncIterator[Service]:
    settings = make_settings(store_url, tmp_path, rate_limit_per_second=0)
    app = create_app(settings, encoder=hashing_encoder)
    async with LifespanManager(app, startup_timeout=120) as manager:
        yield Service(app, manager.app)


async def test_hostile_input_on_every_route_is_4xx_and_stores_nothing(
    corpus_service: Service,
) -> None:
    for module in sorted(STORE.glob("*_models.py")):
        importlib.import_module(f"app.store.{module.stem}")
    created = await create_api_key(corpus_service.ctx.db, role="admin")
    # A 5xx is a finding to report with the others, not an exception that ends the walk.
    transport = httpx.ASGITransport(app=corpus_service.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://test",
        headers={"Authorization": f"Bearer {created.key}"},
        timeout=60,
    ) as http:
        walker = Walker(corpus_service, http)
        await walker.seed()
        schema = (await http.get("/openapi.json")).json()
        operations = [
            Operation(method.upper(), path, spec)
            for path, methods in schema["paths"].items()
            for method, spec in methods.items()
        ]
        walker.schema = schema
        for operation in operations:
            await walker.attack(operation)
    print(f"{walker.requests} hostile requests to {len(operations)} operations")
    report = "\n".join(walker.failures[:200])
    assert walker.failures == [], f"{len(walker.failures)} problems:\n{report}"
    # Every operation of the schema was attacked, and the corpus reached each of them.
    assert {f"{o.method} {o.path}" for o in operations} == walker.attacked
    assert walker.requests > 20 * len(operations)


class Walker:
    """Sends the corpus to each operation and notes every answer that breaks the rules."""

    def __init__(self, service: Service, http: httpx.AsyncClient) -> None:
        self.service = service
        self.http = http
        self.schema: dict[str, Any] = {}
        self.failures: list[str] = []
        self.attacked: set[str] = set()
        self.requests = 0
        self.ids: dict[str, int] = {}

    async def seed(self) -> None:
        """A few organisations and a collaboration, so attacks reach existing objects."""
        orgs = []
        for i, country in enumerate(("ES", "FR", "SE")):
            response = await self.http.post(
                "/v1/organisations",
                json={
                    "name": f"Corpus {i}",
                    "kind": "sme",
                    "sectors": ["diagnostics"],
                    "country": country,
                    "description": "an organisation the corpus aims at",
                    "offers": ["imaging"],
                    "seeks": ["partners"],
                },
            )
            assert response.status_code == 201, response.text
            orgs.append(response.json()["id"])
        collab = await self.http.post(
            "/v1/collaborations",
            json={"kind": "project", "participants": [{"organisation_id": i} for i in orgs]},
        )
        assert collab.status_code == 201, collab.text
        self.ids = {"org_id": orgs[0], "collab_id": collab.json()["id"]}

    async def snapshot(self) -> dict[str, int]:
        counts = {}
        async with self.service.ctx.db.read() as session:
            for table in Base.metadata.sorted_tables:
                if table.name not in BOOKKEEPING:
                    counts[table.name] = int(
                        await session.scalar(select(func.count()).select_from(table)) or 0
                    )
        seeded = await self.http.get(f"/v1/organisations/{self.ids['org_id']}")
        counts["seeded organisation unchanged"] = hash(seeded.text)
        return counts

    async def attack(self, operation: Operation) -> None:
        label = f"{operation.method} {operation.path}"
        self.attacked.add(label)
        params = [self._resolve(p) for p in operation.spec.get("parameters", [])]
        path_params = [p for p in params if p["in"] == "path"]
        query_params = [p for p in params if p["in"] == "query"]
        body_schema = self._body_schema(operation)

        before = await self.snapshot()
        for param in path_params:
            for value in CORPUS + PATH_EXTRA:
                url = self._url(operation, path_params, {param["name"]: value.url_value})
                where = f"path {param['name']}={value.name}"
                base = self._base_body(body_schema)
                await self._expect(label, where, "reject", operation.method, url, body=base)
        # Requests that may legitimately succeed run after the check that nothing changed.
        inert: list[tuple[str, str, tuple[Any, ...], Any]] = []
        for param in query_params:
            free = self._is_free_text(param.get("schema", {}))
            for value in CORPUS:
                url = self._url(operation, path_params, {})
                url += f"?{param['name']}={value.url_value}"
                where = f"query {param['name']}={value.name}"
                base = self._base_body(body_schema)
                allowed = self._matches_pattern(param.get("schema", {}), unquote(value.url_value))
                if (free and value.name in URL_TEXT_OK) or allowed:
                    inert.append((where, url, (), base))
                    continue
                await self._expect(label, where, "reject", operation.method, url, body=base)
        if body_schema is not None:
            url = self._url(operation, path_params, {})
            optional = not operation.spec["requestBody"].get("required", False)
            for whole in WHOLE_BODIES:
                headers = {"content-type": whole.content_type} if whole.content_type else {}
                # No body at all is a valid request where the body is optional.
                if optional and whole.name == "empty":
                    continue
                await self._expect(
                    label,
                    f"body {whole.name}",
                    "reject",
                    operation.method,
                    url,
                    content=whole.content,
                    headers=headers,
                )
            base = self._base_body(body_schema) or {}
            for field_path, field_schema in self._fields(body_schema):
                free = self._is_free_text(field_schema)
                for value in CORPUS:
                    body = _with(base, field_path, value.json_value)
                    where = f"body {'.'.join(map(str, field_path))}={value.name}"
                    allowed = self._matches_pattern(field_schema, value.json_value)
                    if (free and value.valid_text) or allowed:
                        inert.append((where, url, field_path, body))
                        continue
                    await self._expect(label, where, "reject", operation.method, url, body=body)
        after = await self.snapshot()
        if after != before:
            changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
            self.failures.append(f"{label}: rejected requests changed the store: {changed}")
        # Legitimate text may be accepted; it must come back verbatim, never be executed.
        for where, url, field_path, body in inert:
            response = await self._send(operation.method, url, body=body)
            if response is None or response.status_code >= 500:
                status = "no answer" if response is None else response.status_code
                self.failures.append(f"{label} {where}: {status}")
                continue
            if not field_path:
                continue
            answer = _json(response) if response.is_success else None
            sent = _get(body, field_path)
            if isinstance(answer, dict) and len(field_path) == 1:
                echoed = answer.get(field_path[0], sent)
                if isinstance(echoed, str) and echoed != sent:
                    self.failures.append(f"{label} {where}: stored as {echoed[:80]!r}")
        if inert:
            counts = await self.snapshot()
            if counts.get("organisations", 0) < before.get("organisations", 0):
                self.failures.append(f"{label}: organisations disappeared after injection text")
            await self._ensure_seeded()

    async def _ensure_seeded(self) -> None:
        """Accepted injection text may have renamed or removed a seeded object: re-seed."""
        response = await self.http.get(f"/v1/organisations/{self.ids['org_id']}")
        collab = await self.http.get(f"/v1/collaborations/{self.ids['collab_id']}")
        if response.status_code != 200 or collab.status_code != 200:
            await self.seed()

    async def _expect(
        self,
        label: str,
        where: str,
        expectation: str,
        method: str,
        url: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        response = await self._send(method, url, body=body, content=content, headers=headers)
        if response is None:
            self.failures.append(f"{label} {where}: the request could not be sent")
            return
        status = response.status_code
        if status >= 500:
            self.failures.append(f"{label} {where}: {status} {response.text[:300]}")
        elif expectation == "reject" and not 400 <= status < 500:
            self.failures.append(f"{label} {where}: accepted with {status}")
        elif 400 <= status < 500 and not response.headers.get("content-type", "").startswith(
            "application/problem+json"
        ):
            self.failures.append(f"{label} {where}: {status} is not a problem document")

    async def _send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        self.requests += 1
        if content is None and body is not None:
            content = json.dumps(body, allow_nan=True).encode()
            headers = {"content-type": "application/json", **(headers or {})}
        try:
            return await self.http.request(method, url, content=content, headers=headers)
        except httpx.HTTPError:
            return None

    # -- schema helpers ------------------------------------------------------------------------

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            kind = node["$ref"].split("/")[2]
            node = self.schema["components"][kind][name]
        return node

    def _body_schema(self, operation: Operation) -> dict[str, Any] | None:
        content = operation.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return self._resolve(media["schema"]) if media else None

    def _base_body(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        """A plausible valid body: the model's first example, else its required fields."""
        if schema is None:
            return None
        examples = schema.get("examples") or ([schema["example"]] if "example" in schema else [])
        if examples:
            return copy.deepcopy(examples[0])
        return {name: "x" for name in schema.get("required", [])}

    def _fields(self, schema: dict[str, Any]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        """Body fields to attack: the top-level ones, and the fields of the first item of a
        list of objects (one level down), with their schemas."""
        out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for name, prop in schema.get("properties", {}).items():
            prop = self._resolve(prop)
            out.append(((name,), prop))
            for option in self._options(prop):
                if option.get("type") == "array":
                    items = self._resolve(option.get("items", {}))
                    if items.get("type") == "string" or "properties" not in items:
                        out.append(((name, 0), items))
                    for sub, sub_schema in items.get("properties", {}).items():
                        out.append(((name, 0, sub), self._resolve(sub_schema)))
                elif "properties" in option:
                    for sub, sub_schema in option["properties"].items():
                        out.append(((name, sub), self._resolve(sub_schema)))
        return out

    def _options(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        options = schema.get("anyOf") or schema.get("oneOf") or [schema]
        return [self._resolve(o) for o in options]

    def _is_free_text(self, schema: dict[str, Any]) -> bool:
        """A string that any text may fill: no enum, pattern or format."""
        for option in self._options(self._resolve(schema)):
            if option.get("type") == "array":
                option = self._resolve(option.get("items", {}))
            if option.get("type") == "string" and not (
                {"enum", "pattern", "format", "const"} & option.keys()
            ):
                return True
        return False

    def _matches_pattern(self, schema: dict[str, Any], value: Any) -> bool:
        """A string the schema's published pattern admits (e.g. "NaN" as a cluster slug): a
        valid value, so it may be accepted."""
        for option in self._options(self._resolve(schema)):
            if option.get("type") == "array":
                option = self._resolve(option.get("items", {}))
            pattern = option.get("pattern")
            if isinstance(value, str) and pattern and re.search(pattern, value):
                return True
        return False

    def _url(
        self, operation: Operation, path_params: list[dict[str, Any]], raw: dict[str, str]
    ) -> str:
        url = operation.path
        for param in path_params:
            name = param["name"]
            value = raw.get(name) or str(self.ids.get(name, 1))
            url = url.replace("{" + name + "}", value)
        return url


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # CSV, HTML, ... answers
        return None


def _get(body: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        body = body[step]
    return body


def _with(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the field at ``path`` set to ``value`` (lists grown as needed)."""
    out = copy.deepcopy(body)
    node: Any = out
    for step, following in itertools.pairwise(path):
        if isinstance(step, int):
            while len(node) <= step:
                node.append({} if isinstance(following, str) else "")
            if not isinstance(node[step], dict | list):
                node[step] = {} if isinstance(following, str) else []
        else:
            if not isinstance(node.get(step), dict | list):
                node[step] = [] if isinstance(following, int) else {}
        node = node[step]
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
    return out
