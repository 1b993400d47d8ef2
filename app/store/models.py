"""SQLAlchemy table models of the store: organisations, collaborations, embeddings."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from app.store.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    region: Mapped[str | None] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    offers: Mapped[list[str]] = mapped_column(JSON, default=list)
    seeks: Mapped[list[str]] = mapped_column(JSON, default=list)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    maturity: Mapped[int | None] = mapped_column(Integer)
    website: Mapped[str | None] = mapped_column(String(500))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The cluster (tenant) that owns the record; None = network-wide (admin-managed).
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    sectors: Mapped[list[OrganisationSector]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OrganisationSector.position"
    )
    clusters: Mapped[list[OrganisationCluster]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="OrganisationCluster.position"
    )
    external_ids: Mapped[list[ExternalId]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class OrganisationSector(Base):
    __tablename__ = "organisation_sectors"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    sector: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_organisation_sectors_sector", "sector"),)


class OrganisationCluster(Base):
    __tablename__ = "organisation_clusters"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    cluster: Mapped[str] = mapped_column(String(80), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_organisation_clusters_cluster", "cluster"),)


class ExternalId(Base):
    """An identifier in another register (EU PIC, VAT, a cluster CRM id): unique per scheme."""

    __tablename__ = "external_ids"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    scheme: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("scheme", "value", name="uq_external_ids_scheme_value"),)


class Collaboration(Base):
    """One project, publication, supply contract, ... joining two or more organisations."""

    __tablename__ = "collaborations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    year: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    reference: Mapped[str | None] = mapped_column(String(200), index=True)
    title: Mapped[str | None] = mapped_column(String(500))
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    participants: Mapped[list[CollaborationParticipant]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CollaborationParticipant.position"
    )


class CollaborationParticipant(Base):
    __tablename__ = "collaboration_participants"

    collaboration_id: Mapped[int] = mapped_column(
        ForeignKey("collaborations.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), default="participant")
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_collaboration_participants_organisation_id", "organisation_id"),)


class Embedding(Base):
    """One embedded text of an organisation: its profile, or one offer or seek item."""

    __tablename__ = "embeddings"

    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    field: Mapped[str] = mapped_column(String(10), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(120))
    content_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ApiKey(Base):
    """An API key: only a hash of its secret is stored; the key itself is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    tenant: Mapped[str | None] = mapped_column(String(80))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Person(Base):
    """A delegate, expert or contact person: personal data, held under a legal basis."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    tenant: Mapped[str | None] = mapped_column(String(80), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    job_title: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    expertise: Mapped[list[str]] = mapped_column(JSON, default=list)
    # pending | given | withdrawn: withdrawn removes the person from every result at once.
    consent_state: Mapped[str] = mapped_column(String(20), default="pending")
    # consent | contract | legitimate_interest | public_interest (GDPR art. 6)
    legal_basis: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(300))
    consent_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContactGrant(Base):
    """Permission for an organisation to see a person's contact details (e.g. after a meeting
    between them was accepted). Without a grant only staff of the person's tenant see them."""

    __tablename__ = "contact_grants"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StateChange(Base):
    """One committed change to what the in-memory state is derived from: an organisation (its
    fields or vectors) or a collaboration, created, changed or deleted.

    Written in the transaction of the change itself, in commit order (``seq``). Every process
    serving the store applies the entries after the last one it applied, by reading those
    records again (app/services/changes.py), so processes that share a store see each other's
    writes. The entry says only *what* to read again, never the data.
    """

    __tablename__ = "state_changes"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    collaboration_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    # sqlite_autoincrement: a number is never handed out twice, even after pruning.
    __table_args__ = ({"sqlite_autoincrement": True},)
