"""Consortium builder request and response models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.common import InputModel, LongText, Slug, unique
from app.schemas.network import OrganisationRef
from matching.vocabulary import Sector, StakeholderKind

MAX_SIZE = 50


class RoleRequirement(InputModel):
    """At least (and at most) so many members of one kind, e.g. >= 1 SME."""

    kind: StakeholderKind
    at_least: int = Field(default=1, ge=0, le=MAX_SIZE)
    at_most: int | None = Field(default=None, ge=0, le=MAX_SIZE)

    @model_validator(mode="after")
    def _ordered(self) -> RoleRequirement:
        if self.at_most is not None and self.at_most < self.at_least:
            raise ValueError("at_most must not be below at_least")
        return self


class ConsortiumRulesIn(InputModel):
    """What the call requires of the consortium."""

    min_size: int = Field(default=3, ge=2, le=MAX_SIZE)
    max_size: int = Field(default=8, ge=2, le=MAX_SIZE)
    min_countries: int = Field(default=3, ge=1, le=MAX_SIZE, description="Distinct countries.")
    min_eu_countries: int = Field(
        default=1,
        ge=0,
        le=27,
        description="Distinct EU member states among the members' countries.",
    )
    max_per_country: int | None = Field(default=None, ge=1, le=MAX_SIZE)
    roles: list[RoleRequirement] = Field(default_factory=list, max_length=10)
    must_include: list[int] = Field(
        default_factory=list,
        max_length=MAX_SIZE,
        description="Organisation ids that must be members (e.g. the coordinator).",
    )
    exclude: list[int] = Field(default_factory=list, max_length=1000)

    @field_validator("must_include", "exclude")
    @classmethod
    def _ids(cls, values: list[int]) -> list[int]:
        for value in values:
            if not 1 <= value <= 2**31 - 1:
                raise ValueError("organisation ids are between 1 and 2147483647")
        return unique(values)

    @field_validator("roles")
    @classmethod
    def _one_rule_per_kind(cls, values: list[RoleRequirement]) -> list[RoleRequirement]:
        kinds = [r.kind for r in values]
        if len(set(kinds)) != len(kinds):
            raise ValueError("give each kind at most one role rule")
        return values

    @model_validator(mode="after")
    def _sizes(self) -> ConsortiumRulesIn:
        if self.max_size < self.min_size:
            raise ValueError("max_size must not be below min_size")
        return self


class ConsortiumRequest(InputModel):
    """A call and its rules; the answer is a few ranked candidate consortia."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call": "Clinical validation of AI-based diagnostics for early cancer "
                    "detection, with hospitals and patient organisations",
                    "rules": {
                        "min_size": 5,
                        "max_size": 7,
                        "min_countries": 3,
                        "min_eu_countries": 1,
                        "roles": [
                            {"kind": "sme", "at_least": 1},
                            {"kind": "university", "at_least": 1},
                            {"kind": "hospital_or_care_provider", "at_least": 1},
                            {"kind": "patient_organisation", "at_least": 1},
                        ],
                        "must_include": [1],
                    },
                    "alternatives": 3,
                }
            ]
        }
    )

    call: LongText = Field(description="The call, in free text: topic, expected outcomes, scope.")
    rules: ConsortiumRulesIn = Field(default_factory=ConsortiumRulesIn)
    clusters: list[Slug] = Field(
        default_factory=list, max_length=20, description="Only propose members of these clusters."
    )
    countries: list[str] = Field(
        default_factory=list,
        max_length=60,
        description="Only propose organisations in these countries (required members excepted).",
    )
    sectors: list[Sector] = Field(default_factory=list, max_length=12)
    alternatives: int = Field(default=3, ge=1, le=10, description="How many consortia.")
    min_difference: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Each alternative differs in at least this many members.",
    )
    pool_size: int = Field(
        default=60, ge=10, le=200, description="Candidates the optimiser chooses from."
    )
    time_limit_s: float = Field(default=5.0, ge=0.5, le=30.0, description="Search time budget.")
    call_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="1 = pick on fit to the call alone; 0 = on the members' ties alone.",
    )

    @field_validator("call")
    @classmethod
    def _call_has_words(cls, value: str) -> str:
        if len(value) < 2:
            raise ValueError("describe the call in at least a few words")
        return value

    @field_validator("countries")
    @classmethod
    def _countries(cls, values: list[str]) -> list[str]:
        import pycountry

        out = []
        for value in values:
            code = value.strip().upper()
            if len(code) != 2 or (code != "XK" and pycountry.countries.get(alpha_2=code) is None):
                raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
            out.append(code)
        return unique(out)


class RuleResult(BaseModel):
    rule: str = Field(examples=["countries"])
    satisfied: bool
    detail: str = Field(examples=["4 countries (DE, ES, FR, SE); at least 3 required"])


class ConsortiumMember(BaseModel):
    organisation: OrganisationRef
    fit: float = Field(description="Fit to the call: best of profile and offer similarity (0-1).")
    mean_pair_score: float = Field(
        description="Average ranker score with the other members (0-1): how likely they team up."
    )
    required: bool
    reasons: list[str]


class ConsortiumPair(BaseModel):
    first: int
    second: int
    score: float = Field(ge=0, le=1, description="The ranker's score for the pair, both ways.")
    worked_together: bool
    hop_distance: int | None = Field(description="Collaboration hops apart; null when > 3.")
    common_partners: int
    reason: str


class SuggestedConsortium(BaseModel):
    rank: int
    score: float = Field(
        description="What the optimiser maximised: standardised fit plus ties (compare within "
        "one answer)."
    )
    mean_fit: float
    mean_pair_score: float
    proven_optimal: bool = Field(description="No better consortium exists in the pool.")
    optimality_gap: float = Field(
        description="How much better an unseen consortium could still score (share; 0 = proven)."
    )
    members: list[ConsortiumMember]
    pairs: list[ConsortiumPair]
    rules: list[RuleResult]
    explanation: list[str]


class ConsortiumSuggestions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "call": "Clinical validation of AI-based diagnostics ...",
                    "candidates": 302,
                    "pool": 62,
                    "solve_seconds": 4.9,
                    "notes": [],
                    "consortia": [
                        {
                            "rank": 1,
                            "score": 4.87,
                            "mean_fit": 0.27,
                            "mean_pair_score": 0.41,
                            "proven_optimal": False,
                            "optimality_gap": 0.08,
                            "members": [],
                            "pairs": [],
                            "rules": [
                                {
                                    "rule": "countries",
                                    "satisfied": True,
                                    "detail": "6 countries (BE, DK, EE, ES, NL, PL); at least 3 "
                                    "required",
                                }
                            ],
                            "explanation": [
                                "7 members from 6 countries (...), 6 of them EU member states.",
                                "Roles: 3 hospitals or care providers, 2 universities, 1 SME, "
                                "1 patient organisation.",
                            ],
                        }
                    ],
                }
            ]
        }
    )

    call: str
    candidates: int = Field(description="Organisations that could be proposed.")
    pool: int = Field(description="Candidates the optimiser chose from.")
    solve_seconds: float
    notes: list[str]
    consortia: list[SuggestedConsortium]
