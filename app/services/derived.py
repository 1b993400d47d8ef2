"""The derived, in-memory state (catalogue, vector indexes, collaboration graph) and how it is
rebuilt from the store at start-up and kept in step with it after every commit."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, String, cast, func, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.changes import KEEP_FOR, Changes, prune_changes, read_changes
from app.store import models as m
from app.store.bulk import (
    ITEM_FIELDS,
    CollaborationColumns,
    OrganisationColumns,
    StoredVectors,
    read_collaboration_columns,
    read_organisation_columns,
    read_vector_ids,
    read_vectors,
)
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

# Pruning old change-feed entries, at most this often (seconds).
_PRUNE_EVERY_S: Final = 600.0
# Rounds of catch-up + fingerprint before saving the indexes gives up on a busy store.
_SAVE_ATTEMPTS: Final = 5

# Vectors of a saved index compared with the store's before it is served.
_SAMPLE_SIZE: Final = 256
# Item spaces: the mean of an organisation's offer (seek) item vectors.
_ITEM_SPACES: Final = {"offer": "offers", "seek": "seeks"}

T = TypeVar("T")
Float32Matrix = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


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


def _unit_rows(rows: Float32Matrix) -> Float32Matrix:
    """Each float32 row divided by its L2 norm, in place (an all-zero row stays zero).

    The same reduction whether one row or many: a mean computed for one organisation after a
    write is bit for bit the one start-up computes for all of them at once.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    rows /= np.where(norms > 0, norms, 1)[:, None]
    return rows


