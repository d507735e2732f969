"""Evaluation of retrieval: ranking metrics as pure functions, and :func:`evaluate` for a whole run."""

from polymodal.eval.metrics import (
    DEFAULT_METRICS,
    EvalResult,
    Gain,
    MetricSpec,
    average_precision,
    evaluate,
    hit_rate_at_k,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
    reciprocal_rank,
)

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
