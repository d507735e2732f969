"""Fusing ranked lists: reciprocal rank fusion and weighted score fusion.

Used by hybrid search (vector + BM25) in every store backend without a native hybrid mode, and
by multi-field search (late fusion across a document's modalities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["FusedItem", "fuse", "min_max", "rrf", "weighted"]

Fusion = Literal["rrf", "weighted"]


@dataclass(frozen=True, slots=True)
class FusedItem:
    """One fused result: its key, fused score, and each input list's score for it."""

    key: str
    score: float
    parts: Mapping[str, float]


def rrf(
    ranked: Mapping[str, Sequence[tuple[str, float]]], *, k: float = 60.0, weights: Mapping[str, float] | None = None
) -> list[FusedItem]:
    """Reciprocal rank fusion: ``sum(w / (k + rank))`` over the lists a key appears in.

    Each input is a best-first list of ``(key, score)``; the scores are only reported, ranks
    decide. ``k=60`` is the value from Cormack et al. (2009).
    """
    fused: dict[str, float] = {}
    parts: dict[str, dict[str, float]] = {}
    for name, items in ranked.items():
        w = 1.0 if weights is None else float(weights.get(name, 0.0))
        for rank, (key, score) in enumerate(items, 1):
            fused[key] = fused.get(key, 0.0) + w / (k + rank)
            parts.setdefault(key, {})[name] = score
    return _sorted(fused, parts)


def min_max(items: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Scores rescaled to [0, 1] within one list (all 1.0 when they are all equal)."""
    if not items:
        return {}
    lo = min(s for _, s in items)
    hi = max(s for _, s in items)
    span = hi - lo
    return {key: 1.0 if span == 0 else (s - lo) / span for key, s in items}


def weighted(ranked: Mapping[str, Sequence[tuple[str, float]]], weights: Mapping[str, float]) -> list[FusedItem]:
    """Weighted sum of min-max normalised scores; a key missing from a list gets 0 there.

    Weights are renormalised over the lists that are present, so a missing list (a modality a
    query does not have) does not pull every score down.
    """
    present = {name: items for name, items in ranked.items() if items and weights.get(name, 0.0) > 0}
    total = sum(weights[name] for name in present) or 1.0
    fused: dict[str, float] = {}
    parts: dict[str, dict[str, float]] = {}
    for name, items in present.items():
        w = weights[name] / total
        for key, norm in min_max(items).items():
            fused[key] = fused.get(key, 0.0) + w * norm
        for key, score in items:
            parts.setdefault(key, {})[name] = score
    return _sorted(fused, parts)


def fuse(
    ranked: Mapping[str, Sequence[tuple[str, float]]],
    *,
    method: Fusion = "rrf",
    weights: Mapping[str, float] | None = None,
    k: float = 60.0,
) -> list[FusedItem]:
    """Dispatch to :func:`rrf` or :func:`weighted` (equal weights when none are given)."""
    if method == "rrf":
        return rrf(ranked, k=k, weights=weights)
    if method == "weighted":
        return weighted(ranked, weights or dict.fromkeys(ranked, 1.0))
    from polymodal.errors import ConfigError

    raise ConfigError(f"unknown fusion {method!r}; use 'rrf' or 'weighted'")


def _sorted(fused: dict[str, float], parts: dict[str, dict[str, float]]) -> list[FusedItem]:
    order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
    return [FusedItem(key, score, parts.get(key, {})) for key, score in order]