def _normalised_mean(rows: np.ndarray) -> Float32Matrix:
    mean: Float32Matrix = rows.mean(axis=0, dtype=np.float32)
    unit: Float32Matrix = _unit_rows(mean[None, :])[0]
    return unit


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
        # Spaces served by an exact scan until their IVF layout is trained (train_deferred),
        # with the ids and vectors the scan was built from.
        self._deferred: dict[str, tuple[IntArray, Float32Matrix]] = {}
        self._layouts_trained = asyncio.Event()
        self._layouts_trained.set()
        # The last change-feed entry the state holds (app/services/changes.py), and when the
        # feed was last read to its end (time.monotonic()).
        self.applied_seq = 0
        self._caught_up_at = time.monotonic()
        # Held while the state changes (applying the feed, swapping in a trained index) and
        # while the indexes are copied to files.
        self.applying = asyncio.Lock()

    # -- following the store ----------------------------------------------------------------
    async def catch_up(self, db: Database) -> int:
        """Apply every change-feed entry committed after the last one applied; returns how
        many organisations and collaborations were read again (after a full read of the
        store, how many organisations it holds).

        Writers call it after their commit, so a caller reads what it wrote; the service
        also calls it every few moments for the writes of other processes (:meth:`follow`).
        Concurrent calls share the work: one reads and applies, the others find nothing left.

        A state that has not read the feed for half the time entries are kept may have missed
        pruned ones: it reads the whole store again instead. The check is made under the lock,
        so a catch-up that was waiting for it cannot mark such a state as read.
        """
        touched = 0
        async with self.applying:
            if time.monotonic() - self._caught_up_at > KEEP_FOR.total_seconds() / 2:
                log.warning("change feed not read for too long: reading the whole store")
                await self.load(db)
                freeze_loaded_objects()
                return len(self.state.catalog)
            while (found := await read_changes(db, self.applied_seq)) is not None:
                await self._apply(db, found)
                self.applied_seq = found.last_seq
                touched += len(found.organisations) + len(found.collaborations)
                if not found.more:
                    break  # the next round would only find what landed since
            self._caught_up_at = time.monotonic()
        return touched

    async def follow(self, db: Database, interval_s: float) -> None:
        """Catch up every ``interval_s`` seconds until cancelled, and prune old entries now
        and then."""
        last_prune = 0.0
        while True:
            await asyncio.sleep(interval_s)
            try:
                touched = await self.catch_up(db)
                if touched:
                    log.debug("caught up with %d changed records of the store", touched)
                if time.monotonic() - last_prune > _PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    await prune_changes(db)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("could not follow the store's changes; retrying", exc_info=True)

    async def _apply(self, db: Database, changes: Changes) -> None:
        """Read the touched records again and put them in the state as the store has them."""
        org_ids = sorted(changes.organisations)
        collab_ids = sorted(changes.collaborations)
        orgs = await load_organisations(db, org_ids) if org_ids else []
        vectors = await load_vectors(db, self.encoder.name, org_ids) if org_ids else {}
        collabs = await load_collaborations(db, collab_ids) if collab_ids else []
        gone_orgs = set(org_ids) - {org["id"] for org in orgs}
        gone_collabs = set(collab_ids) - {c.id for c in collabs}

        def apply() -> None:
            graph = self.state.graph
            with self.state.changing():
                self.put_organisations([(org, vectors.get(org["id"], {})) for org in orgs])
                relinked = self.drop_organisations(sorted(gone_orgs))
                for collab_id in sorted(gone_collabs):
                    if graph.has_collaboration(collab_id):
                        graph.remove_collaboration(collab_id)
                        relinked = True
                for collaboration in collabs:
                    graph.add_collaboration(collaboration)
                    relinked = True
                # The CSR snapshot (and the hubs' walk table: 0.7 s at 100k organisations) is
                # rebuilt only when links changed; an organisation new to the graph has none,
                # and the ranker reads an organisation missing from the snapshot as unlinked.
                if relinked:
                    self.state.refresh_snapshot()

        await anyio.to_thread.run_sync(apply)

    def put_organisations(
        self, orgs: Sequence[tuple[dict[str, Any], dict[tuple[str, int], np.ndarray]]]
    ) -> None:
        """Put organisations (as plain dicts, with their stored vectors) in the catalogue, the
        vector indexes (one call per space) and the graph."""
        added: dict[str, tuple[list[int], list[np.ndarray]]] = {
            space: ([], []) for space in VECTOR_SPACES
        }
        removed: dict[str, list[int]] = {space: [] for space in VECTOR_SPACES}
        for org, org_vectors in orgs:
            profile, spaces = to_profile(org, org_vectors, self.encoder.dim)
            self.state.catalog.upsert(profile)
            for space in VECTOR_SPACES:
                if space in spaces:
                    added[space][0].append(profile.id)
                    added[space][1].append(spaces[space])
                elif profile.id in self.state.vectors[space]:
                    removed[space].append(profile.id)
            self.state.graph.add_organisation(profile.id)
        for space in VECTOR_SPACES:
            index = self.state.vectors[space]
            ids, rows = added[space]
            if ids:
                index.upsert(ids, np.stack(rows))
            if removed[space]:
                index.remove(removed[space])

    def drop_organisations(self, org_ids: Sequence[int]) -> bool:
        """Take organisations out of the catalogue, the vector indexes and the graph (their
        collaborations stay, without them); returns whether the graph changed."""
        graph = self.state.graph
        changed = False
        for org_id in org_ids:
            self.state.catalog.remove(org_id)
            for index in self.state.vectors.values():
                if org_id in index:
                    index.remove([org_id])
            if graph.has_organisation(org_id):
                graph.remove_organisation(org_id)
                changed = True
        return changed

    @property
    def deferred_spaces(self) -> set[str]:
        """Spaces served by an exact scan until :meth:`train_deferred` swaps in their layout."""
        return set(self._deferred)

    async def layouts_trained(self) -> None:
        """Wait until no index is left as an exact scan by a deferred training."""
        await self._layouts_trained.wait()

    # -- start-up ---------------------------------------------------------------------------
    async def load(
        self, db: Database, index_dir: Path | None = None, *, defer_training: bool = False
    ) -> dict[str, float]:
        """Rebuild everything from the store; returns timings (seconds) per stage.

        With ``index_dir``, a vector index saved there is used instead of building one when its
        fingerprint matches the store's now and its ids and a sample of its vectors match the
        store's vectors; a missing, corrupt or stale file is ignored (and rebuilt).

        With ``defer_training``, an index that must be rebuilt and is large enough for an IVF
        layout (minutes of k-means at 100k vectors) is built as an exact scan instead, which
        answers the same queries exactly; :meth:`train_deferred` trains the layout later.

        The store is read in bulk, one query per table, while the saved index files are read
        and checked in a worker thread; the catalogue and the graph are then built from arrays.
        """
        timings: dict[str, float] = {}
        name, dim = self.encoder.name, self.encoder.dim
        background: list[asyncio.Future[Any]] = []
        try:
            t0 = time.perf_counter()
            async with db.read() as session:
                # Read first: the tables read next hold at least every change up to ``seq``;
                # later ones are applied by the next catch_up (applying one twice is harmless).
                fingerprint, seq = await _fingerprint(session, self.encoder)
                reading = None
                if index_dir is not None:
                    reading = _in_thread(
                        background, _read_saved_indexes, index_dir, dim, fingerprint
                    )
                orgs = await read_organisation_columns(session)
                collaborations = await read_collaboration_columns(session)
                # The graph needs nothing else: it is built while the vectors are read.
                building_graph = _in_thread(
                    background, _graph_from_columns, orgs.ids, collaborations, self.reference_year
                )
                items = await read_vectors(session, name, dim, ITEM_FIELDS)
                profile_ids = await read_vector_ids(session, name, "profile")
                timings["store"] = time.perf_counter() - t0

                t0 = time.perf_counter()
                catalog, item_spaces = await anyio.to_thread.run_sync(
                    _catalog_from_columns, orgs, items
                )
                del items  # the catalogue's profiles keep views of the item rows they need
                timings["catalog"] = time.perf_counter() - t0

                t0 = time.perf_counter()
                saved = await reading if reading is not None else {}
                profile_ids = profile_ids[np.isin(profile_ids, orgs.ids)]
                indexes: dict[str, VectorIndex] = {}
                sources: dict[str, str] = {}
                deferred: dict[str, tuple[IntArray, Float32Matrix]] = {}
                for space in VECTOR_SPACES:
                    index = saved.get(space)
                    ids, rows = item_spaces.get(space, (profile_ids, None))
                    if index is not None and await _matches_store(
                        session, self.encoder, space, index, ids, rows
                    ):
                        indexes[space], sources[space] = index, "file"
                        continue
                    if rows is None:  # the profile vectors were not needed until now
                        stored = await read_vectors(
                            session, name, dim, ("profile",), first_position_only=True
                        )
                        known = np.isin(stored.organisation_ids, orgs.ids)
                        ids, rows = stored.organisation_ids[known], stored.matrix[known]
                    index = VectorIndex(dim)
                    if defer_training and len(ids) > index.exact_threshold:
                        index = VectorIndex(dim, exact_threshold=len(ids))
                        deferred[space] = (ids, rows)
                    if len(ids):
                        await anyio.to_thread.run_sync(index.build, ids, rows)
                    indexes[space], sources[space] = index, "rebuilt"
            timings["indexes"] = time.perf_counter() - t0
            if index_dir is not None:
                log.info("vector indexes: %s", ", ".join(f"{k} {v}" for k, v in sources.items()))

            t0 = time.perf_counter()
            graph = await building_graph
        finally:
            for task in background:
                task.cancel()
        state = MatchingState(
            catalog=catalog, graph=graph, vectors=indexes, scorer=self.state.scorer
        )
        state.refresh_snapshot()
        self.state = state
        self.applied_seq = seq
        self._caught_up_at = time.monotonic()
        self.index_sources = sources
        self._deferred = deferred
        if deferred:
            self._layouts_trained.clear()
        if all(source == "file" for source in sources.values()):
            self.saved_fingerprint = fingerprint
        timings["graph"] = time.perf_counter() - t0
        return timings

    async def train_deferred(self, db: Database) -> None:
        """Train the IVF layout of every index that start-up left as an exact scan, and swap
        each in once trained.

        Requests are served meanwhile. The layout is trained, in a daemon thread (a stopping
        service does not wait for k-means), on the vectors the scan was built from; while no
        change is applied (``applying``), the writes that landed since are copied to it from
        the scan before it replaces the scan, so the index served always holds the store's
        vectors.
        """
        for space, (ids, rows) in sorted(self._deferred.items()):
            trained = VectorIndex(self.encoder.dim)
            started = time.perf_counter()
            await _in_daemon_thread(trained.build, ids, rows)
            async with self.applying:
                with self.state.changing():
                    changed = _catch_up(trained, self.state.vectors[space])
                    self.state.vectors[space] = trained
                del self._deferred[space]
                if not self._deferred:
                    self._layouts_trained.set()
            log.info(
                "%s index: %s layout trained in %.1f s and swapped in (%d writes caught up)",
                space,
                trained.kind,
                time.perf_counter() - started,
                changed,
            )

    async def save_indexes(self, db: Database, index_dir: Path) -> bool:
        """Write the vector indexes to ``index_dir`` with the store's fingerprint, unless the
        files there already describe the store as it is; returns whether files were written.

        The fingerprint names the last change-feed entry, so a file is labelled with a store
        that the copied indexes hold exactly: the state is caught up and the fingerprint
        read while no change is applied, and if another process committed in between, the
        state catches up and the fingerprint is read again.
        """
        if self.deferred_spaces:
            # An exact scan saved in place of its IVF layout would be served as one, at every
            # start, until the index doubles: better to train again next time.
            log.info("vector indexes not saved: %s still training", sorted(self.deferred_spaces))
            return False
        for _attempt in range(_SAVE_ATTEMPTS):
            await self.catch_up(db)
            async with self.applying:
                async with db.read() as session:
                    fingerprint, seq = await _fingerprint(session, self.encoder)
                if seq != self.applied_seq:
                    continue  # a write landed since the catch-up
                if fingerprint == self.saved_fingerprint:
                    return False
                indexes = dict(self.state.vectors)
                await anyio.to_thread.run_sync(_write_indexes, indexes, index_dir, fingerprint)
                self.saved_fingerprint = fingerprint
                return True
        log.info("vector indexes not saved: the store kept changing")
        return False


