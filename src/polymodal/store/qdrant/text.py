"""Words for Qdrant's BM25, made by the same SQLite FTS5 tokenizer the other backends index with.

Qdrant ranks text by BM25 over a text index (a ``TextQuery``), but its tokenizers differ from
SQLite's ``porter unicode61 remove_diacritics 2`` and local mode has no stemmer at all. So the
store stems on the client: each text row is stored as its FTS5 terms joined by spaces, which
Qdrant's plain word tokenizer splits back into exactly those terms; queries are stemmed the same
way. Snippets come from FTS5 too, so ``[term]`` marking matches the embedded store's.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Sequence

from polymodal.errors import ConfigError
from polymodal.store import fts

__all__ = ["Analyzer"]

_WORD = re.compile(r"\w+", re.UNICODE)


class Analyzer:
    """Porter-stemmed unicode61 terms and FTS5 snippets, from a private in-memory SQLite."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        fts.create_fts(self._conn, "rows")
        self._conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(rows, 'instance')")
        self._lock = threading.Lock()

    def terms(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's terms, in order (duplicates kept: BM25 counts them)."""
        out: list[list[str]] = [[] for _ in texts]
        if not texts:
            return out
        with self._lock:
            try:
                self._conn.executemany("INSERT INTO rows(rowid, text) VALUES (?, ?)", enumerate(texts, 1))
                rows = self._conn.execute("SELECT doc, term FROM terms WHERE col = 'text' ORDER BY doc, offset")
                for doc, term in rows:
                    out[doc - 1].append(term)
            finally:
                self._conn.execute("DELETE FROM rows")
        return out

    def query_terms(self, text: str) -> list[str]:
        """The distinct terms of a query.

        Raises:
            ConfigError: the text has no searchable words.
        """
        fts.build_query(text, "any")  # the same check, and message, as the other backends
        words = " ".join(_WORD.findall(text))
        terms = list(dict.fromkeys(self.terms([words])[0]))
        if not terms:
            raise ConfigError(f"no searchable words in {text!r}")
        return terms

    def snippets(self, query: str, texts: Sequence[str]) -> list[str]:
        """FTS5 snippets of ``texts`` with the words of ``query`` marked ``[like this]``."""
        found: dict[int, str] = {}
        if texts:
            with self._lock:
                try:
                    self._conn.executemany("INSERT INTO rows(rowid, text) VALUES (?, ?)", enumerate(texts, 1))
                    found = dict(
                        self._conn.execute(
                            "SELECT rowid, snippet(rows, 0, '[', ']', '…', 16) FROM rows WHERE rows MATCH ?",
                            (fts.build_query(query, "any"),),
                        ).fetchall()
                    )
                finally:
                    self._conn.execute("DELETE FROM rows")
        return [found.get(i, text[:120]) for i, text in enumerate(texts, 1)]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
