"""The controlled vocabularies MultiHelix matches on: stakeholder kinds, sectors, collaboration
kinds.

Codes are stable API values; labels are what the staff read in /docs and in explanations.
"""

from __future__ import annotations

from enum import StrEnum


class StakeholderKind(StrEnum):
    """Who an organisation is in the quadruple helix: industry, academia, care, public, citizens."""

    sme = "sme"
    large_company = "large_company"
    university = "university"
    research_organisation = "research_organisation"
    hospital_or_care_provider = "hospital_or_care_provider"
    public_body = "public_body"
    patient_organisation = "patient_organisation"
    funder_or_investor = "funder_or_investor"
    cluster_or_science_park = "cluster_or_science_park"
    other = "other"


KIND_LABELS: dict[str, str] = {
    "sme": "SME",
    "large_company": "large company",
    "university": "university",
    "research_organisation": "research organisation",
    "hospital_or_care_provider": "hospital or care provider",
    "public_body": "public body",
    "patient_organisation": "patient organisation",
    "funder_or_investor": "funder or investor",
    "cluster_or_science_park": "cluster or science park",
    "other": "other organisation",
}


class Sector(StrEnum):
    """Life-science and health sectors, as clusters tag their members."""

    pharma = "pharma"
    biotech = "biotech"
    medtech = "medtech"
    diagnostics = "diagnostics"
    ehealth = "ehealth"
    ai_and_data = "ai_and_data"
    nanohealth = "nanohealth"
    functional_food = "functional_food"
    business_services = "business_services"
    digital_therapeutics = "digital_therapeutics"
    cosmetics = "cosmetics"
    veterinary = "veterinary"


SECTOR_LABELS: dict[str, str] = {
    "pharma": "pharma",
    "biotech": "biotech",
    "medtech": "medtech",
    "diagnostics": "diagnostics",
    "ehealth": "e-health",
    "ai_and_data": "AI and health data",
    "nanohealth": "nanohealth",
    "functional_food": "functional food and nutrition",
    "business_services": "business services",
    "digital_therapeutics": "digital therapeutics",
    "cosmetics": "cosmetics",
    "veterinary": "veterinary and animal health",
}


class CollaborationKind(StrEnum):
    """What joined the organisations of a collaboration."""

    project = "project"
    publication = "publication"
    supply = "supply"
    membership = "membership"
    event_meeting = "event_meeting"
    other = "other"


class ParticipantRole(StrEnum):
    """An organisation's role in one collaboration."""

    coordinator = "coordinator"
    participant = "participant"


def sector_bitmask(sectors: list[str] | tuple[str, ...]) -> int:
    """Encode sectors as a bitmask so "shares a sector" is one AND.

    >>> sector_bitmask(["pharma", "medtech"]) & sector_bitmask(["medtech"]) != 0
    True
    >>> sector_bitmask([])
    0
    """
    mask = 0
    for sector in sectors:
        mask |= 1 << _SECTOR_BIT[sector]
    return mask


_SECTOR_BIT = {s.value: i for i, s in enumerate(Sector)}
KIND_CODES: dict[str, int] = {k.value: i for i, k in enumerate(StakeholderKind)}
