"""Turning a candidate's feature row into one score: a linear model over transformed features,
loaded from a versioned JSON artefact so the service, the batch job and the benchmark share it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL = Path(__file__).parent / "models" / "ranker-v2.json"


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.log1p(x))


def _log_eps(x: np.ndarray) -> np.ndarray:
    # For scores spanning many orders of magnitude (walk probabilities): ln(x + 1e-6).
    return np.asarray(np.log(np.clip(x, 0.0, None) + 1e-6))


_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": _identity,
    "log1p": _log1p,
    "log_eps": _log_eps,
}
TRANSFORMS = tuple(_TRANSFORMS)


def transform(name: str, x: np.ndarray) -> np.ndarray:
    """Apply a named feature transform (the artefact names one per feature)."""
    return _TRANSFORMS[name](np.asarray(x, dtype=np.float64))


@dataclass(frozen=True)
class LinearScorer:
    """``score = sigmoid(intercept + sum_i coef_i * (t_i(x_i) - mean_i) / scale_i)``.

    Features the artefact does not name get weight 0, so adding a feature to the ranker
    never silently changes scores until a new artefact is fitted.
    """

    version: str
    features: tuple[str, ...]
    transforms: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    preference_weights: dict[str, float]
    description: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> LinearScorer:
        raw = json.loads((path or DEFAULT_MODEL).read_text())
        feats = raw["features"]
        for f in feats:
            if f["transform"] not in _TRANSFORMS:
                raise ValueError(f"unknown transform {f['transform']!r} in {path}")
        return cls(
            version=raw["version"],
            features=tuple(f["name"] for f in feats),
            transforms=tuple(f["transform"] for f in feats),
            mean=np.array([f["mean"] for f in feats], dtype=np.float64),
            scale=np.array([f["scale"] for f in feats], dtype=np.float64),
            coef=np.array([f["coef"] for f in feats], dtype=np.float64),
            intercept=float(raw["intercept"]),
            preference_weights={k: float(v) for k, v in raw["preference_weights"].items()},
            description=raw.get("description", ""),
        )

    def contributions(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-feature additive contribution to the logit, for explanations and ablations."""
        out: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.features):
            x = np.asarray(columns[name], dtype=np.float64)
            t = _TRANSFORMS[self.transforms[i]](x)
            out[name] = self.coef[i] * (t - self.mean[i]) / self.scale[i]
        return out

    def logits(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        parts = self.contributions(columns)
        n = len(next(iter(columns.values()))) if columns else 0
        total = np.full(n, self.intercept, dtype=np.float64)
        for value in parts.values():
            total += value
        return total

    def preference_bonus(self, columns: dict[str, np.ndarray], preference: float) -> np.ndarray:
        """Logit bonus for cross-sector / cross-region candidates, scaled by the caller's knob."""
        n = len(next(iter(columns.values())))
        bonus = np.zeros(n, dtype=np.float64)
        for name, weight in self.preference_weights.items():
            bonus += weight * np.asarray(columns[name], dtype=np.float64)
        return preference * bonus


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically safe logistic function.

    >>> [round(float(v), 3) for v in sigmoid(np.array([-1000.0, 0.0, 2.0]))]
    [0.0, 0.5, 0.881]
    """
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))
