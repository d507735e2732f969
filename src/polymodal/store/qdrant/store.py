"""The Qdrant backend: ``polymodal.open("qdrant://host:6333/clips", schema=Clip)``.

Layout, for a collection ``C`` (see :mod:`.connection` for the URI forms):

* ``C`` holds one point per document (id: uuid5 of the document id). Each vector field is a
  named vector (``v0``, ``v1`` ..., names kept in the metadata): a plain one for a top-level
  field, a MAX_SIM *multivector* for a nested one (``segments.embedding``) holding all of the
  document's segment vectors, so that Qdrant itself ranks parents by their best segment and applies
  filters to the parent's payload; the best segment (``Hit.match``) is then found among the hit's
  own vectors. Cosine fields are indexed as unit vectors (normalised in float64) under the dot
  product; the exact original vectors ride in the payload (``_v``, base64 float32 with positions).
  The payload is the document body (:mod:`polymodal.store.flatten`) plus ``_v``, the filter facts
  ``_f``/``_r`` (:mod:`.translate`) and ``_g``, the generation of the write that stored it.
* ``C__text`` holds one point per text value (each title, each segment transcript), with its
  parent ``p``, field ``f``, position ``pos``, generation ``g`` and ``t``, its FTS5 terms
  (:mod:`.text`) under a BM25-scored text index: text search is Qdrant's own BM25 (``TextQuery``),
  best row per parent, exactly like the FTS5 rows of the other backends. Rows whose generation is
  not their parent's are leftovers of an interrupted write and are ignored.
* The collection metadata holds the format, schema, config, vector names and settings.

Exactly ``limit`` results whenever ``limit`` documents match: native filters run inside Qdrant's
search. Filters that Qdrant cannot express (order between strings, infinite bounds) are resolved
first, by scanning the candidates that the native part of the filter lets through and checking the
reference semantics in Python; the search then runs on those ids. On a server, a filtered search
that returns fewer than ``min(limit, matching)`` hits (an HNSW traversal cut short) is repeated
exactly. ``aggregate="mean"`` is computed exactly on the client over every matching document.

Writes are idempotent upserts with ``wait=True``, retried on transient errors, in batches of at
most a few MB; the document point is written before its text rows, whose stale predecessors go
last. Qdrant has no transactions: an ``add`` that fails half-way may leave part of its batch
stored, and running it again finishes it. Hybrid search fuses the two native rankings in the base
class: Qdrant's own fusion cannot fuse points of two collections, rank parents, report each
side's score or apply weighted min-max fusion.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson

from polymodal.doc.doclist import DocList
from polymodal.doc.schema import schema_of
from polymodal.errors import BackendError, SchemaError
from polymodal.store import filters as flt
from polymodal.store.base import Aggregate, Capabilities, Hit, Store, T, VectorField
from polymodal.store.flatten import flatten, set_at
from polymodal.store.qdrant import collections, search
from polymodal.store.qdrant import layout as lay
from polymodal.store.qdrant.connection import Connection, parse_uri
from polymodal.store.qdrant.text import Analyzer
from polymodal.store.qdrant.translate import facts_of, translate

__all__ = ["QdrantStore"]

_BATCH_BYTES = 4 << 20
_BATCH_POINTS = 256
_PAGE = 256


class QdrantStore(Store[T]):
    """A store in a Qdrant collection: ``polymodal.open("qdrant://host:6333/clips", schema=Clip)``,
    or embedded Qdrant with ``qdrant+local://path/to/dir/clips``.

    Args:
        uri: see :mod:`polymodal.store.qdrant.connection` for the forms and query options.
        doc_type: the Doc class; needed to create a store, optional to reopen one.
        api_key, timeout, retries, prefer_grpc, pool_size: connection options (override the URI's).
        options: store options (:class:`~polymodal.store.base.StoreConfig`).

    Raises:
        BackendError: the server cannot be reached (the message names the URI, never the key).
        ConfigError: no store there and no schema given, a malformed URI, bad options.
        SchemaError: ``doc_type`` differs from the stored schema.
    """

    capabilities = Capabilities(filter=True, text=True, hybrid=False, nested=True)
    backend = "qdrant"

    def __init__(
        self,
        uri: str,
        doc_type: type[T] | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        prefer_grpc: bool | None = None,
        pool_size: int | None = None,
        **options: Any,
    ) -> None:
        self.target = parse_uri(
            str(uri), api_key=api_key, timeout=timeout, retries=retries, prefer_grpc=prefer_grpc, pool_size=pool_size
        )
        self.uri = self.target.uri
        self._coll = self.target.collection
        self._text = self._coll + lay.TEXT_SUFFIX
        self._conn = Connection(self.target)
        try:
            from qdrant_client import models

            self._m: Any = models
            found, config, names = collections.open_or_create(self._conn, doc_type, options)
            super().__init__(found, config)  # type: ignore[arg-type]  # the stored schema is T's
            self._names: dict[str, str] = names
            self._paths = {name: path for path, name in names.items()}
            self._dims: dict[str, int] = {}
            self._sizes = collections.vector_sizes(self._conn, self._coll)
            self._analyzer = Analyzer()
            if self.text_fields:
                collections.ensure_text(self._conn, self._text)
            for collection in (self._coll, self._text):
                self._conn.tune_local(collection, config.durability)
        except BaseException:
            self._conn.close()
            raise

    # -- dimensions and settings ---------------------------------------------------------------
    def _call(self, what: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self._conn.call(what, fn, *args, **kwargs)

    def _has_vector(self, name: str) -> bool:
        if name not in self._sizes:
            self._sizes = collections.vector_sizes(self._conn, self._coll)  # another process may have added it
        return name in self._sizes

    def _field_dim(self, path: str) -> int | None:
        if path in self._dims:
            return self._dims[path]
        dim = super()._field_dim(path)
        if dim is not None:
            self._dims[path] = dim  # fixed for good once set
        return dim

    def _set_field_dim(self, path: str, dim: int) -> None:
        """Add the named vector of an unsized field when its first vectors arrive."""
        m, name, field = self._m, self._names[path], self.vector_fields[path]
        params = collections.vector_params(field, dim)
        config = m.DenseVectorNameConfig(
            dense=m.DenseVectorConfig(size=dim, distance=params.distance, multivector_config=params.multivector_config)
        )
        try:
            self._call("add vector field", self._conn.client.create_vector_name, self._coll, name, config)
        except BackendError:
            existing = collections.vector_sizes(self._conn, self._coll).get(name)
            if existing is None:
                raise
            if existing != dim:  # another process fixed it first, differently
                raise SchemaError(
                    f"{path}: expected dimension {existing} (the store's), got {dim}", field=path
                ) from None
        self._sizes = collections.vector_sizes(self._conn, self._coll)
        self.set_setting(f"dim:{path}", dim)
        self._dims[path] = dim

    def _get_setting(self, key: str) -> Any:
        raw = collections.metadata(self._conn, self._coll).get(f"setting:{key}")
        return None if raw is None else orjson.loads(raw)

    def _set_setting(self, key: str, value: Any) -> None:
        # values are JSON text, so the server's merge of metadata replaces them whole
        text = orjson.dumps(value).decode()
        self._call("save setting", self._conn.client.update_collection, self._coll, metadata={f"setting:{key}": text})

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        import uuid

        m = self._m
        generation = uuid.uuid4().hex
        points: list[Any] = []
        rows: list[tuple[str, str, str, str]] = []
        for doc in docs:
            flat = flatten(doc, self.text_fields)
            grouped: dict[str, list[tuple[tuple[int, ...], np.ndarray]]] = {}
            for path, pos, vec in flat.vectors:
                grouped.setdefault(path, []).append((pos, vec))
            vectors, stored = {}, {}
            for path, items in grouped.items():
                name = self._names[path]
                vectors[name], stored[name] = lay.encode_vectors(items, self.vector_fields[path])
            facts, ranges = facts_of(doc)
            payload = lay.json_safe(flat.body)
            payload.update({"_v": stored, "_f": facts, "_r": ranges, "_g": generation})
            points.append(m.PointStruct(id=lay.point_id(doc.id), vector=vectors, payload=payload))
            rows.extend((doc.id, path, lay.pos_text(pos), text) for path, pos, text in flat.texts)
        self._upsert(self._coll, points)
        if self.text_fields:
            terms = self._analyzer.terms([text for *_, text in rows])
            self._upsert(
                self._text,
                [
                    m.PointStruct(
                        id=lay.row_id(doc_id, path, pos),
                        vector={},
                        payload={"p": doc_id, "f": path, "pos": pos, "g": generation, "t": " ".join(words)},
                    )
                    for (doc_id, path, pos, _), words in zip(rows, terms, strict=True)
                    if words
                ],
            )
            stale = [m.FieldCondition(key="g", match=m.MatchValue(value=generation))]
            self._delete_rows([d.id for d in docs], must_not=stale)

    def _upsert(self, collection: str, points: list[Any]) -> None:
        batch: list[Any] = []
        size = 0
        for point in points:
            weight = len(orjson.dumps(point.payload)) + 12 * _floats(point.vector)
            if batch and (size + weight > _BATCH_BYTES or len(batch) >= _BATCH_POINTS):
                self._call("upsert", self._conn.client.upsert, collection, points=batch, wait=True)
                batch, size = [], 0
            batch.append(point)
            size += weight
        if batch:
            self._call("upsert", self._conn.client.upsert, collection, points=batch, wait=True)

    def _delete_rows(self, ids: list[str], must_not: list[Any] | None = None) -> None:
        m = self._m
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            selector = m.FilterSelector(
                filter=m.Filter(must=[m.FieldCondition(key="p", match=m.MatchAny(any=chunk))], must_not=must_not)
            )
            self._call("delete", self._conn.client.delete, self._text, points_selector=selector, wait=True)

    def _delete(self, ids: list[str]) -> int:
        m = self._m
        present = {r.payload.get("id") for r in self._retrieve([lay.point_id(i) for i in ids], ["id"])}
        gone = [i for i in ids if i in present]
        for start in range(0, len(ids), 1000):
            chunk = [lay.point_id(i) for i in ids[start : start + 1000]]
            selector = m.PointIdsList(points=chunk)
            self._call("delete", self._conn.client.delete, self._coll, points_selector=selector, wait=True)
        if self.text_fields:
            self._delete_rows(ids)
        return len(gone)

    # -- reads ---------------------------------------------------------------------------------
    def _retrieve(self, pids: list[str], payload: Any = True) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(pids), _PAGE):
            out.extend(
                self._call(
                    "get", self._conn.client.retrieve, self._coll, ids=pids[start : start + _PAGE], with_payload=payload
                )
            )
        return out

    def _scroll(self, collection: str, where: Any, payload: Any = True, page: int = _PAGE) -> Iterator[list[Any]]:
        offset = None
        while True:
            records, offset = self._call(
                "scroll",
                self._conn.client.scroll,
                collection,
                scroll_filter=where,
                limit=page,
                offset=offset,
                with_payload=payload,
                with_vectors=False,
            )
            if records:
                yield records
            if offset is None:
                return

    def _rebuild(self, payload: dict[str, Any]) -> T:
        """A document from its point's payload, vectors put back from ``_v``."""
        body = {k: v for k, v in payload.items() if not k.startswith("_")}
        for name, entry in (payload.get("_v") or {}).items():
            path = self._paths.get(name)
            if path is None:
                continue
            nesting = self.vector_fields[path].nesting
            positions, vectors = lay.decode_vectors(entry)
            for pos, vec in zip(positions, vectors, strict=True):
                set_at(body, path, nesting, pos, vec.copy())
        return self.doc_type.from_dict(body)  # type: ignore[return-value]

    def _get(self, ids: list[str]) -> list[T | None]:
        found: dict[str, T] = {}
        wanted = set(ids)
        for record in self._retrieve([lay.point_id(i) for i in ids]):
            if record.payload and record.payload.get("id") in wanted:
                found[record.payload["id"]] = self._rebuild(record.payload)
        return [found.get(i) for i in ids]

    def _count(self, where: flt.Filter | None) -> int:
        tr = translate(where)
        if tr.empty:
            return 0
        if not tr.exact:
            return len(self._residual(tr.filter, where))
        return int(self._call("count", self._conn.client.count, self._coll, count_filter=tr.filter, exact=True).count)

    def _residual(self, native: Any, where: flt.Filter | None) -> dict[str, str]:
        """Point id -> document id of the documents matching a filter that is not all native:
        the native part narrows the candidates, the reference semantics decide."""
        out: dict[str, str] = {}
        for records in self._scroll(self._coll, native):
            for record in records:
                doc = self._rebuild(record.payload)
                if flt.matches(where, doc):
                    out[str(record.id)] = doc.id
        return out

    def _iter(self, batch_size: int) -> Iterator[list[T]]:
        for records in self._scroll(self._coll, None, True, page=batch_size):
            yield [self._rebuild(r.payload) for r in records]

    def _scan(self, fields: list[str], where: flt.Filter | None) -> Iterator[dict[str, Any]]:
        """Plain scalar fields straight from the payload; others (or a filter checked in Python)
        through the document."""
        tr = translate(where)
        if tr.empty:
            return
        schema = schema_of(self.doc_type)
        kinds = {f: schema[f].scalar for f in fields if f != "id" and schema[f].kind == "scalar"}
        if tr.exact and len(kinds) == len(fields) - 1:
            include = self._m.PayloadSelectorInclude(include=fields)
            for records in self._scroll(self._coll, tr.filter, include, 1000):
                for record in records:
                    yield {f: _plain(kinds.get(f), record.payload.get(f)) for f in fields}
            return
        for records in self._scroll(self._coll, tr.filter):
            for record in records:
                doc = self._rebuild(record.payload)
                if tr.exact or flt.matches(where, doc):
                    yield {f: getattr(doc, f) for f in fields}

    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]:
        return search.vector_search(self, field, queries, limit, where, aggregate, exact)

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        return search.text_search(self, text, field, limit, where, mode)

    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        name = self._names[field.path]
        dim = self._dim_of(field) or 0
        rows: list[np.ndarray] = []
        if self._has_vector(name):
            m = self._m
            has = m.Filter(must=[m.HasVectorCondition(has_vector=name)])
            for records in self._scroll(self._coll, has, m.PayloadSelectorInclude(include=[f"_v.{name}"]), 1000):
                rows.extend(lay.decode_vectors(r.payload["_v"][name])[1] for r in records)
        arr = np.concatenate(rows) if rows else np.zeros((0, dim), np.float32)
        if len(arr) > n:
            arr = arr[np.sort(np.random.default_rng(seed).choice(len(arr), n, replace=False))]
        return lay.unit(arr) if field.metric == "cosine" and len(arr) else arr

    # -- lifecycle -----------------------------------------------------------------------------
    def _close(self) -> None:
        try:
            self._analyzer.close()
        finally:
            self._conn.close()

    def __repr__(self) -> str:
        return f"<QdrantStore {self.doc_type.__name__} at {self.uri}>"


def _plain(scalar: str | None, value: Any) -> Any:
    """A scalar as the body holds it, as its Python value (the inverse of flatten's encoding)."""
    if value is None or scalar is None:
        return value
    if scalar == "float":
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        return special[value] if isinstance(value, str) else float(value)
    if scalar == "int":
        return int(value)
    if scalar == "bool":
        return bool(value)
    return value


def _floats(vector: Any) -> int:
    if isinstance(vector, dict):
        return sum(_floats(v) for v in vector.values())
    if isinstance(vector, list):
        return sum(_floats(v) for v in vector) if vector and isinstance(vector[0], list) else len(vector)
    return 0
