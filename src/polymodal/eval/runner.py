"""Running labelled queries against a media library: metrics overall and per modality, the
worst queries with what outranked the right answer, side-by-side configurations, and fusion
weights learnt from the labels.

Candidates are collected once per query (embedding and retrieval are the slow part); ranking
them under different fusion weights is then cheap, which is what makes weight search practical.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError
from polymodal.eval.metrics import EvalResult, evaluate, parse_metric
from polymodal.eval.qrels import Query, match_grade
from polymodal.library.search import LibraryHit, LibrarySearch
from polymodal.search.multimodal import Scored

__all__ = ["Evaluation", "QueryOutcome", "WeightSearch", "compare", "evaluate_library", "learn_weights", "metric_names"]

#: Fusion weights that weight search tunes: one per vector field, and the keyword bonus.
TUNABLE = (
    "text_vec",
    "segments.text_vec",
    "image_vec",
    "segments.image_vec",
    "audio_vec",
    "segments.audio_vec",
    "bm25",
)


def metric_names(ks: Sequence[int]) -> tuple[str, ...]:
    """The standard report: recall, precision, hit rate and nDCG at each k, then MRR and MAP."""
    if not ks or any(k <= 0 for k in ks):
        raise ConfigError("cutoffs must be positive integers, like --k 1,5,10")
    names = [f"{m}@{k}" for m in ("recall", "precision", "hit", "ndcg") for k in ks]
    return (*names, "mrr", "map")


@dataclass(frozen=True, slots=True)
class QueryOutcome:
    """One query's ranking: the keys scored by the metrics, the hits, and where the first
    relevant item came (None: not found within the depth)."""

    query: Query
    ranked: tuple[str, ...]
    hits: tuple[LibraryHit, ...]
    first_relevant: int | None
    modalities: tuple[str, ...]

    def above(self) -> list[str]:
        """What ranked above the first relevant item (file names with moments)."""
        stop = (self.first_relevant or len(self.hits) + 1) - 1
        return [_label(h) for h in self.hits[:stop]]


@dataclass(frozen=True)
class Evaluation:
    """A configuration's results: overall, per modality of the relevant files, per query."""

    name: str
    overall: EvalResult
    per_modality: Mapping[str, EvalResult]
    outcomes: tuple[QueryOutcome, ...]
    weights: Mapping[str, float] = field(default_factory=dict)

    def worst(self, metric: str | None = None, n: int = 5) -> list[tuple[QueryOutcome, float]]:
        """The ``n`` queries with the lowest ``metric`` (default: the last nDCG reported)."""
        name = metric or next(m for m in reversed(self.overall.metrics) if m.startswith("ndcg"))
        scored = [(o, self.overall.per_query[o.query.id][name]) for o in self.outcomes]
        scored = [(o, v) for o, v in scored if not math.isnan(v)]
        return sorted(scored, key=lambda t: (t[1], t[0].query.id))[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queries": self.overall.num_queries,
            "overall": dict(self.overall.means),
            "per_modality": {m: dict(r.means) for m, r in self.per_modality.items()},
            "weights": dict(self.weights),
            "worst": [
                {"id": o.query.id, "query": o.query.value, "value": v, "rank": o.first_relevant, "above": o.above()}
                for o, v in self.worst()
            ],
        }


def _label(h: LibraryHit) -> str:
    name = Path(h.uri).name
    return f"{name}@{h.start:.0f}s" if h.start is not None else name


def collect(searcher: LibrarySearch, queries: Sequence[Query], *, depth: int = 50) -> list[list[Scored]]:
    """Candidates with calibrated channel scores for every query (the expensive step)."""
    return [searcher.collect(q.kind, q.value, depth=depth) for q in queries]


def _outcome(query: Query, hits: Sequence[LibraryHit], modality_by_uri: Mapping[str, str]) -> QueryOutcome:
    used: set[str] = set()
    ranked: list[str] = []
    first = None
    for rank, h in enumerate(hits, 1):
        key, grade = match_grade(query, h.uri, h.start, h.end, used)
        if key is not None and grade > 0 and first is None:
            first = rank
        ranked.append(key if key is not None else f"{h.uri}#{h.start}#{rank}")
    mods = tuple(sorted({modality_by_uri.get(j.uri, "missing") for j in query.relevant}))
    return QueryOutcome(query, tuple(ranked), tuple(hits), first, mods)


