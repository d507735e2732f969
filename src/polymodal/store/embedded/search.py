"""Vector ranking for the embedded store: the rows a filter allows, and the best documents for
one query, over top-level or nested (best or mean sub-document) vector fields.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from polymodal.doc.base import Doc
from polymodal.store import filters as flt
from polymodal.store.base import StoreConfig
from polymodal.store.embedded import db
from polymodal.store.embedded.ann import AnnIndex
from polymodal.store.embedded.sqlfilter import to_sql

__all__ = ["allowed_slots", "rank"]


def rank(
    index: AnnIndex,
    q: np.ndarray,
    limit: int,
    allowed: np.ndarray | None,
    n_allowed: int,
    nested: bool,
    aggregate: str,
    exact: bool | None,
    config: StoreConfig,
) -> list[tuple[int, float, str]]:
    """Best documents for one query: (rid, score, position of the best sub-document)."""
    search: dict[str, Any] = {
        "allowed": allowed,
        "exact": exact,
        "ef": config.ef_search,
        "exact_threshold": config.exact_threshold,
    }
    if not nested:
        slots, scores = index.search(q[None], limit, **search)[0]
        return [(rid, sc, "") for rid, sc in zip(index.owner[slots].tolist(), scores.tolist(), strict=True)]
    if aggregate == "mean":
        return _mean_ranking(index, q, limit, allowed)
    depth = limit * 4
    while True:
        slots, scores = index.search(q[None], depth, **search)[0]
        best: dict[int, tuple[float, str]] = {}
        for slot, score in zip(slots.tolist(), scores.tolist(), strict=True):
            rid = int(index.owner[slot])
            if rid not in best:
                best[rid] = (score, index.pos[slot])
        if len(best) >= limit or depth >= n_allowed:
            break
        depth = min(depth * 4, n_allowed)
    ranked = [(rid, s, p) for rid, (s, p) in best.items()]
    ranked.sort(key=lambda t: (-t[1], t[0]))
    return ranked[:limit]


def _mean_ranking(
    index: AnnIndex, q: np.ndarray, limit: int, allowed: np.ndarray | None
) -> list[tuple[int, float, str]]:
    """Exact mean-of-segments ranking: every (allowed) document's mean similarity over all its
    vectors, in one pass over the matrix (a best-segment search could miss a document whose
    segments are all fairly good but none is the best), with its best segment as the match."""
    mask = index.valid if allowed is None else index.valid & allowed[: index.capacity]
    slots = np.flatnonzero(mask)
    if not len(slots):
        return []
    vecs = index.matrix[slots]
    scale = index.scale[slots] if index.metric == "cosine" else None
    sims = -np.linalg.norm(vecs - q, axis=1) if index.metric == "l2" else index.dots(vecs, q, scale)
    owners = index.owner[slots]
    uniq, inverse = np.unique(owners, return_inverse=True)
    means = np.bincount(inverse, weights=sims) / np.bincount(inverse)
    order = np.lexsort((-sims, inverse))  # grouped by document, its best slot first
    first = order[np.concatenate([[True], np.diff(inverse[order]) != 0])]
    best_pos = {int(owners[i]): index.pos[int(slots[i])] for i in first}
    top = np.lexsort((uniq, -means))[:limit]
    return [(int(uniq[i]), float(means[i]), best_pos[int(uniq[i])]) for i in top]


def allowed_slots(
    conn: sqlite3.Connection, doc_type: type[Doc], fid: int, where: flt.Filter, capacity: int
) -> np.ndarray:
    sql, params = to_sql(where, doc_type, column="d.body")
    lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
    mask = np.zeros(capacity, bool)
    rows = conn.execute(
        f"SELECT v.key FROM docs d JOIN vectors v ON v.rid = d.rid WHERE v.key >= ? AND v.key < ? AND {sql}",
        [lo, hi, *params],
    ).fetchall()
    if rows:
        slots = np.fromiter((k - lo for (k,) in rows), dtype=np.int64, count=len(rows))
        mask[slots[slots < capacity]] = True
    return mask
