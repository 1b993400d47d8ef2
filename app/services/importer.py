"""Importing organisations and collaborations from JSON/CSV files and from the H2020 benchmark.

Every record goes through the same validation models and services as the HTTP API. A file is
validated whole before anything is written, so a bad row changes nothing.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from app.errors import Unprocessable
from app.schemas.collaborations import CollaborationCreate
from app.schemas.organisations import OrganisationCreate
from app.services.collaborations import create_collaborations
from app.services.context import ServiceContext
from app.services.organisations import create_organisations
from app.store import models as m

log = logging.getLogger("multihelix")

CHUNK = 500
LIST_SEPARATOR = ";"
H2020_CLUSTER = "h2020-health"
# CORDIS organisation types -> stakeholder kinds. PRC (private for-profit) is mapped to SME:
# most companies in H2020 health projects are SMEs, and CORDIS does not say which are not.
H2020_KINDS = {
    "PRC": "sme",
    "HES": "university",
    "REC": "research_organisation",
    "PUB": "public_body",
    "OTH": "other",
}
# A project outside the health programme says less about health partnering; it still links
# its participants (multi-hop proximity needs the whole graph), at a quarter of the weight.
H2020_OTHER_PROGRAMME_WEIGHT = 0.25
# CORDIS writes Greece and the United Kingdom with their EU protocol codes.
H2020_COUNTRIES = {"UK": "GB", "EL": "GR"}

Progress = Callable[[str], None]


@dataclass
class ImportReport:
    organisations_created: int = 0
    organisations_existing: int = 0
    collaborations_created: int = 0
    collaborations_existing: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportBatch:
    """Validated records: organisations by file-local key, collaborations referencing keys."""

    organisations: list[tuple[str, dict[str, Any]]]
    collaborations: list[dict[str, Any]]  # participants: [{"key": str, "role": str}]


def _validate_org(raw: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        return OrganisationCreate.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        raise Unprocessable(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else str(err["msg"])


def _validate_collab(raw: dict[str, Any], keys: set[str], where: str) -> dict[str, Any]:
    participants = raw.get("participants")
    if not isinstance(participants, list):
        raise Unprocessable(f"{where}: participants must be a list of organisation keys")
    refs = []
    for p in participants:
        key, role = (p, "participant") if isinstance(p, str) else (p.get("key"), p.get("role"))
        if key not in keys:
            raise Unprocessable(f"{where}: participant {key!r} is not an organisation in the file")
        refs.append({"key": key, "role": role or "participant"})
    # Validate everything but the ids with the API's model, using placeholder ids.
    probe = {k: v for k, v in raw.items() if k != "participants"}
    probe["participants"] = [
        {"organisation_id": i + 1, "role": r["role"]} for i, r in enumerate(refs)
    ]
    if len({r["key"] for r in refs}) != len(refs):
        raise Unprocessable(f"{where}: an organisation takes part twice")
    try:
        valid = CollaborationCreate.model_validate(probe).model_dump(mode="json")
    except ValidationError as exc:
        raise Unprocessable(f"{where}: {_first_error(exc)}") from None
    valid["participants"] = [
        {"key": r["key"], "role": v["role"]}
        for r, v in zip(refs, valid["participants"], strict=True)
    ]
    return valid


def read_json(path: Path) -> ImportBatch:
    """``{"organisations": [{"key": ..., ...}], "collaborations": [{"participants": [keys]}]}``"""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unprocessable(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise Unprocessable(f"{path}: expected an object with 'organisations'/'collaborations'")
    orgs = []
    for i, raw in enumerate(data.get("organisations") or []):
        if not isinstance(raw, dict):
            raise Unprocessable(f"{path}: organisations[{i}] is not an object")
        raw = dict(raw)
        key = str(raw.pop("key", f"#{i}"))
        orgs.append((key, _validate_org(raw, f"{path}: organisations[{i}] ({key})")))
    keys = {k for k, _ in orgs}
    if len(keys) != len(orgs):
        raise Unprocessable(f"{path}: organisation keys must be unique")
    collabs = []
    for i, raw in enumerate(data.get("collaborations") or []):
        if not isinstance(raw, dict):
            raise Unprocessable(f"{path}: collaborations[{i}] is not an object")
        collabs.append(_validate_collab(raw, keys, f"{path}: collaborations[{i}]"))
    return ImportBatch(orgs, collabs)


def read_csv(path: Path, known_keys: set[str]) -> ImportBatch:
    """Organisations CSV (a ``name`` column) or collaborations CSV (a ``participants`` column).

    List columns (sectors, clusters, offers, seeks, keywords, participants) are separated by
    ``;``; ``id:SCHEME`` columns are external ids.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise Unprocessable(f"{path}: no rows")
    header = set(rows[0])
    if "participants" in header:
        collabs = []
        for line, row in enumerate(rows, start=2):
            raw: dict[str, Any] = {k: v for k, v in row.items() if v not in (None, "")}
            raw["participants"] = _split(row["participants"])
            for num in ("year",):
                if num in raw:
                    raw[num] = _int(raw[num], f"{path}:{line}")
            if "weight" in raw:
                raw["weight"] = _float(raw["weight"], f"{path}:{line}")
            collabs.append(_validate_collab(raw, known_keys, f"{path}:{line}"))
        return ImportBatch([], collabs)
    if "name" not in header:
        raise Unprocessable(f"{path}: needs a 'name' column (organisations) or 'participants'")
    orgs = []
    for line, row in enumerate(rows, start=2):
        raw = {}
        for k, v in row.items():
            if k is None or v in (None, ""):
                continue
            if k.startswith("id:"):
                raw.setdefault("external_ids", {})[k[3:]] = v
            elif k in ("sectors", "clusters", "offers", "seeks", "keywords"):
                raw[k] = _split(v)
            elif k == "maturity":
                raw[k] = _int(v, f"{path}:{line}")
            elif k != "key":
                raw[k] = v
        for required in ("sectors",):
            raw.setdefault(required, [])
        key = row.get("key") or f"{path.name}#{line}"
        orgs.append((key, _validate_org(raw, f"{path}:{line}")))
    return ImportBatch(orgs, [])


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(LIST_SEPARATOR) if part.strip()]


