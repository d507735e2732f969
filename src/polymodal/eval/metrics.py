"""Ranking metrics as pure functions, for one query or for a whole run (:func:`evaluate`).

Pure Python on purpose: the values must be exact and reproducible (they are checked against
trec_eval), and a ranking is short enough that numpy would only add conversion cost.

Conventions, the same for every metric:

* ``ranked`` is best first. A key that appears again counts only at its first position: the
  repeat still takes up its slot (the user saw ``k`` slots, one of them wasted) but gains
  nothing. So a system cannot raise its score by repeating a relevant item.
* ``relevant`` maps keys to graded relevance. A grade ``<= 0`` or a missing key means not
  relevant; binary metrics count ``grade > 0`` as relevant, nDCG uses the grade as gain.
* ``k=None`` means no cutoff (the whole list). ``k`` larger than the list is fine: the missing
  slots are empty, so precision still divides by ``k`` (the TREC convention: returning fewer
  results is not rewarded).
* A query with no relevant item returns ``nan`` from every metric, even those that could say 0
  (precision, hit rate): such a query cannot tell a good system from a bad one, and treating all
  metrics alike keeps the set of averaged queries the same for every metric in :func:`evaluate`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from polymodal.errors import ConfigError

__all__ = [
    "DEFAULT_METRICS",
    "EvalResult",
    "Gain",
    "MetricSpec",
    "average_precision",
    "evaluate",
    "hit_rate_at_k",
    "ndcg_at_k",
    "parse_metric",
    "precision_at_k",
    "recall_at_k",
    "reciprocal_rank",
]

Gain = Literal["exponential", "linear"]
MetricKind = Literal["recall", "precision", "hit", "mrr", "ndcg", "map"]

DEFAULT_METRICS: tuple[str, ...] = ("recall@10", "ndcg@10", "mrr", "map")

_ALIASES: dict[str, MetricKind] = {
    "recall": "recall",
    "p": "precision",
    "precision": "precision",
    "hit": "hit",
    "hit_rate": "hit",
    "hitrate": "hit",
    "success": "hit",
    "mrr": "mrr",
    "rr": "mrr",
    "ndcg": "ndcg",
    "map": "map",
    "ap": "map",
}
_KNOWN = ("recall@k", "precision@k (P@k)", "hit@k (hit_rate@k, success@k)", "mrr[@k]", "ndcg@k", "map[@k]")
_NAME = re.compile(r"^\s*([a-z_]+)\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True, slots=True)
class _Judged:
    """One query's ranking reduced to what every metric needs, computed once per query."""

    grades: tuple[float, ...]  # grade per position of the (cut) ranking; 0.0 for non-relevant and repeats
    ideal: tuple[float, ...]  # grades of every relevant item, best first


def _check_k(k: int | None) -> None:
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ConfigError(f"k must be a positive int or None, got {k!r}", option="k")


def _judge(ranked: Sequence[str], relevant: Mapping[str, float], cutoff: int | None) -> _Judged:
    # A str is a Sequence[str] and a dict of scores iterates its keys: both are easy mistakes
    # that would silently give wrong numbers, so they fail here.
    if isinstance(ranked, str | Mapping):
        raise ConfigError(
            "ranked must be a sequence of keys, best first (for a {key: score} dict pass "
            "sorted(scores, key=scores.__getitem__, reverse=True))",
            option="ranked",
        )
    ideal: list[float] = []
    for key, grade in relevant.items():
        if not math.isfinite(grade):
            raise ConfigError(f"relevance grade of {key!r} must be finite, got {grade!r}", option="relevant")
        if grade > 0:
            ideal.append(float(grade))
    ideal.sort(reverse=True)
    seen: set[str] = set()
    grades: list[float] = []
    for key in ranked if cutoff is None else ranked[:cutoff]:
        grade = relevant.get(key, 0.0)
        grades.append(float(grade) if grade > 0 and key not in seen else 0.0)
        seen.add(key)
    return _Judged(tuple(grades), tuple(ideal))


def _recall(j: _Judged, k: int | None) -> float:
    return sum(g > 0 for g in j.grades[:k]) / len(j.ideal)


def _precision(j: _Judged, k: int | None) -> float:
    size = len(j.grades) if k is None else k
    return sum(g > 0 for g in j.grades[:k]) / size if size else 0.0


def _hit(j: _Judged, k: int | None) -> float:
    return 1.0 if any(g > 0 for g in j.grades[:k]) else 0.0


def _rr(j: _Judged, k: int | None) -> float:
    return next((1.0 / rank for rank, g in enumerate(j.grades[:k], 1) if g > 0), 0.0)