def _write_indexes(indexes: dict[str, VectorIndex], index_dir: Path, fingerprint: str) -> None:
    for space, index in indexes.items():
        index.save(index_dir / f"{space}.mhvi", fingerprint=fingerprint)


async def store_fingerprint(db: Database, encoder: Encoder) -> str:
    """What the vector indexes were derived from: the last change-feed entry and a few
    aggregates of the store (which also move when something wrote around the feed).

    Any change the service makes moves them: every write adds a feed entry; besides, a create
    or update sets ``updated_at`` to the newest time, a delete lowers the count and the id sum,
    re-embedding changes the vector count or ``updated_at``.
    """
    async with db.read() as session:
        fingerprint, _seq = await _fingerprint(session, encoder)
    return fingerprint


async def _fingerprint(session: AsyncSession, encoder: Encoder) -> tuple[str, int]:
    """(fingerprint, last feed entry), read in one statement: one instant of the store."""
    org = m.Organisation.__table__
    emb = m.Embedding.__table__
    feed = m.StateChange.__table__
    vectors = select(func.count()).select_from(emb).where(emb.c.model == encoder.name)
    seq = select(func.coalesce(func.max(feed.c.seq), 0))
    count, id_sum, latest, n_vectors, last = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(org.c.id), 0),
                func.max(org.c.updated_at),
                vectors.scalar_subquery(),
                seq.scalar_subquery(),
            ).select_from(org)
        )
    ).one()
    fingerprint = (
        f"derivation={INDEX_DERIVATION_VERSION};model={encoder.name};dim={encoder.dim};"
        f"changes={last};organisations={count};id_sum={id_sum};"
        f"latest_update={_utc_text(latest)};vectors={n_vectors}"
    )
    return fingerprint, int(last)


