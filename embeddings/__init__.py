"""Text -> vectors -> neighbours: profile texts, the encoder, micro-batching, the vector index."""

from embeddings.batching import BatchingEncoder
from embeddings.encoder import (
    MINILM_DIM,
    MINILM_NAME,
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    load_encoder,
)
from embeddings.index import IndexSnapshot, VectorIndex
from embeddings.profile_text import FIELDS, content_hash, profile_texts

__all__ = [
    "FIELDS",
    "MINILM_DIM",
    "MINILM_NAME",
    "BatchingEncoder",
    "Encoder",
    "HashingEncoder",
    "IndexSnapshot",
    "SentenceTransformerEncoder",
    "VectorIndex",
    "content_hash",
    "load_encoder",
    "profile_texts",
]
