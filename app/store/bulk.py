"""Whole-store reads for start-up: every organisation, stored vector and collaboration in a few
queries, as columns and numpy arrays rather than one Python object per row."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, String, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from app.store import models as m

log = logging.getLogger("multihelix")

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Float32Matrix = npt.NDArray[np.float32]

# Rows per round trip when streaming vectors: ~15 MB of blobs at dim 384, so the rows held as
# Python objects stay small next to the matrix they are copied into.
_VECTOR_CHUNK: Final = 10_000
ITEM_FIELDS: Final = ("offer", "seek")


@dataclass(frozen=True, slots=True)
class OrganisationColumns:
    """What the ranker's catalogue needs of every organisation, one list entry per id."""

    ids: IntArray  # ascending
    names: list[str]
    kinds: list[str]
    countries: list[str]
    regions: list[str | None]
    maturities: list[int | None]
    tenants: list[str | None]
    offers: list[tuple[str, ...]]
    seeks: list[tuple[str, ...]]
    sectors: list[tuple[str, ...]]  # in stored position order
    clusters: list[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class StoredVectors:
    """Stored vectors of one model as one float32 matrix, rows sorted by (organisation, field,
    position); ``fields[i]`` indexes ``field_names``."""

    organisation_ids: IntArray
    fields: npt.NDArray[np.int8]
    positions: IntArray
    matrix: Float32Matrix
    field_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CollaborationColumns:
    """Collaborations with their participants flattened in position order: collaboration ``i``
    has ``members[offsets[i]:offsets[i] + sizes[i]]``. ``years`` is NaN where unknown."""

    ids: IntArray  # ascending
    kinds: list[str]
    years: FloatArray
    weights: FloatArray
    sizes: IntArray
    members: IntArray


async def read_organisation_columns(session: AsyncSession) -> OrganisationColumns:
    """Every organisation's catalogue fields, ordered by id (descriptions and dates are not
    read: the catalogue does not hold them)."""
    org = m.Organisation.__table__
    rows = (
        await session.execute(
            select(
                org.c.id,
                org.c.name,
                org.c.kind,
                org.c.country,
                org.c.region,
                org.c.maturity,
                org.c.tenant,
                # As stored text: decoded below in one call rather than one call per value.
                type_coerce(org.c.offers, String),
                type_coerce(org.c.seeks, String),
            ).order_by(org.c.id)
        )
    ).all()
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * 9
    ids = np.asarray(columns[0], dtype=np.int64)
    sectors = await _grouped_strings(session, m.OrganisationSector.__table__, "sector", ids)
    clusters = await _grouped_strings(session, m.OrganisationCluster.__table__, "cluster", ids)
    empty: tuple[str, ...] = ()
    return OrganisationColumns(
        ids=ids,
        names=list(columns[1]),
        kinds=list(columns[2]),
        countries=list(columns[3]),
        regions=list(columns[4]),
        maturities=list(columns[5]),
        tenants=list(columns[6]),
        offers=[tuple(items) if items else empty for items in _json_values(columns[7])],
        seeks=[tuple(items) if items else empty for items in _json_values(columns[8])],
        sectors=sectors,
        clusters=clusters,
    )


def _json_values(texts: Sequence[Any]) -> list[Any]:
    """JSON documents decoded in one ``json.loads`` of an array made of them (a driver that
    returns them decoded already, or NULLs, are taken as they are).

    >>> _json_values(['["a", "b"]', None, '[]', ["c"]])
    [['a', 'b'], None, [], ['c']]
    """
    try:
        joined = ",".join(texts)
    except TypeError:
        return [json.loads(text) if isinstance(text, str) else text for text in texts]
    decoded: list[Any] = json.loads(f"[{joined}]")
    return decoded


async def _grouped_strings(
    session: AsyncSession, table: Any, column: str, ids: IntArray
) -> list[tuple[str, ...]]:
    """``column`` of ``table`` per organisation of ``ids``, in position order."""
    rows = (
        await session.execute(
            select(table.c.organisation_id, table.c[column]).order_by(
                table.c.organisation_id, table.c.position
            )
        )
    ).all()
    empty: tuple[str, ...] = ()
    grouped = [empty] * len(ids)
    if not rows:
        return grouped
    owner_column, value_column = zip(*rows, strict=True)
    owners = np.asarray(owner_column, dtype=np.int64)
    values = list(value_column)
    starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
    ends = np.append(starts[1:], len(owners))
    at = np.searchsorted(ids, owners[starts])
    known = at < len(ids)
    known[known] = ids[at[known]] == owners[starts][known]
    for row, start, end in zip(
        at[known].tolist(), starts[known].tolist(), ends[known].tolist(), strict=True
    ):
        grouped[row] = tuple(values[start:end])
    return grouped


async def read_vector_ids(session: AsyncSession, model: str, field: str) -> IntArray:
    """Ids of the organisations with a stored ``field`` vector at position 0, ascending."""
    emb = m.Embedding.__table__
    ids = (
        await session.scalars(
            select(emb.c.organisation_id)
            .where(emb.c.model == model, emb.c.field == field, emb.c.position == 0)
            .order_by(emb.c.organisation_id)
        )
    ).all()
    return np.asarray(ids, dtype=np.int64)


async def read_vectors(
    session: AsyncSession,
    model: str,
    dim: int,
    fields: Sequence[str],
    *,
    first_position_only: bool = False,
    organisation_ids: Sequence[int] | None = None,
) -> StoredVectors:
    """Stored vectors of ``model`` for ``fields``, copied chunk by chunk into one matrix.

    A blob whose length is not ``dim`` float32 values cannot be a vector of this model: it is
    left out with a warning, as if that text had no vector yet.
    """
    emb = m.Embedding.__table__
    condition = [emb.c.model == model, emb.c.field.in_(list(fields))]
    if first_position_only:
        condition.append(emb.c.position == 0)
    if organisation_ids is not None:
        condition.append(emb.c.organisation_id.in_([int(i) for i in organisation_ids]))
    expected = await session.scalar(select(func.count()).select_from(emb).where(*condition))
    query: Select[Any] = (
        select(emb.c.organisation_id, emb.c.field, emb.c.position, emb.c.vector)
        .where(*condition)
        .order_by(emb.c.organisation_id, emb.c.field, emb.c.position)
    )
    # Sized by a count first, so the blobs are copied once into their final place; rows that
    # arrive beyond the count (a writer in another process) grow it.
    matrix = np.empty((int(expected or 0), dim), dtype=np.float32)
    org_parts: list[IntArray] = []
    field_parts: list[npt.NDArray[np.int8]] = []
    position_parts: list[IntArray] = []
    filled = 0
    row_bytes = 4 * dim
    result = await session.stream(query.execution_options(yield_per=_VECTOR_CHUNK))
    async for chunk in result.partitions():
        org_ids, names, positions, blobs = zip(*chunk, strict=True)
        if set(map(len, blobs)) != {row_bytes}:
            keep = [i for i, blob in enumerate(blobs) if len(blob) == row_bytes]
            log.warning(
                "ignoring %d stored %s vectors whose length is not %d values",
                len(blobs) - len(keep),
                model,
                dim,
            )
            org_ids, names, positions, blobs = (
                tuple(column[i] for i in keep) for column in (org_ids, names, positions, blobs)
            )
            if not keep:
                continue
        rows = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)
        if filled + len(rows) > len(matrix):
            matrix = np.concatenate((matrix[:filled], np.empty_like(rows)))
        matrix[filled : filled + len(rows)] = rows
        filled += len(rows)
        org_parts.append(np.asarray(org_ids, dtype=np.int64))
        codes = np.zeros(len(names), dtype=np.int8)
        name_array = np.asarray(names)
        for code, field in enumerate(fields[1:], start=1):
            codes[name_array == field] = code
        field_parts.append(codes)
        position_parts.append(np.asarray(positions, dtype=np.int64))
    return StoredVectors(
        organisation_ids=_concatenated(org_parts, np.int64),
        fields=_concatenated(field_parts, np.int8),
        positions=_concatenated(position_parts, np.int64),
        matrix=matrix[:filled],
        field_names=tuple(fields),
    )