def _utc_text(moment: object) -> str:
    """A timestamp as naive UTC ISO text, whether the driver returns it aware, naive or as text,
    so the same store always gives the same fingerprint."""
    parsed = moment
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if isinstance(parsed, datetime):
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed.isoformat()
    return str(moment)


def _in_thread(
    started: list[asyncio.Future[Any]], function: Callable[..., T], *args: Any
) -> asyncio.Future[T]:
    """``function(*args)`` in a worker thread, awaited later; recorded in ``started`` so the
    caller can cancel what it no longer waits for (the thread itself runs to its end)."""
    future = asyncio.ensure_future(anyio.to_thread.run_sync(function, *args))
    future.add_done_callback(_consume_exception)
    started.append(future)
    return future


async def _in_daemon_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a daemon thread: unlike anyio's worker threads, a process that
    stops does not wait for it to finish."""
    future: Future[T] = Future()
    future.set_running_or_notify_cancel()  # from now on a cancel leaves the thread alone

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name="index-training", daemon=True).start()
    return await asyncio.wrap_future(future)


def _catch_up(target: VectorIndex, source: VectorIndex) -> int:
    """Make ``target`` hold ``source``'s ids and vectors; returns how many ids moved.

    Both were built from the same vectors, so a row no write touched is equal bit for bit; a
    row copied over is normalised once more, which may move it by a rounding step.
    """
    now_ids = source.ids()
    gone = np.setdiff1d(target.ids(), now_ids)
    target.remove(gone)
    now_rows = source.get(now_ids)
    changed = ~np.all(target.get(now_ids) == now_rows, axis=1)
    if changed.any():
        target.upsert(now_ids[changed], now_rows[changed])
    return len(gone) + int(changed.sum())


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # An exception nobody awaited any more (start-up failed elsewhere) is not worth a warning.
    if not future.cancelled():
        future.exception()


def _read_saved_indexes(
    index_dir: Path, dim: int, fingerprint: str
) -> dict[str, VectorIndex | None]:
    """Each space's saved index whose file is intact and carries ``fingerprint`` (else None)."""
    return {
        space: VectorIndex.load(
            index_dir / f"{space}.mhvi", dim=dim, expected_fingerprint=fingerprint
        )
        for space in VECTOR_SPACES
    }


