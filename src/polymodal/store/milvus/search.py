"""Ranking helpers of the Milvus store: deeper searches for Python-checked filters, exact ranking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Ranked", "deepen", "rank_exact"]

Ranked = list[tuple[str, float, dict[str, Any]]]  # (parent id, score, entity), best first


def deepen(
    run: Callable[[list[int], int], list[Ranked]],
    n: int,
    limit: int,
    *,
    window: int,
    exact: bool,
    judge: Callable[[list[str]], dict[str, bool]],
) -> list[Ranked | None]:
    """Best ``limit`` documents for each of ``n`` queries.

    ``run(queries, depth)`` searches (one hit per document, best first). When the filter is
    ``exact`` (Milvus applied all of it) one search of depth ``limit`` answers. Otherwise
    ``judge(ids)`` checks candidates in Python and the search goes four times deeper while too
    few pass and more are left; a query still short at depth ``window`` gets None (the caller
    then ranks every match exactly).
    """
    results: list[Ranked | None] = [None] * n
    verdict: dict[str, bool] = {}
    pending = list(range(n))
    depth = limit if exact else limit * 4
    while pending:
        depth = min(depth, window)
        later = []
        for i, hits in zip(pending, run(pending, depth), strict=True):
            ranked: Ranked = []
            seen: set[str] = set()
            for hit in hits:
                if hit[0] not in seen:
                    seen.add(hit[0])
                    ranked.append(hit)
            if not exact:
                verdict.update(judge([p for p, _, _ in ranked if p not in verdict]))
                ranked = [h for h in ranked if verdict.get(h[0], False)]
            if len(ranked) >= limit or len(hits) < depth:
                results[i] = ranked[:limit]
            elif depth < window:
                later.append(i)
        pending = later
        depth *= 4
    return results


def rank_exact(
    matrix: np.ndarray,
    parents: list[str],
    positions: list[str],
    queries: np.ndarray,
    limit: int,
    metric: str,
    aggregate: str,
) -> list[list[tuple[str, float, dict[str, Any]]]]:
    """Exact best-first documents per query: the max (or mean) over each document's vectors, with
    its best vector's position."""
    uniq, inverse = np.unique(np.asarray(parents, dtype=object), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq))
    out = []
    for q in queries:
        wide = matrix.astype(np.float64)
        sims = -np.linalg.norm(wide - q, axis=1) if metric == "l2" else wide @ q
        order = np.lexsort((-sims, inverse))  # grouped by document, its best vector first
        first = order[np.concatenate([[True], np.diff(inverse[order]) != 0])]
        best = np.empty(len(uniq), dtype=np.int64)
        best[inverse[first]] = first
        per_doc = sims[best] if aggregate == "max" else np.bincount(inverse, weights=sims) / counts
        top = np.lexsort((uniq, -per_doc))[:limit]
        out.append(
            [(str(uniq[i]), float(per_doc[i]), {"parent": str(uniq[i]), "pos": positions[best[i]]}) for i in top]
        )
    return out