async def read_collaboration_columns(session: AsyncSession) -> CollaborationColumns:
    """Every collaboration with at least two participants, ordered by id."""
    collab = m.Collaboration.__table__
    part = m.CollaborationParticipant.__table__
    participants = (
        await session.execute(
            select(part.c.collaboration_id, part.c.organisation_id).order_by(
                part.c.collaboration_id, part.c.position, part.c.organisation_id
            )
        )
    ).all()
    rows = (
        await session.execute(
            select(collab.c.id, collab.c.kind, collab.c.year, collab.c.weight).order_by(collab.c.id)
        )
    ).all()
    if participants:
        owner_column, member_column = zip(*participants, strict=True)
        owners = np.asarray(owner_column, dtype=np.int64)
        members = np.asarray(member_column, dtype=np.int64)
    else:
        owners = members = np.zeros(0, dtype=np.int64)
    if rows:
        id_column, kind_column, year_column, weight_column = zip(*rows, strict=True)
    else:
        id_column, kind_column, year_column, weight_column = (), (), (), ()
    ids = np.asarray(id_column, dtype=np.int64)
    # Participants are sorted by collaboration, so each one's run is found by searchsorted;
    # a collaboration left with fewer than two participants adds no pair and is not loaded.
    sizes = np.searchsorted(owners, ids, side="right") - np.searchsorted(owners, ids, side="left")
    keep = sizes >= 2
    years = np.asarray([np.nan if y is None else y for y in year_column], dtype=np.float64)
    return CollaborationColumns(
        ids=ids[keep],
        kinds=[kind for kind, k in zip(kind_column, keep.tolist(), strict=True) if k],
        years=years[keep],
        weights=np.asarray(weight_column, dtype=np.float64)[keep],
        sizes=sizes[keep].astype(np.int64),
        members=members[np.isin(owners, ids[keep])],
    )


def _concatenated(parts: list[Any], dtype: type) -> Any:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
