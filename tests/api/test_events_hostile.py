"""Hostile values in every field of every event body, against a real event: always a 4xx
problem (or a success where the text is legitimate), never a 5xx."""

from __future__ import annotations

import json
import math
from typing import Any

from tests.api.test_events import FUTURE_DAY, TENANT, make_world, meet
from tests.conftest import Service

HOSTILE: list[Any] = [
    10**40,
    -1,
    0,
    math.nan,
    "a\x00b",
    "\ud800",
    "x" * 100_000,
    "' OR '1'='1'; --",
    {"$gt": ""},
    [[[[1]]]],
    None,
    True,
    "",
]


def _variants(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in body:
        for value in HOSTILE:
            out.append({**body, key: value})
    return out


async def test_hostile_event_bodies_never_cause_5xx(service: Service) -> None:
    async with await service.client("organiser", tenant=TENANT) as organiser:
        world = await make_world(service, organiser, FUTURE_DAY)
        eid = world.event["id"]
        pid = world.participants["lab"]
        session_id = world.event["sessions"][0]["id"]
        accepted = await meet(service, world, "wear", "clinic")
        routes: list[tuple[str, str, dict[str, Any]]] = [
            ("PATCH", f"/v1/events/{eid}", {"name": "x", "timezone": "Europe/Madrid"}),
            (
                "POST",
                f"/v1/events/{eid}/sessions",
                {
                    "items": [
                        {
                            "name": "S",
                            "date": FUTURE_DAY,
                            "start": "15:00",
                            "end": "16:00",
                            "slot_minutes": 20,
                        }
                    ]
                },
            ),
            ("POST", f"/v1/events/{eid}/places", {"items": [{"name": "P", "capacity": 4}]}),
            (
                "PATCH",
                f"/v1/events/{eid}/participants/{pid}",
                {
                    "group": "seller",
                    "availability": [{"session_id": session_id}],
                    "max_meetings": 3,
                    "must_meet": [],
                },
            ),
            ("POST", f"/v1/events/{eid}/participants/csv", {"csv": "organisation_id\n"}),
            (
                "POST",
                f"/v1/events/{eid}/requests",
                {
                    "to_participant_id": world.participants["hosp"],
                    "from_participant_id": pid,
                    "message": "hi",
                },
            ),
            (
                "POST",
                f"/v1/events/{eid}/requests/{accepted['id']}/decline",
                {"message": "no"},
            ),
            ("POST", f"/v1/events/{eid}/schedule", {"time_limit_s": 1, "compare_fcfs": True}),
            (
                "POST",
                f"/v1/events/{eid}/meetings/{accepted['meeting_id']}/feedback",
                {"outcome": "knowledge_gain", "participant_id": pid, "comment": "c"},
            ),
        ]
        failures = []
        for method, path, body in routes:
            for variant in _variants(body):
                response = await organiser.request(
                    method,
                    path,
                    content=_json(variant),
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code >= 500:
                    failures.append(f"{method} {path} {str(variant)[:120]}: {response.status_code}")
        for query in ("limit=0", "limit=10000000000", "offset=-1", "status=evil", "group=%00"):
            response = await organiser.get(f"/v1/events/{eid}/requests?{query}")
            if response.status_code >= 500:
                failures.append(f"GET requests?{query}: {response.status_code}")
        assert failures == []
        # The event still reads back whole.
        assert (await organiser.get(f"/v1/events/{eid}")).status_code == 200


def _json(body: dict[str, Any]) -> bytes:
    """JSON with NaN and lone surrogates kept, as a hostile client would send them."""
    return json.dumps(body, allow_nan=True, ensure_ascii=True).encode()
