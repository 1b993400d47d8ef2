"""What every service needs, built once in the lifespan and handed to routes as a dependency."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.services.derived import DerivedState, EmbeddingItem
from app.settings import Settings
from app.store.database import Database
from app.store.grouping import GroupCommit, Item, Result, Written
from embeddings import BatchingEncoder


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    derived: DerivedState
    encoder: BatchingEncoder
    _groups: dict[str, GroupCommit[Any, Any, Any]] = field(default_factory=dict, repr=False)

    @property
    def encoder_name(self) -> str:
        return self.derived.encoder.name

    def group_commit(
        self, kind: str, build: Callable[[ServiceContext], GroupCommit[Item, Written, Result]]
    ) -> GroupCommit[Item, Written, Result]:
        """The one group-commit queue of this kind of write (app/store/grouping.py), built on
        first use."""
        found = self._groups.get(kind)
        if found is None:
            found = self._groups[kind] = build(self)
        return found

    async def embed(self, items: Sequence[EmbeddingItem]) -> dict[EmbeddingItem, np.ndarray]:
        """Vectors for the items' texts, encoded off the event loop in shared batches."""
        unique_texts = list(dict.fromkeys(it.text for it in items))
        if not unique_texts:
            return {}
        rows = await self.encoder.encode(unique_texts)
        by_text = dict(zip(unique_texts, rows, strict=True))
        return {it: by_text[it.text] for it in items}
