"""Per-field score calibration, so one modality's scores do not drown another's.

Similarities from different models live on different scales (CLIP text-image cosines cluster
near 0.25, MiniLM text-text cosines spread over 0.1-0.9). For a query ``q`` and a field whose
stored vectors have mean ``m`` and covariance ``C``, the similarity ``q.x`` of a random stored
vector has mean ``q.m`` and variance ``q'Cq``; the calibrated score is the z-score
``(q.x - q.m) / sqrt(q'Cq)``: how unusually similar ``x`` is *for this query in this field*.

``C`` is kept as its top principal components plus an average residual variance, fitted on a
sample of the field's vectors and saved in the store. It depends on the stored data only when
refitted (when the field has grown by half), so adding a document does not move the scores of
others.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FieldStats", "fit_stats"]


def _enc(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode()


def _dec(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape).astype(np.float64)


@dataclass(frozen=True)
class FieldStats:
    """Mean, principal components and variances of one field's vectors."""

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    residual: float
    n: int

    def std(self, q: np.ndarray) -> float:
        """Standard deviation of ``q.x`` over the field's vectors."""
        proj = self.components @ q
        rest = max(float(q @ q) - float(proj @ proj), 0.0)
        var = float(self.variances @ (proj * proj)) + self.residual * rest
        return float(np.sqrt(max(var, 1e-12)))

    def zscore(self, q: np.ndarray, scores: np.ndarray | float) -> np.ndarray:
        q = np.asarray(q, dtype=np.float64)
        return (np.asarray(scores, dtype=np.float64) - float(q @ self.mean)) / self.std(q)

    def to_dict(self) -> dict[str, Any]:
        k, d = self.components.shape
        return {
            "d": d,
            "k": k,
            "n": self.n,
            "residual": self.residual,
            "mean": _enc(self.mean),
            "components": _enc(self.components),
            "variances": _enc(self.variances),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldStats:
        d, k = int(data["d"]), int(data["k"])
        return cls(
            _dec(data["mean"], (d,)),
            _dec(data["components"], (k, d)),
            _dec(data["variances"], (k,)),
            float(data["residual"]),
            int(data["n"]),
        )


def fit_stats(vectors: np.ndarray, *, k: int = 32) -> FieldStats:
    """Fit :class:`FieldStats` on a sample (a single vector gets an isotropic spread)."""
    x = np.asarray(vectors, dtype=np.float64)
    n, d = x.shape
    mean = x.mean(axis=0) if n else np.zeros(d)
    if n < 2:
        return FieldStats(mean, np.zeros((0, d)), np.zeros(0), 1.0 / max(d, 1), n)
    centred = x - mean
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    var = sing**2 / (n - 1)
    k = min(k, len(var))
    total = float(var.sum())
    kept = float(var[:k].sum())
    residual = (total - kept) / max(d - k, 1)
    floor = 1e-4 / max(d, 1)  # a tiny sample must not claim zero spread in unseen directions
    return FieldStats(mean, vt[:k], var[:k], max(residual, floor), n)
