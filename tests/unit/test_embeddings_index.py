"""The vector index: id mapping, search with exclusions, exact gathers, layouts and persistence."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from embeddings import VectorIndex
from embeddings.kernels import top_k

DIM = 16


def _unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _random(n: int, dim: int = DIM, seed: int = 0) -> npt.NDArray[np.float32]:
    return _unit(np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32))


def _clustered(n: int, dim: int, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((max(1, n // 50), dim), dtype=np.float32))
    noise = 0.1 * rng.standard_normal((n, dim), dtype=np.float32)
    return _unit(centres[rng.integers(0, len(centres), n)] + noise)


def _exact_top(
    vectors: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    query: npt.NDArray[np.float32],
    k: int,
) -> set[int]:
    return set(ids[np.argsort(-(vectors @ query))[:k]].tolist())


def _recall(
    index: VectorIndex,
    vectors: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    queries: npt.NDArray[np.float32],
    k: int,
) -> float:
    hits = 0
    for query in queries:
        found, _ = index.search(query, k)
        hits += len(set(found.tolist()) & _exact_top(vectors, ids, query, k))
    return hits / (len(queries) * k)


@pytest.fixture
def small_index() -> VectorIndex:
    index = VectorIndex(DIM)
    index.upsert(np.arange(100, 150), _random(50))
    return index


def test_search_returns_the_exact_neighbours_best_first(small_index: VectorIndex) -> None:
    vectors = small_index.get(np.arange(100, 150))
    query = vectors[7]

    found, scores = small_index.search(query, k=5)

    assert found[0] == 107 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert set(found.tolist()) == _exact_top(vectors, np.arange(100, 150), query, 5)
    assert np.all(np.diff(scores) <= 0)
    assert found.dtype == np.int64 and scores.dtype == np.float32


@pytest.mark.parametrize(("n", "k"), [(1, 1), (7, 3), (500, 100), (80, 100), (2_000, 1)])
def test_top_k_is_the_best_k_with_ties_to_the_smaller_position(n: int, k: int) -> None:
    """The exact scan's selection: one answer for tied scores (an identical text gives
    identical vectors), whichever algorithm selects, and never a score of -inf over a finite one."""
    rng = np.random.default_rng(n + k)
    for trial in range(50):
        if trial % 2:
            scores = rng.integers(0, 5, n).astype(np.float32)  # many ties
        else:
            scores = rng.standard_normal(n).astype(np.float32)
        scores[rng.integers(0, n, n // 4)] = -np.inf
        expected = np.lexsort((np.arange(n), -scores))[:k]
        assert top_k(scores, k).tolist() == expected.tolist()


def test_search_skips_excluded_ids_and_still_returns_k(small_index: VectorIndex) -> None:
    query = small_index.get([107])[0]
    nearest, _ = small_index.search(query, k=10)

    found, _ = small_index.search(query, k=10, exclude={int(i) for i in nearest[:5]} | {999})

    assert len(found) == 10
    assert not set(found.tolist()) & set(nearest[:5].tolist())
    assert found[:5].tolist() == nearest[5:].tolist()


def test_search_never_returns_more_than_is_there(small_index: VectorIndex) -> None:
    found, _ = small_index.search(_random(1)[0], k=500, exclude=range(100, 140))

    assert sorted(found.tolist()) == list(range(140, 150))
    assert len(VectorIndex(DIM).search(_random(1)[0], k=3)[0]) == 0
    # Repeated and unordered exclusions count once.
    repeated = np.array([*range(139, 99, -1), *range(100, 140)])
    found, _ = small_index.search(_random(1)[0], k=500, exclude=repeated)
    assert sorted(found.tolist()) == list(range(140, 150))


def test_upsert_replaces_a_vector_and_remove_forgets_it(small_index: VectorIndex) -> None:
    target = _random(1, seed=9)[0]

    small_index.upsert([120], target[None, :])

    assert len(small_index) == 50
    np.testing.assert_allclose(small_index.get([120])[0], target, atol=1e-6)
    assert small_index.search(target, k=1)[0].tolist() == [120]

    assert small_index.remove([120, 121, 4242]) == 2

    assert 120 not in small_index and 122 in small_index and len(small_index) == 48
    assert 120 not in small_index.search(target, k=50)[0].tolist()
    assert not small_index.get([120]).any()


def test_removed_slots_are_reused_without_leaking_old_vectors(small_index: VectorIndex) -> None:
    small_index.remove(list(range(100, 130)))
    new = _random(30, seed=3)

    small_index.upsert(np.arange(1000, 1030), new)  # ids far beyond the old ones are fine too

    assert len(small_index) == 50
    np.testing.assert_allclose(small_index.get(np.arange(1000, 1030)), new, atol=1e-6)
    found, _ = small_index.search(new[0], k=50)
    assert set(found.tolist()) == set(range(1000, 1030)) | set(range(130, 150))


@pytest.mark.parametrize("bad_id", [-1, 2**31])
def test_ids_outside_the_store_key_range_are_refused(small_index: VectorIndex, bad_id: int) -> None:
    with pytest.raises(ValueError, match="ids must be in"):
        small_index.upsert([bad_id], _random(1, seed=4))

    assert bad_id not in small_index
    assert len(small_index) == 50


def test_get_and_similarity_keep_the_order_of_the_ids_asked_for(small_index: VectorIndex) -> None:
    rows = small_index.get([140, 4242, 100])
    query = rows[0]

    similarity = small_index.similarity(query, [140, 4242, 100])

    assert rows.shape == (3, DIM) and not rows[1].any()
    assert similarity[0] == pytest.approx(1.0, abs=1e-5)
    assert similarity[1] == 0.0
    assert similarity[2] == pytest.approx(float(rows[2] @ query), abs=1e-6)


def test_vectors_are_stored_at_unit_length() -> None:
    index = VectorIndex(2)
    index.upsert([1], np.array([[3.0, 4.0]]))

    np.testing.assert_allclose(index.get([1])[0], [0.6, 0.8], atol=1e-6)
    assert index.similarity(np.array([6.0, 8.0]), [1])[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ids", "vectors", "message"),
    [
        ([1, 2], np.ones((3, DIM)), "shape"),
        ([1, 1], np.ones((2, DIM)), "unique"),
        ([1], np.zeros((1, DIM)), "non-zero"),
        ([1], np.full((1, DIM), np.nan), "finite"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    small_index: VectorIndex, ids: list[int], vectors: npt.NDArray[np.float64], message: str
) -> None:
    before = small_index.get(np.arange(100, 150))

    with pytest.raises(ValueError, match=message):
        small_index.upsert(ids, vectors)

    assert len(small_index) == 50 and 1 not in small_index
    np.testing.assert_array_equal(small_index.get(np.arange(100, 150)), before)


def test_small_build_stays_exact() -> None:
    index = VectorIndex(DIM, exact_threshold=1000)
    index.build(np.arange(1000), _random(1000))

    assert index.kind == "flat" and index.nprobe is None


def test_ivf_layout_on_clustered_data_matches_brute_force() -> None:
    ids = np.arange(5000, dtype=np.int64) * 7
    vectors, queries = np.split(_clustered(5100, 32), [5000])  # queries held out, same topics
    index = VectorIndex(32, exact_threshold=1000)

    index.build(ids, vectors)

    assert index.kind == "ivf" and index.nprobe is not None
    assert _recall(index, vectors, ids, queries, k=20) >= 0.95


def test_uniform_random_data_keeps_recall_whatever_the_layout() -> None:
    # Uniform random vectors have no clusters; the index must not trade recall for speed there.
    ids = np.arange(4000, dtype=np.int64)
    vectors = _random(4000, dim=32)
    index = VectorIndex(32, exact_threshold=500)

    index.build(ids, vectors)

    assert _recall(index, vectors, ids, _random(50, dim=32, seed=5), k=20) >= 0.95


def test_ivf_layout_supports_upsert_remove_and_exclude() -> None:
    ids = np.arange(3000, dtype=np.int64)
    vectors = _clustered(3000, 32)
    index = VectorIndex(32, exact_threshold=1000)
    index.build(ids, vectors)
    moved = _clustered(1, 32, seed=7)[0]

    index.upsert([5, 10_000], np.stack([moved, moved]))
    index.remove([6])

    found, scores = index.search(moved, k=5, exclude={10_000})
    assert index.kind == "ivf" and len(index) == 3000
    assert found[0] == 5 and scores[0] == pytest.approx(1.0, abs=1e-5)
    assert 10_000 not in found and 6 not in index
    assert 6 not in index.search(vectors[6], k=50)[0].tolist()


def test_ivf_search_skips_exactly_the_excluded_ids() -> None:
    # What the probed lists hold, best first, minus the excluded: the same as fetching more
    # without exclusions and dropping them. The excluded include the nearest (they would win)
    # and the last slots (the bitmap's last byte).
    ids = np.arange(3000, dtype=np.int64) + 500
    vectors = _clustered(3000, 32)
    index = VectorIndex(32, exact_threshold=1000)
    index.build(ids, vectors)
    assert index.kind == "ivf"
    for seed in range(5):
        query = _clustered(1, 32, seed=100 + seed)[0]
        nearest, _ = index.search(query, k=40)
        excluded = np.unique(np.concatenate([nearest[::2], ids[-9:], [10**9]]))
        found, scores = index.search(query, k=20, exclude=excluded)
        wider, wider_scores = index.search(query, k=20 + len(excluded))
        keep = ~np.isin(wider, excluded)
        assert found.tolist() == wider[keep][:20].tolist()
        np.testing.assert_array_equal(scores, wider_scores[keep][:20])


def test_filling_by_upserts_asks_for_a_rebuild_that_switches_layout() -> None:
    index = VectorIndex(32, exact_threshold=1000)
    vectors = _clustered(2500, 32)
    for start in range(0, 2500, 500):
        index.upsert(np.arange(start, start + 500), vectors[start : start + 500])
    assert index.kind == "flat" and index.needs_rebuild

    index.rebuild()

    assert index.kind == "ivf" and not index.needs_rebuild and len(index) == 2500
    np.testing.assert_allclose(index.get([1234])[0], vectors[1234], atol=1e-6)


@pytest.mark.parametrize("layout_threshold", [10_000, 1000], ids=["flat", "ivf"])
def test_save_and_load_round_trip(tmp_path: Path, layout_threshold: int) -> None:
    ids = np.arange(3000, dtype=np.int64) + 10**6
    index = VectorIndex(32, exact_threshold=layout_threshold)
    index.build(ids, _clustered(3000, 32))
    index.remove(ids[:10].tolist())  # free slots must survive the round trip
    path = tmp_path / "profile.index"

    index.save(path, fingerprint="minilm:2990:2025-01-01")
    loaded = VectorIndex.load(path, dim=32, expected_fingerprint="minilm:2990:2025-01-01")

    assert loaded is not None
    assert loaded.kind == index.kind and loaded.nprobe == index.nprobe and len(loaded) == 2990
    np.testing.assert_array_equal(loaded.get(ids), index.get(ids))
    query = index.get([ids[100]])[0]
    for original, restored in zip(index.search(query, 10), loaded.search(query, 10), strict=True):
        np.testing.assert_array_equal(original, restored)
    loaded.upsert([7], query[None, :])  # still writable: reuses a freed slot
    assert loaded.search(query, 2)[0].tolist() in ([7, ids[100]], [ids[100], 7])
    assert not list(tmp_path.glob(".*tmp"))


def test_load_refuses_missing_corrupt_stale_and_mismatched_files(tmp_path: Path) -> None:
    index = VectorIndex(DIM)
    index.upsert(np.arange(200), _random(200))
    path = tmp_path / "profile.index"
    index.save(path, fingerprint="v1")
    good = path.read_bytes()

    assert VectorIndex.load(tmp_path / "missing", dim=DIM, expected_fingerprint="v1") is None
    assert VectorIndex.load(path, dim=DIM, expected_fingerprint="v2") is None  # stale
    assert VectorIndex.load(path, dim=DIM + 1, expected_fingerprint="v1") is None
    for position in (0, 20, 60, len(good) // 2, len(good) - 1):  # magic, digest, header, body
        corrupt = bytearray(good)
        corrupt[position] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        assert VectorIndex.load(path, dim=DIM, expected_fingerprint="v1") is None, position
    path.write_bytes(good[: len(good) // 3])  # truncated
    assert VectorIndex.load(path, dim=DIM, expected_fingerprint="v1") is None
    path.write_bytes(good)
    assert VectorIndex.load(path, dim=DIM, expected_fingerprint="v1") is not None


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    VectorIndex(DIM).save(tmp_path / "empty.index", fingerprint="none")

    loaded = VectorIndex.load(tmp_path / "empty.index", dim=DIM, expected_fingerprint="none")

    assert loaded is not None and len(loaded) == 0
    assert len(loaded.search(_random(1)[0], k=5)[0]) == 0


def test_snapshot_reads_the_live_content_by_slot_without_copying_it() -> None:
    ids = np.arange(3000, dtype=np.int64) + 500
    vectors = _clustered(3000, 32)
    index = VectorIndex(32, exact_threshold=1000)
    index.build(ids, vectors)
    index.remove([500, 501])

    snapshot = index.snapshot()

    live = np.setdiff1d(np.arange(len(snapshot.slot_ids)), snapshot.free_slots)
    assert sorted(snapshot.free_slots.tolist()) == [0, 1]
    np.testing.assert_array_equal(snapshot.slot_ids[live], ids[2:])
    np.testing.assert_allclose(snapshot.vectors[live], vectors[2:], atol=1e-6)
    assert np.shares_memory(snapshot.vectors, index._vectors)
    assert snapshot.ivf is index._ivf and snapshot.nprobe == index.nprobe
    assert snapshot.ivf is not None and snapshot.ivf.ntotal == 2998


def test_save_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "profile.index"
    first = VectorIndex(DIM)
    first.upsert([1], _random(1))
    first.save(path, fingerprint="a")
    second = VectorIndex(DIM)
    second.upsert([2, 3], _random(2))

    second.save(path, fingerprint="b")

    loaded = VectorIndex.load(path, dim=DIM, expected_fingerprint="b")
    assert loaded is not None and sorted(loaded.ids().tolist()) == [2, 3]


def test_concurrent_reads_during_writes_see_consistent_results() -> None:
    index = VectorIndex(DIM)
    vectors = _random(400)
    index.upsert(np.arange(200), vectors[:200])
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            while not stop.is_set():
                found, scores = index.search(vectors[0], k=20)
                assert len(set(found.tolist())) == 20 and set(found.tolist()) <= set(range(400))
                assert np.all(np.isfinite(scores)) and np.all(np.diff(scores) <= 0)
        except BaseException as error:  # reported to the main thread
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    for step in range(200):
        index.upsert([200 + step], vectors[200 + step][None, :])
        index.remove([step])
    stop.set()
    for reader in readers:
        reader.join()

    assert not errors
    assert sorted(index.ids().tolist()) == list(range(200, 400))
