"""The derived, in-memory state (catalogue, vector indexes, collaboration graph) and how it is
rebuilt from the store at start-up and kept in step with it after every commit."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
from sqlalchemy import func, select

from app.store import models as m
from app.store.database import Database
from embeddings import Encoder, VectorIndex, content_hash, profile_texts
from graph import Collaboration as GraphCollaboration
from graph import CollaborationGraph
from matching.catalog import Catalog, OrgProfile
from matching.features import VECTOR_SPACES
from matching.ranker import MatchingState
from matching.scoring import LinearScorer

log = logging.getLogger("multihelix")

# Part of every saved index's fingerprint: bump it when the way vectors are derived from the
# store changes (to_profile), so files written by older code are never served.
INDEX_DERIVATION_VERSION = 1


@dataclass(frozen=True, slots=True)
class EmbeddingItem:
    """One text of an organisation to embed: its profile, or one offer or seek."""

    field: str  # "profile" | "offer" | "seek"
    position: int
    text: str
    content_hash: str


def embedding_items(org: dict[str, Any], model_name: str) -> list[EmbeddingItem]:
    """Texts to embed for an organisation given as a plain dict of its fields."""
    texts = profile_texts(
        name=org["name"],
        kind=org["kind"],
        sectors=org["sectors"],
        description=org.get("description"),
        offers=org.get("offers") or [],
        seeks=org.get("seeks") or [],
        keywords=org.get("keywords") or [],
    )
    items = []
    # An organisation that only has a name gets no profile vector: a name alone says nothing
    # about capabilities, and such organisations are matched through the graph instead.
    has_content = any(org.get(k) for k in ("description", "offers", "seeks", "keywords"))
    if has_content and texts.get("profile"):
        text = texts["profile"]
        items.append(EmbeddingItem("profile", 0, text, content_hash(model_name, text)))
    for field, key in (("offer", "offers"), ("seek", "seeks")):
        for position, text in enumerate(org.get(key) or []):
            items.append(EmbeddingItem(field, position, text, content_hash(model_name, text)))
    return items


def _normalised_mean(rows: np.ndarray) -> np.ndarray:
    mean = rows.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return np.asarray(mean / norm if norm > 0 else mean, dtype=np.float32)


def to_profile(
    org: dict[str, Any], vectors: dict[tuple[str, int], np.ndarray], dim: int
) -> tuple[OrgProfile, dict[str, np.ndarray]]:
    """The ranker's view of an organisation plus its vectors per space (profile/offers/seeks)."""
    offers = tuple(org.get("offers") or ())
    seeks = tuple(org.get("seeks") or ())

    def items(field: str, n: int) -> np.ndarray:
        rows = [vectors[(field, i)] for i in range(n) if (field, i) in vectors]
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)

    offer_vectors = items("offer", len(offers))
    seek_vectors = items("seek", len(seeks))
    profile = OrgProfile(
        id=int(org["id"]),
        name=org["name"],
        kind=org["kind"],
        sectors=tuple(org["sectors"]),
        country=org["country"],
        region=org.get("region"),
        clusters=tuple(org.get("clusters") or ()),
        maturity=org.get("maturity"),
        tenant=org.get("tenant"),
        offers=offers,
        seeks=seeks,
        offer_vectors=offer_vectors,
        seek_vectors=seek_vectors,
    )
    spaces: dict[str, np.ndarray] = {}
    if ("profile", 0) in vectors:
        spaces["profile"] = vectors[("profile", 0)]
    if len(offer_vectors):
        spaces["offers"] = _normalised_mean(offer_vectors)
    if len(seek_vectors):
        spaces["seeks"] = _normalised_mean(seek_vectors)
    return profile, spaces


