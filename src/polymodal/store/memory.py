"""The in-memory backend: the reference implementation of the Store contract.

Everything is the plainest correct thing: documents in a dict, exact vector search with
numpy, filters evaluated in Python by :func:`polymodal.store.filters.matches`. Other backends
are checked against it. Text search uses an in-memory SQLite FTS5 index, so BM25 and
tokenisation are identical to the embedded store's. Nothing survives the process.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from polymodal.doc.doclist import DocList
from polymodal.store import filters as flt
from polymodal.store import fts
from polymodal.store.base import Aggregate, Capabilities, Hit, Store, StoreConfig, T, VectorField, match_at
from polymodal.store.flatten import flatten

__all__ = ["MemoryStore"]


class MemoryStore(Store[T]):
    """Documents in a Python dict; exact search. ``polymodal.open("memory://", schema=...)``."""

    capabilities = Capabilities(filter=True, text=True, hybrid=False, nested=True)
    backend = "memory"

    def __init__(self, doc_type: type[T], config: StoreConfig | None = None) -> None:
        super().__init__(doc_type, config or StoreConfig())
        self._docs: dict[str, T] = {}
        self._rid: dict[str, int] = {}
        self._by_rid: dict[int, str] = {}
        self._next_rid = 1
        self._settings: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._fts = sqlite3.connect(":memory:", check_same_thread=False)
        fts.create_fts(self._fts)
        self._matrices: dict[str, tuple[np.ndarray, list[tuple[str, tuple[int, ...]]]]] = {}

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        with self._lock:
            rows: list[tuple[int, str, tuple[int, ...], str]] = []
            for doc in docs:
                copy = doc.model_copy(deep=True)  # later changes to the caller's doc must not leak in
                rid = self._rid.get(doc.id)
                if rid is None:
                    rid = self._rid[doc.id] = self._next_rid
                    self._by_rid[rid] = doc.id
                    self._next_rid += 1
                else:
                    fts.delete_docs(self._fts, [rid])
                self._docs[doc.id] = copy
                rows.extend((rid, path, pos, text) for path, pos, text in flatten(copy, self.text_fields).texts)
            fts.insert_texts(self._fts, rows)
            self._matrices.clear()

    def _delete(self, ids: list[str]) -> int:
        with self._lock:
            gone = [i for i in ids if i in self._docs]
            for i in gone:
                del self._docs[i]
                rid = self._rid.pop(i)
                del self._by_rid[rid]
                fts.delete_docs(self._fts, [rid])
            self._matrices.clear()
            return len(gone)

    # -- reads ---------------------------------------------------------------------------------
    def _get(self, ids: list[str]) -> list[T | None]:
        with self._lock:
            return [None if (d := self._docs.get(i)) is None else d.model_copy(deep=True) for i in ids]

    def _count(self, where: flt.Filter | None) -> int:
        with self._lock:
            if where is None:
                return len(self._docs)
            return sum(1 for d in self._docs.values() if flt.matches(where, d))

    def _iter(self, batch_size: int) -> Iterator[list[T]]:
        with self._lock:
            ids = list(self._docs)
        for start in range(0, len(ids), batch_size):
            found = self._get(ids[start : start + batch_size])
            yield [d for d in found if d is not None]

    def _vectors(self, vf: VectorField) -> tuple[np.ndarray, list[tuple[str, tuple[int, ...]]]]:
        """All vectors of one field as a matrix (normalised for cosine) with (doc id, pos) rows."""
        cached = self._matrices.get(vf.path)
        if cached is not None:
            return cached
        rows: list[np.ndarray] = []
        owners: list[tuple[str, tuple[int, ...]]] = []
        for doc in self._docs.values():
            for path, pos, vec in flatten(doc).vectors:
                if path == vf.path:
                    rows.append(vec)
                    owners.append((doc.id, pos))
        dim = self._dim_of(vf) or 0
        matrix = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
        if vf.metric == "cosine" and len(matrix):
            norms = np.linalg.norm(matrix.astype(np.float64), axis=1, keepdims=True)
            matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
        self._matrices[vf.path] = (matrix, owners)
        return matrix, owners

    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        with self._lock:
            matrix, _ = self._vectors(field)
            if len(matrix) > n:
                matrix = matrix[np.random.default_rng(seed).choice(len(matrix), n, replace=False)]
            return matrix.copy()

    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]:
        with self._lock:
            matrix, owners = self._vectors(field)
            allowed = None if where is None else {i for i, d in self._docs.items() if flt.matches(where, d)}
            keep = np.array([allowed is None or o[0] in allowed for o in owners], dtype=bool)
            out = []
            for q in queries:
                scores = _scores(matrix, q, field.metric)
                per_doc: dict[str, list[tuple[float, tuple[int, ...]]]] = {}
                for j in np.flatnonzero(keep):
                    per_doc.setdefault(owners[j][0], []).append((float(scores[j]), owners[j][1]))
                ranked = []
                for doc_id, items in per_doc.items():
                    best_score, best_pos = max(items, key=lambda t: t[0])
                    score = best_score if aggregate == "max" else float(np.mean([s for s, _ in items]))
                    ranked.append((score, doc_id, best_pos))
                ranked.sort(key=lambda t: (-t[0], t[1]))
                hits = []
                for score, doc_id, pos in ranked[:limit]:
                    doc = self._docs[doc_id].model_copy(deep=True)
                    match = match_at(doc, field.nesting, pos) if field.nested else None
                    hits.append(Hit(id=doc_id, score=score, doc=doc, match=match, field=field.path))
                out.append(hits)
            return out

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        with self._lock:
            allowed_sql: str | None = None
            params: tuple[str, ...] = ()
            if where is not None:
                rids = [self._rid[i] for i, d in self._docs.items() if flt.matches(where, d)]
                allowed_sql = "SELECT value FROM json_each(?)"
                params = ("[" + ",".join(map(str, rids)) + "]",)
            found = fts.search_fts(
                self._fts,
                fts.build_query(text, mode),
                limit=limit,
                field=field,
                allowed_sql=allowed_sql,
                allowed_params=params,
            )
            hits = []
            for h in found:
                doc = self._docs[self._by_rid[h.rid]].model_copy(deep=True)
                nesting = self.nesting_of(h.path)
                match = match_at(doc, nesting, h.pos) if nesting else None
                hits.append(Hit(id=doc.id, score=h.score, doc=doc, match=match, field=h.path, snippet=h.snippet))
            return hits

    # -- settings and lifecycle ----------------------------------------------------------------
    def _get_setting(self, key: str) -> Any:
        return self._settings.get(key)

    def _set_setting(self, key: str, value: Any) -> None:
        self._settings[key] = value

    def _close(self) -> None:
        self._fts.close()


def _scores(matrix: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "l2":
        return np.asarray(-np.linalg.norm(matrix - q, axis=1), dtype=np.float64)
    return np.asarray(matrix @ q, dtype=np.float64)