def evaluate_library(
    searcher: LibrarySearch,
    queries: Sequence[Query],
    *,
    ks: Sequence[int] = (1, 5, 10),
    name: str = "default",
    weights: Mapping[str, float] | None = None,
    scored: Sequence[Sequence[Scored]] | None = None,
    depth: int = 50,
) -> Evaluation:
    """Rank every query (collecting candidates unless ``scored`` is given) and compute the
    metrics, overall and per modality of the relevant files."""
    metrics = metric_names(ks)
    scored = scored if scored is not None else collect(searcher, queries, depth=depth)
    modality_by_uri = {row["uri"]: row["modality"] for row in searcher.store.scan(["uri", "modality"])}
    limit = max(max(ks), depth)
    outcomes = tuple(
        _outcome(q, searcher.rank(s, limit=limit, weights=weights), modality_by_uri)
        for q, s in zip(queries, scored, strict=True)
    )
    qrels = {q.id: q.grades() for q in queries}
    run = {o.query.id: list(o.ranked) for o in outcomes}
    overall = evaluate(run, qrels, metrics)
    groups: dict[str, list[str]] = {}
    for o in outcomes:
        for m in o.modalities:
            groups.setdefault(m, []).append(o.query.id)
    per_modality = {
        m: evaluate({i: run[i] for i in ids}, {i: qrels[i] for i in ids}, metrics) for m, ids in sorted(groups.items())
    }
    effective = {**searcher.weights, **(weights or {})}
    return Evaluation(name, overall, per_modality, outcomes, effective)


def compare(
    configs: Sequence[tuple[str, LibrarySearch, Mapping[str, float] | None]],
    queries: Sequence[Query],
    *,
    ks: Sequence[int] = (1, 5, 10),
) -> list[Evaluation]:
    """One evaluation per ``(name, searcher, weights)``: different stores (models), weights, or
    search settings, on the same queries, for a side-by-side table."""
    return [evaluate_library(s, queries, ks=ks, name=name, weights=w) for name, s, w in configs]


@dataclass(frozen=True, slots=True)
class WeightSearch:
    """Learnt weights and the metric before and after, on the training and held-out queries."""

    weights: Mapping[str, float]
    metric: str
    train_before: float
    train_after: float
    heldout_before: float
    heldout_after: float
    train_ids: tuple[str, ...]
    heldout_ids: tuple[str, ...]


def learn_weights(
    searcher: LibrarySearch,
    queries: Sequence[Query],
    *,
    metric: str = "ndcg@10",
    holdout: float = 0.3,
    seed: int = 0,
    grid: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
    rounds: int = 3,
) -> WeightSearch:
    """Coordinate ascent over per-channel weights maximising ``metric`` on a training split;
    the held-out split is scored with the old and the learnt weights (the honest number).

    Raises:
        ConfigError: too few queries to split, or an unknown metric.
    """
    parse_metric(metric)
    if len(queries) < 4 and holdout > 0:
        raise ConfigError("learning weights needs at least 4 labelled queries (some are held out)")
    order = list(range(len(queries)))
    random.Random(seed).shuffle(order)
    n_held = round(len(queries) * holdout) if holdout > 0 else 0
    held_idx, train_idx = sorted(order[:n_held]), sorted(order[n_held:])
    scored = collect(searcher, queries)
    k = parse_metric(metric).k or 10

    def score(idx: Sequence[int], weights: Mapping[str, float]) -> float:
        if not idx:
            return float("nan")
        ev = evaluate_library(
            searcher, [queries[i] for i in idx], ks=(k,), weights=weights, scored=[scored[i] for i in idx]
        )
        result = evaluate(
            {o.query.id: list(o.ranked) for o in ev.outcomes},
            {queries[i].id: queries[i].grades() for i in idx},
            [metric],
        )
        return float(result[metric])

    start = {name: float(searcher.weights.get(name, 0.3 if name == "bm25" else 1.0)) for name in TUNABLE}
    best, best_value = dict(start), score(train_idx, start)
    for _ in range(rounds):
        improved = False
        for name in TUNABLE:
            for value in grid:
                if value == best[name]:
                    continue
                trial = {**best, name: value}
                if all(trial[f] == 0 for f in TUNABLE if f != "bm25"):
                    continue  # every vector channel off: nothing left to rank by
                v = score(train_idx, trial)
                if v > best_value + 1e-9:
                    best, best_value, improved = trial, v, True
        if not improved:
            break
    return WeightSearch(
        weights=best,
        metric=metric,
        train_before=score(train_idx, start),
        train_after=best_value,
        heldout_before=score(held_idx, start),
        heldout_after=score(held_idx, best),
        train_ids=tuple(queries[i].id for i in train_idx),
        heldout_ids=tuple(queries[i].id for i in held_idx),
    )
