"""The real all-MiniLM-L6-v2 encoder: offline load, output contract, meaning, token budget.

Uses the session-scoped ``real_encoder`` fixture, so the model loads once per test session.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from embeddings import (
    MINILM_DIM,
    MINILM_NAME,
    BatchingEncoder,
    Encoder,
    SentenceTransformerEncoder,
    profile_texts,
)
from embeddings.profile_text import MAX_DESCRIPTION_WORDS

pytestmark = pytest.mark.integration

_SENTENCES = [
    "We develop deep-learning image analysis for digital pathology and cancer diagnostics.",
    "Our laboratory offers mass-spectrometry proteomics to biotech companies.",
    "The hospital runs multicentre clinical trials in cardiology and intensive care.",
    "We are looking for industrial partners to scale up GMP manufacturing of cell therapies.",
]


@pytest.fixture(scope="module")
def model(real_encoder: Encoder) -> SentenceTransformerEncoder:
    assert isinstance(real_encoder, SentenceTransformerEncoder)
    return real_encoder


def test_the_model_loads_offline_with_its_name_and_dimension(
    model: SentenceTransformerEncoder,
) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert (model.name, model.dim, model.max_tokens) == (MINILM_NAME, MINILM_DIM, 256)


def test_rows_are_unit_float32_and_independent_of_the_batch(
    model: SentenceTransformerEncoder,
) -> None:
    texts = [*_SENTENCES, "", "pathology " * 400]  # empty and over-long texts are fine too

    rows = model.encode(texts)

    assert rows.shape == (len(texts), MINILM_DIM) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # Content hashes assume a text's vector does not depend on what it was batched with
    # (encode groups texts by length, so every row must land back in its text's place).
    one_by_one = np.vstack([model.encode([text]) for text in texts])
    np.testing.assert_allclose(one_by_one, rows, atol=1e-5)
    assert model.encode([]).shape == (0, MINILM_DIM)


def test_similar_capabilities_are_closer_than_unrelated_ones(
    model: SentenceTransformerEncoder,
) -> None:
    query, near, far = model.encode(
        [
            "AI image analysis for pathology",
            "digital pathology deep learning",
            "functional food probiotics",
        ]
    )

    assert query @ near > query @ far + 0.3


def test_seeks_find_the_matching_offer(model: SentenceTransformerEncoder) -> None:
    offers = model.encode(
        [
            "GMP manufacturing of viral vectors for gene therapy",
            "wearable ECG sensors and remote cardiac monitoring",
            "clinical trial design and patient recruitment in oncology",
        ]
    )
    seeks = model.encode(
        [
            "a contract manufacturer for AAV gene-therapy vectors",
            "a partner to monitor heart rhythm at home",
            "hospitals to recruit cancer patients for a trial",
        ]
    )

    assert (seeks @ offers.T).argmax(axis=1).tolist() == [0, 1, 2]


def test_a_full_english_profile_fits_the_model_window(model: SentenceTransformerEncoder) -> None:
    description = " ".join(_SENTENCES * 10)  # far past the description budget
    texts = profile_texts(
        name="Karolinska University Hospital Innovation",
        kind="hospital",
        sectors=["medtech", "digital_health", "biotech"],
        description=description,
        offers=[f"{sentence} {i}" for i, sentence in enumerate(_SENTENCES * 5)],
        seeks=[],
        keywords=[
            "immunohistochemistry",
            "pharmacovigilance",
            "radiopharmaceuticals",
            "pharmacokinetics",
            "electrophysiology",
            "metagenomics",
            "nanoparticle formulation",
            "bioinformatics pipelines",
            "companion diagnostics",
            "real-world evidence",
            "health technology assessment",
            "theranostics",
        ],
    )

    assert len(texts["profile"].split()) > MAX_DESCRIPTION_WORDS
    assert model.token_count(texts["profile"]) <= model.max_tokens
    assert model.token_count(texts["offers"]) <= model.max_tokens


async def test_batched_encoding_matches_direct_encoding(model: SentenceTransformerEncoder) -> None:
    requests = [[sentence, f"{sentence} Partner {i}."] for i, sentence in enumerate(_SENTENCES)]

    async with BatchingEncoder(model, max_batch=64, max_wait_ms=5) as batcher:
        results = await asyncio.gather(*(batcher.encode(texts) for texts in requests))

    for texts, rows in zip(requests, results, strict=True):
        np.testing.assert_allclose(rows, model.encode(texts), atol=1e-5)


def test_lanes_give_the_rows_one_lane_gives_also_from_concurrent_calls(
    model: SentenceTransformerEncoder,
) -> None:
    """Lanes share the weights and have their own tokenizers: rows do not depend on the number
    of lanes or on other calls running at the same time."""
    from concurrent.futures import ThreadPoolExecutor

    other = SentenceTransformerEncoder(lanes=1 if model.lanes > 1 else 2)
    lanes, one_lane = (model, other) if model.lanes > 1 else (other, model)
    texts = [*_SENTENCES, "pathology " * 300, "GMP"]
    texts += [f"{sentence} Site {i}." for i, sentence in enumerate(_SENTENCES)]
    calls = [texts[i::3] for i in range(3)] * 4

    with ThreadPoolExecutor(4) as pool:
        concurrent = list(pool.map(lanes.encode, calls))

    assert lanes.lanes > 1 and one_lane.lanes == 1
    for call, rows in zip(calls, concurrent, strict=True):
        np.testing.assert_allclose(rows, one_lane.encode(call), atol=1e-5)
    np.testing.assert_allclose(lanes.encode(texts), one_lane.encode(texts), atol=1e-5)
    assert lanes.token_count("GMP manufacturing") == one_lane.token_count("GMP manufacturing")
