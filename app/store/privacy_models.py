"""SQLAlchemy model of the append-only audit log: who wrote, exported or erased what, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.store.models import Base, utcnow
from app.store.types import UTCDateTime

AUDIT_ACTIONS = ("write", "export", "erasure")


class AuditEntry(Base):
    """One audited request. It holds ids, kinds, tenants and codes only, never personal data,
    so it can outlive the erasure of the person or organisation it is about.

    The migration (0007) installs database triggers that reject UPDATE and DELETE, so entries
    cannot be changed even with direct SQL access.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # No foreign key: erasing an organisation deletes its member keys, and the entry must stay.
    actor_key_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    actor_tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    # write | export | erasure
    action: Mapped[str] = mapped_column(String(10))
    method: Mapped[str] = mapped_column(String(10))
    # The route with ids filled in ("/v1/people/12/consent"); never a query string.
    path: Mapped[str] = mapped_column(String(300))
    status: Mapped[int] = mapped_column(Integer)
    subject_kind: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    # The cluster whose record the entry is about (else the acting key's): staff read these.
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)

    __table_args__ = (
        Index("ix_audit_log_subject", "subject_kind", "subject_id"),
        CheckConstraint("action IN ('write', 'export', 'erasure')", name="ck_audit_log_action"),
    )
