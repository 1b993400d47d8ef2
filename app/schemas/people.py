"""Request/response models for people (with consent), erasure receipts, exports and the audit
log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.schemas.common import InputModel, Keyword, Reference, ShortText, unique

PersonIdField = Annotated[int, Field(ge=1, le=2**31 - 1)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=320,
        pattern=r"^[^@\s\x00-\x1f]{1,64}@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$",
    ),
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=50, pattern=r"^\+?[0-9 ().\-/]{3,49}$")
]


class ConsentState(StrEnum):
    """pending: not asked or not answered yet; given; withdrawn: hidden from every result."""

    pending = "pending"
    given = "given"
    withdrawn = "withdrawn"


class LegalBasis(StrEnum):
    """The GDPR art. 6(1) ground the record is held on."""

    consent = "consent"
    contract = "contract"
    legitimate_interest = "legitimate_interest"
    public_interest = "public_interest"


_PERSON_EXAMPLE: dict[str, Any] = {
    "organisation_id": 12,
    "full_name": "Laia Serra",
    "job_title": "Head of Business Development",
    "email": "laia.serra@pathovision.example",
    "phone": "+34 600 000 000",
    "expertise": ["digital pathology", "CE marking"],
    "consent_state": "given",
    "legal_basis": "consent",
    "source": "Biocat BioMatch 2025 registration form",
}


class PersonCreate(InputModel):
    """A delegate, expert or contact person, with the ground it is held on and where the data
    came from. A member key may only add people of its own organisation (the default)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PERSON_EXAMPLE]})

    organisation_id: PersonIdField | None = Field(
        default=None, description="The organisation the person works for, if any."
    )
    full_name: Reference
    job_title: Reference | None = None
    email: Email | None = None
    phone: Phone | None = None
    expertise: list[Keyword] = Field(default_factory=list, max_length=30)
    consent_state: ConsentState = Field(
        default=ConsentState.pending,
        description="pending or given; a record cannot be created withdrawn.",
    )
    legal_basis: LegalBasis
    source: ShortText = Field(description="Where the data came from (form, event, CRM export).")

    @field_validator("expertise")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return unique(values)

    @field_validator("consent_state")
    @classmethod
    def _not_withdrawn(cls, value: ConsentState) -> ConsentState:
        if value is ConsentState.withdrawn:
            raise ValueError("a new person cannot start with withdrawn consent: do not store it")
        return value


class PersonUpdate(InputModel):
    """A partial update: only the fields sent change; send null to clear an optional field.
    Consent, legal basis and source change through POST /v1/people/{id}/consent, which stamps
    the time of the change."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"job_title": "CEO"}]})

    organisation_id: PersonIdField | None = None
    full_name: Reference | None = None
    job_title: Reference | None = None
    email: Email | None = None
    phone: Phone | None = None
    expertise: list[Keyword] | None = Field(default=None, max_length=30)

    @field_validator("expertise")
    @classmethod
    def _dedupe(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else unique(values)

    @field_validator("full_name")
    @classmethod
    def _name_stays(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("full_name cannot be cleared (send a value or leave it out)")
        return value


class ConsentChange(InputModel):
    """A change of consent, optionally with a new legal basis and source. Withdrawn consent
    removes the person from every result at once; only admin and the owning cluster's staff
    still see the record, so they can erase it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"state": "withdrawn", "source": "e-mail from the person, 2025-03-04"},
                {"state": "given", "legal_basis": "consent", "source": "signed form"},
            ]
        }
    )

    state: ConsentState
    legal_basis: LegalBasis | None = None
    source: ShortText | None = None


class PersonRead(BaseModel):
    """A person. ``email`` and ``phone`` are null with ``contact_hidden`` true unless the
    caller is admin, staff of the person's cluster, the person's own organisation, or an
    organisation holding a contact grant (given when a meeting is accepted)."""

    id: int
    organisation_id: int | None
    tenant: str | None = Field(description="The cluster that manages this record.")
    full_name: str
    job_title: str | None
    email: str | None
    phone: str | None
    contact_hidden: bool
    expertise: list[str]
    consent_state: ConsentState
    legal_basis: LegalBasis
    source: str
    consent_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PersonList(BaseModel):
    items: list[PersonRead]
    total: int = Field(description="People matching the filters, over all pages.")
    limit: int
    offset: int


class ErasureReceipt(BaseModel):
    """What an erasure removed. The audit entry keeps only ids, kinds, time and the key."""

    subject_kind: str = Field(examples=["organisation"])
    subject_id: int
    erased_at: datetime
    audit_id: int = Field(description="The audit entry recording the erasure.")
    persons_erased: int
    contact_grants_removed: int
    collaborations_removed: int = Field(
        description="Collaborations left with fewer than two participants."
    )
    rankings_removed: int | None = Field(
        description=(
            "Precomputed partner lists changed: its own lists removed and the lists naming it"
            " with its entry blanked, over every stored run; null when no ranking store is"
            " installed."
        )
    )


class AuditRead(BaseModel):
    id: int
    at: datetime
    actor_key_id: int | None
    actor_role: str | None
    actor_tenant: str | None
    action: str = Field(examples=["write"])
    method: str = Field(examples=["PATCH"])
    path: str = Field(examples=["/v1/people/12"])
    status: int
    subject_kind: str | None = Field(examples=["person"])
    subject_id: int | None
    tenant: str | None


class AuditList(BaseModel):
    items: list[AuditRead]
    total: int
    limit: int
    offset: int


class EmbeddingMeta(BaseModel):
    field: str = Field(examples=["offer"])
    position: int
    model: str
    content_hash: str
    dimensions: int


class CollaborationExport(BaseModel):
    id: int
    kind: str
    year: int | None
    weight: float
    reference: str | None
    title: str | None
    role: str = Field(description="The exported organisation's role in it.")
    partner_ids: list[int]


class GrantExport(BaseModel):
    person_id: int
    organisation_id: int
    reason: str
    created_at: datetime


class ApiKeyExport(BaseModel):
    id: int
    prefix: str
    role: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class PersonExport(BaseModel):
    """Everything held about a person (GDPR art. 15 / 20)."""

    kind: str = "person"
    exported_at: datetime
    person: PersonRead
    organisation: dict[str, Any] | None = Field(description="id and name of the employer.")
    contact_grants: list[GrantExport] = Field(
        description="Organisations allowed to see the person's contact details, and why."
    )
    audit: list[AuditRead]
    other_records: dict[str, list[dict[str, Any]]] = Field(
        description="Rows of other tables that refer to the person (events, meetings, ...)."
    )


class OrganisationExport(BaseModel):
    """Everything held about an organisation, its people included."""

    kind: str = "organisation"
    exported_at: datetime
    organisation: dict[str, Any]
    collaborations: list[CollaborationExport]
    embeddings: list[EmbeddingMeta] = Field(
        description="Which texts are embedded, with which model: metadata only. The vectors "
        "are recomputed from the texts above by the named model, so they add nothing a reader "
        "could use."
    )
    persons: list[PersonRead]
    contact_grants: list[GrantExport] = Field(
        description="Grants held by the organisation and grants on its people."
    )
    api_keys: list[ApiKeyExport] = Field(description="Member keys; never their secrets.")
    audit: list[AuditRead]
    other_records: dict[str, list[dict[str, Any]]]
