"""The one ``Store`` contract every backend implements, and what it returns.

The public methods here check arguments once (document types, query dimensions, NaN, filter
syntax and fields, capabilities) and then call the backend's ``_hooks``, so a backend never sees
malformed input and an unsupported call fails before anything is done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, ClassVar, Generic, Literal, TypeVar, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList, doclist_of
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError, SchemaError, UnsupportedOperation
from polymodal.search.fusion import Fusion, fuse
from polymodal.store import filters as flt

__all__ = ["Capabilities", "Hit", "Metric", "Store", "StoreConfig", "VectorField", "vector_fields"]

T = TypeVar("T", bound=Doc)
Metric = Literal["cosine", "ip", "l2"]
Aggregate = Literal["max", "mean"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    Attributes:
        id: the top-level document's id.
        score: higher is better (cosine similarity, inner product, minus the L2 distance,
            BM25, or a fused score).
        doc: the document.
        match: for a search over nested documents, the best matching sub-document (a video
            segment, with its ``start``/``end``); None for top-level matches.
        field: the vector or text field that matched, such as ``"segments.embedding"``.
        snippet: for text matches, the matching text with the query terms marked.
        scores: for fused results, each component's own score.
    """

    id: str
    score: float
    doc: Doc
    match: Doc | None = None
    field: str | None = None
    snippet: str | None = None
    scores: Mapping[str, float] = dc_field(default_factory=dict)

    @property
    def start(self) -> float | None:
        """The matched sub-document's ``start`` (seconds), when it has one."""
        return getattr(self.match, "start", None) if self.match is not None else None

    @property
    def end(self) -> float | None:
        return getattr(self.match, "end", None) if self.match is not None else None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; the base class refuses other calls up front.

    ``hybrid`` means the engine ranks vector and text together natively; without it,
    :meth:`Store.hybrid_search` still works, fusing the two result lists in Python.
    """

    filter: bool = True
    text: bool = False
    hybrid: bool = False
    nested: bool = True
    metrics: tuple[str, ...] = ("cosine", "ip", "l2")


@dataclass(frozen=True, slots=True)
class VectorField:
    """A searchable vector field: its dotted path, the nested lists above it, dimension, metric."""

    path: str
    dim: int | None
    metric: Metric
    nesting: tuple[str, ...]  # the DocList fields traversed, e.g. ("segments",) for segments.embedding

    @property
    def nested(self) -> bool:
        return bool(self.nesting)


class StoreConfig(BaseModel):
    """Options of a store, saved with it. Structural options (``metric``, ``text_fields``,
    ``hnsw_m``, ``hnsw_ef_construction``) cannot change on reopen; the others (``ef_search``,
    ``exact_threshold``, ``durability``) can."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric | dict[str, Metric] = Field("cosine", description="One metric, or one per vector field path.")
    text_fields: tuple[str, ...] | None = Field(None, description="Text paths for BM25; default: every str field.")
    hnsw_m: int = Field(16, ge=4, le=128)
    hnsw_ef_construction: int = Field(200, ge=8)
    ef_search: int = Field(64, ge=1)
    exact_threshold: int = Field(
        10_000_000, ge=0, description="Exact search when candidates x dim is at most this (about 20k x 512)."
    )
    durability: Literal["normal", "full"] = "normal"

    STRUCTURAL: ClassVar[tuple[str, ...]] = ("metric", "text_fields", "hnsw_m", "hnsw_ef_construction")

    def metric_for(self, path: str) -> Metric:
        if isinstance(self.metric, str):
            return self.metric
        return self.metric.get(path, "cosine")


