"""End to end with the real model on a real SQLite file: first start loads the demo set,
matches are explained and sensible, restarts re-embed nothing, edits re-embed only what changed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.services.keys import create_api_key
from embeddings import Encoder
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


class CountingEncoder:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.encode(texts)


@asynccontextmanager
async def serve(url: str, tmp_path: Path, encoder: Encoder) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(url, tmp_path, load_demo_data=True), encoder=encoder)
    async with LifespanManager(app, startup_timeout=300) as manager:
        key = await create_api_key(app.state.ctx.db, role="admin")
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://test",
            headers={"Authorization": f"Bearer {key.key}"},
        ) as http:
            yield http


async def find(http: httpx.AsyncClient, name: str) -> dict[str, object]:
    page = (await http.get("/v1/organisations", params={"q": name})).json()
    assert page["total"] == 1, name
    return dict(page["items"][0])


async def test_demo_service_end_to_end(tmp_path: Path, real_encoder: Encoder) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"
    counting = CountingEncoder(real_encoder)

    async with serve(url, tmp_path, counting) as http:
        health = (await http.get("/health")).json()
        assert health["organisations"] >= 250 and health["collaboration_links"] > 500
        assert health["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
        first_start_texts = len(counting.texts)
        assert first_start_texts > 500

        # A French SME seeking nanosensors and a clinical validation site meets organisations
        # that offer exactly that, with the matching pair quoted in the explanation.
        vetoryx = await find(http, "Vetoryx")
        body = (
            await http.get(f"/v1/organisations/{vetoryx['id']}/matches", params={"limit": 50})
        ).json()
        top3 = body["items"][:3]
        assert sum(m["components"]["offer_fit"] > 0.6 for m in top3) >= 2
        assert all(any(r.startswith(("Offers ", "Seeks ")) for r in m["explanation"]) for m in top3)
        by_name = {m["organisation"]["name"]: m for m in body["items"]}
        rijnland = by_name.get("Rijnland Universitair Medisch Centrum")
        assert rijnland is not None, list(by_name)
        assert any("clinical validation site" in reason for reason in rijnland["explanation"])
        body = (await http.get(f"/v1/organisations/{vetoryx['id']}/matches")).json()
        # Diversified: the top 10 are not all from one country.
        assert len({m["organisation"]["country"] for m in body["items"]}) >= 3

        search = (
            await http.post("/v1/search", json={"text": "AI-based diagnostics partner in Spain"})
        ).json()
        assert search["interpreted_countries"] == ["ES"]
        top = search["items"][:5]
        assert sum(m["organisation"]["country"] == "ES" for m in top) >= 3
        relevant = [{"diagnostics", "ai_and_data"} & set(m["organisation"]["sectors"]) for m in top]
        assert sum(map(bool, relevant[:3])) >= 2

        # Changing only the description re-embeds only the profile text.
        counting.texts.clear()
        patched = await http.patch(
            f"/v1/organisations/{vetoryx['id']}",
            json={"description": "Point-of-care breath tests for respiratory infections."},
        )
        assert patched.status_code == 200
        assert len(counting.texts) == 1 and "breath tests" in counting.texts[0]

    # A restart rebuilds index and graph from the store: no demo reload, nothing re-embedded.
    counting.texts.clear()
    async with serve(url, tmp_path, counting) as http:
        again = (await http.get("/health")).json()
        assert again["organisations"] == health["organisations"]
        assert again["collaboration_links"] == health["collaboration_links"]
        assert again["vectors"] == health["vectors"]
        assert counting.texts == []
        body2 = (await http.get(f"/v1/organisations/{vetoryx['id']}/matches")).json()
        assert body2["items"], "matches after restart"
