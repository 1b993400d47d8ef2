"""The encoder that loads in the background while start-up reads the store."""

from __future__ import annotations

import threading

import pytest

import embeddings.encoder as encoder_module
from embeddings.encoder import (
    Encoder,
    HashingEncoder,
    LoadingEncoder,
    ModelLoadError,
    encoder_identity,
)


def test_name_and_dim_are_there_before_the_model_and_encode_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def slow_load(name: str) -> Encoder:
        release.wait(10)
        return HashingEncoder(16)

    monkeypatch.setattr(encoder_module, "load_encoder", slow_load)
    encoder = LoadingEncoder("hashing-16")
    assert (encoder.name, encoder.dim) == ("hashing-16", 16)
    with pytest.raises(TimeoutError):
        encoder.wait(timeout_s=0.05)  # still loading

    release.set()
    rows = encoder.encode(["digital pathology", "probiotic yoghurt"])
    assert rows.shape == (2, 16)
    assert (rows == HashingEncoder(16).encode(["digital pathology", "probiotic yoghurt"])).all()
    assert isinstance(encoder.wait(), HashingEncoder)
    assert encoder.load_s is not None


async def test_a_failed_load_is_raised_to_whoever_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_load(name: str) -> Encoder:
        raise OSError("model files missing")

    monkeypatch.setattr(encoder_module, "load_encoder", broken_load)
    encoder = LoadingEncoder("hashing")
    with pytest.raises(ModelLoadError, match="model files missing"):
        await encoder.loaded()
    with pytest.raises(ModelLoadError, match="model files missing"):
        encoder.encode(["anything"])


def test_a_model_that_is_not_the_announced_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_module, "load_encoder", lambda name: HashingEncoder(32))
    with pytest.raises(RuntimeError, match="expected hashing-64"):
        LoadingEncoder("hashing").wait(timeout_s=10)


@pytest.mark.parametrize("name", ["hashing", "hashing-16", " Hashing-8 "])
def test_the_identity_is_the_loaded_encoders(name: str) -> None:
    loaded = encoder_module.load_encoder(name)
    assert encoder_identity(name) == (loaded.name, loaded.dim)


def test_an_unknown_encoder_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="unknown encoder"):
        LoadingEncoder("word2vec")


async def test_an_on_demand_encoder_loads_once_when_first_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loads: list[str] = []

    def counted_load(name: str) -> Encoder:
        loads.append(name)
        return HashingEncoder(16)

    monkeypatch.setattr(encoder_module, "load_encoder", counted_load)
    encoder = LoadingEncoder("hashing-16", on_demand=True)
    assert (encoder.name, encoder.dim) == ("hashing-16", 16)
    assert loads == [] and encoder.load_s is None  # nothing loaded yet

    assert encoder.encode(["digital pathology"]).shape == (1, 16)
    assert isinstance(await encoder.loaded(), HashingEncoder)
    assert loads == ["hashing-16"]  # one load, whoever asks