def _dcg(grades: Sequence[float], gain: Gain) -> float:
    if gain == "exponential":
        return math.fsum((2.0**g - 1.0) / math.log2(rank + 1) for rank, g in enumerate(grades, 1))
    return math.fsum(g / math.log2(rank + 1) for rank, g in enumerate(grades, 1))


def _ndcg(j: _Judged, k: int | None, gain: Gain) -> float:
    return _dcg(j.grades[:k], gain) / _dcg(j.ideal[:k], gain)


def _ap(j: _Judged, k: int | None) -> float:
    hits = 0
    total = 0.0
    for rank, g in enumerate(j.grades[:k], 1):
        if g > 0:
            hits += 1
            total += hits / rank
    return total / len(j.ideal)


def _one(kind: MetricKind, ranked: Sequence[str], relevant: Mapping[str, float], k: int | None, gain: Gain) -> float:
    _check_k(k)
    j = _judge(ranked, relevant, k)
    return _compute(kind, j, k, gain)


def _compute(kind: MetricKind, j: _Judged, k: int | None, gain: Gain) -> float:
    if not j.ideal:
        return math.nan
    if kind == "ndcg":
        if gain not in ("exponential", "linear"):
            raise ConfigError(f"unknown gain {gain!r}; use 'exponential' or 'linear'", option="gain")
        return _ndcg(j, k, gain)
    return _BINARY[kind](j, k)


_BINARY = {"recall": _recall, "precision": _precision, "hit": _hit, "mrr": _rr, "map": _ap}


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None) -> float:
    """Share of the relevant items found in the top ``k``: ``|relevant in top k| / |relevant|``.

    Args:
        ranked: retrieved keys, best first (repeats count once, at their first position).
        relevant: key -> grade; ``grade > 0`` is relevant.
        k: cutoff; ``None`` for the whole list.

    Returns:
        A value in [0, 1], or ``nan`` when ``relevant`` has no item with ``grade > 0``.

    Raises:
        ConfigError: ``k < 1``, a non-finite grade, or ``ranked`` given as a str or a dict.

    >>> recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, k=2)
    0.3333333333333333
    """
    return _one("recall", ranked, relevant, k, "linear")


def precision_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None) -> float:
    """Share of the top ``k`` slots holding a relevant item; divides by ``k`` even past the list's end.

    With ``k=None`` it divides by ``len(ranked)`` (0.0 for an empty list). Args, returns and
    raises as :func:`recall_at_k`.
    """
    return _one("precision", ranked, relevant, k, "linear")


def hit_rate_at_k(ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None) -> float:
    """1.0 if any relevant item is in the top ``k``, else 0.0 (``nan`` with no relevant item)."""
    return _one("hit", ranked, relevant, k, "linear")


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None) -> float:
    """``1 / rank`` of the first relevant item within the top ``k`` (0.0 if none); its mean is MRR."""
    return _one("mrr", ranked, relevant, k, "linear")


def ndcg_at_k(
    ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None, *, gain: Gain = "exponential"
) -> float:
    """Normalised discounted cumulative gain: ``DCG@k / IDCG@k`` with graded relevance.

    ``DCG@k = sum over ranks i <= k of gain(grade_i) / log2(i + 1)``. IDCG is the DCG of the
    ideal ordering of *every* judged relevant item (grades sorted high to low, cut at ``k``), so
    relevant items the system never returned still lower the score.

    The default ``gain="exponential"`` (``2**grade - 1``, Burges et al. 2005) is the form used by
    learning-to-rank libraries and most papers: it rewards putting the most relevant items first.
    ``gain="linear"`` (``grade``, Järvelin & Kekäläinen 2002) is what trec_eval, and so BEIR and
    MTEB, report: use it to compare with their numbers. With binary grades (0/1) both are equal.

    Args:
        ranked: retrieved keys, best first (repeats gain nothing).
        relevant: key -> grade; ``grade <= 0`` gains nothing.
        k: cutoff; ``None`` for the whole list (and an uncut ideal ordering).
        gain: ``"exponential"`` or ``"linear"``.

    Returns:
        A value in [0, 1], or ``nan`` when no item has ``grade > 0``.

    Raises:
        ConfigError: ``k < 1``, an unknown gain, a non-finite grade, or ``ranked`` as a str or dict.
    """
    return _one("ndcg", ranked, relevant, k, gain)