def _int(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Unprocessable(f"{where}: {value!r} is not a whole number") from None


def _float(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise Unprocessable(f"{where}: {value!r} is not a number") from None


def read_files(paths: Sequence[Path]) -> ImportBatch:
    """Validate all files (organisations first, so collaboration CSVs can reference their keys)."""
    batch = ImportBatch([], [])
    pending_csv: list[Path] = []
    for path in paths:
        if not path.is_file():
            raise Unprocessable(f"{path}: no such file")
        if path.suffix.lower() == ".json":
            part = read_json(path)
            batch.organisations += part.organisations
            batch.collaborations += part.collaborations
        elif path.suffix.lower() == ".csv":
            pending_csv.append(path)
        else:
            raise Unprocessable(f"{path}: unsupported file type (use .json or .csv)")
    for path in sorted(pending_csv, key=lambda p: _is_collab_csv(p)):
        part = read_csv(path, {k for k, _ in batch.organisations})
        batch.organisations += part.organisations
        batch.collaborations += part.collaborations
    return batch


def _is_collab_csv(path: Path) -> bool:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return "participants" in (next(csv.reader(handle), []) or [])


async def import_batch(
    ctx: ServiceContext,
    batch: ImportBatch,
    *,
    is_demo: bool = False,
    progress: Progress | None = None,
    chunk_size: int = CHUNK,
) -> ImportReport:
    """Write a validated batch. Organisations whose external id is already stored are reused
    (so re-running an import adds nothing twice), as are collaborations with a known reference."""
    report = ImportReport()
    say = progress or (lambda _msg: None)
    existing = await _existing_by_external_id(ctx)
    id_of: dict[str, int] = {}
    todo: list[tuple[str, dict[str, Any]]] = []
    for key, org in batch.organisations:
        hit = next(
            (existing[(s, v)] for s, v in org["external_ids"].items() if (s, v) in existing), None
        )
        if hit is not None:
            id_of[key] = hit
            report.organisations_existing += 1
        else:
            todo.append((key, org))
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start : start + chunk_size]
        created = await create_organisations(ctx, [o for _, o in chunk], is_demo=is_demo)
        for (key, _), org in zip(chunk, created, strict=True):
            id_of[key] = org["id"]
        report.organisations_created += len(created)
        say(f"organisations {min(start + chunk_size, len(todo))}/{len(todo)}")

    known_refs = await _existing_references(ctx)
    payloads = []
    for collab in batch.collaborations:
        if collab.get("reference") and collab["reference"] in known_refs:
            report.collaborations_existing += 1
            continue
        payloads.append(
            {
                **collab,
                "participants": [
                    {"organisation_id": id_of[p["key"]], "role": p["role"]}
                    for p in collab["participants"]
                ],
            }
        )
    for start in range(0, len(payloads), chunk_size):
        chunk_c = payloads[start : start + chunk_size]
        await create_collaborations(ctx, chunk_c, is_demo=is_demo)
        report.collaborations_created += len(chunk_c)
        say(f"collaborations {min(start + chunk_size, len(payloads))}/{len(payloads)}")
    return report


async def _existing_by_external_id(ctx: ServiceContext) -> dict[tuple[str, str], int]:
    async with ctx.db.read() as session:
        rows = (await session.execute(select(m.ExternalId))).scalars().all()
    return {(r.scheme, r.value): r.organisation_id for r in rows}


async def _existing_references(ctx: ServiceContext) -> set[str]:
    async with ctx.db.read() as session:
        refs = await session.scalars(
            select(m.Collaboration.reference).where(m.Collaboration.reference.is_not(None))
        )
        return {r for r in refs.all() if r}


# -- the H2020 health benchmark ------------------------------------------------------------------
def read_h2020(bench_dir: Path, *, all_programmes: bool = False) -> ImportBatch:
    """Organisations and projects of the benchmark's history (projects starting before 2018).

    Every organisation of ``participations_hist`` is imported, including those outside the
    benchmark set: multi-hop proximity needs the whole graph. The benchmark's own
    organisations (orgs.csv) are members of the cluster ``h2020-health``. The PIC is the
    external id ``pic``. Held-out pairs are never read.
    """
    parts_path = bench_dir / "participations_hist.csv.gz"
    orgs_path = bench_dir / "orgs.csv"
    names_path = bench_dir / "org_names.csv"
    for path in (parts_path, orgs_path):
        if not path.is_file():
            raise Unprocessable(f"{path}: missing benchmark file")
    names: dict[str, str] = {}
    if names_path.is_file():
        for row in _csv_rows(names_path, ("org_id", "name")):
            names[row["org_id"]] = row["name"] or row.get("short_name") or ""
    bench_orgs = {row["org_id"] for row in _csv_rows(orgs_path, ("org_id", "type", "country"))}

    org_info: dict[str, tuple[str, str]] = {}
    projects: dict[str, list[tuple[str, str]]] = defaultdict(list)
    project_year: dict[str, int] = {}
    project_parts: dict[str, str] = {}
    project_is_health: dict[str, bool] = {}
    for row in _csv_rows(
        parts_path, ("project_id", "org_id", "role", "type", "country", "start_date")
    ):
        org_id = row["org_id"]
        org_info.setdefault(org_id, (row["type"], row["country"]))
        role = "coordinator" if row["role"] == "coordinator" else "participant"
        projects[row["project_id"]].append((org_id, role))
        try:
            project_year[row["project_id"]] = int(row["start_date"][:4])
        except ValueError:
            raise Unprocessable(f"{parts_path}: bad start_date {row['start_date']!r}") from None
        project_parts[row["project_id"]] = row.get("programme_parts", "")
        project_is_health[row["project_id"]] = row.get("is_domain", "1") == "1"

    orgs = []
    for org_id, (otype, country) in sorted(org_info.items()):
        raw = {
            "name": (names.get(org_id) or f"H2020 participant {org_id}")[:300],
            "kind": H2020_KINDS.get(otype, "other"),
            "sectors": [],
            "country": H2020_COUNTRIES.get(country, country),
            "clusters": [H2020_CLUSTER] if org_id in bench_orgs else [],
            "external_ids": {"pic": org_id},
        }
        orgs.append((org_id, _validate_org(raw, f"{parts_path}: organisation {org_id}")))

    collabs = []
    for project_id, members in sorted(projects.items()):
        unique_members = list(dict.fromkeys(members))
        seen: set[str] = set()
        participants = []
        for org_id, role in unique_members:
            if org_id not in seen:
                seen.add(org_id)
                participants.append({"key": org_id, "role": role})
        if len(participants) < 2 or not (all_programmes or project_is_health[project_id]):
            continue
        collabs.append(
            {
                "kind": "project",
                "year": project_year[project_id],
                "weight": 1.0 if project_is_health[project_id] else H2020_OTHER_PROGRAMME_WEIGHT,
                "reference": f"H2020-{project_id}",
                "title": f"H2020 project {project_id} ({project_parts[project_id] or 'n/a'})"[:300],
                "participants": participants,
            }
        )
    return ImportBatch(orgs, collabs)


def _csv_rows(path: Path, required: Sequence[str]) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise Unprocessable(f"{path}: missing columns {', '.join(missing)}")
            yield from reader
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise Unprocessable(f"{path}: unreadable ({exc})") from None
