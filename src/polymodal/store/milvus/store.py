"""The Milvus backend: ``polymodal.open("milvus://host:19530/clips", schema=Clip)``.

Layout, for a store named by the URI's collection ``c``:

* ``c``: one row per document: ``id`` (the primary key), ``body`` (the JSON that rebuilds it,
  see :mod:`polymodal.store.flatten`), ``fbody`` (what filters read, see
  :func:`~polymodal.store.milvus.expr.filter_body`) and a 2-d placeholder vector (Milvus wants one).
* ``c__v<i>``: one per vector field, top-level or nested: a row per vector with its document
  (``parent``), its position among nested sub-documents (``pos``), the parent's ``fbody`` (so a
  filtered search is one native call), the exact float32 vector (``raw``) and the indexed vector
  (``vec``: unit length for cosine, which is searched by inner product). Nested searches group by
  ``parent``: the best segment ranks its document. Created once the field's dimension is known.
* ``c__text``: one row per text value (nested ones too), as Porter stems, with Milvus's ``BM25``
  function and a sparse index; grouped by ``parent`` like nested vectors.
* ``c__meta``: the schema, the options and the settings.
* ``c__parts``: bodies longer than one Milvus JSON value holds (64 KiB on a server), in pieces
  named by the body's hash, so a reader never mixes two versions. An ``fbody`` that long leaves
  out its largest fields and is marked; the store then checks marked documents in Python.

Primary keys are the document id, or a hash of (id, field, position): writing the same document
twice writes the same rows, so retrying a write after a dropped connection is safe. Milvus has no
transaction across collections: a failed ``add`` may leave part of a batch written (readers may
meanwhile see a document's new vectors with its old body); adding it again completes it.

Filters become Milvus expressions (:mod:`.expr`); where an expression is only a superset, the
candidates are checked in Python and searches fetch deeper (and finally scan exactly) until
``limit`` documents match or none are left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.doc.schema import DocSchema, schema_of
from polymodal.errors import BackendError, ConfigError, OptionalDependencyError, SchemaError
from polymodal.store import filters as flt
from polymodal.store.base import (
    Aggregate,
    Capabilities,
    Hit,
    Store,
    StoreConfig,
    T,
    VectorField,
    match_at,
    text_paths,
    vector_fields,
)
from polymodal.store.flatten import set_at
from polymodal.store.milvus import collections as mc
from polymodal.store.milvus import schema as ms
from polymodal.store.milvus.client import Connection
from polymodal.store.milvus.collections import Collections, in_chunks
from polymodal.store.milvus.expr import Translation, quote, translate
from polymodal.store.milvus.rows import TRIMMED, decode_vector, join_body, pos_of, rows_of
from polymodal.store.milvus.search import Ranked, deepen, rank_exact
from polymodal.store.milvus.text import snippet, stems
from polymodal.store.milvus.uri import parse_uri

__all__ = ["MilvusStore"]

FORMAT_VERSION = 1


class MilvusStore(Store[T]):
    """Documents in Milvus collections; native filtered, nested and BM25 search.

    Args:
        uri: ``milvus://[user[:password]@]host[:port]/collection`` for a server,
            ``milvus+lite:///path/to/store.db/collection`` for Milvus Lite (see
            :mod:`polymodal.store.milvus.uri`).
        doc_type: the schema; needed to create a store, remembered for reopening.
        timeout: seconds per Milvus call (default 30, or ``?timeout=`` in the URI).
        retries: retries of a call that failed transiently, 0.25 s apart doubling to 4 s, so the
            default 5 rides out about 8 s of a restarting server (or ``?retries=``; 0 fails fast).
        options: :class:`~polymodal.store.base.StoreConfig` options.

    Raises:
        BackendError: the server cannot be reached or a call failed (the URI in the message has
            no password).
        ConfigError: a malformed URI, bad options, or no store there and no schema.
        OptionalDependencyError: pymilvus (or snowballstemmer) is not installed.
    """

    capabilities = Capabilities(filter=True, text=True, hybrid=False, nested=True)
    backend = "milvus"

    def __init__(
        self,
        uri: str,
        doc_type: type[T] | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        **options: Any,
    ) -> None:
        self.target = parse_uri(str(uri))
        if doc_type is not None:
            _check_new(doc_type, options)  # bad options fail before anything is created
        try:
            import snowballstemmer  # type: ignore[import-untyped]  # noqa: F401
        except ImportError:
            raise OptionalDependencyError.for_package("snowballstemmer", "milvus", "the Milvus store") from None
        conn = Connection(
            self.target,
            timeout=timeout if timeout is not None else (self.target.timeout or 30.0),
            retries=retries if retries is not None else (5 if self.target.retries is None else self.target.retries),
        )
        self._lock = threading.RLock()
        self._dims: dict[str, int] = {}
        self._trimmed = False
        try:
            self._db = Collections(conn, self.target.collection)
            doc_type, config, fields = self._open_or_create(doc_type, options)
            super().__init__(doc_type, config)
        except BaseException:
            conn.close()
            raise
        self._vcoll = {path: self._db.vectors(i) for path, i in fields.items()}

    def __repr__(self) -> str:
        return f"<MilvusStore {self.doc_type.__name__} at {self.target.redacted}>"

    # -- creation and reopening ----------------------------------------------------------------
    def _open_or_create(
        self, doc_type: type[T] | None, options: dict[str, Any]
    ) -> tuple[type[T], StoreConfig, dict[str, int]]:
        db = self._db
        version = None
        if db.meta in db.names:
            db.load(db.meta)
            version = db.meta_value("format")
        if version is not None:
            return self._open_existing(version, doc_type, options)
        if doc_type is None:
            raise ConfigError(f"no polymodal store at {self.target.redacted}; pass schema=MyDoc to create one")
        if db.main in db.names:
            raise ConfigError(
                f"the Milvus collection {db.main!r} at {self.target.redacted} exists and is not a polymodal store"
            )
        config = StoreConfig.from_options(options)
        fields = vector_fields(doc_type, config)
        ids = {path: i for i, path in enumerate(fields)}
        with self._lock:
            db.create(db.main, ms.main_schema(db.client), ms.pad_index(db.client))
            if text_paths(doc_type, config):
                db.create(db.text, ms.text_schema(db.client), ms.text_index(db.client))
            for path, vf in fields.items():
                if vf.dim is not None:
                    db.create_vectors(db.vectors(ids[path]), vf.dim, vf.metric, config)
            db.create(db.meta, ms.meta_schema(db.client), ms.pad_index(db.client))
            schema = schema_of(doc_type)
            db.put_meta(
                {
                    "schema": schema.to_dict(),
                    "fingerprint": schema.fingerprint,
                    "config": config.model_dump(mode="json"),
                    "fields": ids,
                }
            )
            db.put_meta({"format": FORMAT_VERSION})  # last: a store is complete once it has a format
        return doc_type, config, ids

    def _open_existing(
        self, version: Any, doc_type: type[T] | None, options: dict[str, Any]
    ) -> tuple[type[T], StoreConfig, dict[str, int]]:
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigError(
                f"the store at {self.target.redacted} has format version {version}; this polymodal reads up to "
                f"{FORMAT_VERSION}: upgrade polymodal"
            )
        self._db.load_all()
        stored = self._db.meta_value("schema")
        if doc_type is None:
            doc_type = DocSchema.rebuild(stored)  # type: ignore[assignment]
        elif schema_of(doc_type).fingerprint != self._db.meta_value("fingerprint"):
            raise SchemaError(
                f"{doc_type.__name__} does not match the schema this store was created with "
                f"({stored['name']}: {', '.join(f['name'] for f in stored['fields'])}). "
                "Open it without schema= to use the stored schema, or create a new store.",
            )
        config = StoreConfig.model_validate(self._db.meta_value("config")).reopened(options)
        assert doc_type is not None
        return doc_type, config, dict(self._db.meta_value("fields"))

    def _vectors_of(self, vf: VectorField, *, create: bool = False) -> str | None:
        """The collection of a vector field, or None while it has none (dimension still unknown)."""
        name = self._vcoll[vf.path]
        if self._db.has(name):
            return name
        if not create:
            return None
        dim = self._dim_of(vf)
        assert dim is not None  # _check_dims fixed it before any vector is written
        self._db.create_vectors(name, dim, vf.metric, self.config)
        return name

    def _field_dim(self, path: str) -> int | None:
        if path not in self._dims:
            dim = super()._field_dim(path)
            if dim is None:
                return None
            self._dims[path] = dim
        return self._dims[path]

    def _set_field_dim(self, path: str, dim: int) -> None:
        with self._lock:
            stored = super()._field_dim(path)
            if stored is not None and stored != dim:
                raise SchemaError(f"{path}: expected dimension {stored} (the store's), got {dim}", field=path)
            super()._set_field_dim(path, dim)
            self._dims[path] = dim
            self._vectors_of(self.vector_fields[path], create=True)

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        batch = rows_of(docs, self.doc_type, self.vector_fields, self.text_fields)
        db = self._db
        with self._lock:
            if batch.trimmed and not self._has_trimmed():
                db.put_meta({"trimmed": True})  # before any trimmed row: filters must know first
                self._trimmed = True
            existing = self._existing([d.id for d in docs])
            for path, rows in batch.vectors.items():
                name = self._vectors_of(self.vector_fields[path], create=bool(rows))
                if name is not None:
                    self._replace(name, rows, existing)
            if db.has(db.text):
                self._replace(db.text, batch.texts, existing)
            if batch.parts:
                db.create(db.parts, ms.parts_schema(db.client), ms.pad_index(db.client))
            if db.has(db.parts):
                self._replace(db.parts, batch.parts, existing)
            db.upsert(db.main, batch.main)

    def _replace(self, name: str, rows: list[dict[str, Any]], existing: list[str]) -> None:
        """Write a batch's rows, then drop the rows its replaced documents no longer have."""
        self._db.upsert(name, rows)
        if existing:
            keep = {r["pk"] for r in rows}
            old = [r["pk"] for expr in in_chunks("parent", existing) for r in self._db.rows(name, expr, ["pk"])]
            self._db.delete_ids(name, "pk", [k for k in old if k not in keep])

    def _delete(self, ids: list[str]) -> int:
        with self._lock:
            found = self._existing(ids)
            if not found:
                return 0
            for name in [*self._vcoll.values(), self._db.text, self._db.parts]:
                if self._db.has(name):
                    for expr in in_chunks("parent", found):
                        self._db.delete_where(name, expr)
            self._db.delete_ids(self._db.main, "id", found)
            return len(found)

    def _existing(self, ids: Sequence[str]) -> list[str]:
        found = {r["id"] for expr in in_chunks("id", ids) for r in self._db.rows(self._db.main, expr, ["id"])}
        return [i for i in dict.fromkeys(ids) if i in found]

    # -- reads ---------------------------------------------------------------------------------
    def _load(self, ids: Sequence[str]) -> dict[str, T]:
        """Documents by id, with their vectors put back."""
        bodies: dict[str, dict[str, Any]] = {}
        for expr in in_chunks("id", ids):
            bodies.update(self._bodies(self._db.rows(self._db.main, expr, ["id", "body"])))
        for path, name in self._vcoll.items():
            if not bodies or not self._db.has(name):
                continue
            nesting = self.vector_fields[path].nesting
            for expr in in_chunks("parent", list(bodies)):
                for r in self._db.rows(name, expr, ["parent", "pos", "raw"]):
                    set_at(bodies[r["parent"]], path, nesting, pos_of(r["pos"]), decode_vector(r["raw"]))
        return {i: self.doc_type.from_dict(b) for i, b in bodies.items()}  # type: ignore[misc]

    def _bodies(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Document bodies by id from document rows, long ones joined from their pieces."""
        bodies = {r["id"]: r["body"] for r in rows}
        long = [i for i, b in bodies.items() if "$parts" in b]
        if long:
            pieces: dict[str, list[dict[str, Any]]] = {i: [] for i in long}
            for expr in in_chunks("parent", long):
                for r in self._db.rows(self._db.parts, expr, ["parent", "digest", "seq", "data"]):
                    pieces[r["parent"]].append(r)
            try:
                bodies.update((i, join_body(bodies[i], p)) for i, p in pieces.items())
            except ValueError as exc:
                raise BackendError(f"{exc} in {self.target.redacted}", backend="milvus") from exc
        return bodies

    def _filter_doc(self, body: dict[str, Any]) -> T:
        """A document good enough for filters: required vectors are zero placeholders."""
        return self.doc_type.from_dict(ms.with_placeholders(self.doc_type, body))  # type: ignore[return-value]

    def _judge(self, where: flt.Filter | None, ids: list[str]) -> dict[str, bool]:
        """Whether each document matches a filter, checked in Python."""
        verdict = dict.fromkeys(ids, False)
        for expr in in_chunks("id", ids):
            for i, body in self._bodies(self._db.rows(self._db.main, expr, ["id", "body"])).items():
                verdict[i] = flt.matches(where, self._filter_doc(body))
        return verdict

    def _translate(self, where: flt.Filter | None) -> Translation:
        """The filter's expression; when some documents left fields out of their ``fbody`` to fit,
        those documents are always candidates (and checked in Python)."""
        tr = translate(where, self.doc_type)
        if tr.expr is None or not self._has_trimmed():
            return tr
        return Translation(f'({tr.expr}) or exists fbody["{TRIMMED}"]', exact=False)

    def _has_trimmed(self) -> bool:
        if not self._trimmed:  # another writer may have added one since: ask (cheap, by key)
            self._trimmed = bool(self._db.meta_value("trimmed"))
        return self._trimmed

    def _matching(self, where: flt.Filter | None, tr: Translation) -> Iterator[T]:
        """Filter documents (placeholder vectors) of every document the filter matches."""
        for rows in self._db.iterate(self._db.main, tr.expr, ["id", "body"]):
            for body in self._bodies(rows).values():
                doc = self._filter_doc(body)
                if tr.exact or flt.matches(where, doc):
                    yield doc

    def _get(self, ids: list[str]) -> list[T | None]:
        docs = self._load(ids)
        return [docs.get(i) for i in ids]

    def _count(self, where: flt.Filter | None) -> int:
        tr = self._translate(where)
        if tr.never:
            return 0
        if tr.exact:
            return self._db.count(self._db.main, tr.expr)
        return sum(1 for _ in self._matching(where, tr))

    def _iter(self, batch_size: int) -> Iterator[list[T]]:
        for rows in self._db.iterate(self._db.main, None, ["id"], batch_size):
            ids = [r["id"] for r in rows]
            docs = self._load(ids)
            yield [docs[i] for i in ids if i in docs]

    def _scan(self, fields: list[str], where: flt.Filter | None) -> Iterator[dict[str, Any]]:
        """Fields read from the stored bodies, without fetching vectors."""
        schema = schema_of(self.doc_type)
        if any(schema[f].kind in ("vector", "docs", "doc") for f in fields):
            yield from super()._scan(fields, where)
            return
        tr = self._translate(where)
        if not tr.never:
            for doc in self._matching(where, tr):
                yield {f: getattr(doc, f) for f in fields}

    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        name = self._vectors_of(field)
        rows = [r["vec"] for batch in self._db.iterate(name, None, ["vec"]) for r in batch] if name else []
        if not rows:
            return np.zeros((0, self._dim_of(field) or 0), np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        if len(matrix) > n:
            matrix = matrix[np.random.default_rng(seed).choice(len(matrix), n, replace=False)]
        return matrix

    # -- search --------------------------------------------------------------------------------
    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]:
        name = self._vectors_of(field)
        tr = self._translate(where)
        if name is None or tr.never:
            return [[] for _ in queries]
        if aggregate == "mean" or exact is True:
            ranked = self._exact(field, name, queries, limit, where, tr, aggregate)
        else:

            def run(idx: list[int], depth: int) -> list[Ranked]:
                params = {
                    "metric_type": ms.milvus_metric(field.metric),
                    "params": {"ef": max(self.config.ef_search, depth)},
                }
                found = self._db.search(name, [queries[i].tolist() for i in idx], depth, tr.expr, params)
                return [[(e["parent"], ms.score(d, field.metric), e) for d, e in hits] for hits in found]

            results = deepen(
                run, len(queries), limit, window=mc.WINDOW, exact=tr.exact, judge=lambda ids: self._judge(where, ids)
            )
            short = [i for i, r in enumerate(results) if r is None]
            if short:  # too few matches among the most similar WINDOW: rank every match exactly
                for i, r in zip(
                    short, self._exact(field, name, queries[short], limit, where, tr, aggregate), strict=True
                ):
                    results[i] = r
            ranked = [r or [] for r in results]
        docs = self._load(list(dict.fromkeys(p for hits in ranked for p, _, _ in hits)))
        out = []
        for hits in ranked:
            row = []
            for parent, score, entity in hits:
                doc = docs.get(parent)
                if doc is not None:  # else deleted meanwhile
                    match = match_at(doc, field.nesting, pos_of(entity["pos"])) if field.nested else None
                    row.append(Hit(id=parent, score=score, doc=doc, match=match, field=field.path))
            out.append(row)
        return out

    def _exact(
        self,
        field: VectorField,
        name: str,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        tr: Translation,
        aggregate: Aggregate,
    ) -> list[Ranked]:
        """Exact ranking over every stored vector the filter allows (and exact means of segments)."""
        rows = [r for batch in self._db.iterate(name, tr.expr, ["parent", "pos", "vec"]) for r in batch]
        if not tr.exact and rows:
            verdict = self._judge(where, list(dict.fromkeys(r["parent"] for r in rows)))
            rows = [r for r in rows if verdict[r["parent"]]]
        if not rows:
            return [[] for _ in queries]
        matrix = np.asarray([r["vec"] for r in rows], np.float32)
        parents, positions = [r["parent"] for r in rows], [r["pos"] for r in rows]
        return rank_exact(matrix, parents, positions, queries, limit, field.metric, aggregate)

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        terms = list(dict.fromkeys(stems(text)))
        if not terms:
            raise ConfigError(f"no searchable words in {text!r}")
        tr = self._translate(where)
        if not self._db.has(self._db.text) or tr.never:
            return []
        parts = [p for p in (tr.expr,) if p]
        if field is not None:
            parts.append(f"path == {quote(field)}")
        if mode == "all":
            parts.extend(f"TEXT_MATCH(terms, {quote(t)})" for t in terms)
        base = " and ".join(f"({p})" for p in parts) if parts else None

        def run(idx: list[int], depth: int, expr: str | None = base) -> list[Ranked]:
            found = self._db.search(
                self._db.text,
                [" ".join(terms)],
                depth,
                expr,
                {"metric_type": "BM25"},
                anns_field="sparse",
                output=["path"],
            )
            return [[(e["parent"], abs(d), e) for d, e in hits] for hits in found]  # Milvus Lite negates BM25

        ranked = deepen(run, 1, limit, window=mc.WINDOW, exact=tr.exact, judge=lambda ids: self._judge(where, ids))[0]
        if ranked is None:  # the filter rejects most of the best WINDOW: search among the matches only
            allowed = [d.id for d in self._matching(where, tr)]
            ranked = []
            for expr in in_chunks("parent", allowed):
                ranked.extend(run([0], limit, " and ".join(p for p in (base, expr) if p))[0])
            ranked = sorted(ranked, key=lambda h: -h[1])[:limit]
        docs = self._load(list(dict.fromkeys(p for p, _, _ in ranked)))
        hits = []
        for parent, score, entity in ranked:
            doc = docs.get(parent)
            if doc is None:
                continue
            path, pos = entity["path"], pos_of(entity["pos"])
            nesting = self.nesting_of(path)
            match = match_at(doc, nesting, pos) if nesting else None
            value = ms.text_at(match if nesting else doc, path[len(nesting[-1]) + 1 :] if nesting else path)
            hits.append(
                Hit(id=parent, score=score, doc=doc, match=match, field=path, snippet=snippet(value, set(terms)))
            )
        hits.sort(key=lambda h: -h.score)
        return hits

    # -- settings and lifecycle ----------------------------------------------------------------
    def _get_setting(self, key: str) -> Any:
        return self._db.meta_value(f"setting:{key}")

    def _set_setting(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.put_meta({f"setting:{key}": value})

    def _close(self) -> None:
        self._db.conn.close()


def _check_new(doc_type: type[Doc], options: dict[str, Any]) -> None:
    config = StoreConfig.from_options(options)
    vector_fields(doc_type, config)
    text_paths(doc_type, config)
