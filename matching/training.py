"""Fitting the ranker's graph weights on an earlier time window (logistic regression), and
writing them as the versioned artefact the service loads.

Only history feeds it: the graph is cut at ``train_year`` and the labels are the new pairs
that first worked together in ``train_year`` itself. Held-out data is never read here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from matching.features import compute_features, query_vectors
from matching.ranker import MatchingState
from matching.scoring import transform

# (feature, transform, group) of the fitted part of the model. Text features are not fitted
# here (the benchmark has no text); their weights are carried over from the base artefact.
GRAPH_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("adamic_adar", "log1p", "common partners"),
    ("resource_allocation", "log1p", "common partners"),
    ("weighted_ra", "log_eps", "weighted walks"),
    ("paths3", "log_eps", "weighted walks"),
    ("two_hops", "identity", "hop distance"),
    ("three_hops", "identity", "hop distance"),
    ("candidate_degree", "log1p", "activity"),
    ("candidate_strength", "log1p", "activity"),
    ("cross_country", "identity", "profile"),
    ("same_kind", "identity", "profile"),
)
FEATURE_GROUPS = tuple(dict.fromkeys(group for _, _, group in GRAPH_FEATURES))


@dataclass(frozen=True)
class TrainingSet:
    x: np.ndarray  # (rows, features), transformed
    y: np.ndarray  # 1 = became partners in the label window
    features: tuple[tuple[str, str], ...]
    n_queries: int
    n_positives: int


def build_training_set(
    state: MatchingState,
    positives: Mapping[int, set[int]],
    candidate_pool: np.ndarray,
    *,
    negatives_per_query: int = 400,
    drop_groups: Iterable[str] = (),
    seed: int = 0,
) -> TrainingSet:
    """Feature rows for every positive and a seeded sample of negatives per query.

    ``state`` must hold the graph as it was before the label window; candidates already
    connected to the query in that graph are left out, as the ranker leaves them out.
    """
    dropped = set(drop_groups)
    features = tuple((f, t) for f, t, g in GRAPH_FEATURES if g not in dropped)
    rng = np.random.default_rng(seed)
    snapshot = state.snapshot()
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    n_pos = 0
    for query_id in sorted(positives):
        profile = state.catalog.get(query_id)
        if profile is None:
            continue
        known = set(snapshot.direct_partners(query_id).tolist()) | {query_id}
        eligible = candidate_pool[~np.isin(candidate_pool, list(known))]
        pos = np.array(sorted(positives[query_id] - known), dtype=np.int64)
        if len(pos) == 0:
            continue
        pool = eligible[~np.isin(eligible, pos)]
        neg = rng.choice(pool, size=min(negatives_per_query, len(pool)), replace=False)
        candidates = np.concatenate([pos, neg])
        cols = compute_features(
            query=profile,
            qvec=query_vectors(state.vectors, query_id),
            candidate_ids=candidates,
            catalog=state.catalog,
            vectors=state.vectors,
            snapshot=snapshot,
        )
        xs.append(np.column_stack([transform(t, cols[f]) for f, t in features]))
        ys.append(np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]))
        n_pos += len(pos)
    return TrainingSet(
        x=np.vstack(xs),
        y=np.concatenate(ys),
        features=features,
        n_queries=len(xs),
        n_positives=n_pos,
    )


def fit_artefact(
    training: TrainingSet, base: Mapping[str, Any], *, version: str, description: str
) -> dict[str, Any]:
    """A ranker artefact: fitted graph weights + the base artefact's text weights."""
    mean = training.x.mean(axis=0)
    scale = training.x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit((training.x - mean) / scale, training.y)
    fitted = {
        name: {
            "name": name,
            "transform": t,
            "mean": round(float(mean[i]), 6),
            "scale": round(float(scale[i]), 6),
            "coef": round(float(model.coef_[0][i]), 6),
        }
        for i, (name, t) in enumerate(training.features)
    }
    text = [f for f in base["features"] if f["name"] not in fitted and f["name"] in TEXT_FEATURES]
    return {
        "version": version,
        "description": description,
        "intercept": round(float(model.intercept_[0]), 6),
        "features": text + list(fitted.values()),
        "preference_weights": dict(base["preference_weights"]),
        "training": {
            "queries": training.n_queries,
            "positives": training.n_positives,
            "rows": len(training.y),
        },
    }


TEXT_FEATURES = frozenset({"text_similarity", "offer_fit", "need_fit", "reciprocal_fit"})


def write_artefact(path: Path, artefact: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(artefact, indent=2) + "\n")
