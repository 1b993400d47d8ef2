"""Organisation request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.schemas.common import (
    CountryCode,
    InputModel,
    Keyword,
    LongText,
    Maturity,
    Name,
    Reference,
    ShortText,
    Slug,
    unique,
)
from matching.vocabulary import Sector, StakeholderKind

Scheme = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Website = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,490}$", max_length=500)]

_EXAMPLE: dict[str, Any] = {
    "name": "PathoVision Analytics SL",
    "kind": "sme",
    "sectors": ["diagnostics", "ai_and_data"],
    "country": "ES",
    "region": "Catalonia",
    "clusters": ["biocat", "ai4diag"],
    "description": "Spin-off building deep-learning tools that grade tumour biopsies from "
    "whole-slide images.",
    "offers": ["AI image analysis for pathology", "annotated whole-slide image datasets"],
    "seeks": ["clinical validation site for a diagnostic", "regulatory support for CE marking"],
    "keywords": ["digital pathology", "deep learning", "oncology"],
    "maturity": 6,
    "website": "https://pathovision.example",
    "external_ids": {"pic": "912345678"},
}


class _OrganisationFields(InputModel):
    region: Reference | None = Field(default=None, description="Region, e.g. 'Catalonia'.")
    clusters: list[Slug] = Field(
        default_factory=list, max_length=20, description="Cluster memberships (slugs)."
    )
    description: LongText | None = Field(default=None, description="What the organisation does.")
    offers: list[ShortText] = Field(
        default_factory=list,
        max_length=10,
        description="Capabilities offered, one short phrase each ('GMP manufacturing of viral "
        "vectors').",
    )
    seeks: list[ShortText] = Field(
        default_factory=list,
        max_length=10,
        description="Needs, one short phrase each ('clinical validation site for a diagnostic').",
    )
    keywords: list[Keyword] = Field(default_factory=list, max_length=30)
    maturity: Maturity | None = None
    website: Website | None = None
    external_ids: dict[Scheme, Reference] = Field(
        default_factory=dict,
        max_length=10,
        description="Identifiers in other registers, unique per scheme: {'pic': '912345678'}.",
    )

    @field_validator("clusters", "offers", "seeks", "keywords")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return unique(values)


class OrganisationCreate(_OrganisationFields):
    """A new organisation. Its profile, offers and seeks are embedded on save."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    name: Name
    kind: StakeholderKind
    sectors: list[Sector] = Field(min_length=0, max_length=5)
    country: CountryCode = Field(description="ISO 3166-1 alpha-2, e.g. 'ES'.")

    @field_validator("sectors")
    @classmethod
    def _dedupe_sectors(cls, values: list[Sector]) -> list[Sector]:
        return unique(values)


class OrganisationUpdate(InputModel):
    """A partial update: only the fields sent change; send null to clear an optional field."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"seeks": ["hospital partner for a clinical study"]}]}
    )

    name: Name | None = None
    kind: StakeholderKind | None = None
    sectors: list[Sector] | None = Field(default=None, max_length=5)
    country: CountryCode | None = None
    region: Reference | None = None
    clusters: list[Slug] | None = Field(default=None, max_length=20)
    description: LongText | None = None
    offers: list[ShortText] | None = Field(default=None, max_length=10)
    seeks: list[ShortText] | None = Field(default=None, max_length=10)
    keywords: list[Keyword] | None = Field(default=None, max_length=30)
    maturity: Maturity | None = None
    website: Website | None = None
    external_ids: dict[Scheme, Reference] | None = Field(default=None, max_length=10)

    @field_validator("clusters", "offers", "seeks", "keywords", "sectors")
    @classmethod
    def _dedupe(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else unique(values)

    @model_validator(mode="after")
    def _required_stay_set(self) -> OrganisationUpdate:
        for name in ("name", "kind", "country", "sectors"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared (send a value or leave it out)")
        return self


class OrganisationRead(BaseModel):
    """An organisation as stored."""

    id: int
    name: str
    kind: StakeholderKind
    sectors: list[Sector]
    country: str
    region: str | None
    clusters: list[str]
    description: str | None
    offers: list[str]
    seeks: list[str]
    keywords: list[str]
    maturity: int | None
    website: str | None
    external_ids: dict[str, str]
    is_demo: bool = Field(description="Part of the fictional demo data set.")
    tenant: str | None = Field(
        description="The cluster that manages this record; null = network-wide."
    )
    created_at: datetime
    updated_at: datetime


class OrganisationList(BaseModel):
    items: list[OrganisationRead]
    total: int = Field(description="Organisations matching the filters, over all pages.")
    limit: int
    offset: int


class OrganisationBulkCreate(InputModel):
    """Up to 500 organisations created in one transaction: all or none."""

    items: list[OrganisationCreate] = Field(min_length=1, max_length=500)


class OrganisationBulkResult(BaseModel):
    items: list[OrganisationRead]
