"""The SQL of vector and text search on one collection.

Vector search has two plans. ANN: ``ORDER BY vec <op> q LIMIT k`` on the field's HNSW index,
with the filter inside the same query (a per-row lookup of the document) and pgvector's
iterative index scan (``hnsw.iterative_scan = relaxed_order``, pgvector 0.8+) so a filter that
rejects most neighbours still yields ``k`` rows; results are re-sorted by exact distance.
Exact: every (matching) vector scored, top ``k`` by a sort the index cannot serve. The caller
falls back from ANN to exact whenever ANN returns fewer than ``k`` rows, so "``k`` hits
whenever ``k`` documents match" holds for any filter.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from polymodal.errors import ConfigError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ann",
    "ann_docs_sql",
    "ann_ids_sql",
    "ann_session",
    "ann_settings",
    "ann_sql",
    "ann_top",
    "candidates",
    "client_scores",
    "exact",
    "exact_sql",
    "index_only",
    "stats",
    "text_rows",
    "tsquery",
    "vector_text",
]

Row = tuple[int, str, float]  # (document rid, position of the vector, score)
_WORD = re.compile(r"\w+", re.UNICODE)
_HEADLINE = 'StartSel="[", StopSel="]", MaxWords=35, MinWords=15'


def vector_text(vec: np.ndarray) -> str:
    """pgvector's text form; float32 values printed in full round-trip exactly. (Queries and
    rows travel in the binary form, see ``codec.adapt``; this is for messages and tools.)"""
    return "[" + ",".join(map(repr, np.asarray(vec, dtype=np.float32).tolist())) + "]"


def _doc_filter(docs: str, where: str) -> str:
    return "" if where == "true" else f"WHERE v.rid IN (SELECT d.rid FROM {docs} d WHERE {where})"


def _scan_mode(iterative: bool | None, local: bool) -> str:
    """The ``hnsw.iterative_scan`` part of a ``set_config`` select: ``relaxed_order`` (keep
    scanning the graph until enough rows pass the filter), ``off`` (unfiltered searches: the
    iterative scan's bookkeeping costs about 0.25 ms a query at 100k x 512 for nothing), or
    nothing where pgvector predates it (None)."""
    if iterative is None:
        return ""
    return f", set_config('hnsw.iterative_scan', '{'relaxed_order' if iterative else 'off'}', {str(local).lower()})"


def ann_settings(conn: psycopg.Connection[Any], ef: int, iterative: bool | None) -> None:
    """pgvector's search options for this transaction, in one statement: ``ef_search``, the
    iterative scan (see :func:`_scan_mode`) and :func:`index_only`."""
    conn.execute(
        f"SELECT set_config('hnsw.ef_search', %s, true){_scan_mode(iterative, True)}, "
        "set_config('enable_seqscan', 'off', true)",
        [str(ef)],
    )


def ann_session(conn: psycopg.Connection[Any], ef: int, iterative: bool | None) -> None:
    """The same search options as :func:`ann_settings` (but ``enable_seqscan``) for the whole
    session, sent only when they change: for single-statement searches outside a transaction.
    They only steer HNSW scans, which set them locally anyway everywhere else."""
    from polymodal.store.pgvector.codec import SESSION

    if SESSION.get(conn) != (ef, iterative):
        conn.execute(f"SELECT set_config('hnsw.ef_search', %s, false){_scan_mode(iterative, False)}", [str(ef)])
        SESSION[conn] = (ef, iterative)


def stats(conn: psycopg.Connection[Any], table: str, index: str, cap: int) -> tuple[int, bool]:
    """Vectors in a field's table (as :func:`candidates` counts them) and whether its HNSW
    index exists. Without the index (after a bulk load) the planner's estimate may be stale,
    so the rows are counted, up to ``cap + 1``."""
    row = conn.execute(
        "SELECT c.reltuples, to_regclass(%s) IS NOT NULL FROM pg_class c WHERE c.oid = %s::regclass", [index, table]
    ).fetchone()
    has_index = bool(row is not None and row[1])
    if has_index and row is not None and row[0] is not None and row[0] >= 0:
        return int(row[0]), True
    counted = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) t", [cap + 1]).fetchone()
    return (int(counted[0]) if counted else 0), has_index


def index_only(conn: psycopg.Connection[Any], on: bool) -> None:
    """Make the planner use the HNSW index for an ANN query (it would rather scan a small
    table and sort it), or stop doing so for the exact fallback (until the transaction ends)."""
    conn.execute("SELECT set_config('enable_seqscan', %s, true)", ["off" if on else "on"])


def candidates(conn: psycopg.Connection[Any], table: str, cap: int) -> int:
    """Vectors in a field's table: the planner's estimate when it has one, else a count that
    stops past ``cap`` (only "more than cap" matters to the caller)."""
    row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table]).fetchone()
    if row is not None and row[0] is not None and row[0] >= 0:
        return int(row[0])
    counted = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT %s) t", [cap + 1]).fetchone()
    return int(counted[0]) if counted else 0


def ann(
    conn: psycopg.Connection[Any],
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
) -> list[Row]:
    """Up to ``limit`` nearest vectors by the HNSW index (search settings set by the caller)."""
    sql, params = ann_sql(table, docs, op, query, limit, where)
    return [(int(r), str(p), float(s)) for r, p, s in conn.execute(sql, params).fetchall()]


def ann_top(
    conn: psycopg.Connection[Any],
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
    nested: bool,
) -> list[Row] | None:
    """The ANN top ``limit`` documents, or None when ANN found fewer (then exact answers).

    Over sub-documents, the nearest ``4 * limit`` vectors are grouped by document (the first
    row of a document is its best); when they cover fewer than ``limit`` documents the search
    goes four times deeper, up to 10,000 vectors, before giving way to exact.
    """
    if not nested:
        rows = ann(conn, table, docs, op, query, limit, where)
        return rows if len(rows) >= limit else None
    depth = limit * 4
    while True:
        rows = ann(conn, table, docs, op, query, depth, where)
        best: dict[int, Row] = {}
        for row in rows:
            best.setdefault(row[0], row)
        if len(best) >= limit:
            return sorted(best.values(), key=lambda r: (-r[2], r[0]))[:limit]
        if len(rows) < depth or depth >= 10_000:
            return None
        depth *= 4


def _nearest(
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
    columns: str,
    *,
    dist: bool,
) -> tuple[str, list[Any]]:
    """``WITH c AS (...)``: the ``limit`` nearest rows of ``table`` by its HNSW index, the filter
    inside, with ``columns`` of each (``v.``) and their distance as ``dist`` when asked (which
    reads the vector again from the row: leave it out when the caller scores the vectors). The
    parameters hold the query last, and also first with ``dist``.

    ``limit`` is written into the text, not sent as a parameter: with a parameter PostgreSQL
    cannot cost a generic plan for the prepared statement (the LIMIT is unknown), so it plans
    every execution anew, about 0.3 ms of server time per search at 100k x 512."""
    sql, params = where
    filt = "" if sql == "true" else f"WHERE (SELECT {sql} FROM {docs} d WHERE d.rid = v.rid)"
    if dist:
        columns, params = f"{columns}, v.vec {op} %b AS dist", [query, *params]
    return (
        f"WITH c AS MATERIALIZED (SELECT {columns} FROM {table} v {filt} ORDER BY v.vec {op} %b LIMIT {int(limit)})",
        [*params, query],
    )


def ann_sql(
    table: str, docs: str, op: str, query: np.ndarray, limit: int, where: tuple[str, list[Any]]
) -> tuple[str, list[Any]]:
    cte, params = _nearest(table, docs, op, query, limit, where, "v.rid, v.pos", dist=True)
    return f"{cte} SELECT rid, pos, -dist FROM c ORDER BY dist, rid", params


def ann_ids_sql(
    table: str, docs: str, op: str, query: np.ndarray, limit: int, where: tuple[str, list[Any]]
) -> tuple[str, list[Any]]:
    """:func:`ann_docs_sql` with only the document ids: ``(id, score)`` best first."""
    cte, params = _nearest(table, docs, op, query, limit, where, "v.rid", dist=True)
    return f"{cte} SELECT d.id, -c.dist FROM c JOIN {docs} d ON d.rid = c.rid ORDER BY c.dist, c.rid", params


def ann_docs_sql(
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
    others: list[str],
) -> tuple[str, list[Any]]:
    """ANN over a field with one vector per document, joined with the documents: ``(rid,
    body, raw)`` in no particular order, then ``(positions, raws)`` arrays from each table of
    ``others`` (the document's other vector fields). One statement, so a search is one round
    trip; ``limit`` rows unless ANN found fewer (then the caller searches exactly).

    No distance is selected: the caller scores the raw vectors it receives anyway (see
    :func:`client_scores`), which spares the server reading each scored vector a second time
    out of TOAST storage (about 15 us a row at 512 dimensions)."""
    cte, params = _nearest(table, docs, op, query, limit, where, "v.rid, v.raw", dist=False)
    extra = "".join(
        f", (SELECT array_agg(o.pos ORDER BY o.pos) FROM {t} o WHERE o.rid = c.rid), "
        f"(SELECT array_agg(o.raw ORDER BY o.pos) FROM {t} o WHERE o.rid = c.rid)"
        for t in others
    )
    return f"{cte} SELECT c.rid, d.body, c.raw{extra} FROM c JOIN {docs} d ON d.rid = c.rid", params


def client_scores(raws: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """The scores the server's operators give (higher is better), from the raw float32 vectors
    as stored and the checked query (unit length for cosine), in float64: cosine scores the
    unit vector (a zero vector scores 0, as its stored zero "unit" vector does), ``ip`` the
    inner product, ``l2`` minus the distance."""
    x = raws.astype(np.float64)
    q = query.astype(np.float64)
    scores: np.ndarray
    if metric == "l2":
        scores = -np.sqrt(((x - q) ** 2).sum(axis=1))
    elif metric == "cosine":
        dots, norms = x @ q, np.sqrt((x * x).sum(axis=1))
        scores = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    else:
        scores = x @ q
    return scores


def exact(
    conn: psycopg.Connection[Any],
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
    *,
    nested: bool,
    aggregate: str,
) -> list[Row]:
    """The exact top ``limit`` documents: by their vector, or by their best (``max``) or mean
    sub-document vector, with the position of the best one."""
    sql, params = exact_sql(table, docs, op, query, limit, where, nested=nested, aggregate=aggregate)
    return [(int(r), str(p), float(s)) for r, p, s in conn.execute(sql, params).fetchall()]


def exact_sql(
    table: str,
    docs: str,
    op: str,
    query: np.ndarray,
    limit: int,
    where: tuple[str, list[Any]],
    *,
    nested: bool,
    aggregate: str,
) -> tuple[str, list[Any]]:
    sql, params = where
    filt = _doc_filter(docs, sql)
    if not nested:
        text = (
            f"SELECT v.rid, v.pos, -(v.vec {op} %b) AS score FROM {table} v {filt} ORDER BY score DESC, v.rid LIMIT %s"
        )
    elif aggregate == "max":
        text = (
            f"SELECT rid, pos, score FROM (SELECT DISTINCT ON (v.rid) v.rid, v.pos, -(v.vec {op} %b) AS score "
            f"FROM {table} v {filt} ORDER BY v.rid, score DESC, v.pos) t ORDER BY score DESC, rid LIMIT %s"
        )
    else:
        text = (
            "SELECT rid, (array_agg(pos ORDER BY dist, pos))[1], -avg(dist) AS score FROM "
            f"(SELECT v.rid, v.pos, v.vec {op} %b AS dist FROM {table} v {filt}) t "
            "GROUP BY rid ORDER BY score DESC, rid LIMIT %s"
        )
    return text, [query, *params, limit]


def tsquery(text: str, mode: str) -> str:
    """A ``to_tsquery`` string from free text: each word quoted (so nothing the user types is
    query syntax), joined by ``|`` (any) or ``&`` (all)."""
    words = _WORD.findall(text)
    if not words:
        raise ConfigError(f"no searchable words in {text!r}")
    return (" | " if mode == "any" else " & ").join(f"'{w}'" for w in words)


def text_rows(
    conn: psycopg.Connection[Any],
    texts: str,
    docs: str,
    config: str,
    query: str,
    limit: int,
    field: str | None,
    where: tuple[str, list[Any]],
) -> list[tuple[int, str, str, float, str]]:
    """Best text value per document, best first: (rid, path, pos, score, snippet).

    The score is ``ts_rank_cd`` with length normalisation (cover density: how close together
    the query words are); the snippet marks query words with ``[brackets]``.
    """
    sql, params = where
    conds = [f"t.tsv @@ to_tsquery('{config}', %s)"]
    args: list[Any] = [query, query]
    if field is not None:
        conds.append("t.path = %s")
        args.append(field)
    if sql != "true":
        conds.append(f"t.rid IN (SELECT d.rid FROM {docs} d WHERE {sql})")
        args.extend(params)
    args += [limit, query, _HEADLINE]
    rows = conn.execute(
        "WITH m AS (SELECT DISTINCT ON (t.rid) t.rid, t.path, t.pos, t.body, "
        f"ts_rank_cd(t.tsv, to_tsquery('{config}', %s), 1) AS score FROM {texts} t "
        f"WHERE {' AND '.join(conds)} ORDER BY t.rid, score DESC, t.path, t.pos), "
        "top AS (SELECT * FROM m ORDER BY score DESC, rid LIMIT %s) "
        f"SELECT rid, path, pos, score, ts_headline('{config}', body, to_tsquery('{config}', %s), %s) "
        "FROM top ORDER BY score DESC, rid",
        args,
    ).fetchall()
    return [(int(r), str(p), str(pos), float(s), str(h)) for r, p, pos, s, h in rows]
