"""BM25 full-text search on SQLite FTS5, shared by the embedded and in-memory backends.

One FTS row per (document, text field value), nested texts included; its rowid is
``doc_rowid << 20 | k`` so all rows of a document are one rowid range (deleting or
re-indexing a document never scans the table). Queries are built from the user's words, each
quoted, so punctuation or words like ``AND`` never become FTS syntax errors.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from polymodal.errors import ConfigError

__all__ = ["FTS_SHIFT", "FtsHit", "build_query", "create_fts", "delete_docs", "insert_texts", "search_fts"]

FTS_SHIFT = 20
MAX_TEXTS_PER_DOC = 1 << FTS_SHIFT
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class FtsHit:
    rid: int
    score: float
    path: str
    pos: tuple[int, ...]
    snippet: str


def create_fts(conn: sqlite3.Connection, table: str = "fts") -> None:
    conn.execute(
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING fts5("
        "text, field UNINDEXED, pos UNINDEXED, tokenize='porter unicode61 remove_diacritics 2')"
    )


def build_query(text: str, mode: str) -> str:
    """An FTS5 query from free text: quoted words joined by OR (``any``) or AND (``all``)."""
    words = _WORD.findall(text)
    if not words:
        raise ConfigError(f"no searchable words in {text!r}")
    joiner = " OR " if mode == "any" else " AND "
    return joiner.join('"' + w.replace('"', "") + '"' for w in words)


def insert_texts(
    conn: sqlite3.Connection, rows: Iterable[tuple[int, str, tuple[int, ...], str]], table: str = "fts"
) -> None:
    """Index ``(doc_rowid, path, pos, text)`` rows."""
    params = []
    counters: dict[int, int] = {}
    for rid, path, pos, text in rows:
        k = counters.get(rid, 0)
        if k >= MAX_TEXTS_PER_DOC:
            raise ConfigError(f"a document has more than {MAX_TEXTS_PER_DOC} text values; split it")
        counters[rid] = k + 1
        params.append(((rid << FTS_SHIFT) | k, text, path, ".".join(map(str, pos))))
    conn.executemany(f"INSERT INTO {table}(rowid, text, field, pos) VALUES (?, ?, ?, ?)", params)


def delete_docs(conn: sqlite3.Connection, rids: Sequence[int], table: str = "fts") -> None:
    conn.executemany(
        f"DELETE FROM {table} WHERE rowid BETWEEN ? AND ?",
        [(rid << FTS_SHIFT, ((rid + 1) << FTS_SHIFT) - 1) for rid in rids],
    )


def search_fts(
    conn: sqlite3.Connection,
    query: str,
    *,
    limit: int,
    field: str | None = None,
    allowed_sql: str | None = None,
    allowed_params: Sequence[object] = (),
    table: str = "fts",
) -> list[FtsHit]:
    """Best text row per document, best first, ``limit`` documents at most.

    ``allowed_sql`` is a SELECT of allowed document rowids (a filter), applied inside the
    query, so filtered searches still return ``limit`` documents whenever that many match.
    """
    where = [f"{table} MATCH ?"]
    params: list[object] = [query]
    if field is not None:
        where.append("field = ?")
        params.append(field)
    if allowed_sql is not None:
        where.append(f"(rowid >> {FTS_SHIFT}) IN ({allowed_sql})")
        params.extend(allowed_params)
    sql = (
        f"SELECT rowid, bm25({table}) AS s, field, pos, snippet({table}, 0, '[', ']', '…', 16) "
        f"FROM {table} WHERE {' AND '.join(where)} ORDER BY s LIMIT ?"
    )
    best: dict[int, FtsHit] = {}
    depth = limit * 4
    while True:
        rows = conn.execute(sql, [*params, depth]).fetchall()
        best.clear()
        for rowid, score, path, pos, snip in rows:
            rid = rowid >> FTS_SHIFT
            if rid not in best:
                positions = tuple(int(p) for p in pos.split(".")) if pos else ()
                best[rid] = FtsHit(rid, -float(score), path, positions, snip)
        if len(best) >= limit or len(rows) < depth:
            return list(best.values())[:limit]
        depth *= 4