def vector_fields(doc_type: type[Doc], config: StoreConfig) -> dict[str, VectorField]:
    """Every Vector field of a schema, nested ones included, keyed by dotted path."""
    out: dict[str, VectorField] = {}

    def walk(cls: type[Doc], prefix: str, nesting: tuple[str, ...]) -> None:
        for spec in schema_of(cls).fields:
            path = f"{prefix}{spec.name}"
            if spec.kind == "vector" and spec.tensor is not None:
                dim = spec.tensor.shape[0] if spec.tensor.shape else None
                out[path] = VectorField(path, dim if isinstance(dim, int) else None, config.metric_for(path), nesting)
            elif spec.kind == "docs" and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.", (*nesting, path))
            elif spec.kind == "doc" and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.", nesting)

    walk(doc_type, "", ())
    if isinstance(config.metric, dict):
        unknown = set(config.metric) - set(out)
        if unknown:
            raise ConfigError(
                f"metric given for unknown vector field(s) {sorted(unknown)}; vector fields: {sorted(out)}"
            )
    return out


def text_paths(doc_type: type[Doc], config: StoreConfig) -> tuple[str, ...]:
    """The str fields indexed for BM25 (every str field but ids, unless configured)."""
    found: list[str] = []

    def walk(cls: type[Doc], prefix: str) -> None:
        for spec in schema_of(cls).fields:
            path = f"{prefix}{spec.name}"
            if spec.scalar == "str" and spec.name != "id":
                found.append(path)
            elif spec.kind in ("docs", "doc") and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.")

    walk(doc_type, "")
    if config.text_fields is None:
        return tuple(found)
    unknown = set(config.text_fields) - set(found)
    if unknown:
        raise ConfigError(f"text_fields {sorted(unknown)} are not str fields; str fields: {found}")
    return tuple(config.text_fields)


