"""/v1/network/map and /v1/network/insights: the cluster's ecosystem at a glance; /map: the
interactive page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse, JSONResponse

from app.auth import public, require, visible_tenants
from app.dependencies import Ctx
from app.routers.responses import errors
from app.schemas.common import Slug
from app.schemas.network import ColorBy, GroupBy, MapFormat, NetworkInsights, NetworkMapData
from app.services import network as service
from app.services.keys import Principal, Role
from matching.network_map import MapOptions
from matching.vocabulary import Sector

router = APIRouter(tags=["network"])

StaffKey = Annotated[Principal, Depends(require(Role.staff))]
Countries = Annotated[
    list[Annotated[str, Query(pattern=r"^[A-Za-z]{2}$")]],
    Query(max_length=50, description="Only organisations in these countries."),
]
Clusters = Annotated[list[Slug], Query(max_length=20, description="Only these clusters' members.")]
Sectors = Annotated[list[Sector], Query(max_length=12, description="Only these sectors.")]

MEDIA = {"svg": "image/svg+xml", "png": "image/png"}
# The page holds no data: it loads its own script and fetches the API with the key the user
# types, so it may only talk to this origin and run its own files.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@router.get(
    "/v1/network/map",
    response_model=None,
    responses={
        200: {
            "model": NetworkMapData,
            "description": "The map: SVG, PNG, or JSON with positions (format=json).",
            "content": {"image/svg+xml": {}, "image/png": {}},
        },
        **errors(401, 403, 422),
    },
)
async def get_network_map(
    ctx: Ctx,
    principal: StaffKey,
    format: Annotated[MapFormat, Query(description="svg (default), png or json.")] = MapFormat.svg,
    color_by: Annotated[ColorBy, Query(description="Colour by first sector or by kind.")] = (
        ColorBy.sector
    ),
    group_by: Annotated[GroupBy, Query(description="Group by country, cluster or kind.")] = (
        GroupBy.country
    ),
    cluster: Clusters = [],  # noqa: B006
    country: Countries = [],  # noqa: B006
    sector: Sectors = [],  # noqa: B006
    suggested: Annotated[
        int, Query(ge=0, le=100, description="How many suggested links to draw (dashed).")
    ] = 15,
    max_nodes: Annotated[
        int,
        Query(
            ge=50,
            le=5_000,
            description="Above this many organisations, each group shows one bubble per colour.",
        ),
    ] = 3_000,
) -> Response:
    """A picture of the network to put on a slide: organisations coloured by sector (or kind),
    grouped by country (or cluster, or kind), existing collaborations drawn thin, and the
    strongest suggested new links across countries or sectors drawn dashed (from the partner
    ranker's top matches for each group's best-connected members).

    Covers only the organisations the key can see: its cluster's and network-wide ones, and
    only links among them. `format=json` returns the laid-out nodes and links for the
    interactive page at [/map](/map).
    """
    scope = service.NetworkScope(
        tenants=visible_tenants(principal),
        clusters=tuple(cluster),
        countries=tuple(c.upper() for c in country),
        sectors=tuple(s.value for s in sector),
    )
    options = MapOptions(
        color_by=color_by.value,
        group_by=group_by.value,
        max_nodes=max_nodes,
        suggested=suggested,
    )
    body = await service.network_map(ctx, scope, options, format.value)
    if isinstance(body, dict):
        return JSONResponse(NetworkMapData.model_validate(body).model_dump(mode="json"))
    return Response(body, media_type=MEDIA[format.value])


@router.get("/v1/network/insights", response_model=NetworkInsights, responses=errors(401, 403, 422))
async def get_network_insights(
    ctx: Ctx,
    principal: Annotated[Principal, Depends(require(Role.staff, Role.batch))],
    cluster: Clusters = [],  # noqa: B006
    country: Countries = [],  # noqa: B006
    sector: Sectors = [],  # noqa: B006
    top: Annotated[int, Query(ge=1, le=50, description="Length of each top list.")] = 10,
    record: Annotated[
        bool,
        Query(description="Keep this run's headline numbers for the next run's comparison."),
    ] = True,
) -> dict[str, Any]:
    """Ecosystem analytics for the part of the network the key can see:

    - **bridges**: organisations on the most shortest paths between others (betweenness), with
      the partner pairs in different countries or clusters that only they connect;
    - **isolated**, **under-connected** (one or two partners) and **domestic-only** members;
    - **sector x sector** and **country x country** link matrices, with the **gaps**: pairs
      with many organisations but far fewer links than the network's average density;
    - each **cluster's share of international links**;
    - **change since the previous run** of the same view (runs are recorded unless
      `record=false`).

    Betweenness is exact up to 2,000 organisations and estimated from sampled source
    organisations above (the `method` field says which).
    """
    scope = service.NetworkScope(
        tenants=visible_tenants(principal),
        clusters=tuple(cluster),
        countries=tuple(c.upper() for c in country),
        sectors=tuple(s.value for s in sector),
    )
    return await service.network_report(ctx, scope, top=top, record=record)


@router.get(
    "/map",
    response_class=HTMLResponse,
    dependencies=[Depends(public())],
    responses={200: {"content": {"text/html": {}}, "description": "The page."}, **errors()},
)
async def map_page() -> HTMLResponse:
    """The interactive network map: search, hover for details, click an organisation for its
    partner suggestions. The page asks for an API key and keeps it for the browser tab only;
    it holds no data itself."""
    return HTMLResponse(
        service.map_page(),
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-store"},
    )


@router.get(
    "/map/assets/{name}",
    dependencies=[Depends(public())],
    response_class=Response,
    responses={
        200: {"content": {"text/javascript": {}, "text/css": {}}, "description": "The file."},
        **errors(404),
    },
)
async def map_asset(
    name: Annotated[str, Path(max_length=40, pattern=r"^[a-z0-9.-]+$")],
) -> Response:
    """The page's script, style sheet and the vendored graph library (cytoscape)."""
    content, media = service.asset(name)
    return Response(content, media_type=media, headers={"Cache-Control": "no-cache"})
