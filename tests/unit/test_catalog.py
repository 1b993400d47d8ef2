"""The catalogue the ranker reads: id -> row lookups and the packed offer/seek item vectors stay
right through inserts, replacements, removals, row reuse and compaction."""

from __future__ import annotations

import numpy as np
import pytest

from matching.catalog import Catalog, OrgProfile

DIM = 8


def _items(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _profile(org_id: int, offers: int, seeks: int, seed: int) -> OrgProfile:
    return OrgProfile(
        id=org_id,
        name=f"Org {org_id}",
        kind="sme",
        sectors=("biotech",),
        country="ES",
        offers=tuple(f"offer {i}" for i in range(offers)),
        seeks=tuple(f"seek {i}" for i in range(seeks)),
        offer_vectors=_items(offers, seed),
        seek_vectors=_items(seeks, seed + 1000),
    )


def _assert_items_match(catalog: Catalog, profiles: dict[int, OrgProfile]) -> None:
    ids = np.array(sorted(profiles), dtype=np.int64)
    rows = catalog.rows_of(ids)
    for items, attribute in (
        (catalog.offer_items, "offer_vectors"),
        (catalog.seek_items, "seek_vectors"),
    ):
        stacked, counts = items.gather(rows)
        expected = [getattr(profiles[int(i)], attribute) for i in ids]
        assert counts.tolist() == [len(m) for m in expected]
        np.testing.assert_array_equal(stacked, np.concatenate(expected))


def test_items_follow_upserts_replacements_and_removals_through_compaction() -> None:
    catalog = Catalog(capacity=4)
    live: dict[int, OrgProfile] = {}
    rng = np.random.default_rng(0)
    for step in range(3000):  # enough garbage to force several compactions and row growth
        org_id = int(rng.integers(1, 400))
        if rng.random() < 0.2 and org_id in live:
            catalog.remove(org_id)
            del live[org_id]
        else:
            profile = _profile(org_id, int(rng.integers(0, 4)), int(rng.integers(0, 3)), step)
            catalog.upsert(profile)
            live[org_id] = profile

    assert len(catalog) == len(live)
    assert sorted(catalog.all_ids().tolist()) == sorted(live)
    _assert_items_match(catalog, live)


def test_stored_profiles_hold_views_of_the_item_matrices_not_a_second_copy() -> None:
    catalog = Catalog(capacity=4)
    given = [_profile(i, 2, 1, i) for i in range(1, 50)]
    catalog.upsert_many(given)
    held = catalog.get(7)  # a reader's profile, read before the writes below
    assert held is not None
    expected_offers = held.offer_vectors.copy()

    rng = np.random.default_rng(1)
    for step in range(2000):  # the matrices grow and compact many times over
        catalog.upsert(_profile(int(rng.integers(1, 50)), 3, 2, 5000 + step))

    for org_id in catalog.all_ids().tolist():
        stored = catalog.get(org_id)
        assert stored is not None
        for vectors, items in (
            (stored.offer_vectors, catalog.offer_items),
            (stored.seek_vectors, catalog.seek_items),
        ):
            assert np.shares_memory(vectors, items.view()[0])
    assert not any(
        np.shares_memory(catalog.get(p.id).offer_vectors, p.offer_vectors) for p in given
    )
    # What a reader held before is still what it read.
    np.testing.assert_array_equal(held.offer_vectors, expected_offers)


def test_a_profile_without_items_keeps_none_and_an_empty_list_keeps_its_width() -> None:
    catalog = Catalog()
    bare = OrgProfile(id=1, name="Bare", kind="sme", sectors=(), country="ES")
    empty = _profile(2, 0, 0, 0)
    catalog.upsert_many([bare, empty, _profile(3, 1, 1, 3)])
    stored_bare, stored_empty = catalog.get(1), catalog.get(2)
    assert stored_bare is not None and stored_empty is not None
    assert stored_bare.offer_vectors is None and stored_bare.seek_vectors is None
    assert stored_empty.offer_vectors is not None and len(stored_empty.offer_vectors) == 0
    assert stored_empty.offer_vectors.shape == empty.offer_vectors.shape == (0, DIM)
    # Not a view of the array it came in (which it would keep alive).
    assert stored_empty.offer_vectors.base is None


def test_bulk_upsert_equals_one_by_one() -> None:
    profiles = [_profile(i, i % 4, (i + 1) % 3, i) for i in range(1, 500)]
    bulk, single = Catalog(), Catalog()

    bulk.upsert_many(profiles)
    for profile in profiles:
        single.upsert(profile)

    ids = np.arange(0, 600)
    np.testing.assert_array_equal(bulk.rows_of(ids) >= 0, single.rows_of(ids) >= 0)
    _assert_items_match(bulk, {p.id: p for p in profiles})


def test_bulk_upserts_replace_earlier_items_and_a_repeated_id_keeps_its_last_profile() -> None:
    catalog = Catalog(capacity=4)
    live: dict[int, OrgProfile] = {}
    batches = [
        [_profile(i, i % 3, i % 2, i) for i in range(1, 200)],
        [_profile(i, (i + 1) % 4, 0, 1000 + i) for i in range(100, 300)],  # half replace
        [_profile(5, 1, 1, 7), _profile(9, 0, 2, 8), _profile(5, 2, 0, 9)],  # 5 twice
    ]
    for batch in batches:
        catalog.upsert_many(batch)
        live.update({profile.id: profile for profile in batch})
        _assert_items_match(catalog, live)
    catalog.upsert(_profile(5, 3, 3, 10))  # one at a time after bulk loads: still in step
    live[5] = catalog.get(5)  # type: ignore[assignment]
    _assert_items_match(catalog, live)
    assert len(catalog) == len(live) == 299


def test_unknown_and_out_of_range_ids_have_no_row_and_no_items() -> None:
    catalog = Catalog()
    catalog.upsert(_profile(7, 2, 1, 0))

    rows = catalog.rows_of(np.array([7, 8, -1, 10**12]))
    stacked, counts = catalog.offer_items.gather(rows)

    assert (rows >= 0).tolist() == [True, False, False, False]
    assert counts.tolist() == [2, 0, 0, 0] and len(stacked) == 2
    assert catalog.profiles([8, 7])[0] is None and catalog.profiles([8, 7])[1] is not None


@pytest.mark.parametrize("bad_id", [-1, 2**31])
def test_ids_outside_the_store_key_range_are_refused(bad_id: int) -> None:
    catalog = Catalog()
    with pytest.raises(ValueError, match="organisation ids must be in"):
        catalog.upsert(_profile(bad_id, 1, 1, 0))
    assert len(catalog) == 0
