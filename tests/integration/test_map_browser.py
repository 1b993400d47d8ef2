"""The interactive map in a real browser: a real server (`multihelix serve`, demo data, hashing
encoder) and Debian's headless Chromium driven by Playwright; the page asks for a key, draws
the network, and the screenshot shows coloured nodes.

Needs /usr/bin/chromium, the `playwright` package and the vendored graph library
(scripts/build-web). Skipped locally when one is missing; on CI (env CI set) it fails instead,
so a missing install step cannot hide behind a skip. Never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
VENDOR = ROOT / "app" / "static" / "vendor" / "cytoscape.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing"
    if not VENDOR.is_file():
        return f"{VENDOR.relative_to(ROOT)} is missing (run scripts/build-web)"
    return None


def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("multihelix")
    return [str(script)] if script.exists() else [sys.executable, "-m", "scripts.cli"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, staff key) of a real server on demo data."""
    _require_browser()
    folder = tmp_path_factory.mktemp("map-server")
    env = {
        **os.environ,
        "MULTIHELIX_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'store.sqlite3'}",
        "MULTIHELIX_DATA_DIR": str(folder / "data"),
        "MULTIHELIX_ENCODER": "hashing",
        "MULTIHELIX_LOAD_DEMO_DATA": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [*_cli(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                pytest.fail("the server exited: " + (folder / "server.log").read_text()[-2000:])
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the server did not start within 180 s")
            time.sleep(0.5)
        created = subprocess.run(
            [*_cli(), "keys", "create", "--role", "staff", "--tenant", "biocat"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        key = next(w for w in created.stdout.split() if w.startswith("mh_"))
        yield base, key
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_map_page_draws_coloured_nodes_and_opens_matches(
    server: tuple[str, str], tmp_path: Path
) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    base, key = server
    shot = tmp_path / "map.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/map")
            page.fill("#key", key)
            page.click("#key-form button")
            page.wait_for_selector("body[data-ready='true']", timeout=60_000)
            nodes = int(page.get_attribute("body", "data-nodes") or 0)
            assert nodes >= 250  # the demo network (~300 organisations)
            assert "organisations" in page.inner_text("#status")
            page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
            if os.environ.get("MULTIHELIX_KEEP_SCREENSHOT"):
                shutil.copy(shot, os.environ["MULTIHELIX_KEEP_SCREENSHOT"])

            # Search highlights, and clicking an organisation lists its suggested partners.
            page.fill("#search", "Hospital")
            assert "organisations match" in page.inner_text("#status")
            position = page.evaluate(
                "() => { const n = document.querySelector('#graph'); return "
                "n.getBoundingClientRect().toJSON(); }"
            )
            assert position["width"] > 500
            # The key stays in the tab's sessionStorage, never in the page's URL.
            assert key not in page.url
            assert page.evaluate("() => sessionStorage.getItem('multihelix.key')") == key
            assert errors == []
        finally:
            browser.close()

    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    saturated = (np.max(pixels, axis=2) - np.min(pixels, axis=2)) > 80
    # The sector palette: blue pharma, red medtech, green biotech nodes.
    blue = saturated & (b > r + 60) & (b > g)
    red = saturated & (r > g + 80) & (r > b + 80)
    green = saturated & (g > r + 40) & (g > b + 40)
    assert blue.sum() > 300 and red.sum() > 300 and green.sum() > 300


def test_clicking_a_node_lists_its_matches(server: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, key = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(base + "/map")
            page.fill("#key", key)
            page.click("#key-form button")
            page.wait_for_selector("body[data-ready='true']", timeout=60_000)
            # Tap the best-connected organisation through cytoscape's own API.
            page.evaluate(
                "() => { const cy = document.querySelector('#graph')._cyreg.cy; "
                "const hub = cy.nodes('node.org').max(n => n.degree()).ele; hub.emit('tap'); }"
            )
            page.wait_for_selector("#matches li", timeout=30_000)
            assert page.locator("#matches li").count() >= 1
            assert page.inner_text("#details-title") != "Details"
        finally:
            browser.close()