def average_precision(ranked: Sequence[str], relevant: Mapping[str, float], k: int | None = None) -> float:
    """Average of precision@i over the ranks i <= k holding a relevant item, divided by |relevant|.

    The denominator is the number of relevant items in ``relevant``, retrieved or not, even with
    a cutoff (trec_eval's ``map`` and ``map_cut``): relevant items never returned count as
    precision 0. Some recommender libraries divide by ``min(k, |relevant|)`` instead, which gives
    higher numbers when ``k < |relevant|``; those are not comparable with these.
    """
    return _one("map", ranked, relevant, k, "linear")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A parsed metric name: which metric and its cutoff (``None`` for the whole list)."""

    kind: MetricKind
    k: int | None = None

    @property
    def name(self) -> str:
        """Canonical spelling, e.g. ``"precision@5"`` for ``"P@5"``."""
        return self.kind if self.k is None else f"{self.kind}@{self.k}"


def parse_metric(name: str) -> MetricSpec:
    """Parse ``"ndcg@10"``, ``"P@5"``, ``"mrr"`` ... (case-insensitive; ``@k`` is optional for all).

    Raises:
        ConfigError: unknown name or ``k < 1``; the message lists the known metrics.

    >>> parse_metric("P@5")
    MetricSpec(kind='precision', k=5)
    """
    match = _NAME.match(name.lower()) if isinstance(name, str) else None
    kind = _ALIASES.get(match.group(1)) if match else None
    if match is None or kind is None:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(_KNOWN)}", option="metrics", known=_KNOWN)
    k = int(match.group(2)) if match.group(2) is not None else None
    if k is not None and k < 1:
        raise ConfigError(f"metric {name!r}: k must be >= 1", option="metrics", known=_KNOWN)
    return MetricSpec(kind, k)


@dataclass(frozen=True, slots=True)
class EvalResult:
    """Metric values of a run: per query and averaged, keyed by the metric names as asked for.

    ``means`` average over the ``num_queries`` judged queries (those in qrels with at least one
    relevant item); ``excluded`` lists the qrels queries without one, whose per-query values are
    ``nan``. ``unjudged`` lists run queries absent from qrels, which are ignored (often a sign of
    mismatched ids, so they are reported rather than dropped silently).
    """

    metrics: tuple[str, ...]
    means: Mapping[str, float]
    per_query: Mapping[str, Mapping[str, float]]
    num_queries: int
    excluded: tuple[str, ...]
    unjudged: tuple[str, ...]
    gain: Gain

    def __getitem__(self, metric: str) -> float:
        """Mean of one metric: ``result["ndcg@10"]``."""
        return self.means[metric]


def evaluate(
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    *,
    gain: Gain = "exponential",
) -> EvalResult:
    """Score a run (query id -> keys, best first) against qrels (query id -> key -> grade).

    Queries are those of ``qrels``: one missing from ``run`` is scored as an empty ranking (0 on
    every metric), since a system that answered nothing must not be averaged away. Queries with
    no relevant item are excluded from the means (see :class:`EvalResult`).

    Args:
        run: query id -> retrieved keys, best first.
        qrels: query id -> key -> relevance grade.
        metrics: names such as ``"ndcg@10"``, ``"P@5"``, ``"recall@100"``, ``"hit@1"``,
            ``"mrr"``, ``"mrr@10"``, ``"map"``, ``"map@100"``; a single str is one metric.
        gain: nDCG gain for every ``ndcg`` metric, see :func:`ndcg_at_k`.

    Returns:
        An :class:`EvalResult`; a mean is ``nan`` when no query was judged.

    Raises:
        ConfigError: an unknown metric name (the message lists the known ones), a bad gain, a
            non-finite grade, or a ranking given as a str or dict.

    >>> res = evaluate({"q1": ["a", "b"], "q2": ["c"]}, {"q1": {"b": 1}, "q2": {"c": 2}}, ["mrr", "P@1"])
    >>> res.means
    {'mrr': 0.75, 'P@1': 0.5}
    """
    names = tuple(dict.fromkeys((metrics,) if isinstance(metrics, str) else metrics))
    specs = [parse_metric(name) for name in names]
    if gain not in ("exponential", "linear"):
        raise ConfigError(f"unknown gain {gain!r}; use 'exponential' or 'linear'", option="gain")
    cutoff = None if any(s.k is None for s in specs) or not specs else max(s.k or 0 for s in specs)

    per_query: dict[str, dict[str, float]] = {}
    excluded: list[str] = []
    for qid, relevant in qrels.items():
        judged = _judge(run.get(qid, ()), relevant, cutoff)
        if not judged.ideal:
            excluded.append(qid)
        per_query[qid] = {name: _compute(s.kind, judged, s.k, gain) for name, s in zip(names, specs, strict=True)}

    skip = set(excluded)
    counted = [values for qid, values in per_query.items() if qid not in skip]
    means = {name: math.fsum(v[name] for v in counted) / len(counted) if counted else math.nan for name in names}
    return EvalResult(
        metrics=names,
        means=means,
        per_query=per_query,
        num_queries=len(counted),
        excluded=tuple(excluded),
        unjudged=tuple(qid for qid in run if qid not in qrels),
        gain=gain,
    )
