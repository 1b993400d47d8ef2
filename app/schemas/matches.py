"""Partner-match and free-text search models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import CountryCode, InputModel, SearchText, Slug
from matching.vocabulary import Sector, StakeholderKind


class MatchedOrganisation(BaseModel):
    id: int
    name: str
    kind: StakeholderKind
    sectors: list[Sector]
    country: str
    region: str | None
    clusters: list[str]
    maturity: int | None


class MatchComponents(BaseModel):
    """Why the score is what it is: raw features and their contributions."""

    text_similarity: float = Field(description="Cosine of the two profile texts (-1..1).")
    offer_fit: float = Field(description="How well the candidate's offers meet your needs.")
    need_fit: float = Field(description="How well your offers meet the candidate's needs.")
    reciprocal_fit: float = Field(description="Harmonic mean of both fits: both sides gain.")
    common_partners: int
    adamic_adar: float = Field(description="Common partners weighted by their rarity.")
    resource_allocation: float
    weighted_ra: float = Field(description="Resource allocation over weighted, recent links.")
    paths3: float = Field(description="Random-walk reachability in three steps.")
    hop_distance: int | None = Field(description="Collaboration hops apart; null when > 3.")
    candidate_degree: int = Field(description="How many partners the candidate has.")
    cross_sector: bool
    cross_country: bool
    text_score: float = Field(description="Contribution of the text terms to the score (logit).")
    graph_score: float = Field(description="Contribution of the graph and profile terms (logit).")
    preference_bonus: float = Field(description="Lift from the cross-sector/region preference.")


class Match(BaseModel):
    organisation: MatchedOrganisation
    score: float = Field(ge=0, le=1, description="Estimated chance the two would team up.")
    components: MatchComponents
    explanation: list[str] = Field(description="Reasons, strongest first.")
    is_existing_partner: bool


class MatchList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organisation_id": 1,
                    "model_version": "ranker-v1",
                    "source": "batch",
                    "run_id": 12,
                    "computed_at": "2026-11-21T02:14:09Z",
                    "items": [
                        {
                            "organisation": {
                                "id": 42,
                                "name": "Øresund Institute of Translational Medicine",
                                "kind": "research_organisation",
                                "sectors": ["diagnostics"],
                                "country": "SE",
                                "region": "Skåne",
                                "clusters": ["medicon-village"],
                                "maturity": None,
                            },
                            "score": 0.83,
                            "explanation": [
                                'Offers "clinical validation site for in-vitro diagnostics", '
                                'which matches your need "clinical validation site for a '
                                'diagnostic".',
                                "2 hops away via Hospital Clínic Nord, who worked with both.",
                                "Different country (Sweden vs Spain).",
                            ],
                        }
                    ],
                }
            ]
        }
    )

    organisation_id: int | None
    model_version: str
    source: Literal["live", "batch"] = Field(
        default="live",
        description="'batch': served from the nightly re-ranking run `run_id`, which is still "
        "fresh for this organisation; 'live': ranked for this request.",
    )
    run_id: int | None = Field(default=None, description="The re-ranking run it came from.")
    computed_at: datetime | None = Field(default=None, description="When the list was computed.")
    items: list[Match]


class SearchRequest(InputModel):
    """Describe the partner you need in plain words."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "AI-based diagnostics partner in Spain", "limit": 10},
                {
                    "text": "hospital to validate a wearable ECG monitor",
                    "kinds": ["hospital_or_care_provider"],
                    "on_behalf_of": 1,
                },
            ]
        }
    )

    text: SearchText
    limit: int = Field(default=10, ge=1, le=100)
    kinds: list[StakeholderKind] = Field(default_factory=list, max_length=10)
    sectors: list[Sector] = Field(default_factory=list, max_length=12)
    countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    clusters: list[Slug] = Field(default_factory=list, max_length=20)
    min_maturity: int | None = Field(default=None, ge=1, le=9)
    on_behalf_of: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="Search as this organisation: leaves out it and its partners and adds "
        "graph proximity to the score.",
    )


class SearchResult(MatchList):
    interpreted_countries: list[str] = Field(
        description="Countries named in the text; organisations there are ranked higher."
    )
