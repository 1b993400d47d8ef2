"""The slide picture of the network map: what the SVG draws where, and the benchmark network it
is timed on."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from matching.network_map import (
    RASTER_LINKS,
    SVG_DOTS_ID,
    SVG_LINKS_ID,
    MapOptions,
    NetworkMap,
    build_map,
    network_view,
    render_map,
)
from matching.ranker import MatchingState
from scripts.bench_network import synthetic_state

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


@pytest.fixture(scope="module")
def network() -> MatchingState:
    """500 organisations in 20 countries with about 3,000 links: enough for the link layer to
    become an embedded image in SVG."""
    return synthetic_state(500, 10.0)


def _svg(netmap: NetworkMap) -> ET.Element:
    return ET.fromstring(render_map(netmap, "svg", title="Test map"))


def _layer(root: ET.Element, gid: str) -> ET.Element | None:
    return next((g for g in root.iter(f"{SVG}g") if g.get("id") == gid), None)


def _dots(root: ET.Element) -> tuple[np.ndarray, np.ndarray, list[str]]:
    layer = _layer(root, SVG_DOTS_ID)
    assert layer is not None
    circles = list(layer.iter(f"{SVG}circle"))
    centres = np.array([(float(c.get("cx", "nan")), float(c.get("cy", "nan"))) for c in circles])
    radii = np.array([float(c.get("r", "nan")) for c in circles])
    return centres, radii, [c.get("fill", "") for c in circles]


def _discs(root: ET.Element) -> np.ndarray:
    """(centre x, centre y, radius) on the page of each grey group disc matplotlib drew."""
    discs = []
    for path in root.iter(f"{SVG}path"):
        if "fill: #f4f4f4" not in (path.get("style") or ""):
            continue
        numbers = np.array([float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))])
        x, y = numbers[0::2], numbers[1::2]
        discs.append(((x.min() + x.max()) / 2, (y.min() + y.max()) / 2, (x.max() - x.min()) / 2))
    return np.array(discs)


def _page_transform(netmap: NetworkMap, centres: np.ndarray) -> tuple[float, np.ndarray]:
    """Scale and offset that take the layout's coordinates to the dots' page positions
    (least squares), after checking one such transform places every dot exactly."""
    layout = np.array([(n.x, n.y) for n in netmap.nodes])
    design = np.column_stack([layout.reshape(-1), np.tile([1.0, 0.0], len(layout)),
                              np.tile([0.0, 1.0], len(layout))])  # fmt: skip
    solution, *_ = np.linalg.lstsq(design, centres.reshape(-1), rcond=None)
    scale, offset = float(solution[0]), solution[1:]
    assert np.abs(layout * scale + offset - centres).max() < 0.01  # points, 2 decimals written
    return scale, offset


def test_svg_draws_each_organisation_as_a_dot_of_its_colour_inside_its_group_disc(
    network: MatchingState,
) -> None:
    netmap = build_map(network, network_view(network, tenants=None), MapOptions(suggested=0))

    root = _svg(netmap)

    centres, radii, fills = _dots(root)
    assert fills == [n.colour for n in netmap.nodes]  # one dot per organisation, its colour
    scale, offset = _page_transform(netmap, centres)
    assert scale > 0  # same scale on both axes: the layout is not distorted
    # Dot size follows the layout's node size (the partner count) with one factor.
    ratio = radii / np.array([n.r for n in netmap.nodes])
    assert ratio.max() - ratio.min() < 0.01 * ratio.mean()
    # The group discs matplotlib drew sit where the same transform puts the groups, so each
    # dot is inside its own country's disc in the picture, not only in the layout.
    discs = _discs(root)
    assert len(discs) == len(netmap.groups)
    for group in netmap.groups:
        centre = np.array([group.x, group.y]) * scale + offset
        drawn = discs[np.argmin(np.hypot(*(discs[:, :2] - centre).T))]
        assert np.hypot(*(drawn[:2] - centre)) < 0.05
        assert abs(drawn[2] - group.r * scale) < 0.05
        members = [i for i, n in enumerate(netmap.nodes) if n.group == group.key]
        assert np.hypot(*(centres[members] - drawn[:2]).T).max() <= drawn[2]


def test_many_links_are_one_embedded_image_over_the_dots_they_join(
    network: MatchingState,
) -> None:
    netmap = build_map(network, network_view(network, tenants=None), MapOptions(suggested=0))
    assert len(netmap.links) > RASTER_LINKS

    root = _svg(netmap)

    layer = _layer(root, SVG_LINKS_ID)
    assert layer is not None
    images = list(layer.iter(f"{SVG}image"))
    assert len(images) == 1
    assert images[0].get(XLINK_HREF, "").startswith("data:image/png;base64,")
    box = [float(images[0].get(k, "nan")) for k in ("x", "y", "width", "height")]
    centres, _, _ = _dots(root)
    linked = sorted({i for a, b, _ in netmap.links for i in (a, b)})
    x, y = centres[linked].T
    assert x.min() >= box[0] - 1 and x.max() <= box[0] + box[2] + 1
    assert y.min() >= box[1] - 1 and y.max() <= box[1] + box[3] + 1
    # The links are drawn under the dots, as in the PNG.
    order = [g.get("id") for g in root.iter(f"{SVG}g")]
    assert order.index(SVG_LINKS_ID) < order.index(SVG_DOTS_ID)


def test_few_links_stay_vector_lines(network: MatchingState) -> None:
    view = network_view(network, tenants=None)
    netmap = build_map(network, view, MapOptions(suggested=0, max_links=300))
    assert netmap.links_shown == 300

    root = _svg(netmap)

    assert _layer(root, SVG_LINKS_ID) is None
    assert not list(root.iter(f"{SVG}image"))
    axes = _layer(root, "axes_1")  # the map, without the legend's sample line
    assert axes is not None
    grey = [p for p in axes.iter(f"{SVG}path") if "stroke: #7a7a7a" in (p.get("style") or "")]
    assert len(grey) == 300


def test_empty_map_renders_without_dots(network: MatchingState) -> None:
    from matching.catalog import CandidateFilter

    view = network_view(network, tenants=None, filter=CandidateFilter(countries=("ZZ",)))
    netmap = build_map(network, view, MapOptions())

    root = _svg(netmap)

    assert netmap.nodes == [] and not list(root.iter(f"{SVG}circle"))
    assert "0 organisations" in ET.tostring(root, encoding="unicode")


def test_map_counts_the_organisations_the_ranker_was_asked_about(
    network: MatchingState,
) -> None:
    view = network_view(network, tenants=None)

    without = build_map(network, view, MapOptions(suggested=0))
    with_suggestions = build_map(network, view, MapOptions(suggested=5, suggestion_sample=12))

    assert without.ranker_calls == 0 and without.suggested == []
    assert with_suggestions.ranker_calls == 12
    assert 0 < len(with_suggestions.suggested) <= 5


def test_benchmark_items_do_not_change_the_benchmark_network() -> None:
    plain = synthetic_state(200, 6.0)
    with_items = synthetic_state(200, 6.0, dim=48, max_items=3)

    assert (plain.snapshot().adjacency != with_items.snapshot().adjacency).nnz == 0
    profile = with_items.catalog.get(7)
    assert profile is not None and profile.offer_vectors is not None
    assert 1 <= len(profile.offers) <= 3 and profile.offer_vectors.shape == (
        len(profile.offers),
        48,
    )
    assert with_items.vectors["profile"].dim == 48
