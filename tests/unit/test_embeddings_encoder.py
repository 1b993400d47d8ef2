"""The toy hashing encoder and the encoder loader (the real model is in tests/integration)."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings import HashingEncoder, load_encoder
from embeddings.encoder import Encoder


def test_hashing_rows_are_unit_float32_and_deterministic() -> None:
    encoder = HashingEncoder(dim=64)
    texts = ["digital pathology", "", "Digital   PATHOLOGY!", "probiotics " * 50]

    rows = encoder.encode(texts)

    assert rows.shape == (4, 64) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(rows, HashingEncoder(dim=64).encode(texts))
    np.testing.assert_array_equal(rows[0], rows[2])  # case and punctuation do not matter


def test_hashing_gives_shared_words_a_higher_cosine() -> None:
    rows = HashingEncoder(dim=256).encode(
        [
            "AI image analysis for digital pathology",
            "digital pathology image analysis",
            "functional food probiotics",
        ]
    )

    assert rows[0] @ rows[1] > rows[0] @ rows[2] + 0.3


def test_no_texts_give_an_empty_matrix_of_the_right_width() -> None:
    assert HashingEncoder(dim=8).encode([]).shape == (0, 8)


def test_load_encoder_by_name() -> None:
    encoder: Encoder = load_encoder("hashing")
    assert (encoder.name, encoder.dim) == ("hashing-64", 64)
    assert load_encoder(" Hashing-128 ").dim == 128
    with pytest.raises(ValueError, match="unknown encoder"):
        load_encoder("bert-large")
