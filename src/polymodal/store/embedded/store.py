"""The embedded store: SQLite (WAL) for documents, filters and BM25, hnswlib for vectors.

Durability: an ``add`` is one SQLite transaction (documents, vectors, text rows and change-log
entries together); when it returns, the data survives ``kill -9``. Vector indexes live in
memory, are updated after each commit, are saved at checkpoints, and on open are caught up
from the change log, so a crash between a commit and a checkpoint loses nothing.

Checkpoint files carry their size and CRC in the manifest and get fresh names each time; a
checkpoint that is damaged, missing, or ahead of the database is ignored and the index rebuilt
from the database, which stays the only source of truth.

Concurrency: each read call (get, search, text search, one batch of iteration) runs in one
read snapshot (WAL), in which vector indexes are first caught up; writers from any process
take a file lock per write, so a second writer waits (up to ``lock_timeout``) and never
interleaves. Opening an existing store takes no lock, so it never waits for a writer.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from polymodal.doc.doclist import DocList
from polymodal.doc.schema import schema_of
from polymodal.errors import BackendError, ConfigError, SchemaError
from polymodal.store import filters as flt
from polymodal.store import fts
from polymodal.store.base import Aggregate, Capabilities, Hit, Store, T, VectorField, match_at, ranked_hits
from polymodal.store.embedded import db
from polymodal.store.embedded.ann import AnnIndex
from polymodal.store.embedded.indexes import VectorIndexes, drop_manifest_ahead
from polymodal.store.embedded.opening import _check_new, open_or_create
from polymodal.store.embedded.rows import _body_json, _plain, _sql_str, free_vectors, write_vectors
from polymodal.store.embedded.rows import _select_in as _select_in  # re-exported: benchmarks use it
from polymodal.store.embedded.search import allowed_slots, rank
from polymodal.store.embedded.sqlfilter import _json_path, to_sql
from polymodal.store.flatten import flatten, set_at

__all__ = ["EmbeddedStore"]


class EmbeddedStore(Store[T]):
    """A store in a directory: ``polymodal.open("path/to/dir", schema=MyDoc)``."""

    capabilities = Capabilities(filter=True, text=True, hybrid=False, nested=True)
    backend = "embedded"

    def __init__(
        self,
        path: str | Path,
        doc_type: type[T] | None = None,
        *,
        lock_timeout: float = 60.0,
        **options: Any,
    ) -> None:
        self.path = Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} is not a directory; a store is a directory")
        db_path = self.path / db.DB_NAME
        if not db_path.exists():
            if doc_type is None:
                raise ConfigError(f"no polymodal store at {self.path}; pass schema=MyDoc to create one there")
            if self.path.exists() and any(self.path.iterdir()):
                raise ConfigError(f"{self.path} is a non-empty directory that is not a polymodal store")
            _check_new(doc_type, options)  # bad options leave no directory behind
            self.path.mkdir(parents=True, exist_ok=True)
        self._write_lock = db.WriteLock(self.path, timeout=lock_timeout)
        self._conn = db.connect(db_path, durability=options.get("durability", "normal"))
        try:
            doc_type, config = open_or_create(self._conn, self.path, self._write_lock, doc_type, options)
            super().__init__(doc_type, config)
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if config.durability == 'full' else 'NORMAL'}")
            self._field_ids: dict[str, int] = db.get_meta(self._conn, "fields")
            drop_manifest_ahead(self._conn, self.path, self._write_lock)
        except BaseException:
            self._conn.close()
            raise
        self._field_paths = {fid: path for path, fid in self._field_ids.items()}
        self._wal_path = f"{db_path}-wal"
        self._lock = threading.RLock()
        self._ann = VectorIndexes(
            self._conn, self.path, config, self.vector_fields, self._field_paths, self._dim_of, self._snapshot
        )

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        flats = [flatten(d, self.text_fields) for d in docs]
        with self._lock, self._write_lock:
            conn = self._conn
            applied_before = db.last_seq(conn)
            with db.transaction(conn):
                ids = [d.id for d in docs]
                existing = dict(_select_in(conn, "SELECT id, rid FROM docs WHERE id IN ({})", ids))
                freed = free_vectors(conn, list(existing.values()))
                fts.delete_docs(conn, list(existing.values()))
                next_rid = (conn.execute("SELECT COALESCE(MAX(rid), 0) FROM docs").fetchone()[0] or 0) + 1
                rids, inserts, updates = [], [], []
                for doc, flat in zip(docs, flats, strict=True):
                    body = _body_json(flat.body)
                    rid = existing.get(doc.id)
                    if rid is None:
                        rid = next_rid
                        next_rid += 1
                        inserts.append((rid, doc.id, body))
                    else:
                        updates.append((body, rid))
                    rids.append(rid)
                conn.executemany("INSERT INTO docs(rid, id, body) VALUES (?, ?, ?)", inserts)
                conn.executemany("UPDATE docs SET body = ? WHERE rid = ?", updates)
                written = write_vectors(conn, self._field_ids, rids, flats)
                texts = ((rid, p, pos, t) for rid, f in zip(rids, flats, strict=True) for p, pos, t in f.texts)
                fts.insert_texts(conn, texts)
                changed = [k for k, _ in freed] + [w[0] for w in written]
                conn.executemany("INSERT INTO changes(key) VALUES (?)", [(k,) for k in changed])
                seq = db.last_seq(conn)
            self._ann.dirty = True
            self._ann.apply_local(freed, written, applied_before, seq, dict(zip(rids, ids, strict=True)))
            self._ann.maybe_checkpoint(seq)

    def _delete(self, ids: list[str]) -> int:
        with self._lock, self._write_lock:
            applied_before = db.last_seq(self._conn)
            with db.transaction(self._conn):
                rows = _select_in(self._conn, "SELECT rid FROM docs WHERE id IN ({})", ids)
                rids = [r for (r,) in rows]
                freed = free_vectors(self._conn, rids)
                fts.delete_docs(self._conn, rids)
                self._conn.executemany("DELETE FROM docs WHERE rid = ?", [(r,) for r in rids])
                self._conn.executemany("INSERT INTO changes(key) VALUES (?)", [(k,) for k, _ in freed])
                seq = db.last_seq(self._conn)
            if rids:
                self._ann.dirty = True
            self._ann.apply_local(freed, [], applied_before, seq)
            return len(rids)

    # -- read snapshots; vector indexes (kept by VectorIndexes, in indexes.py) -----------------
    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction (reentrant), so that several SELECTs see one committed state.

        Without it a reader could take a document's body from one version and its vectors from
        the next, score a slot and then load whichever document got that row id since, or
        replay a change log that a checkpoint in another process trimmed in between.
        """
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _index(self, fid: int) -> AnnIndex:
        """The field's index, caught up with this read snapshot (see :meth:`VectorIndexes.index`)."""
        return self._ann.index(fid)

    def checkpoint(self) -> None:
        """Save every vector index at the current change-log position and trim the log, so the
        next open loads instead of replaying. Done automatically on close after writes."""
        self._check_open()
        with self._lock, self._write_lock:
            self._ann.checkpoint()

    def _set_field_dim(self, path: str, dim: int) -> None:
        """Fix a field's dimension once, under the write lock, so two processes adding the
        first vectors of different sizes cannot both win."""
        with self._lock, self._write_lock, db.transaction(self._conn):
            stored = db.get_meta(self._conn, f"setting:dim:{path}")
            if stored is not None and int(stored) != dim:
                raise SchemaError(f"{path}: expected dimension {stored} (the store's), got {dim}", field=path)
            db.set_meta(self._conn, f"setting:dim:{path}", dim)

    # -- reads ---------------------------------------------------------------------------------
    def _load(
        self, rids: Sequence[int], vectors: tuple[VectorField, dict[int, np.ndarray]] | None = None
    ) -> dict[int, T]:
        """Documents by rowid, with their vectors put back: read from the database, or given
        (``(field, {rid: vector})``, when that field is the documents' only vector)."""
        if not rids:
            return {}
        rows = _select_in(self._conn, "SELECT rid, body FROM docs WHERE rid IN ({})", list(rids))
        return self._documents(rows, vectors)

    def _documents(
        self, rows: list[tuple[int, str]], vectors: tuple[VectorField, dict[int, np.ndarray]] | None = None
    ) -> dict[int, T]:
        """:meth:`_load` for ``(rid, body)`` rows already read."""
        bodies = {rid: orjson.loads(body) for rid, body in rows}
        if vectors is not None:
            vf, given = vectors
            for rid, body in bodies.items():
                set_at(body, vf.path, vf.nesting, (), given[rid])
        elif bodies:
            for rid, key, pos, vec in _select_in(
                self._conn, "SELECT rid, key, pos, vec FROM vectors WHERE rid IN ({})", list(bodies)
            ):
                path = self._field_paths[key >> db.FIELD_SHIFT]
                positions = tuple(int(p) for p in pos.split(".")) if pos else ()
                vector = np.frombuffer(vec, dtype="<f4").copy()
                set_at(bodies[rid], path, self.vector_fields[path].nesting, positions, vector)
        return dict(zip(bodies, self.doc_type.from_dicts(list(bodies.values())), strict=True))  # type: ignore[arg-type]

    def _get(self, ids: list[str]) -> list[T | None]:
        with self._lock, self._snapshot():
            found = dict(_select_in(self._conn, "SELECT id, rid FROM docs WHERE id IN ({})", ids))
            docs = self._load(list(found.values()))
            return [docs.get(found[i]) if i in found else None for i in ids]

    def _count(self, where: flt.Filter | None) -> int:
        sql, params = to_sql(where, self.doc_type)
        with self._lock:
            # sqlfilter builds the condition from schema paths and placeholders; values are params
            return int(self._conn.execute(f"SELECT COUNT(*) FROM docs WHERE {sql}", params).fetchone()[0])

    def _iter(self, batch_size: int) -> Iterator[list[T]]:
        last = 0
        while True:
            with self._lock, self._snapshot():
                rids = [
                    r
                    for (r,) in self._conn.execute(
                        "SELECT rid FROM docs WHERE rid > ? ORDER BY rid LIMIT ?", (last, batch_size)
                    )
                ]
                if not rids:
                    return
                docs = self._load(rids)
            last = rids[-1]
            yield [docs[r] for r in rids if r in docs]

    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]:
        fid = self._field_ids[field.path]
        if where is None and not field.nested and len(self.vector_fields) == 1:
            with self._lock:
                fast = self._unfiltered_search(fid, field, queries, limit, exact)
            if fast is not None:
                return fast
        with self._lock, self._snapshot():
            index = self._index(fid)
            allowed = None
            if where is not None:
                allowed = allowed_slots(self._conn, self.doc_type, fid, where, index.capacity)
            n_allowed = index.count if allowed is None else int(np.count_nonzero(allowed & index.valid))
            if field.nested or len(self.vector_fields) > 1:
                ranking = [
                    rank(index, q, limit, allowed, n_allowed, field.nested, aggregate, exact, self.config)
                    for q in queries
                ]
                loaded = self._load(sorted({rid for ranked in ranking for rid, _, _ in ranked}))
                return [ranked_hits(ranked, loaded, field) for ranked in ranking]
            results, vectors = self._rank_top_level(index, queries, limit, allowed, exact)
            docs = self._load(sorted(vectors), (field, vectors))
        return [ranked_hits(ranked, docs, field) for ranked in results]

    def _rank_top_level(
        self, index: AnnIndex, queries: np.ndarray, limit: int, allowed: np.ndarray | None, exact: bool | None
    ) -> tuple[list[list[tuple[int, float, str]]], dict[int, np.ndarray]]:
        """Rankings over the documents' only vector field, with each hit's vector: it is in the
        index's matrix, exactly as stored, so only the bodies need reading."""
        cfg = self.config
        results: list[list[tuple[int, float, str]]] = []
        vectors: dict[int, np.ndarray] = {}
        for q in queries:
            slots, scores = index.search(
                q[None], limit, allowed=allowed, exact=exact, ef=cfg.ef_search, exact_threshold=cfg.exact_threshold
            )[0]
            rids = index.owner[slots].tolist()
            vectors.update(zip(rids, index.matrix[slots], strict=True))  # a copy: rows of their own
            results.append([(rid, score, "") for rid, score in zip(rids, scores.tolist(), strict=True)])
        return results, vectors

    def _unfiltered_search(
        self, fid: int, field: VectorField, queries: np.ndarray, limit: int, exact: bool | None
    ) -> list[list[Hit]] | None:
        """An unfiltered search over the only vector field without a read transaction: the
        index is current (:meth:`_current_index`), the bodies come in one SELECT, and a second
        look after it confirms nobody committed in between, so the bodies are the ones the
        index ranked. None when someone did: the caller redoes it in a snapshot."""
        index = self._current_index(fid)
        results, vectors = self._rank_top_level(index, queries, limit, None, exact)
        rows = _select_in(self._conn, "SELECT rid, body FROM docs WHERE rid IN ({})", sorted(vectors))
        version, stamp = self._ann.fresh[fid]
        moved = stamp is None or db.wal_stamp(self._wal_path) != stamp
        if moved and self._conn.execute("PRAGMA data_version").fetchone()[0] != version:
            return None
        docs = self._documents(rows, (field, vectors))
        return [ranked_hits(ranked, docs, field) for ranked in results]

    def search_ids(
        self,
        query: Any,
        *,
        field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        aggregate: Aggregate = "max",
        exact: bool | None = None,
    ) -> list[tuple[str, float]]:
        # The hot path, inlined: one float32 query, no filter, a top-level field (every other
        # case, and every error, goes through the contract's checks in Store.search_ids).
        try:
            if where is None and not self._closed and limit > 0 and aggregate in ("max", "mean"):
                checked = self._one_query(query, field)
                if checked is not None and not checked[0].nested:
                    vf, row = checked
                    with self._lock:
                        index = self._current_index(self._field_ids[vf.path])
                        cfg = self.config
                        ef, threshold = cfg.ef_search, cfg.exact_threshold
                        top = index.top_ids(row[0], limit, exact=exact, ef=ef, exact_threshold=threshold)
                    if top is not None:
                        return top
            return super().search_ids(query, field=field, limit=limit, where=where, aggregate=aggregate, exact=exact)
        except sqlite3.Error as exc:
            raise BackendError(f"embedded store {self.path}: {exc}", backend="embedded") from exc

    def _vector_search_ids(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[tuple[str, float]]]:
        fid = self._field_ids[field.path]
        with self._lock:
            if where is None and not field.nested:
                # The common case reads nothing from the database: the index is current (no
                # other connection committed since it was caught up) and knows each slot's id.
                index = self._current_index(fid)
                ef, threshold = self.config.ef_search, self.config.exact_threshold
                out = []
                for q in queries:
                    top = index.top_ids(q, limit, exact=exact, ef=ef, exact_threshold=threshold)
                    if top is None:
                        break
                    out.append(top)
                else:
                    return out
            with self._snapshot():
                index = self._index(fid)
                allowed = None
                if where is not None:
                    allowed = allowed_slots(self._conn, self.doc_type, fid, where, index.capacity)
                n_allowed = index.count if allowed is None else int(np.count_nonzero(allowed & index.valid))
                results = [
                    rank(index, q, limit, allowed, n_allowed, field.nested, aggregate, exact, self.config)
                    for q in queries
                ]
                need = sorted({rid for ranked in results for rid, _, _ in ranked})
                id_of = dict(_select_in(self._conn, "SELECT rid, id FROM docs WHERE rid IN ({})", need))
        return [[(id_of[rid], score) for rid, score, _ in ranked if rid in id_of] for ranked in results]

    def _current_index(self, fid: int) -> AnnIndex:
        """The field's index, current with the database (caller holds ``_lock``).

        When no other connection committed since the index was last caught up, that is known
        without a read transaction: from the ``-wal`` file's stamp (one ``stat``) while the
        file has settled, else from ``PRAGMA data_version``. Both are read before any catch-up,
        so a commit in between shows as a change next time.
        """
        ann = self._ann
        known = ann.fresh.get(fid)
        stamp = db.wal_stamp(self._wal_path)
        index = ann._indexes.get(fid)
        if known is not None and index is not None and stamp is not None and stamp == known[1]:
            return index
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if known is not None and index is not None and version == known[0]:
            ann.fresh[fid] = (version, stamp)
            return index
        with self._snapshot():
            index = self._index(fid)
        ann.fresh[fid] = (version, stamp)
        return index

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        allowed_sql: str | None = None
        params: list[Any] = []
        if where is not None:
            sql, params = to_sql(where, self.doc_type)
            allowed_sql = f"SELECT rid FROM docs WHERE {sql}"
        with self._lock, self._snapshot():
            found = fts.search_fts(
                self._conn,
                fts.build_query(text, mode),
                limit=limit,
                field=field,
                allowed_sql=allowed_sql,
                allowed_params=params,
            )
            docs = self._load([h.rid for h in found])
        hits = []
        for h in found:
            doc = docs.get(h.rid)
            if doc is None:
                continue
            nesting = self.nesting_of(h.path)
            match = match_at(doc, nesting, h.pos) if nesting else None
            hits.append(Hit(id=doc.id, score=h.score, doc=doc, match=match, field=h.path, snippet=h.snippet))
        return hits

    # -- settings and lifecycle ----------------------------------------------------------------
    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        """Straight from the field's in-memory matrix (made unit length for cosine)."""
        fid = self._field_ids[field.path]
        if self._dim_of(field) is None:
            return np.zeros((0, 0), np.float32)
        with self._lock:
            index = self._index(fid)
            live = np.flatnonzero(index.valid)
            if len(live) > n:
                live = np.sort(np.random.default_rng(seed).choice(live, n, replace=False))
            return index.unit(live)

    def _scan(self, fields: list[str], where: flt.Filter | None) -> Iterator[dict[str, Any]]:
        """Plain top-level fields read with json_extract, without loading documents."""
        plain = all(schema_of(self.doc_type)[f].kind in ("scalar", "url") for f in fields if f != "id")
        if not plain:
            yield from super()._scan(fields, where)
            return
        sql, params = to_sql(where, self.doc_type)
        kinds = {f: schema_of(self.doc_type)[f].scalar for f in fields}
        cols = ", ".join("id" if f == "id" else f"json_extract(body, {_sql_str(_json_path([f]))})" for f in fields)
        last = 0
        while True:
            with self._lock, self._snapshot():
                rows = self._conn.execute(
                    f"SELECT rid, {cols} FROM docs WHERE rid > ? AND {sql} ORDER BY rid LIMIT 1000", [last, *params]
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield {f: _plain(kinds.get(f), v) for f, v in zip(fields, row[1:], strict=True)}

    def _get_setting(self, key: str) -> Any:
        with self._lock:
            return db.get_meta(self._conn, f"setting:{key}")

    def _set_setting(self, key: str, value: Any) -> None:
        with self._lock, self._write_lock, db.transaction(self._conn):
            db.set_meta(self._conn, f"setting:{key}", value)

    def _close(self) -> None:
        with self._lock:
            try:
                if self._ann.dirty:
                    with self._write_lock:
                        self._ann.checkpoint()
            finally:
                self._conn.close()

    def size_on_disk(self) -> int:
        """Bytes used by the store directory (database, log and vector index files)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def _wrap_driver_errors(fn: Any) -> Any:
    """SQLite's own errors leave a store method as BackendError naming the store (DESIGN:
    driver errors are wrapped with context and cause); polymodal errors pass through."""

    @functools.wraps(fn)
    def wrapper(self: EmbeddedStore[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise BackendError(f"embedded store {self.path}: {exc}", backend="embedded") from exc

    return wrapper


def _wrap_iter(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(self: EmbeddedStore[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            yield from fn(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise BackendError(f"embedded store {self.path}: {exc}", backend="embedded") from exc

    return wrapper


for _name in (  # search_ids catches them itself: a wrapper costs its hot path a microsecond
    "_add",
    "_delete",
    "_get",
    "_count",
    "_vector_search",
    "_vector_search_ids",
    "_text_search",
    "_get_setting",
    "_set_setting",
    "_sample_vectors",
    "checkpoint",
):
    setattr(EmbeddedStore, _name, _wrap_driver_errors(getattr(EmbeddedStore, _name)))
for _name in ("_iter", "_scan"):
    setattr(EmbeddedStore, _name, _wrap_iter(getattr(EmbeddedStore, _name)))
