"""Event documents: a participant's agenda as CSV and iCalendar (RFC 5545, written by hand:
escaped text, folded lines, UTC times), and the organiser's grid as CSV and a printable,
self-contained HTML page."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.services.context import ServiceContext
from app.services.events import (
    ACTIVE,
    DRAFT,
    EventAccess,
    EventBundle,
    load_bundle,
    require_sees_all,
)
from app.services.events_schedule import AgendaEntry, agenda

PRODID = "-//MultiHelix//Event agenda//EN"


# -- agenda --------------------------------------------------------------------------------
async def agenda_csv(ctx: ServiceContext, access: EventAccess, participant_id: int) -> str:
    view, _, _ = await agenda(ctx, access, participant_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "start",
            "end",
            "session",
            "place",
            "counterpart",
            "counterpart_country",
            "counterpart_delegates",
            "meeting_id",
        ]
    )
    for item in view["items"]:
        other = item["counterpart"]
        writer.writerow(
            [
                item["start"].isoformat(),
                item["end"].isoformat(),
                item["session"],
                item["place"] or "",
                _csv_safe(other["organisation"]["name"]),
                other["organisation"]["country"],
                _csv_safe("; ".join(_delegate_text(d) for d in other["delegates"])),
                item["meeting_id"],
            ]
        )
    return out.getvalue()


async def agenda_ics(ctx: ServiceContext, access: EventAccess, participant_id: int) -> str:
    view, bundle, entries = await agenda(ctx, access, participant_id)
    me = view["participant"]["organisation"]["name"]
    by_meeting = {item["meeting_id"]: item for item in view["items"]}
    return calendar(
        name=f"{bundle.event.name}: {me}",
        events=[_vevent(bundle, entry, by_meeting[entry.meeting.id]) for entry in entries],
    )


def _vevent(bundle: EventBundle, entry: AgendaEntry, item: dict[str, Any]) -> dict[str, Any]:
    other = item["counterpart"]
    delegates = [_delegate_text(d) for d in other["delegates"]]
    description = [
        f"B2B meeting at {bundle.event.name}.",
        f"Counterpart: {other['organisation']['name']} ({other['organisation']['country']}).",
    ]
    if delegates:
        description.append("Delegates: " + "; ".join(delegates) + ".")
    location = ", ".join(x for x in (entry.place, bundle.event.venue) if x)
    return {
        "uid": f"event-{bundle.event.id}-meeting-{entry.meeting.id}@multihelix",
        "start": entry.start,
        "end": entry.end,
        "summary": f"Meeting with {other['organisation']['name']}",
        "location": location,
        "description": "\n".join(description),
        "sequence": bundle.event.schedule_version,
    }


def _delegate_text(delegate: dict[str, Any]) -> str:
    parts = [delegate["full_name"]]
    if delegate.get("job_title"):
        parts.append(f"({delegate['job_title']})")
    contact = ", ".join(x for x in (delegate.get("email"), delegate.get("phone")) if x)
    if contact:
        parts.append(f"<{contact}>")
    return " ".join(parts)


def _csv_safe(text: str) -> str:
    """Cells a spreadsheet would run as a formula get a leading apostrophe.

    >>> _csv_safe("=HYPERLINK(1)"), _csv_safe("Acme")
    ("'=HYPERLINK(1)", 'Acme')
    """
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# -- RFC 5545 ------------------------------------------------------------------------------
def calendar(*, name: str, events: Iterable[dict[str, Any]], now: datetime | None = None) -> str:
    """An iCalendar document (METHOD:PUBLISH) with one VEVENT per dict (uid, start, end,
    summary, location, description, sequence); times are written in UTC.

    >>> from datetime import timezone, timedelta
    >>> cet = timezone(timedelta(hours=2))
    >>> text = calendar(name="Day", now=datetime(2026, 1, 1, tzinfo=UTC), events=[{
    ...     "uid": "m1@x", "start": datetime(2026, 6, 11, 9, 0, tzinfo=cet),
    ...     "end": datetime(2026, 6, 11, 9, 20, tzinfo=cet), "summary": "Meet A, B; C",
    ...     "location": "", "description": "line 1\\nline 2", "sequence": 3}])
    >>> [line for line in text.split("\\r\\n") if line.startswith(("DTSTART", "SUMMARY", "DESC"))]
    ['DTSTART:20260611T070000Z', 'SUMMARY:Meet A\\\\, B\\\\; C', 'DESCRIPTION:line 1\\\\nline 2']
    """
    stamp = _utc(now or datetime.now(UTC))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    for ev in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{escape_text(ev['uid'])}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_utc(ev['start'])}",
            f"DTEND:{_utc(ev['end'])}",
            f"SEQUENCE:{int(ev.get('sequence', 0))}",
            f"SUMMARY:{escape_text(ev['summary'])}",
        ]
        if ev.get("location"):
            lines.append(f"LOCATION:{escape_text(ev['location'])}")
        if ev.get("description"):
            lines.append(f"DESCRIPTION:{escape_text(ev['description'])}")
        lines += ["STATUS:CONFIRMED", "TRANSP:OPAQUE", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped.

    >>> escape_text("a;b,c\\\\d\\ne")
    'a\\\\;b\\\\,c\\\\\\\\d\\\\ne'
    """
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str, limit: int = 75) -> str:
    """Fold a content line at ``limit`` octets (continuations start with a space), never
    splitting a UTF-8 character.

    >>> folded = fold("X:" + "é" * 50)
    >>> [len(part.encode()) for part in folded.split("\\r\\n")]
    [74, 29]
    """
    data = line.encode()
    if len(data) <= limit:
        return line
    parts: list[str] = []
    current = ""
    size = 0
    budget = limit
    for ch in line:
        width = len(ch.encode())
        if size + width > budget:
            parts.append(current)
            current, size, budget = "", 0, limit - 1  # the leading space takes one octet
        current += ch
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


