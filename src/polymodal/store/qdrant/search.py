"""Vector and text search of :class:`~polymodal.store.qdrant.store.QdrantStore`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.store import filters as flt
from polymodal.store.base import Hit, VectorField, match_at
from polymodal.store.qdrant import layout as lay
from polymodal.store.qdrant.translate import Translation, translate

if TYPE_CHECKING:
    from polymodal.store.qdrant.store import QdrantStore

__all__ = ["text_search", "vector_search"]

_MAX_IDS = 20_000  # id lists longer than this are checked on the client instead of sent


def native_filter(store: QdrantStore[Any], where: flt.Filter | None) -> tuple[Any | None, bool]:
    """(Qdrant filter or None, whether nothing matches): exact, resolved to ids when needed."""
    tr = translate(where)
    if tr.empty:
        return None, True
    if tr.exact:
        return tr.filter, False
    ids = list(store._residual(tr.filter, where))
    if not ids:
        return None, True
    m = store._m
    return m.Filter(must=[m.HasIdCondition(has_id=ids)]), False


def matching_ids(store: QdrantStore[Any], tr: Translation, where: flt.Filter | None) -> set[str]:
    """Ids of the documents a filter lets through."""
    if tr.empty:
        return set()
    if not tr.exact:
        return set(store._residual(tr.filter, where).values())
    out: set[str] = set()
    for records in store._scroll(store._coll, tr.filter, ["id"], 1000):
        out.update(r.payload["id"] for r in records)
    return out


# -- vectors --------------------------------------------------------------------------------------
def vector_search(
    store: QdrantStore[Any],
    field: VectorField,
    queries: np.ndarray,
    limit: int,
    where: flt.Filter | None,
    aggregate: str,
    exact: bool | None,
) -> list[list[Hit]]:
    name = store._names[field.path]
    if not store._has_vector(name):
        return [[] for _ in queries]
    qfilter, nothing = native_filter(store, where)
    if nothing:
        return [[] for _ in queries]
    if field.nested and aggregate == "mean":
        return [_mean_search(store, field, name, q, limit, qfilter) for q in queries]
    params, matching = _params(store, field, name, qfilter, limit, exact)
    responses = list(_run(store, field, name, queries, limit, qfilter, params))
    if not store._conn.local and qfilter is not None and not (params is not None and params.exact):
        # a filtered HNSW traversal can stop short; the contract is limit hits whenever limit match
        short = [i for i, r in enumerate(responses) if len(r.points) < limit]
        if short:
            n = matching if matching is not None else _count_with(store, qfilter, name)
            redo = [i for i in short if len(responses[i].points) < min(limit, n)]
            if redo:
                exact_params = store._m.SearchParams(exact=True)
                for i, r in zip(
                    redo, _run(store, field, name, queries[redo], limit, qfilter, exact_params), strict=True
                ):
                    responses[i] = r
    return [[_hit(store, p, field, name, q) for p in r.points] for r, q in zip(responses, queries, strict=True)]


def _params(
    store: QdrantStore[Any], field: VectorField, name: str, qfilter: Any, limit: int, exact: bool | None
) -> tuple[Any, int | None]:
    """Search params (None in local mode, which is always exact) and, when counted, how many
    documents match."""
    if store._conn.local:
        return None, None
    m = store._m
    ef = max(store.config.ef_search, limit)
    if exact is True:
        return m.SearchParams(exact=True), None
    if exact is False or qfilter is None:
        return m.SearchParams(hnsw_ef=ef), None
    n = _count_with(store, qfilter, name)
    small = n * (store._dim_of(field) or 0) <= store.config.exact_threshold
    return m.SearchParams(exact=small, hnsw_ef=ef), n


def _count_with(store: QdrantStore[Any], qfilter: Any, name: str) -> int:
    m = store._m
    where = m.Filter(must=[qfilter, m.HasVectorCondition(has_vector=name)])
    return int(store._call("count", store._conn.client.count, store._coll, count_filter=where, exact=True).count)


def _run(
    store: QdrantStore[Any], field: VectorField, name: str, queries: np.ndarray, limit: int, qfilter: Any, params: Any
) -> list[Any]:
    m = store._m
    requests = [
        m.QueryRequest(
            query=[q.tolist()] if field.nested else q.tolist(),  # one query row against MAX_SIM = best segment
            using=name,
            filter=qfilter,
            limit=limit,
            params=params,
            with_payload=True,
        )
        for q in queries
    ]
    return list(store._call("search", store._conn.client.query_batch_points, store._coll, requests=requests))


def _hit(store: QdrantStore[Any], point: Any, field: VectorField, name: str, q: np.ndarray) -> Hit:
    doc = store._rebuild(point.payload)
    score = -float(point.score) if field.metric == "l2" else float(point.score)  # Qdrant's L2 is a distance
    match = None
    if field.nested:
        entry = (point.payload.get("_v") or {}).get(name)
        if entry:
            pos, _, _ = lay.best_vector(entry, q, field.metric)
            match = match_at(doc, field.nesting, pos)
    return Hit(id=doc.id, score=score, doc=doc, match=match, field=field.path)


def _mean_search(
    store: QdrantStore[Any], field: VectorField, name: str, q: np.ndarray, limit: int, qfilter: Any
) -> list[Hit]:
    """Exact mean-over-segments ranking of every matching document (a best-segment search could
    miss a document whose segments are all fairly good but none the best)."""
    m = store._m
    must = [m.HasVectorCondition(has_vector=name), *([qfilter] if qfilter is not None else [])]
    include = m.PayloadSelectorInclude(include=["id", f"_v.{name}"])
    ranked = []
    for records in store._scroll(store._coll, m.Filter(must=must), include, 1000):
        for r in records:
            pos, _, mean = lay.best_vector(r.payload["_v"][name], q, field.metric)
            ranked.append((mean, r.payload["id"], str(r.id), pos))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    top = ranked[:limit]
    found = {str(r.id): r for r in store._retrieve([pid for _, _, pid, _ in top])}
    hits = []
    for mean, _, pid, pos in top:
        record = found.get(pid)
        if record is not None and record.payload:
            doc = store._rebuild(record.payload)
            hits.append(Hit(id=doc.id, score=mean, doc=doc, match=match_at(doc, field.nesting, pos), field=field.path))
    return hits


# -- text -----------------------------------------------------------------------------------------
def text_search(
    store: QdrantStore[Any], text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str
) -> list[Hit]:
    """BM25 over text rows, best row per document, ``limit`` documents whenever that many match."""
    m, analyzer = store._m, store._analyzer
    terms = analyzer.query_terms(text)
    if not store.text_fields:
        return []
    must: list[Any] = []
    if field is not None:
        must.append(m.FieldCondition(key="f", match=m.MatchValue(value=field)))
    if mode == "all":
        must.append(m.FieldCondition(key="t", match=m.MatchText(text=" ".join(terms))))
    allowed: set[str] | None = None
    if where is not None:
        allowed = matching_ids(store, translate(where), where)
        if not allowed:
            return []
        if len(allowed) <= _MAX_IDS:
            must.append(m.FieldCondition(key="p", match=m.MatchAny(any=sorted(allowed))))
    query = m.TextQuery(text=" ".join(terms))
    qfilter = m.Filter(must=must) if must else None
    generations: dict[str, str | None] = {}  # document id -> its current write generation
    depth = max(4 * limit, 16)
    while True:
        rows = store._call(
            "text search",
            store._conn.client.query_points,
            store._text,
            query=query,
            using="t",
            query_filter=qfilter,
            limit=depth,
            with_payload=["p", "f", "pos", "g"],
        ).points
        _generations(store, [r.payload["p"] for r in rows if allowed is None or r.payload["p"] in allowed], generations)
        best: dict[str, Any] = {}
        for r in rows:
            p = r.payload["p"]
            # a row of another generation is a leftover of an interrupted write: not this document's text
            if p not in best and generations.get(p) == r.payload["g"] and (allowed is None or p in allowed):
                best[p] = r
        if len(best) >= limit or len(rows) < depth:
            break
        depth *= 4
    ranked = sorted(best.items(), key=lambda item: (-item[1].score, item[0]))[:limit]  # ties by id: stable on reopen
    docs = {r.payload["id"]: r.payload for r in store._retrieve([lay.point_id(p) for p, _ in ranked]) if r.payload}
    found = []
    for p, r in ranked:
        if p in docs:
            doc = store._rebuild(docs[p])
            path, pos = r.payload["f"], lay.pos_tuple(r.payload["pos"])
            found.append((doc, r, path, pos, store.nesting_of(path)))
    snippets = analyzer.snippets(text, [_text_at(doc, path, nesting, pos) for doc, _, path, pos, nesting in found])
    return [
        Hit(
            id=doc.id,
            score=float(r.score),
            doc=doc,
            match=match_at(doc, nesting, pos) if nesting else None,
            field=path,
            snippet=snippet,
        )
        for (doc, r, path, pos, nesting), snippet in zip(found, snippets, strict=True)
    ]


def _generations(store: QdrantStore[Any], ids: list[str], known: dict[str, str | None]) -> None:
    """Look up the write generation of documents not seen yet (None: the document is gone)."""
    need = list(dict.fromkeys(i for i in ids if i not in known))
    if need:
        records = store._retrieve([lay.point_id(i) for i in need], ["id", "_g"])
        found = {r.payload.get("id"): r.payload.get("_g") for r in records if r.payload}
        known.update({i: found.get(i) for i in need})


def _text_at(doc: Any, path: str, nesting: tuple[str, ...], pos: tuple[int, ...]) -> str:
    node = match_at(doc, nesting, pos) if nesting else doc
    rest = path[len(nesting[-1]) + 1 :] if nesting else path
    for part in rest.split("."):
        node = getattr(node, part, None)
    return node if isinstance(node, str) else ""
