"""Points in time: the store keeps the instant and hands it back in UTC, and every datetime the
API returns is RFC 3339 with an offset, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import select

from app.services.rerank import RunOptions, run_rerank
from app.store.database import Database
from app.store.network_models import NetworkInsightRun
from app.store.schema import upgrade_schema
from tests.api.helpers import create_org, link
from tests.api.test_events import FUTURE_DAY, make_world, meet
from tests.conftest import Service

# A date and a time of day (what JSON Schema's "date-time" format starts with), then what
# RFC 3339 requires after it: seconds, optional fraction, and an offset.
LOOKS_LIKE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
CEST = timezone(timedelta(hours=2))


def datetimes(document: Any, where: str = "") -> list[tuple[str, str]]:
    """(field path, value) of every string in a JSON document that looks like a datetime."""
    found: list[tuple[str, str]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            found += datetimes(value, f"{where}.{key}")
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += datetimes(value, f"{where}[{i}]")
    elif isinstance(document, str) and LOOKS_LIKE_DATETIME.match(document):
        found.append((where, document))
    return found


async def test_a_point_in_time_reads_back_as_the_same_instant_in_utc(store_url: str) -> None:
    db = Database(store_url)
    await upgrade_schema(db)
    written = datetime(2026, 11, 21, 12, 0, tzinfo=CEST)
    try:
        async with db.sessions() as session, session.begin():
            session.add(NetworkInsightRun(scope="cest", headline={}, created_at=written))
            session.add(
                NetworkInsightRun(scope="naive", headline={}, created_at=datetime(2026, 11, 21, 9))
            )
        async with db.read() as session:
            rows = dict(
                (
                    await session.execute(
                        select(NetworkInsightRun.scope, NetworkInsightRun.created_at)
                    )
                )
                .tuples()
                .all()
            )
            # Compared as instants in SQL too: 10:00 UTC is after 09:00 UTC, before 11:00 UTC.
            between = (
                await session.scalars(
                    select(NetworkInsightRun.scope).where(
                        NetworkInsightRun.created_at > datetime(2026, 11, 21, 11, 30, tzinfo=CEST),
                        NetworkInsightRun.created_at < datetime(2026, 11, 21, 11, 0, tzinfo=UTC),
                    )
                )
            ).all()
    finally:
        await db.dispose()
    assert rows["cest"] == written
    assert rows["cest"].tzinfo is UTC and rows["cest"].hour == 10
    assert rows["naive"] == datetime(2026, 11, 21, 9, tzinfo=UTC)
    assert rows["naive"].tzinfo is UTC
    assert between == ["cest"]


async def test_every_datetime_the_api_returns_has_an_offset(service: Service) -> None:
    responses: dict[str, Any] = {}

    async def read(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> Any:
        response = await http.request(method, url, **kwargs)
        assert response.status_code < 300, f"{method} {url}: {response.text}"
        responses[f"{method} {url}"] = response.json() if response.content else None
        return responses[f"{method} {url}"]

    async with await service.client("staff", tenant="biocat") as staff:
        a = await create_org(staff, "Alpha Diagnostics", offers=["pathology AI"])
        b = await create_org(staff, "Beta Clinic", seeks=["pathology AI"])
        await link(staff, a["id"], b["id"])
        person = await read(
            staff,
            "POST",
            "/v1/people",
            json={
                "full_name": "Ana Alpha",
                "organisation_id": a["id"],
                "legal_basis": "consent",
                "source": "registration form",
            },
        )
        await read(staff, "POST", f"/v1/people/{person['id']}/consent", json={"state": "given"})
        for url in (
            f"/v1/organisations/{a['id']}",
            "/v1/organisations",
            "/v1/collaborations",
            f"/v1/people/{person['id']}",
            "/v1/people",
            f"/v1/people/{person['id']}/export",
            f"/v1/organisations/{a['id']}/export",
            "/v1/audit",
        ):
            await read(staff, "GET", url)
        await read(staff, "DELETE", f"/v1/people/{person['id']}")

    async with await service.client("organiser", tenant="biocat") as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        event_id = world.event["id"]
        request = await meet(service, world, "lab", "hosp")
        await read(organiser, "POST", f"/v1/events/{event_id}/schedule", json={})
        await read(organiser, "POST", f"/v1/events/{event_id}/schedule/publish")
        for url in (
            f"/v1/events/{event_id}",
            f"/v1/events/{event_id}/requests/{request['id']}",
            f"/v1/events/{event_id}/participants",
            f"/v1/events/{event_id}/meetings",
            f"/v1/events/{event_id}/participants/{world.participants['lab']}/agenda",
        ):
            await read(organiser, "GET", url)

    report = await run_rerank(service.ctx, RunOptions(top_k=3))
    async with await service.client("admin") as admin:
        await read(admin, "GET", "/v1/rerank/runs")
        await read(admin, "GET", f"/v1/rerank/runs/{report.run_id}")
        await read(admin, "GET", f"/v1/organisations/{a['id']}/matches", params={"limit": 3})

    found = [
        (f"{request} {path}", value)
        for request, body in responses.items()
        for path, value in datetimes(body)
    ]
    without_offset = [(where, value) for where, value in found if not RFC3339.match(value)]
    assert without_offset == []
    # Not vacuous: the stored timestamps of every kind of record were among them.
    fields = {where.rsplit(".", 1)[-1] for where, _ in found}
    assert {
        "created_at",
        "updated_at",
        "consent_updated_at",
        "exported_at",
        "at",
        "responded_at",
        "generated_at",
        "published_at",
        "started_at",
        "finished_at",
        "computed_at",
    } <= fields
