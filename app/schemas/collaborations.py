"""Collaboration (link) request/response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.schemas.common import InputModel, Reference, ShortText, Year
from matching.vocabulary import CollaborationKind, ParticipantRole

OrgId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class ParticipantIn(InputModel):
    organisation_id: OrgId
    role: ParticipantRole = ParticipantRole.participant


class CollaborationCreate(InputModel):
    """A collaboration joining two or more organisations.

    A pairwise link (a supply contract) has two participants; a project with 12 partners is
    one collaboration with 12 participants: no need to send every pair. In the graph each pair
    of participants is linked with strength ``weight / (participants - 1)``, discounted by age.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "project",
                    "year": 2023,
                    "weight": 1.0,
                    "reference": "HORIZON-HLTH-2023-101080123",
                    "title": "AI-assisted diagnosis of rare cancers",
                    "participants": [
                        {"organisation_id": 1, "role": "coordinator"},
                        {"organisation_id": 2},
                        {"organisation_id": 3},
                    ],
                }
            ]
        }
    )

    kind: CollaborationKind
    year: Year | None = Field(default=None, description="Year it started.")
    weight: float = Field(
        default=1.0, gt=0, le=100, description="Strength of the tie (1 = an ordinary project)."
    )
    reference: Reference | None = Field(default=None, description="Project or contract id.")
    title: ShortText | None = None
    participants: list[ParticipantIn] = Field(min_length=2, max_length=1000)

    @field_validator("participants")
    @classmethod
    def _distinct(cls, participants: list[ParticipantIn]) -> list[ParticipantIn]:
        ids = [p.organisation_id for p in participants]
        if len(set(ids)) != len(ids):
            raise ValueError("an organisation can take part only once (no self-links)")
        return participants


class ParticipantRead(BaseModel):
    organisation_id: int
    name: str
    role: ParticipantRole


class CollaborationRead(BaseModel):
    id: int
    kind: CollaborationKind
    year: int | None
    weight: float
    reference: str | None
    title: str | None
    participants: list[ParticipantRead]
    is_demo: bool
    created_at: datetime


class CollaborationList(BaseModel):
    items: list[CollaborationRead]
    total: int
    limit: int
    offset: int
