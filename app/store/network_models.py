"""SQLAlchemy model of the network insights run log: each run's headline numbers per scope, so
the next run can report what changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow
from app.store.types import UTCDateTime


class NetworkInsightRun(Base):
    """One insights run: who could see what (``scope``) and its headline numbers."""

    __tablename__ = "network_insight_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Visible tenants plus filters, e.g. "tenants=biocat;country=ES": runs compare like with like.
    scope: Mapped[str] = mapped_column(String(300), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    headline: Mapped[dict[str, Any]] = mapped_column(JSON)
