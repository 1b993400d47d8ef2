"""Writes made with the ``multihelix`` command line are in the audit log like API writes: actor
``cli`` (no key), the command as path, the outcome as status, ids only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.services.keys import verify_api_key
from app.store import models as m
from app.store.database import Database
from app.store.privacy_models import AuditEntry
from scripts import cli

ENTRY_FIELDS = ("actor_key_id", "actor_role", "action", "method", "path", "status")


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment: this store, the hashing encoder, no demo data."""
    monkeypatch.setenv("MULTIHELIX_DATABASE_URL", store_url)
    monkeypatch.setenv("MULTIHELIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MULTIHELIX_ENCODER", "hashing")
    monkeypatch.setenv("MULTIHELIX_LOAD_DEMO_DATA", "false")
    return store_url


def entries(store_url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = Database(store_url)
        try:
            async with db.read() as session:
                rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
        finally:
            await db.dispose()
        return [{c.name: getattr(r, c.name) for c in AuditEntry.__table__.columns} for r in rows]

    return asyncio.run(read())


def count(store_url: str, model: Any) -> int:
    async def read() -> int:
        db = Database(store_url)
        try:
            async with db.read() as session:
                return int(await session.scalar(select(func.count()).select_from(model)) or 0)
        finally:
            await db.dispose()

    return asyncio.run(read())


def is_valid_key(store_url: str, key: str) -> bool:
    async def check() -> bool:
        db = Database(store_url)
        try:
            return await verify_api_key(db, key) is not None
        finally:
            await db.dispose()

    return asyncio.run(check())


def test_creating_and_revoking_keys_is_audited(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--role", "staff", "--tenant", "biocat"]) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert is_valid_key(store, key)
    (created,) = entries(store)
    assert {f: created[f] for f in ENTRY_FIELDS} == {
        "actor_key_id": None,
        "actor_role": "cli",
        "action": "write",
        "method": "CLI",
        "path": "multihelix keys create",
        "status": 201,
    }
    assert created["subject_kind"] == "api_key" and created["subject_id"] is not None
    assert created["tenant"] == "biocat"  # so the cluster's staff see their new key
    assert created["at"].tzinfo is not None

    # Reads are not writes.
    assert cli.main(["keys", "list"]) == 0
    assert len(entries(store)) == 1

    prefix = key.split("_")[1]
    assert cli.main(["keys", "revoke", prefix]) == 0
    assert not is_valid_key(store, key)
    revoked = entries(store)[-1]
    assert (revoked["path"], revoked["status"], revoked["actor_role"]) == (
        "multihelix keys revoke",
        200,
        "cli",
    )
    assert (revoked["subject_kind"], revoked["subject_id"]) == ("api_key", created["subject_id"])
    assert revoked["tenant"] == "biocat"
    # The log holds ids, never the key or its prefix.
    assert prefix not in json.dumps(entries(store), default=str)


def test_refused_key_writes_are_audited_and_change_nothing(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "create", "--role", "staff"]) == 1  # a staff key needs a tenant
    assert cli.main(["keys", "create", "--role", "member", "--organisation", "999"]) == 1
    assert cli.main(["keys", "revoke", "deadbeef"]) == 1
    assert "failed" in capsys.readouterr().err
    assert count(store, m.ApiKey) == 0
    assert [(e["path"], e["status"], e["actor_role"], e["subject_id"]) for e in entries(store)] == [
        ("multihelix keys create", 422, "cli", None),
        ("multihelix keys create", 404, "cli", None),
        ("multihelix keys revoke", 404, "cli", None),
    ]


def test_an_import_is_audited_once_per_run(store: str, tmp_path: Path) -> None:
    data = tmp_path / "members.json"
    data.write_text(
        json.dumps(
            {
                "organisations": [
                    {
                        "key": key,
                        "name": f"Imported {key}",
                        "kind": "sme",
                        "sectors": ["diagnostics"],
                        "country": "ES",
                        "external_ids": {"pic": pic},
                    }
                    for key, pic in (("a", "999000001"), ("b", "999000002"))
                ],
                "collaborations": [
                    {"kind": "project", "reference": "GA-1", "participants": ["a", "b"]}
                ],
            }
        )
    )
    assert cli.main(["import", str(data)]) == 0
    assert count(store, m.Organisation) == 2
    assert cli.main(["import", str(data)]) == 0  # nothing new: everything is reused
    assert count(store, m.Organisation) == 2
    rows = entries(store)
    assert [(e["path"], e["status"], e["subject_kind"]) for e in rows] == [
        ("multihelix import", 201, "organisation"),
        ("multihelix import", 200, "organisation"),
    ]
    assert {e["actor_role"] for e in rows} == {"cli"}
    assert {e["method"] for e in rows} == {"CLI"}
    # Only ids and codes: not the file's path nor the organisations' names.
    dumped = json.dumps(rows, default=str)
    assert "members.json" not in dumped and "Imported" not in dumped