async def _matches_store(
    session: AsyncSession,
    encoder: Encoder,
    space: str,
    index: VectorIndex,
    ids: IntArray,
    rows: Float32Matrix | None,
) -> bool:
    """Whether a saved index holds exactly the store's ids and, on a sample, its vectors.

    Beyond the fingerprint, this keeps even a file whose fingerprint matches by accident from
    being served. ``rows`` (aligned with ``ids``) are the space's vectors derived from the
    store; None reads just the sample's profile vectors.
    """
    if len(index) != len(ids) or not np.array_equal(np.sort(index.ids()), np.sort(ids)):
        log.warning("ignoring saved %s index: its ids differ from the store's", space)
        return False
    if not len(ids):
        return True
    sample = np.sort(
        np.random.default_rng(0).choice(len(ids), size=min(_SAMPLE_SIZE, len(ids)), replace=False)
    )
    sample_ids = ids[sample]
    if rows is None:
        stored = await read_vectors(
            session,
            encoder.name,
            encoder.dim,
            ("profile",),
            first_position_only=True,
            organisation_ids=sample_ids.tolist(),
        )
        if not np.array_equal(stored.organisation_ids, np.sort(sample_ids)):
            log.warning("ignoring saved %s index: the store's vectors changed", space)
            return False
        sample_ids, sample_rows = stored.organisation_ids, stored.matrix
    else:
        sample_rows = rows[sample]
    expected = sample_rows / np.linalg.norm(sample_rows, axis=1, keepdims=True)
    if not np.allclose(index.get(sample_ids), expected, atol=1e-5):
        log.warning("ignoring saved %s index: its vectors differ from the store's", space)
        return False
    return True


