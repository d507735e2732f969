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
import json
import os
import secrets
import sqlite3
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.doc.schema import DocSchema, schema_of
from polymodal.errors import BackendError, ConfigError, SchemaError
from polymodal.store import filters as flt
from polymodal.store import fts
from polymodal.store.base import Aggregate, Capabilities, Hit, Store, StoreConfig, T, VectorField, match_at
from polymodal.store.embedded import db
from polymodal.store.embedded.ann import AnnIndex
from polymodal.store.embedded.sqlfilter import _json_path, indexed_fields, to_sql
from polymodal.store.flatten import flatten, set_at

__all__ = ["EmbeddedStore"]

_MANIFEST = "manifest.json"


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
            doc_type, config = self._open_or_create(doc_type, options)
            super().__init__(doc_type, config)
            self._conn.execute(f"PRAGMA synchronous = {'FULL' if config.durability == 'full' else 'NORMAL'}")
            self._field_ids: dict[str, int] = db.get_meta(self._conn, "fields")
            self._drop_manifest_ahead()
        except BaseException:
            self._conn.close()
            raise
        self._field_paths = {fid: path for path, fid in self._field_ids.items()}
        self._lock = threading.RLock()
        self._indexes: dict[int, AnnIndex] = {}
        self._applied: dict[int, int] = {}
        self._dirty = False

    def _open_or_create(self, doc_type: type[T] | None, options: dict[str, Any]) -> tuple[type[T], StoreConfig]:
        """Open a complete store without the write lock (so opening never waits for a writer);
        create one, or finish one whose creation died, under it."""
        if _is_complete(self._conn):
            return self._open_existing(doc_type, options)
        with self._write_lock:
            if _is_complete(self._conn):  # another process created it meanwhile
                return self._open_existing(doc_type, options)
            if doc_type is None:  # a creation that died before its first commit
                raise ConfigError(f"the store at {self.path} was never completed; pass schema= to create it")
            foreign = _foreign_tables(self._conn)
            if foreign:
                raise ConfigError(
                    f"{self.path / db.DB_NAME} is a database of another application (tables {foreign}), "
                    "not a polymodal store"
                )
            return self._create(doc_type, options)

    def _drop_manifest_ahead(self) -> None:
        """Remove a vector checkpoint that is newer than the database.

        A checkpoint is written only after the changes it holds are committed, so one ahead of
        the database means commits were lost (a power cut under ``durability="normal"``, a
        restored backup): replaying the log from it would skip the new changes that reuse those
        sequence numbers. The manifest is read before the sequence number, so a checkpoint
        made concurrently by another process is never mistaken for one.
        """
        seq = self._manifest().get("seq")
        if seq is not None and seq > db.last_seq(self._conn):
            with self._write_lock, contextlib.suppress(FileNotFoundError):
                if self._manifest().get("seq") == seq:
                    (self.path / "ann" / _MANIFEST).unlink()

    # -- creation and reopening ----------------------------------------------------------------
    def _create(self, doc_type: type[T] | None, options: dict[str, Any]) -> tuple[type[T], StoreConfig]:
        assert doc_type is not None
        config = _config(options)
        schema = schema_of(doc_type)
        from polymodal.store.base import vector_fields

        fields = {path: i for i, path in enumerate(vector_fields(doc_type, config))}
        db.create_tables(self._conn)  # idempotent; executescript commits on its own
        with db.transaction(self._conn):
            db.set_meta(self._conn, "format", db.FORMAT_VERSION)
            db.set_meta(self._conn, "schema", schema.to_dict())
            db.set_meta(self._conn, "fingerprint", schema.fingerprint)
            db.set_meta(self._conn, "config", config.model_dump(mode="json"))
            db.set_meta(self._conn, "fields", fields)
            db.set_meta(self._conn, "trimmed_upto", 0)
            for name in indexed_fields(doc_type):
                expr = f"json_extract(body, {_sql_str(_json_path([name]))})"
                self._conn.execute(f'CREATE INDEX IF NOT EXISTS "docs_f_{name}" ON docs({expr})')
        return doc_type, config

    def _open_existing(self, doc_type: type[T] | None, options: dict[str, Any]) -> tuple[type[T], StoreConfig]:
        version = db.get_meta(self._conn, "format")
        if not isinstance(version, int) or version > db.FORMAT_VERSION:
            raise ConfigError(
                f"the store at {self.path} has format version {version}; this polymodal reads up to "
                f"{db.FORMAT_VERSION}: upgrade polymodal"
            )
        stored = db.get_meta(self._conn, "schema")
        if doc_type is None:
            doc_type = DocSchema.rebuild(stored)  # type: ignore[assignment]
        elif schema_of(doc_type).fingerprint != db.get_meta(self._conn, "fingerprint"):
            raise SchemaError(
                f"{doc_type.__name__} does not match the schema this store was created with "
                f"({stored['name']}: {', '.join(f['name'] for f in stored['fields'])}). "
                "Open it without schema= to use the stored schema, or create a new store.",
            )
        saved = StoreConfig.model_validate(db.get_meta(self._conn, "config"))
        given = _config(options) if options else None
        if given is not None:
            for key in StoreConfig.STRUCTURAL:
                if key in options and getattr(given, key) != getattr(saved, key):
                    raise ConfigError(
                        f"{key}={options[key]!r} differs from the store's {getattr(saved, key)!r}; "
                        "it is fixed when a store is created"
                    )
            runtime = {k: v for k, v in options.items() if k not in StoreConfig.STRUCTURAL}
            saved = saved.model_copy(update=StoreConfig.model_validate({**saved.model_dump(), **runtime}).model_dump())
        assert doc_type is not None
        return doc_type, saved

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        flats = [flatten(d, self.text_fields) for d in docs]
        with self._lock, self._write_lock:
            conn = self._conn
            applied_before = db.last_seq(conn)
            with db.transaction(conn):
                ids = [d.id for d in docs]
                existing = dict(_select_in(conn, "SELECT id, rid FROM docs WHERE id IN ({})", ids))
                freed = self._free_vectors(list(existing.values()))
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
                written = self._write_vectors(rids, flats)
                texts = ((rid, p, pos, t) for rid, f in zip(rids, flats, strict=True) for p, pos, t in f.texts)
                fts.insert_texts(conn, texts)
                changed = [k for k, _ in freed] + [w[0] for w in written]
                conn.executemany("INSERT INTO changes(key) VALUES (?)", [(k,) for k in changed])
                seq = db.last_seq(conn)
            self._dirty = True
            self._apply_local(freed, written, applied_before, seq)
            self._maybe_checkpoint(seq)

    def _free_vectors(self, rids: list[int]) -> list[tuple[int, int]]:
        """Delete the vectors of documents being replaced or deleted; return (key, rid)."""
        rows = _select_in(self._conn, "SELECT key, rid FROM vectors WHERE rid IN ({})", rids)
        if rows:
            keys = [(k,) for k, _ in rows]
            self._conn.executemany("DELETE FROM vectors WHERE key = ?", keys)
            self._conn.executemany("INSERT OR IGNORE INTO free_slots(key) VALUES (?)", keys)
        return [(int(k), int(r)) for k, r in rows]

    def _write_vectors(self, rids: list[int], flats: list[Any]) -> list[tuple[int, int, str, np.ndarray]]:
        per_field: dict[int, list[tuple[int, str, np.ndarray]]] = {}
        for rid, flat in zip(rids, flats, strict=True):
            for path, pos, vec in flat.vectors:
                per_field.setdefault(self._field_ids[path], []).append((rid, ".".join(map(str, pos)), vec))
        written: list[tuple[int, int, str, np.ndarray]] = []
        rows = []
        for fid, items in per_field.items():
            keys = self._allocate(fid, len(items))
            for key, (rid, pos, vec) in zip(keys, items, strict=True):
                rows.append((key, rid, pos, np.ascontiguousarray(vec, dtype="<f4").tobytes()))
                written.append((key, rid, pos, vec))
        self._conn.executemany("INSERT INTO vectors(key, rid, pos, vec) VALUES (?, ?, ?, ?)", rows)
        return written

    def _allocate(self, fid: int, n: int) -> list[int]:
        lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
        reuse = [
            k
            for (k,) in self._conn.execute(
                "SELECT key FROM free_slots WHERE key >= ? AND key < ? ORDER BY key LIMIT ?", (lo, hi, n)
            )
        ]
        if reuse:
            self._conn.executemany("DELETE FROM free_slots WHERE key = ?", [(k,) for k in reuse])
        start = int(db.get_meta(self._conn, f"next_slot:{fid}", 0))
        extra = n - len(reuse)
        if extra:
            db.set_meta(self._conn, f"next_slot:{fid}", start + extra)
        return reuse + [lo + start + i for i in range(extra)]

    def _delete(self, ids: list[str]) -> int:
        with self._lock, self._write_lock:
            applied_before = db.last_seq(self._conn)
            with db.transaction(self._conn):
                rows = _select_in(self._conn, "SELECT rid FROM docs WHERE id IN ({})", ids)
                rids = [r for (r,) in rows]
                freed = self._free_vectors(rids)
                fts.delete_docs(self._conn, rids)
                self._conn.executemany("DELETE FROM docs WHERE rid = ?", [(r,) for r in rids])
                self._conn.executemany("INSERT INTO changes(key) VALUES (?)", [(k,) for k, _ in freed])
                seq = db.last_seq(self._conn)
            if rids:
                self._dirty = True
            self._apply_local(freed, [], applied_before, seq)
            return len(rids)

    def _apply_local(
        self, freed: list[tuple[int, int]], written: list[tuple[int, int, str, np.ndarray]], before: int, seq: int
    ) -> None:
        """Mirror a committed write into the loaded indexes (when they were current).

        The write is committed when this runs, so it must not fail: an index that cannot take
        the change (one built before its field's dimension was known, say) is dropped and
        rebuilt from the database on next use.
        """
        for fid, index in list(self._indexes.items()):
            if self._applied.get(fid) != before:
                continue  # behind already: the next sync replays the log instead
            lo = fid << db.FIELD_SHIFT
            mask = (1 << db.FIELD_SHIFT) - 1
            try:
                gone = np.array([k & mask for k, _ in freed if k >> db.FIELD_SHIFT == fid], dtype=np.int64)
                index.remove(gone)
                mine = [w for w in written if w[0] >> db.FIELD_SHIFT == fid]
                if mine:
                    slots = np.array([k - lo for k, _, _, _ in mine], dtype=np.int64)
                    index.set(slots, np.stack([w[3] for w in mine]), [w[1] for w in mine], [w[2] for w in mine])
            except Exception:  # noqa: BLE001 - any failure: forget the index, the database has it all
                del self._indexes[fid]
                self._applied.pop(fid, None)
                continue
            self._applied[fid] = seq

    # -- vector indexes: load, catch up, checkpoint --------------------------------------------
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
        """The field's index, loaded and caught up with every change committed before this
        read snapshot."""
        with self._snapshot():
            index = self._indexes.get(fid)
            trimmed = int(db.get_meta(self._conn, "trimmed_upto", 0))
            dim = self._dim_of(self.vector_fields[self._field_paths[fid]])
            if index is None or self._applied[fid] < trimmed or (dim is not None and index.dim != dim):
                index = self._load_index(fid, trimmed, dim)
            self._catch_up(fid, index)
            return index

    def _load_index(self, fid: int, trimmed: int, dim: int | None) -> AnnIndex:
        """Load the field's checkpoint, or rebuild from the database when there is none that
        fits: missing, damaged, of another dimension or metric, or not between the trimmed
        log and the snapshot's last change (so the log replays exactly what it lacks)."""
        manifest = self._manifest()
        entry = manifest.get("fields", {}).get(str(fid)) if manifest else None
        index: AnnIndex | None = None
        seq = int(manifest.get("seq", -1))
        if isinstance(entry, dict) and trimmed <= seq <= db.last_seq(self._conn):
            try:
                index = AnnIndex.load(self.path / "ann", entry)
            except Exception:  # noqa: BLE001 - whatever is wrong with a cache, rebuild it
                index = None
            vf = self.vector_fields[self._field_paths[fid]]
            if index is not None and (index.dim != dim or index.metric != vf.metric):
                index = None
        if index is None:
            index = self._build_index(fid)
        else:
            self._applied[fid] = seq
        self._indexes[fid] = index
        return index

    def _build_index(self, fid: int) -> AnnIndex:
        vf = self.vector_fields[self._field_paths[fid]]
        dim = self._dim_of(vf) or 1
        lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
        with self._snapshot():
            seq = db.last_seq(self._conn)
            count = self._conn.execute("SELECT COUNT(*) FROM vectors WHERE key >= ? AND key < ?", (lo, hi)).fetchone()[
                0
            ]
            index = AnnIndex(
                dim,
                vf.metric,
                m=self.config.hnsw_m,
                ef_construction=self.config.hnsw_ef_construction,
                capacity=max(1024, count),
            )
            cur = self._conn.execute(
                "SELECT key, rid, pos, vec FROM vectors WHERE key >= ? AND key < ? ORDER BY key", (lo, hi)
            )
            while batch := cur.fetchmany(20_000):
                _set_rows(index, batch, lo, dim)
        self._applied[fid] = seq
        return index

    def _catch_up(self, fid: int, index: AnnIndex) -> None:
        with self._snapshot():  # one snapshot for the sequence number and the rows
            seq = db.last_seq(self._conn)
            after = self._applied[fid]
            if seq == after:
                return
            lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
            present = self._conn.execute(
                "SELECT v.key, v.rid, v.pos, v.vec FROM vectors v JOIN (SELECT DISTINCT key FROM changes WHERE seq > ? "
                "AND key >= ? AND key < ?) c ON v.key = c.key",
                (after, lo, hi),
            ).fetchall()
            absent = self._conn.execute(
                "SELECT DISTINCT c.key FROM changes c LEFT JOIN vectors v ON v.key = c.key "
                "WHERE c.seq > ? AND c.key >= ? AND c.key < ? AND v.key IS NULL",
                (after, lo, hi),
            ).fetchall()
        index.remove(np.array([k - lo for (k,) in absent], dtype=np.int64))
        _set_rows(index, present, lo, index.dim)
        self._applied[fid] = seq

    def _manifest(self) -> dict[str, Any]:
        """The checkpoint manifest, or {} when it is missing or not one (a cache: never fatal)."""
        try:
            data = json.loads((self.path / "ann" / _MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        if not (isinstance(data, dict) and type(data.get("seq")) is int and isinstance(data.get("fields"), dict)):
            return {}
        return data

    def checkpoint(self) -> None:
        """Save every vector index at the current change-log position and trim the log, so the
        next open loads instead of replaying. Done automatically on close after writes."""
        self._check_open()
        with self._lock, self._write_lock:
            self._checkpoint()

    def _checkpoint(self) -> None:
        ann_dir = self.path / "ann"
        ann_dir.mkdir(exist_ok=True)
        seq = db.last_seq(self._conn)
        entries = {}
        for fid, path in self._field_paths.items():
            if self._dim_of(self.vector_fields[path]) is None:
                continue  # no vector yet: nothing to save, and its dimension is still open
            index = self._index(fid)
            # a fresh name per checkpoint: never rewrite the files the current manifest names
            entries[str(fid)] = index.save(ann_dir, f"{fid}-{seq}-{secrets.token_hex(4)}")
        manifest = {"seq": seq, "fields": entries}
        tmp = ann_dir / (_MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, ann_dir / _MANIFEST)
        _fsync_dir(ann_dir)
        with db.transaction(self._conn):
            self._conn.execute("DELETE FROM changes WHERE seq <= ?", (seq,))
            db.set_meta(self._conn, "trimmed_upto", seq)
        keep = {_MANIFEST} | {name for e in entries.values() for name in e["digests"]}
        for stale in ann_dir.iterdir():
            if stale.name not in keep:
                with contextlib.suppress(OSError):
                    stale.unlink()
        self._dirty = False

    def _maybe_checkpoint(self, seq: int) -> None:
        """Checkpoint when the log is long; a failure here (a full disk) must not fail the
        write that triggered it, which is committed: it is reported as a warning."""
        if not self._indexes:
            return  # indexes not loaded here: the next reader (or close) builds them
        backlog = seq - int(self._manifest().get("seq", 0))
        live = sum(ix.count for ix in self._indexes.values())
        if backlog > max(20_000, live // 4):
            try:
                self._checkpoint()
            except (OSError, sqlite3.Error) as exc:
                warnings.warn(
                    f"polymodal: automatic checkpoint of {self.path} failed: {exc}", RuntimeWarning, stacklevel=4
                )

    def _set_field_dim(self, path: str, dim: int) -> None:
        """Fix a field's dimension once, under the write lock, so two processes adding the
        first vectors of different sizes cannot both win."""
        with self._lock, self._write_lock, db.transaction(self._conn):
            stored = db.get_meta(self._conn, f"setting:dim:{path}")
            if stored is not None and int(stored) != dim:
                raise SchemaError(f"{path}: expected dimension {stored} (the store's), got {dim}", field=path)
            db.set_meta(self._conn, f"setting:dim:{path}", dim)

    # -- reads ---------------------------------------------------------------------------------
    def _load(self, rids: Sequence[int]) -> dict[int, T]:
        """Documents by rowid, with their vectors put back."""
        if not rids:
            return {}
        rows = _select_in(self._conn, "SELECT rid, body FROM docs WHERE rid IN ({})", list(rids))
        bodies = {rid: orjson.loads(body) for rid, body in rows}
        for rid, key, pos, vec in _select_in(
            self._conn, "SELECT rid, key, pos, vec FROM vectors WHERE rid IN ({})", list(rids)
        ):
            path = self._field_paths[key >> db.FIELD_SHIFT]
            positions = tuple(int(p) for p in pos.split(".")) if pos else ()
            vector = np.frombuffer(vec, dtype="<f4").copy()
            set_at(bodies[rid], path, self.vector_fields[path].nesting, positions, vector)
        return {rid: self.doc_type.from_dict(body) for rid, body in bodies.items()}  # type: ignore[misc]

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
        with self._lock, self._snapshot():
            index = self._index(fid)
            allowed = None
            if where is not None:
                allowed = self._allowed_slots(fid, where, index.capacity)
            n_allowed = index.count if allowed is None else int(np.count_nonzero(allowed & index.valid))
            results = [self._rank(index, q, limit, allowed, n_allowed, field.nested, aggregate, exact) for q in queries]
            need = {rid for ranked in results for rid, _, _ in ranked}
            docs = self._load(sorted(need))
        out = []
        for ranked in results:
            hits = []
            for rid, score, pos in ranked:
                doc = docs.get(rid)
                if doc is None:
                    continue
                match = None
                if field.nested:
                    match = match_at(doc, field.nesting, tuple(int(p) for p in pos.split(".")))
                hits.append(Hit(id=doc.id, score=score, doc=doc, match=match, field=field.path))
            out.append(hits)
        return out

    def _rank(
        self,
        index: AnnIndex,
        q: np.ndarray,
        limit: int,
        allowed: np.ndarray | None,
        n_allowed: int,
        nested: bool,
        aggregate: str,
        exact: bool | None,
    ) -> list[tuple[int, float, str]]:
        """Best documents for one query: (rid, score, position of the best sub-document)."""
        search: dict[str, Any] = {
            "allowed": allowed,
            "exact": exact,
            "ef": self.config.ef_search,
            "exact_threshold": self.config.exact_threshold,
        }
        if not nested:
            slots, scores = index.search(q[None], limit, **search)[0]
            return [(int(index.owner[s]), float(sc), "") for s, sc in zip(slots, scores, strict=True)]
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

    def _allowed_slots(self, fid: int, where: flt.Filter, capacity: int) -> np.ndarray:
        sql, params = to_sql(where, self.doc_type, column="d.body")
        lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
        mask = np.zeros(capacity, bool)
        rows = self._conn.execute(
            f"SELECT v.key FROM docs d JOIN vectors v ON v.rid = d.rid WHERE v.key >= ? AND v.key < ? AND {sql}",
            [lo, hi, *params],
        ).fetchall()
        if rows:
            slots = np.fromiter((k - lo for (k,) in rows), dtype=np.int64, count=len(rows))
            mask[slots[slots < capacity]] = True
        return mask

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
        """Straight from the field's in-memory matrix (already unit length for cosine)."""
        fid = self._field_ids[field.path]
        if self._dim_of(field) is None:
            return np.zeros((0, 0), np.float32)
        with self._lock:
            index = self._index(fid)
            live = np.flatnonzero(index.valid)
            if len(live) > n:
                live = np.sort(np.random.default_rng(seed).choice(live, n, replace=False))
            return index.matrix[live].copy()

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
                if self._dirty:
                    with self._write_lock:
                        self._checkpoint()
            finally:
                self._conn.close()

    def size_on_disk(self) -> int:
        """Bytes used by the store directory (database, log and vector index files)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


def _config(options: dict[str, Any]) -> StoreConfig:
    from pydantic import ValidationError

    try:
        return StoreConfig.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "options"  # the option, not pydantic's inner path
        raise ConfigError(f"store option {name!r}: {first['msg']}", option=name) from None


def _is_complete(conn: sqlite3.Connection) -> bool:
    """Whether the database holds a store whose creation committed (it has a format)."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    return has_meta is not None and db.get_meta(conn, "format") is not None


_OWN_TABLES = ("meta", "docs", "vectors", "free_slots", "changes", "fts")


def _foreign_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables that no polymodal store makes (a store.db of another application)."""
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return sorted(n for n in names if n not in _OWN_TABLES and not n.startswith(("fts_", "sqlite_")))


def _check_new(doc_type: type[Doc], options: dict[str, Any]) -> None:
    """Raise the ConfigError/SchemaError that creating a store would, before anything is written."""
    from polymodal.store.base import text_paths, vector_fields

    config = _config(options)
    vector_fields(doc_type, config)
    text_paths(doc_type, config)


def _select_in(conn: sqlite3.Connection, sql: str, values: Sequence[Any], chunk: int = 900) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        out.extend(conn.execute(sql.format(",".join("?" * len(part))), part).fetchall())
    return out


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _body_json(body: dict[str, Any]) -> str:
    """A document body as JSON; ints beyond 64 bits (inside plain dict/list fields) are written
    as decimal text, which validation turns back into ints."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        from polymodal.io.json import _big_ints_as_text

        return orjson.dumps(_big_ints_as_text(body), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _plain(scalar: str | None, value: Any) -> Any:
    """A JSON value as the field's Python type (SQLite gives 1/0 for booleans, text for NaN)."""
    if value is None:
        return None
    if scalar == "bool":
        return bool(value)
    if scalar == "float":
        return float(value)
    if scalar == "int" and isinstance(value, str):
        return int(value)
    return value


def _set_rows(index: AnnIndex, rows: Sequence[tuple[int, int, str, bytes]], lo: int, dim: int) -> None:
    """Load ``(key, rid, pos, vec)`` database rows into an index."""
    if not rows:
        return
    slots = np.fromiter((k - lo for k, _, _, _ in rows), dtype=np.int64, count=len(rows))
    vecs = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(len(rows), dim)
    index.set(slots, vecs, [r[1] for r in rows], [r[2] for r in rows])


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
    sims = -np.linalg.norm(vecs - q, axis=1) if index.metric == "l2" else vecs @ q
    owners = index.owner[slots]
    uniq, inverse = np.unique(owners, return_inverse=True)
    means = np.bincount(inverse, weights=sims) / np.bincount(inverse)
    order = np.lexsort((-sims, inverse))  # grouped by document, its best slot first
    first = order[np.concatenate([[True], np.diff(inverse[order]) != 0])]
    best_pos = {int(owners[i]): index.pos[int(slots[i])] for i in first}
    top = np.lexsort((uniq, -means))[:limit]
    return [(int(uniq[i]), float(means[i]), best_pos[int(uniq[i])]) for i in top]


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


for _name in ("_add", "_delete", "_get", "_count", "_vector_search", "_text_search", "_get_setting",
              "_set_setting", "_sample_vectors", "checkpoint"):
    setattr(EmbeddedStore, _name, _wrap_driver_errors(getattr(EmbeddedStore, _name)))
for _name in ("_iter", "_scan"):
    setattr(EmbeddedStore, _name, _wrap_iter(getattr(EmbeddedStore, _name)))
