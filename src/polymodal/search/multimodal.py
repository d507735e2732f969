"""Late fusion across a document's modality fields, with calibrated scores.

A query reaches a store through *channels*: a vector field plus the encoder that puts the
query into that field's space (a text query reaches ``image_vec`` through CLIP's text encoder
and ``segments.text_vec`` through MiniLM). Each channel retrieves candidates; every candidate
is then scored exactly on every channel it has a vector for, each score is calibrated
(:mod:`polymodal.search.calibrate`), and the fused score is the weighted mean over the
channels the document *has*. A document missing a modality is scored on the others (weights
renormalised), never as if its missing vector were zero. Keyword matches (BM25) add a bonus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from polymodal.doc.base import Doc
from polymodal.search.calibrate import FieldStats, fit_stats
from polymodal.store.base import Hit, Store, match_at

__all__ = ["Channel", "MultiSearch", "QueryVector", "Scored", "fuse"]


@dataclass(frozen=True, slots=True)
class Channel:
    """One way into the store: a vector field, the weight of its calibrated score, and the
    embedding space it belongs to (fields embedded by one model share a space and one
    calibration, so their scores stay in the model's own order; default: the field alone)."""

    field: str
    weight: float = 1.0
    space: str | None = None

    @property
    def space_key(self) -> str:
        return self.space or self.field


@dataclass(frozen=True, slots=True)
class QueryVector:
    """A query already embedded for one channel (positive and optional negative examples are
    folded in by the caller)."""

    channel: Channel
    vector: np.ndarray


class MultiSearch:
    """Calibrated late-fusion search over one store."""

    def __init__(self, store: Store[Any], *, refit_growth: float = 1.5, sample: int = 4000) -> None:
        self.store = store
        self.refit_growth = refit_growth
        self.sample = sample
        self._stats: dict[str, FieldStats] = {}

    # -- calibration ---------------------------------------------------------------------------
    def stats(self, space: str, fields: Sequence[str]) -> FieldStats:
        """The calibration of an embedding space (pooled over its ``fields``), fitted on first
        use and refitted when the store has grown by ``refit_growth``."""
        cached = self._stats.get(space)
        if cached is not None:
            return cached
        key = f"calibration:{space}"
        saved = self.store.get_setting(key)
        count = self.store.count()
        stats = FieldStats.from_dict(saved) if saved else None
        if stats is None or count > max(stats.n, 1) * self.refit_growth or (stats.n < 50 and count > stats.n):
            per_field = max(1, self.sample // max(1, len(fields)))
            parts = [self.store.sample_vectors(f, per_field) for f in fields]
            parts = [p for p in parts if len(p)]
            stats = fit_stats(np.concatenate(parts) if parts else np.zeros((0, 1)))
            fitted = FieldStats(stats.mean, stats.components, stats.variances, stats.residual, max(count, stats.n))
            saved = fitted.to_dict()
            self.store.set_setting(key, saved)
            stats = FieldStats.from_dict(saved)  # the stored precision, so every reader scores alike
        self._stats[space] = stats
        return stats

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        queries: Sequence[QueryVector],
        *,
        text: str | None = None,
        text_weight: float = 0.3,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
        depth: int | None = None,
    ) -> list[Hit]:
        """Fused hits for the embedded ``queries`` (and optional keyword ``text``), best first.

        ``Hit.scores`` holds each channel's calibrated score (``"bm25"`` for keywords);
        ``Hit.match`` is the best sub-document (segment) of the strongest nested channel.
        """
        scored = self.collect(queries, text=text, where=where, exclude=exclude, depth=depth or max(50, 5 * limit))
        weights = {qv.channel.field: qv.channel.weight for qv in queries}
        return fuse(scored, weights, text_weight=text_weight, limit=limit)

    def collect(
        self,
        queries: Sequence[QueryVector],
        *,
        text: str | None = None,
        where: Mapping[str, Any] | None = None,
        exclude: Sequence[str] = (),
        depth: int = 50,
    ) -> list[Scored]:
        """Candidates with their calibrated score on every channel they have (no weights yet):
        fusing the same candidates with other weights is then cheap (see :func:`fuse`)."""
        candidates: dict[str, Doc] = {}
        for qv in queries:
            if qv.channel.field not in self.store.vector_fields or not self._has_vectors(qv.channel.field):
                continue
            for hit in self.store.search(qv.vector, field=qv.channel.field, limit=depth + len(exclude), where=where):
                candidates.setdefault(hit.id, hit.doc)
        keyword: dict[str, tuple[float, str | None]] = {}
        if text and text.strip():
            try:
                for hit in self.store.text_search(text, limit=depth, where=where):
                    candidates.setdefault(hit.id, hit.doc)
                    keyword[hit.id] = (hit.score, hit.snippet)
            except Exception:  # noqa: BLE001 - a query without searchable words just has no keyword part
                keyword = {}
        for doc_id in exclude:
            candidates.pop(doc_id, None)
        best_kw = max((s for s, _ in keyword.values()), default=0.0)
        spaces: dict[str, list[str]] = {}
        for qv in queries:
            if qv.channel.field in self.store.vector_fields and self._has_vectors(qv.channel.field):
                spaces.setdefault(qv.channel.space_key, []).append(qv.channel.field)
        stats = {space: self.stats(space, fields) for space, fields in spaces.items()}
        out = []
        for doc_id, doc in candidates.items():
            kw = keyword.get(doc_id)
            parts, positions = self._channel_scores(doc, queries, stats)
            out.append(
                Scored(
                    doc=doc,
                    parts=parts,
                    positions=positions,
                    keyword=(kw[0] / best_kw if kw is not None and best_kw > 0 else None),
                    bm25=kw[0] if kw is not None else None,
                    snippet=kw[1] if kw is not None else None,
                )
            )
        return out

    def _has_vectors(self, field: str) -> bool:
        vf = self.store.vector_fields[field]
        return self.store._dim_of(vf) is not None

    def _channel_scores(
        self, doc: Doc, queries: Sequence[QueryVector], stats: Mapping[str, FieldStats]
    ) -> tuple[dict[str, float], dict[str, Doc | None]]:
        parts: dict[str, float] = {}
        positions: dict[str, Doc | None] = {}
        for qv in queries:
            field = qv.channel.field
            if field not in self.store.vector_fields:
                continue
            vf = self.store.vector_fields[field]
            found = _best_vector(doc, field, vf.nesting, qv.vector)
            if found is None:
                continue  # this document has no such modality: leave it out of its average
            raw, pos, m = found
            parts[field] = _max_adjusted(float(stats[qv.channel.space_key].zscore(qv.vector, raw)), m)
            positions[field] = match_at(doc, vf.nesting, pos) if vf.nested else None
        return parts, positions


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate and its calibrated score per channel (``keyword``: BM25 over the best BM25)."""

    doc: Doc
    parts: Mapping[str, float]
    positions: Mapping[str, Doc | None]
    keyword: float | None = None
    bm25: float | None = None
    snippet: str | None = None


def fuse(
    scored: Sequence[Scored], weights: Mapping[str, float], *, text_weight: float = 0.3, limit: int = 10
) -> list[Hit]:
    """Weighted mean of each candidate's calibrated channel scores over the channels it has
    (a missing modality is left out, weights renormalised), plus ``text_weight`` times its
    relative BM25; best first. The match is the best segment of the strongest nested channel."""
    hits = []
    for item in scored:
        total = norm = 0.0
        best: tuple[float, str] | None = None
        for field, z in item.parts.items():
            w = float(weights.get(field, 1.0))
            total += w * z
            norm += w
            if item.positions.get(field) is not None and (best is None or w * z > best[0]):
                best = (w * z, field)
        score = total / norm if norm else 0.0
        parts = dict(item.parts)
        if item.keyword is not None and item.bm25 is not None:
            score += text_weight * item.keyword
            parts["bm25"] = item.bm25
        field_used = max(item.parts, key=lambda f: float(weights.get(f, 1.0)) * item.parts[f]) if item.parts else None
        match = item.positions.get(best[1]) if best is not None else None
        hits.append(
            Hit(
                id=item.doc.id,
                score=score,
                doc=item.doc,
                match=match,
                field=field_used,
                snippet=item.snippet if item.keyword is not None else None,
                scores=parts,
            )
        )
    hits.sort(key=lambda h: (-h.score, h.id))
    return hits[:limit]


def _normalise(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n else v


_NORMAL = NormalDist()


def _max_adjusted(z: float, m: int) -> float:
    """The z-score of the best of ``m`` vectors, corrected for having had ``m`` tries.

    A 300-segment video almost always has *some* segment that looks unusually similar; if
    the best of n independent z-scores is z, the chance of that by luck is
    ``1 - (1 - sf(z))^n``, and the corrected score is the z with that tail probability.
    Neighbouring segments are alike, so n is taken as ``sqrt(m)`` rather than m. For m = 1 it
    is z itself.
    """
    if m <= 1:
        return z
    n = math.sqrt(m)
    p = 0.5 * math.erfc(z / math.sqrt(2))
    tail = -math.expm1(n * math.log1p(-min(p, 1 - 1e-16)))
    if not 0.0 < tail < 1.0:
        return z if tail <= 0.0 else -8.0
    return -_NORMAL.inv_cdf(tail)


def _best_vector(
    doc: Doc, path: str, nesting: tuple[str, ...], q: np.ndarray
) -> tuple[float, tuple[int, ...], int] | None:
    """Highest cosine between ``q`` and the document's vectors at ``path``, where it is, and
    how many vectors competed."""
    best: tuple[float, tuple[int, ...]] | None = None
    count = 0
    for vec, pos in _vectors_at(doc, path.split("."), nesting, "", ()):
        score = float(_normalise(np.asarray(vec, np.float64)) @ q)
        count += 1
        if best is None or score > best[0]:
            best = (score, pos)
    return None if best is None else (best[0], best[1], count)


def _vectors_at(
    node: Any, parts: list[str], nesting: tuple[str, ...], walked: str, pos: tuple[int, ...]
) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    if node is None:
        return []
    head, rest = parts[0], parts[1:]
    value = getattr(node, head, None)
    here = f"{walked}.{head}" if walked else head
    if not rest:
        return [] if value is None else [(value, pos)]
    if here in nesting:
        out = []
        for i, child in enumerate(value or []):
            out.extend(_vectors_at(child, rest, nesting, here, (*pos, i)))
        return out
    return _vectors_at(value, rest, nesting, here, pos)
