"""Network map and ecosystem insight models, in the staff's terms."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from matching.vocabulary import Sector, StakeholderKind


class MapFormat(StrEnum):
    svg = "svg"
    png = "png"
    json = "json"


class ColorBy(StrEnum):
    sector = "sector"
    kind = "kind"


class GroupBy(StrEnum):
    country = "country"
    cluster = "cluster"
    kind = "kind"


class OrganisationRef(BaseModel):
    id: int
    name: str
    kind: StakeholderKind
    sectors: list[Sector]
    country: str
    clusters: list[str]


# -- map (JSON form) ------------------------------------------------------------------------
class MapNode(BaseModel):
    key: str = Field(description="Organisation id, or 'group|category' for an aggregate bubble.")
    organisation_id: int | None = Field(description="Null for an aggregate bubble.")
    label: str
    group: str
    category: str = Field(description="The colour category: first sector, or kind.")
    colour: str = Field(examples=["#1f77b4"])
    organisations: int = Field(description="Organisations this node stands for.")
    partners: int = Field(description="Collaboration partners (summed for a bubble).")
    kind: StakeholderKind | None
    sectors: list[Sector]
    country: str | None
    clusters: list[str]
    x: float
    y: float
    size: float = Field(description="Radius in layout units.")


class MapLink(BaseModel):
    source: int = Field(description="Index into `nodes`.")
    target: int = Field(description="Index into `nodes`.")
    weight: float = Field(
        description="Pair weight (recency- and size-weighted); link count "
        "between bubbles when aggregated."
    )


class MapSuggestion(BaseModel):
    source: int
    target: int
    score: float = Field(ge=0, le=1)
    reason: str


class MapGroup(BaseModel):
    key: str
    label: str
    organisations: int
    x: float
    y: float
    r: float


class MapLegendItem(BaseModel):
    label: str
    colour: str
    organisations: int


class NetworkMapData(BaseModel):
    """The map as data, laid out: what the interactive page at /map draws."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "organisations": 2,
                    "links_total": 1,
                    "links_shown": 1,
                    "aggregated": False,
                    "color_by": "sector",
                    "group_by": "country",
                    "width": 40.0,
                    "height": 22.0,
                    "nodes": [
                        {
                            "key": "1",
                            "organisation_id": 1,
                            "label": "Vetoryx Diagnostics SL",
                            "group": "ES",
                            "category": "diagnostics",
                            "colour": "#9467bd",
                            "organisations": 1,
                            "partners": 1,
                            "kind": "sme",
                            "sectors": ["diagnostics"],
                            "country": "ES",
                            "clusters": ["biocat"],
                            "x": 10.0,
                            "y": 11.0,
                            "size": 1.24,
                        }
                    ],
                    "links": [{"source": 0, "target": 1, "weight": 1.0}],
                    "suggested": [],
                    "groups": [
                        {
                            "key": "ES",
                            "label": "Spain",
                            "organisations": 1,
                            "x": 10.0,
                            "y": 11.0,
                            "r": 6.9,
                        }
                    ],
                    "legend": [{"label": "diagnostics", "colour": "#9467bd", "organisations": 2}],
                    "notes": [],
                }
            ]
        }
    )

    organisations: int
    links_total: int
    links_shown: int
    aggregated: bool = Field(description="True when each node is a bubble of organisations.")
    color_by: ColorBy
    group_by: GroupBy
    width: float
    height: float
    nodes: list[MapNode]
    links: list[MapLink]
    suggested: list[MapSuggestion] = Field(
        description="The strongest suggested new links across groups or sectors (dashed)."
    )
    groups: list[MapGroup]
    legend: list[MapLegendItem]
    notes: list[str]


# -- insights -------------------------------------------------------------------------------
class Headline(BaseModel):
    organisations: int
    links: int
    isolated: int = Field(description="Organisations without any collaboration link.")
    under_connected: int = Field(description="Organisations with only one or two partners.")
    domestic_only: int = Field(
        description="Organisations with three or more partners, all in their own country."
    )
    components: int = Field(description="Separate parts of the network (isolated ones count).")
    largest_component_share: float = Field(description="Share in the largest connected part.")
    international_link_share: float = Field(description="Share of links across countries.")
    cross_sector_link_share: float = Field(description="Share of links across sectors.")
    mean_partners: float


class Bridge(BaseModel):
    organisation: OrganisationRef
    betweenness: float = Field(
        description="Share of shortest paths between other organisations that pass through "
        "it (0-1)."
    )
    partners: int
    countries_reached: int = Field(description="Countries among its partners.")
    clusters_reached: int = Field(description="Clusters among its partners.")
    brokered_country_pairs: int = Field(
        description="Pairs of its partners in different countries with no link of their own."
    )
    brokered_cluster_pairs: int = Field(
        description="Pairs of its partners in different clusters with no link of their own."
    )
    summary: str


class ConnectedOrganisation(BaseModel):
    organisation: OrganisationRef
    partners: int


class Gap(BaseModel):
    first: str
    second: str
    organisations_first: int
    organisations_second: int
    links: int
    expected_links: float = Field(
        description="Links the pair would have at the network's average density."
    )
    summary: str


class LinkMatrix(BaseModel):
    labels: list[str]
    organisations: list[int] = Field(description="Organisations per label.")
    links: list[list[int]] = Field(
        description="links[i][j]: links between an organisation of label i and one of label "
        "j (the diagonal: inside label i). An organisation in two sectors counts in both."
    )
    gaps: list[Gap] = Field(description="Pairs with many organisations but few links, worst first.")


class ClusterShare(BaseModel):
    cluster: str
    members: int
    links: int = Field(description="Links with at least one member of the cluster.")
    international_links: int
    international_share: float


class Change(BaseModel):
    previous_run_at: str | None = Field(description="When the previous run of this scope was.")
    deltas: dict[str, float] = Field(
        description="Headline number now minus at the previous run (empty on the first run)."
    )
    summary: list[str]


class Method(BaseModel):
    betweenness: str
    pivots: int
    exact: bool


class NetworkInsights(BaseModel):
    """Bridges, gaps and under-connected members of the network the key can see."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "headline": {
                        "organisations": 302,
                        "links": 2462,
                        "isolated": 30,
                        "under_connected": 16,
                        "domestic_only": 93,
                        "components": 31,
                        "largest_component_share": 0.9,
                        "international_link_share": 0.61,
                        "cross_sector_link_share": 0.32,
                        "mean_partners": 16.3,
                    },
                    "change": {
                        "previous_run_at": "2026-01-05T09:00:00+00:00",
                        "deltas": {"links": 12, "isolated": -2},
                        "summary": ["12 more links than at the previous run (2026-01-05)."],
                    },
                }
            ]
        }
    )

    headline: Headline
    change: Change
    bridges: list[Bridge]
    isolated: list[OrganisationRef]
    under_connected: list[ConnectedOrganisation]
    domestic_only: list[ConnectedOrganisation]
    sectors: LinkMatrix
    countries: LinkMatrix
    clusters: list[ClusterShare]
    method: Method