class Store(ABC, Generic[T]):
    """A collection of documents of one schema, searchable by vector, text, filter and both.

    Open one with :func:`polymodal.open`. All methods take and return documents of
    ``store.doc_type``; results are best-first lists of :class:`Hit`.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()
    backend: ClassVar[str] = "base"

    def __init__(self, doc_type: type[T], config: StoreConfig) -> None:
        self.doc_type = doc_type
        self.config = config
        self.vector_fields = vector_fields(doc_type, config)
        self.text_fields = text_paths(doc_type, config)
        for vf in self.vector_fields.values():
            if vf.metric not in self.capabilities.metrics:
                raise UnsupportedOperation(
                    f"the {self.backend} backend does not support metric {vf.metric!r}",
                    capability=f"metric:{vf.metric}",
                )
        self._closed = False

    # -- writing -------------------------------------------------------------------------------
    def add(self, docs: T | Iterable[T | dict[str, Any]]) -> None:
        """Insert documents, replacing any stored document with the same id (upsert).

        The call is atomic: when it returns, every document is stored (durably, for persistent
        backends); when it raises, none is. Inputs are not modified.

        Raises:
            SchemaError: a document is not of the store's schema, or a vector has the wrong
                dimension or is not finite.
        """
        self._check_open()
        batch = self._coerce(docs)
        if batch:
            ids = [d.id for d in batch]
            if len(set(ids)) != len(ids):  # last one wins, as if added one by one
                last = {d.id: d for d in batch}
                batch = doclist_of(self.doc_type)._wrap(list(last.values()))
            self._check_dims(batch)
            self._add(batch)

    def _coerce(self, docs: T | Iterable[T | dict[str, Any]]) -> DocList[T]:
        if isinstance(docs, Doc):
            docs = [docs]  # type: ignore[list-item]
        if isinstance(docs, (str, bytes, Mapping)):
            raise SchemaError(f"add() takes documents or a list of them, got {type(docs).__name__}")
        rows: DocList[T] = doclist_of(self.doc_type)(docs)  # type: ignore[arg-type]
        return rows

    def _check_dims(self, docs: Sequence[Doc]) -> None:
        """Fix the dimension of un-sized ``Vector`` fields on first use and hold them to it.

        The whole batch is checked before a first dimension is recorded, so a rejected batch
        fixes nothing.
        """
        new: dict[str, int] = {}
        for vf in self.vector_fields.values():
            if vf.dim is not None:
                continue
            stored = self._field_dim(vf.path)
            seen = stored
            for doc in docs:
                for vec in _values_at(doc, vf.path.split(".")):
                    if seen is None:
                        seen = len(vec)
                    elif len(vec) != seen:
                        whose = "the store's" if stored is not None else "the batch's first vector's"
                        raise SchemaError(
                            f"{vf.path}: expected dimension {seen} ({whose}), got {len(vec)}", field=vf.path
                        )
            if stored is None and seen is not None:
                new[vf.path] = seen
        for path, dim in new.items():
            self._set_field_dim(path, dim)

    def _field_dim(self, path: str) -> int | None:
        value = self._get_setting(f"dim:{path}")  # internal: also used while closing
        return int(value) if value is not None else None

    def _set_field_dim(self, path: str, dim: int) -> None:
        self.set_setting(f"dim:{path}", dim)

    def delete(self, ids: str | Iterable[str]) -> int:
        """Delete documents by id; ids that are not stored are ignored. Returns how many went."""
        self._check_open()
        id_list = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))
        return self._delete(id_list) if id_list else 0

    # -- reading -------------------------------------------------------------------------------
    @overload
    def get(self, ids: str) -> T: ...  # type: ignore[overload-overlap]

    @overload
    def get(self, ids: Sequence[str]) -> DocList[T]: ...

    def get(self, ids: str | Sequence[str]) -> T | DocList[T]:
        """One document by id, or a DocList in the order of ``ids``.

        Raises:
            NotFoundError: an id is not stored (the message lists up to 5 missing ids).
        """
        from polymodal.errors import NotFoundError

        self._check_open()
        single = isinstance(ids, str)
        id_list: list[str] = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        found = self._get(id_list) if id_list else []
        missing = [i for i, d in zip(id_list, found, strict=True) if d is None]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            raise NotFoundError(f"no document with id {shown}" + (" ..." if len(missing) > 5 else ""), ids=missing)
        if single:
            return found[0]  # type: ignore[return-value]
        return doclist_of(self.doc_type)._wrap(found)

    def count(self, where: Mapping[str, Any] | None = None) -> int:
        """How many documents are stored (that match ``where``)."""
        self._check_open()
        return self._count(self._filter(where))

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[T]:
        self._check_open()
        for batch in self._iter(1000):
            yield from batch

    def scan(self, fields: Sequence[str], *, where: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Selected top-level fields of every (matching) document, as dicts with ``id``.

        Cheaper than loading documents when only a few plain fields are needed (incremental
        indexing reads paths and modification times this way).
        """
        self._check_open()
        names = ["id", *(f for f in fields if f != "id")]
        for f in names:
            if f not in self.doc_type.model_fields:
                raise SchemaError(f"unknown field {f!r}; fields: {', '.join(self.doc_type.model_fields)}", field=f)
        yield from self._scan(names, self._filter(where))

    def sample_vectors(self, field: str, n: int = 2000, *, seed: int = 0) -> np.ndarray:
        """Up to ``n`` stored vectors of a field, chosen at random, as scored (unit length for
        cosine fields): the data behind score calibration and embedding plots."""
        self._check_open()
        vf = self._pick_field(field, None)
        return self._sample_vectors(vf, n, seed)

    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        """Default: walk the documents (backends with vector access do better)."""
        rows: list[np.ndarray] = []
        for batch in self._iter(1000):
            for doc in batch:
                rows.extend(np.asarray(v, np.float32) for v in _values_at(doc, field.path.split(".")))
        dim = self._dim_of(field) or 0
        arr = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
        if len(arr) > n:
            arr = arr[np.random.default_rng(seed).choice(len(arr), n, replace=False)]
        if field.metric == "cosine" and len(arr):
            norms = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)  # float32 squares overflow near 1e19
            arr = arr / np.where(norms == 0, 1, norms)
        return arr

    def _scan(self, fields: list[str], where: flt.Filter | None) -> Iterator[dict[str, Any]]:
        """Default: load documents and pick fields; backends may read the fields directly."""
        for batch in self._iter(1000):
            for doc in batch:
                if where is None or flt.matches(where, doc):
                    yield {f: getattr(doc, f) for f in fields}

    def iter_batches(self, batch_size: int = 1000) -> Iterator[DocList[T]]:
        """Every stored document, ``batch_size`` at a time (bounded memory)."""
        self._check_open()
        for batch in self._iter(batch_size):
            yield doclist_of(self.doc_type)._wrap(batch)

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        query: Any,
        *,
        field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        aggregate: Aggregate = "max",
        exact: bool | None = None,
    ) -> list[Hit]:
        """Nearest documents to a vector (or to a document's vector in ``field``).

        A search over a nested field (``"segments.embedding"``) ranks parent documents by their
        best sub-document (``aggregate="max"``) or the mean over them, with that sub-document in
        ``Hit.match``. ``where`` filters before ranking: ``limit`` hits come back whenever
        ``limit`` documents match. ``exact=None`` picks exact or ANN by expected speed.

        Raises:
            SchemaError: wrong dimension, NaN or infinity, or an unknown field.
            ConfigError: a malformed filter, or ``field`` needed but not given.
        """
        return self.search_batch([query], field=field, limit=limit, where=where, aggregate=aggregate, exact=exact)[0]

    def search_batch(
        self,
        queries: Sequence[Any] | np.ndarray,
        *,
        field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        aggregate: Aggregate = "max",
        exact: bool | None = None,
    ) -> list[list[Hit]]:
        """:meth:`search` for many queries at once (one result list per query)."""
        self._check_open()
        if limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit}")
        if aggregate not in ("max", "mean"):
            raise ConfigError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")
        if not len(queries):
            return []
        vf, matrix = self._query_matrix(queries, field)
        return self._vector_search(vf, matrix, limit, self._filter(where), aggregate, exact)

    def text_search(
        self,
        text: str,
        *,
        field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        mode: Literal["any", "all"] = "any",
    ) -> list[Hit]:
        """BM25 full-text search over the store's text fields (or one ``field``).

        ``mode="any"`` ranks documents containing any query word; ``"all"`` requires every word.
        Nested text (segment transcripts, passages) ranks its parent, with the sub-document in
        ``Hit.match``.
        """
        self._check_open()
        self._require("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("the text query is empty: give some words to search for")
        if field is not None and field not in self.text_fields:
            raise SchemaError(
                f"{field!r} is not a text-indexed field; text fields: {list(self.text_fields)}", field=field
            )
        if limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit}")
        if mode not in ("any", "all"):
            raise ConfigError(f"mode must be 'any' or 'all', got {mode!r}")
        return self._text_search(text, field, limit, self._filter(where), mode)

    def hybrid_search(
        self,
        *,
        vector: Any,
        text: str,
        field: str | None = None,
        text_field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        fusion: Fusion = "rrf",
        weights: tuple[float, float] = (0.5, 0.5),
        rrf_k: float = 60.0,
        candidates: int | None = None,
    ) -> list[Hit]:
        """Vector and BM25 results fused by reciprocal rank (``fusion="rrf"``) or by weighted
        min-max normalised scores (``"weighted"``, ``weights=(vector, text)``).

        Each side contributes its top ``candidates`` (default ``max(50, 5 * limit)``); each hit
        reports both component scores in ``Hit.scores``.
        """
        self._check_open()
        self._require("text")
        if fusion not in ("rrf", "weighted"):
            raise ConfigError(f"unknown fusion {fusion!r}; use 'rrf' or 'weighted'")
        depth = candidates or max(50, 5 * limit)
        vec_hits = self.search(vector, field=field, limit=depth, where=where)
        txt_hits = self.text_search(text, field=text_field, limit=depth, where=where)
        by_id: dict[str, Hit] = {h.id: h for h in txt_hits}
        by_id.update({h.id: h for h in vec_hits})  # prefer the vector hit's match (a segment)
        ranked = {"vector": [(h.id, h.score) for h in vec_hits], "text": [(h.id, h.score) for h in txt_hits]}
        fused = fuse(ranked, method=fusion, weights={"vector": weights[0], "text": weights[1]}, k=rrf_k)
        snippets = {h.id: h.snippet for h in txt_hits}
        out = []
        for item in fused[:limit]:
            base = by_id[item.key]
            out.append(
                Hit(
                    id=base.id,
                    score=item.score,
                    doc=base.doc,
                    match=base.match,
                    field=base.field,
                    snippet=snippets.get(item.key),
                    scores=dict(item.parts),
                )
            )
        return out

    # -- settings (embedder configs and other small facts saved with the store) ----------------
    def get_setting(self, key: str) -> Any:
        """A JSON value saved with :meth:`set_setting`, or None."""
        self._check_open()
        return self._get_setting(key)

    def set_setting(self, key: str, value: Any) -> None:
        """Save a small JSON value with the store (for example the embedder that made its vectors)."""
        self._check_open()
        self._set_setting(key, value)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Flush and release resources; further calls raise. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Store[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.doc_type.__name__} backend={self.backend}>"

    # -- helpers for subclasses ----------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this store is closed; open it again with polymodal.open(...)")

    def _require(self, capability: str) -> None:
        if not getattr(self.capabilities, capability):
            raise UnsupportedOperation(
                f"the {self.backend} backend does not support {capability} search", capability=capability
            )

    def _filter(self, where: Mapping[str, Any] | None) -> flt.Filter | None:
        if where is not None and not self.capabilities.filter:
            self._require("filter")
        parsed = flt.parse(where, fields=self.doc_type.model_fields.keys())
        for path in flt.fields_of(parsed):
            kind = self._path_kind(path)
            if kind in ("vector", "tensor", "bytes"):
                raise SchemaError(
                    f"{path!r} is a {kind} field, which filters cannot test; filter on plain fields "
                    "(numbers, text, booleans, dates, lists of them)",
                    field=path,
                )
        return parsed

    def _path_kind(self, path: str) -> str | None:
        """The kind of the field a dotted path ends at (None inside plain dict/list fields)."""
        cls: type[Doc] | None = self.doc_type
        parts = path.split(".")
        for i, part in enumerate(parts):
            spec = schema_of(cls).by_name.get(part) if cls is not None else None
            if spec is None:
                return None
            if i == len(parts) - 1:
                return spec.kind
            cls = spec.doc_type if spec.kind in ("docs", "doc") else None
        return None

    def _pick_field(self, field: str | None, dim: int | None) -> VectorField:
        if field is not None:
            if field not in self.vector_fields:
                raise SchemaError(
                    f"{field!r} is not a vector field; vector fields: {sorted(self.vector_fields)}", field=field
                )
            return self.vector_fields[field]
        if not self.vector_fields:
            raise SchemaError(f"{self.doc_type.__name__} has no Vector field to search")
        if len(self.vector_fields) == 1:
            return next(iter(self.vector_fields.values()))
        fitting = [vf for vf in self.vector_fields.values() if dim is None or self._dim_of(vf) in (None, dim)]
        if not fitting:
            dims = ", ".join(f"{vf.path} ({self._dim_of(vf) or 'unsized'})" for vf in self.vector_fields.values())
            raise SchemaError(f"no vector field has dimension {dim}; fields: {dims}")
        top = [vf for vf in fitting if not vf.nested]
        if len(top) == 1:
            return top[0]
        raise ConfigError(
            f"several vector fields could answer this query; pass field= one of {sorted(self.vector_fields)}"
        )

    def _dim_of(self, vf: VectorField) -> int | None:
        return vf.dim if vf.dim is not None else self._field_dim(vf.path)

    def _query_matrix(self, queries: Sequence[Any] | np.ndarray, field: str | None) -> tuple[VectorField, np.ndarray]:
        if isinstance(queries, np.ndarray) and queries.ndim == 2:
            rows = queries
        else:
            rows = np.stack([self._query_vector(q, field) for q in queries]) if len(queries) else np.zeros((0, 0))
        rows = np.asarray(rows, dtype=np.float32)
        vf = self._pick_field(field, rows.shape[1] if rows.ndim == 2 else None)
        dim = self._dim_of(vf)
        if rows.ndim != 2 or (dim is not None and rows.shape[1] != dim):
            got = rows.shape[1:] if rows.ndim == 2 else rows.shape
            raise SchemaError(f"query for {vf.path!r} must have dimension {dim}, got shape {got}", field=vf.path)
        if not np.isfinite(rows).all():
            raise SchemaError(f"query for {vf.path!r} contains NaN or infinity", field=vf.path)
        if vf.metric == "cosine":
            norms = np.linalg.norm(rows.astype(np.float64), axis=1, keepdims=True)
            if np.any(norms == 0):
                raise SchemaError("a zero query vector has no direction for cosine search", field=vf.path)
            rows = rows / norms
        return vf, np.ascontiguousarray(rows, dtype=np.float32)

    def _query_vector(self, query: Any, field: str | None) -> np.ndarray:
        if isinstance(query, Doc):
            vf = self._pick_field(field, None)
            if vf.nested:
                raise ConfigError("a document query needs a top-level vector field; pass its vector instead")
            value = getattr(query, vf.path.split(".")[0], None)
            for part in vf.path.split(".")[1:]:
                value = getattr(value, part, None)
            if value is None:
                raise SchemaError(f"the query document has no {vf.path!r} vector", field=vf.path)
            return np.asarray(value, dtype=np.float32)
        if isinstance(query, str):
            raise ConfigError(
                "Store.search takes a vector; for words use text_search(), or embed them first: "
                "polymodal.embed.load(...).embed_one(text)"
            )
        from polymodal.doc.tensor import to_numpy

        try:
            arr = to_numpy(query)
        except Exception as exc:  # noqa: BLE001 - pydantic error types vary; one clear message
            raise SchemaError(f"cannot use {type(query).__name__} as a query vector: {exc}") from None
        if arr.ndim != 1 or arr.dtype.kind not in "iuf":
            raise SchemaError(f"a query vector must be 1-D numeric, got shape {arr.shape} and dtype {arr.dtype}")
        return arr.astype(np.float32)

    def nesting_of(self, path: str) -> tuple[str, ...]:
        """The nested-list fields above a dotted path (``segments.transcript`` -> ``("segments",)``)."""
        nesting: list[str] = []
        cls: type[Doc] | None = self.doc_type
        walked = ""
        for part in path.split(".")[:-1]:
            walked = f"{walked}.{part}" if walked else part
            spec = schema_of(cls).by_name.get(part) if cls is not None else None
            if spec is None:
                break
            if spec.kind == "docs":
                nesting.append(walked)
            cls = spec.doc_type
        return tuple(nesting)

    # -- backend hooks -------------------------------------------------------------------------
    @abstractmethod
    def _add(self, docs: DocList[T]) -> None: ...

    @abstractmethod
    def _get(self, ids: list[str]) -> list[T | None]: ...

    @abstractmethod
    def _delete(self, ids: list[str]) -> int: ...

    @abstractmethod
    def _count(self, where: flt.Filter | None) -> int: ...

    @abstractmethod
    def _iter(self, batch_size: int) -> Iterator[list[T]]: ...

    @abstractmethod
    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]: ...

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        raise UnsupportedOperation(f"the {self.backend} backend does not support text search", capability="text")

    @abstractmethod
    def _get_setting(self, key: str) -> Any: ...

    @abstractmethod
    def _set_setting(self, key: str, value: Any) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...


def _values_at(obj: Any, parts: list[str]) -> list[Any]:
    """Every non-None value at a dotted path through nested documents."""
    if obj is None:
        return []
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, parts)]
    value = getattr(obj, parts[0], None)
    if len(parts) == 1:
        return [] if value is None else [value]
    return _values_at(value, parts[1:])


def match_at(doc: Doc, nesting: Sequence[str], pos: Sequence[int]) -> Doc | None:
    """The sub-document at positions ``pos`` along the nested list fields ``nesting``."""
    node: Any = doc
    prev = ""
    for path, i in zip(nesting, pos, strict=True):
        rel = path[len(prev) + 1 :] if prev else path
        for part in rel.split("."):
            node = getattr(node, part, None)
            if node is None:
                return None
        if not isinstance(node, list) or not 0 <= i < len(node):
            return None
        node = node[i]
        prev = path
    return node if isinstance(node, Doc) else None