# -- the organiser's grid ------------------------------------------------------------------
def _grid(bundle: EventBundle) -> tuple[list[Any], dict[tuple[int, int], str]]:
    """Rows (slots) and cell texts keyed by (slot id, place id)."""
    cells: dict[tuple[int, int], str] = {}
    for mt in bundle.meetings:
        slot = bundle.placed_slot(mt)
        if mt.status != ACTIVE or slot is None or mt.place_id is None:
            continue
        names = []
        for pid in (mt.a_id, mt.b_id):
            org_id = bundle.participant_by_id[pid].organisation_id
            names.append(bundle.organisations.get(org_id, {}).get("name", "?"))
        cells[(slot.id, mt.place_id)] = " × ".join(names)
    return list(bundle.slots), cells


async def grid_csv(ctx: ServiceContext, access: EventAccess) -> str:
    require_sees_all(access)
    bundle = await load_bundle(ctx, access.event_id)
    slots, cells = _grid(bundle)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["session", "start", "end", *[p.name for p in bundle.places]])
    for slot in slots:
        start, end = bundle.when(slot)
        writer.writerow(
            [
                bundle.session_by_id[slot.session_id].name,
                start.isoformat(),
                end.isoformat(),
                *[_csv_safe(cells.get((slot.id, p.id), "")) for p in bundle.places],
            ]
        )
    return out.getvalue()


async def grid_html(ctx: ServiceContext, access: EventAccess) -> str:
    require_sees_all(access)
    bundle = await load_bundle(ctx, access.event_id)
    slots, cells = _grid(bundle)
    return render_grid(bundle, slots, cells)


def render_grid(
    bundle: EventBundle, slots: Sequence[Any], cells: dict[tuple[int, int], str]
) -> str:
    """One table per session (slots down, places across), one session per printed page."""
    ev = bundle.event
    esc = html.escape
    status = ev.schedule_status
    banner = (
        '<p class="draft">DRAFT: not published yet</p>'
        if status == DRAFT
        else ('<p class="draft">No schedule yet</p>' if status == "none" else "")
    )
    sections = []
    used = {place for _, place in cells}
    # Places with no meeting at all only widen the page; leave them out of the print.
    places = [p for p in bundle.places if p.id in used] or list(bundle.places)
    for session in bundle.sessions:
        rows = []
        for slot in (s for s in slots if s.session_id == session.id):
            start, end = bundle.when(slot)
            tds = "".join(f"<td>{esc(cells.get((slot.id, p.id), ''))}</td>" for p in places)
            rows.append(f'<tr><th scope="row">{start:%H:%M}&ndash;{end:%H:%M}</th>{tds}</tr>')
        head = "".join(f'<th scope="col">{esc(p.name)}</th>' for p in places)
        sections.append(
            f"<section><h2>{esc(session.name)} &middot; {session.day:%A %d %B %Y}</h2>"
            f'<table><thead><tr><th scope="col">Time</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>"
        )
    placed = len(cells)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(ev.name)}: meeting grid</title>"
        "<style>"
        "body{font:12px/1.35 system-ui,sans-serif;margin:1.5em;color:#111}"
        "h1{font-size:18px;margin:0 0 .2em}h2{font-size:14px;margin:1.2em 0 .4em}"
        ".meta{color:#555;margin:0 0 .6em}.draft{color:#b00;font-weight:bold}"
        "table{border-collapse:collapse;width:100%;table-layout:fixed}"
        "th,td{border:1px solid #999;padding:3px 4px;vertical-align:top;word-wrap:break-word}"
        "thead th{background:#eee}tbody th{background:#f6f6f6;white-space:nowrap;width:7em}"
        "@media print{@page{size:A4 landscape;margin:10mm}body{margin:0}"
        "section{page-break-after:always}section:last-child{page-break-after:auto}"
        "thead{display:table-header-group}tr{page-break-inside:avoid}}"
        "</style></head><body>"
        f"<h1>{esc(ev.name)}</h1>"
        f'<p class="meta">{esc(ev.venue or "")} &middot; times in {esc(ev.timezone)} &middot; '
        f"{placed} meetings &middot; schedule version {ev.schedule_version}</p>"
        f"{banner}{''.join(sections)}</body></html>\n"
    )
