"""SQLAlchemy model of the idempotency records that make retried POST/PATCH requests safe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow
from app.store.types import UTCDateTime


class IdempotencyRecord(Base):
    """One request made with an ``Idempotency-Key`` that changed the store.

    The row is inserted in the same transaction as the request's first write (state
    ``applied``), so a committed write always has its record and a record always has its write.
    The response is added once it is known (state ``completed``); a process that dies in
    between leaves ``applied`` with the rows it created, which is what a replay then reports.
    """

    __tablename__ = "idempotency_records"

    # sha256 of the caller's API key (never the key itself): keys are scoped per API key.
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of method, path, query and body: the same key with another request is a 409.
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(20))  # applied | completed
    # [[table, id], ...] of rows with an integer id the request created (capped).
    created_rows: Mapped[list[Any]] = mapped_column(JSON, default=list)
    location: Mapped[str | None] = mapped_column(String(500))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[Any] | None] = mapped_column(JSON)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_idempotency_records_created_at", "created_at"),)