class DerivedState:
    """Owns the :class:`MatchingState` and applies committed changes to it.

    Callers hold the database write lock while applying, so changes land in commit order.
    """

    def __init__(self, encoder: Encoder, scorer: LinearScorer, reference_year: int | None) -> None:
        self.encoder = encoder
        self.reference_year = reference_year
        self.state = MatchingState(
            catalog=Catalog(),
            graph=CollaborationGraph(reference_year=reference_year),
            vectors={space: VectorIndex(encoder.dim) for space in VECTOR_SPACES},
            scorer=scorer,
        )
        # Per space, where the index came from at the last load: "file" or "rebuilt".
        self.index_sources: dict[str, str] = {}
        # Fingerprint of the store when the index files were last written or read.
        self.saved_fingerprint: str | None = None

    # -- writes -----------------------------------------------------------------------------
    def put_organisation(
        self, org: dict[str, Any], vectors: dict[tuple[str, int], np.ndarray]
    ) -> None:
        profile, spaces = to_profile(org, vectors, self.encoder.dim)
        self.state.catalog.upsert(profile)
        for space in VECTOR_SPACES:
            index = self.state.vectors[space]
            if space in spaces:
                index.upsert([profile.id], spaces[space][None, :])
            elif profile.id in index:
                index.remove([profile.id])
        self.state.graph.add_organisation(profile.id)

    def drop_organisation(self, org_id: int, orphaned_collaborations: list[int]) -> None:
        """Remove an organisation (and collaborations its removal left with one participant)."""
        for collab_id in orphaned_collaborations:
            if self.state.graph.has_collaboration(collab_id):
                self.state.graph.remove_collaboration(collab_id)
        self.state.catalog.remove(org_id)
        for index in self.state.vectors.values():
            if org_id in index:
                index.remove([org_id])
        if self.state.graph.has_organisation(org_id):
            self.state.graph.remove_organisation(org_id)
            self.state.refresh_snapshot()

    def put_collaborations(self, collaborations: list[GraphCollaboration]) -> None:
        for collaboration in collaborations:
            self.state.graph.add_collaboration(collaboration)
        self.state.refresh_snapshot()

    def drop_collaboration(self, collab_id: int) -> None:
        if self.state.graph.has_collaboration(collab_id):
            self.state.graph.remove_collaboration(collab_id)
            self.state.refresh_snapshot()

    # -- start-up ---------------------------------------------------------------------------
    async def load(self, db: Database, index_dir: Path | None = None) -> dict[str, float]:
        """Rebuild everything from the store; returns timings (seconds) per stage.

        With ``index_dir``, a vector index saved there is used instead of building one when its
        fingerprint matches the store's now and its ids and a sample of its vectors match the
        store's vectors; a missing, corrupt or stale file is ignored (and rebuilt).
        """
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        fingerprint = await store_fingerprint(db, self.encoder) if index_dir else None
        orgs = await load_organisations(db)
        timings["organisations"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        vectors = await load_vectors(db, self.encoder.name)
        timings["vectors"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        catalog = Catalog(capacity=max(1024, len(orgs)))
        by_space: dict[str, tuple[list[int], list[np.ndarray]]] = {
            s: ([], []) for s in VECTOR_SPACES
        }
        for org in orgs:
            profile, spaces = to_profile(org, vectors.get(org["id"], {}), self.encoder.dim)
            catalog.upsert(profile)
            for space, vec in spaces.items():
                by_space[space][0].append(profile.id)
                by_space[space][1].append(vec)
        indexes = {}
        sources = {}
        for space in VECTOR_SPACES:
            ids, rows = by_space[space]
            id_array = np.array(ids, dtype=np.int64)
            matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, self.encoder.dim))
            saved = None
            if index_dir is not None and fingerprint is not None:
                saved = await anyio.to_thread.run_sync(
                    _saved_index, index_dir, space, self.encoder.dim, fingerprint, id_array, matrix
                )
            if saved is not None:
                indexes[space], sources[space] = saved, "file"
                continue
            index = VectorIndex(self.encoder.dim)
            if ids:
                await anyio.to_thread.run_sync(index.build, id_array, matrix)
            indexes[space], sources[space] = index, "rebuilt"
        timings["indexes"] = time.perf_counter() - t0
        if index_dir is not None:
            log.info("vector indexes: %s", ", ".join(f"{k} {v}" for k, v in sources.items()))

        t0 = time.perf_counter()
        collaborations = await load_collaborations(db)
        graph = CollaborationGraph.from_collaborations(
            [o["id"] for o in orgs], collaborations, reference_year=self.reference_year
        )
        state = MatchingState(
            catalog=catalog, graph=graph, vectors=indexes, scorer=self.state.scorer
        )
        state.refresh_snapshot()
        self.state = state
        self.index_sources = sources
        if all(source == "file" for source in sources.values()):
            self.saved_fingerprint = fingerprint
        timings["graph"] = time.perf_counter() - t0
        return timings

    async def save_indexes(self, db: Database, index_dir: Path) -> bool:
        """Write the vector indexes to ``index_dir`` with the store's fingerprint, unless the
        files there already describe the store as it is; returns whether files were written.

        Runs under the writer lock, so no commit can slip between the fingerprint and the copy
        of the indexes (which would label a file with the wrong state).
        """
        async with db.write_lock:
            fingerprint = await store_fingerprint(db, self.encoder)
            if fingerprint == self.saved_fingerprint:
                return False
            vectors = dict(self.state.vectors)

            def write() -> None:
                for space, index in vectors.items():
                    index.save(index_dir / f"{space}.mhvi", fingerprint=fingerprint)

            await anyio.to_thread.run_sync(write)
            self.saved_fingerprint = fingerprint
        return True


async def store_fingerprint(db: Database, encoder: Encoder) -> str:
    """What the vector indexes were derived from, in a few aggregates of the store.

    Any change the service makes moves one of them: a create or update sets ``updated_at`` to
    the newest time, a delete lowers the count and the id sum, re-embedding changes the vector
    count or ``updated_at``.
    """
    org = m.Organisation.__table__
    emb = m.Embedding.__table__
    async with db.read() as session:
        count, id_sum, latest = (
            await session.execute(
                select(
                    func.count(), func.coalesce(func.sum(org.c.id), 0), func.max(org.c.updated_at)
                )
            )
        ).one()
        vectors = await session.scalar(
            select(func.count()).select_from(emb).where(emb.c.model == encoder.name)
        )
    latest_text = latest.isoformat() if hasattr(latest, "isoformat") else str(latest)
    return (
        f"derivation={INDEX_DERIVATION_VERSION};model={encoder.name};dim={encoder.dim};"
        f"organisations={count};id_sum={id_sum};latest_update={latest_text};vectors={vectors}"
    )