def _catalog_from_columns(
    orgs: OrganisationColumns, items: StoredVectors
) -> tuple[Catalog, dict[str, tuple[IntArray, Float32Matrix]]]:
    """The catalogue and the offers/seeks spaces (ids, mean vectors), as ``to_profile`` would
    make them organisation by organisation, computed over all item rows at once.

    Item rows beyond an organisation's current list (or of an unknown organisation) are left
    out, as ``to_profile`` leaves them; profiles hold read-only views of one item matrix.
    """
    n = len(orgs.ids)
    dim = items.matrix.shape[1]
    rows = np.searchsorted(orgs.ids, items.organisation_ids)
    known = rows < n
    known[known] = orgs.ids[rows[known]] == items.organisation_ids[known]
    counts_by_field = np.stack(
        [
            np.fromiter(map(len, orgs.offers), dtype=np.int64, count=n),
            np.fromiter(map(len, orgs.seeks), dtype=np.int64, count=n),
        ]
    )
    if items.field_names != ITEM_FIELDS:
        raise ValueError(f"expected item vectors of {ITEM_FIELDS}, got {items.field_names}")
    field = items.fields.astype(np.int64)  # 0 offer, 1 seek
    keep = known.copy()
    keep[known] = items.positions[known] < counts_by_field[field[known], rows[known]]
    matrix = items.matrix if keep.all() else items.matrix[keep]
    matrix.flags.writeable = False
    rows, field = rows[keep], field[keep]
    # Rows are sorted by (organisation, field, position): each (organisation, field) is a run.
    key = rows * 2 + field
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) else key
    sizes = np.diff(np.append(starts, len(key)))
    span_start = np.zeros((2, n), dtype=np.int64)
    span_end = np.zeros((2, n), dtype=np.int64)
    span_start[field[starts], rows[starts]] = starts
    span_end[field[starts], rows[starts]] = starts + sizes

    spaces: dict[str, tuple[IntArray, Float32Matrix]] = {}
    for code, item_field in enumerate(ITEM_FIELDS):
        mine = field[starts] == code
        group_starts, group_sizes = starts[mine], sizes[mine]
        # Summed row by row in position order, as rows.mean(axis=0) sums one organisation's
        # items, so the means are the ones a later write would compute.
        means = matrix[group_starts] if len(group_starts) else np.zeros((0, dim), np.float32)
        for j in range(1, int(group_sizes.max()) if len(group_sizes) else 0):
            more = group_sizes > j
            means[more] += matrix[group_starts[more] + j]
        means /= group_sizes.astype(np.float32)[:, None]
        spaces[_ITEM_SPACES[item_field]] = (orgs.ids[rows[group_starts]], _unit_rows(means))

    ids = orgs.ids.tolist()
    bounds = [b.tolist() for b in (span_start[0], span_end[0], span_start[1], span_end[1])]
    profiles = [
        OrgProfile(
            id=ids[i],
            name=orgs.names[i],
            kind=orgs.kinds[i],
            sectors=orgs.sectors[i],
            country=orgs.countries[i],
            region=orgs.regions[i],
            clusters=orgs.clusters[i],
            maturity=orgs.maturities[i],
            tenant=orgs.tenants[i],
            offers=orgs.offers[i],
            seeks=orgs.seeks[i],
            offer_vectors=matrix[bounds[0][i] : bounds[1][i]],
            seek_vectors=matrix[bounds[2][i] : bounds[3][i]],
        )
        for i in range(n)
    ]
    catalog = Catalog(capacity=max(1024, n))
    catalog.upsert_many(profiles)
    return catalog, spaces


def _graph_from_columns(
    organisation_ids: IntArray, collaborations: CollaborationColumns, reference_year: int | None
) -> CollaborationGraph:
    """The collaboration graph, its CSR snapshot included; participants that are not
    organisations of the catalogue do not occur (the store's foreign keys)."""
    return CollaborationGraph.from_arrays(
        organisation_ids,
        collaborations.ids,
        collaborations.kinds,
        collaborations.years,
        collaborations.weights,
        collaborations.sizes,
        collaborations.members,
        reference_year=reference_year,
    )


async def load_organisations(db: Database, ids: list[int] | None = None) -> list[dict[str, Any]]:
    """Organisations as plain dicts (with sectors, clusters, external ids), ordered by id.

    Two queries: the organisation rows, and their sectors, clusters and external ids in one
    ``UNION ALL``. Each query costs several round trips to the driver's thread (about 0.6 ms
    with SQLite). One organisation of a 10k store took 3.3-4.5 ms with a query per table,
    2.8-3.8 ms like this.
    """
    org_t = m.Organisation.__table__
    children = _children_query(ids)
    async with db.read() as session:
        query = select(org_t).order_by(org_t.c.id)
        if ids is not None:
            query = query.where(org_t.c.id.in_(ids))
        rows = (await session.execute(query)).mappings().all()
        sectors: dict[int, list[str]] = defaultdict(list)
        clusters: dict[int, list[str]] = defaultdict(list)
        external: dict[int, dict[str, str]] = defaultdict(dict)
        for org_id, kind, _position, value, scheme in (await session.execute(children)).all():
            if kind == "sector":
                sectors[org_id].append(value)
            elif kind == "cluster":
                clusters[org_id].append(value)
            else:
                external[org_id][scheme] = value
    out = []
    for row in rows:
        org = dict(row)
        org["sectors"] = sectors.get(org["id"], [])
        org["clusters"] = clusters.get(org["id"], [])
        org["external_ids"] = external.get(org["id"], {})
        out.append(org)
    return out


def _children_query(ids: list[int] | None) -> Select[Any]:
    """(organisation id, kind, position, value, scheme) of every sector, cluster and external
    id of ``ids`` (all when None); sectors and clusters in their stored order."""
    sector_t = m.OrganisationSector.__table__
    cluster_t = m.OrganisationCluster.__table__
    ext_t = m.ExternalId.__table__
    parts = [
        select(
            sector_t.c.organisation_id,
            literal_column("'sector'").label("kind"),
            sector_t.c.position,
            sector_t.c.sector.label("value"),
            cast(null(), String).label("scheme"),
        ),
        select(
            cluster_t.c.organisation_id,
            literal_column("'cluster'"),
            cluster_t.c.position,
            cluster_t.c.cluster,
            cast(null(), String),
        ),
        select(
            ext_t.c.organisation_id,
            literal_column("'external'"),
            literal_column("0"),
            ext_t.c.value,
            ext_t.c.scheme,
        ),
    ]
    if ids is not None:
        parts = [part.where(part.selected_columns[0].in_(ids)) for part in parts]
    union = union_all(*parts).subquery()
    return select(union).order_by(
        union.c.organisation_id, union.c.kind, union.c.position, union.c.scheme
    )


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
        async for chunk in result.partitions():  # one await per chunk, not per row
            for org_id, field, position, blob in chunk:
                out[org_id][(field, position)] = np.frombuffer(blob, dtype=np.float32)
    return out


async def load_collaborations(
    db: Database, ids: Sequence[int] | None = None
) -> list[GraphCollaboration]:
    """Collaborations with at least two participants (all, or those of ``ids``), by id."""
    collab_t = m.Collaboration.__table__
    part_t = m.CollaborationParticipant.__table__
    members_q = select(part_t.c.collaboration_id, part_t.c.organisation_id).order_by(
        part_t.c.collaboration_id, part_t.c.position
    )
    rows_q = select(collab_t.c.id, collab_t.c.kind, collab_t.c.year, collab_t.c.weight).order_by(
        collab_t.c.id
    )
    if ids is not None:
        members_q = members_q.where(part_t.c.collaboration_id.in_(ids))
        rows_q = rows_q.where(collab_t.c.id.in_(ids))
    async with db.read() as session:
        members: dict[int, list[int]] = defaultdict(list)
        result = await session.stream(members_q.execution_options(yield_per=50_000))
        async for chunk in result.partitions():
            for collab_id, org_id in chunk:
                members[collab_id].append(org_id)
        rows = (await session.execute(rows_q)).all()
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


def freeze_loaded_objects() -> None:
    """Exempt everything loaded so far from the garbage collector's full passes.

    The state of 100k organisations is ~450,000 long-lived objects (profiles, their tuples and
    strings); a full collection walks every one of them, 150 ms on this machine, and runs on
    whichever request happens to allocate at that moment. Frozen objects are still freed by
    reference counting when the state replaces them; only a reference cycle among them that
    became garbage would stay.
    """
    gc.collect()
    gc.freeze()