def _saved_index(
    index_dir: Path,
    space: str,
    dim: int,
    fingerprint: str,
    ids: np.ndarray,
    rows: np.ndarray,
) -> VectorIndex | None:
    """The saved index of ``space`` if it matches the store, else None (never raises).

    Beyond the fingerprint, its ids must be exactly the store's and a sample of its vectors
    must equal the store's, so even a file whose fingerprint matches by accident is not served.
    """
    index = VectorIndex.load(index_dir / f"{space}.mhvi", dim=dim, expected_fingerprint=fingerprint)
    if index is None:
        return None
    if len(index) != len(ids) or not np.array_equal(np.sort(index.ids()), np.sort(ids)):
        log.warning("ignoring saved %s index: its ids differ from the store's", space)
        return None
    if len(ids):
        sample = np.random.default_rng(0).choice(len(ids), size=min(256, len(ids)), replace=False)
        expected = rows[sample] / np.linalg.norm(rows[sample], axis=1, keepdims=True)
        if not np.allclose(index.get(ids[sample]), expected, atol=1e-5):
            log.warning("ignoring saved %s index: its vectors differ from the store's", space)
            return None
    return index


async def load_organisations(db: Database, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Organisations as plain dicts (with sectors, clusters, external ids), ordered by id."""
    org_t = m.Organisation.__table__
    async with db.read() as session:
        query = select(org_t).order_by(org_t.c.id)
        if ids is not None:
            query = query.where(org_t.c.id.in_(ids))
        rows = (await session.execute(query)).mappings().all()
        sectors = defaultdict(list)
        clusters = defaultdict(list)
        external: dict[int, dict[str, str]] = defaultdict(dict)
        sector_q = select(m.OrganisationSector.__table__).order_by("organisation_id", "position")
        cluster_q = select(m.OrganisationCluster.__table__).order_by("organisation_id", "position")
        ext_q = select(m.ExternalId.__table__)
        if ids is not None:
            sector_q = sector_q.where(m.OrganisationSector.organisation_id.in_(ids))
            cluster_q = cluster_q.where(m.OrganisationCluster.organisation_id.in_(ids))
            ext_q = ext_q.where(m.ExternalId.organisation_id.in_(ids))
        for r in (await session.execute(sector_q)).all():
            sectors[r.organisation_id].append(r.sector)
        for r in (await session.execute(cluster_q)).all():
            clusters[r.organisation_id].append(r.cluster)
        for r in (await session.execute(ext_q)).all():
            external[r.organisation_id][r.scheme] = r.value
    out = []
    for row in rows:
        org = dict(row)
        org["sectors"] = sectors.get(org["id"], [])
        org["clusters"] = clusters.get(org["id"], [])
        org["external_ids"] = external.get(org["id"], {})
        out.append(org)
    return out


async def load_vectors(
    db: Database, model_name: str, ids: list[int] | None = None
) -> dict[int, dict[tuple[str, int], np.ndarray]]:
    """Stored vectors of ``model_name`` per organisation, keyed by (field, position)."""
    emb = m.Embedding.__table__
    query = select(emb.c.organisation_id, emb.c.field, emb.c.position, emb.c.vector).where(
        emb.c.model == model_name
    )
    if ids is not None:
        query = query.where(emb.c.organisation_id.in_(ids))
    out: dict[int, dict[tuple[str, int], np.ndarray]] = defaultdict(dict)
    async with db.read() as session:
        result = await session.stream(query.execution_options(yield_per=10_000))
        async for org_id, field, position, blob in result:
            out[org_id][(field, position)] = np.frombuffer(blob, dtype=np.float32)
    return out


async def load_collaborations(db: Database) -> list[GraphCollaboration]:
    collab_t = m.Collaboration.__table__
    part_t = m.CollaborationParticipant.__table__
    async with db.read() as session:
        members: dict[int, list[int]] = defaultdict(list)
        result = await session.stream(
            select(part_t.c.collaboration_id, part_t.c.organisation_id)
            .order_by(part_t.c.collaboration_id, part_t.c.position)
            .execution_options(yield_per=50_000)
        )
        async for collab_id, org_id in result:
            members[collab_id].append(org_id)
        rows = (
            await session.execute(
                select(collab_t.c.id, collab_t.c.kind, collab_t.c.year, collab_t.c.weight)
            )
        ).all()
    return [
        GraphCollaboration(
            id=r.id,
            organisation_ids=tuple(members[r.id]),
            kind=r.kind,
            year=r.year,
            weight=r.weight,
        )
        for r in rows
        if len(members.get(r.id, ())) >= 2
    ]
