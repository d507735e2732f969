"""The one ``Store`` contract every backend implements, and what it returns.

The public methods here check arguments once (document types, query dimensions, NaN, filter
syntax and fields, capabilities) and then call the backend's ``_hooks``, so a backend never sees
malformed input and an unsupported call fails before anything is done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, overload

import numpy as np

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList, doclist_of
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError, SchemaError, UnsupportedOperation
from polymodal.search.fusion import Fusion, fuse
from polymodal.store import filters as flt
from polymodal.store.checks import StoreChecks
from polymodal.store.types import Aggregate as Aggregate
from polymodal.store.types import Capabilities, Hit, Metric, StoreConfig, VectorField, vector_fields
from polymodal.store.types import T as T
from polymodal.store.types import _values_at as _values_at
from polymodal.store.types import match_at as match_at
from polymodal.store.types import ranked_hits as ranked_hits
from polymodal.store.types import text_paths as text_paths

__all__ = ["Capabilities", "Hit", "Metric", "Store", "StoreConfig", "VectorField", "vector_fields"]


class Store(StoreChecks[T], ABC):
    """A collection of documents of one schema, searchable by vector, text, filter and both.

    Open one with :func:`polymodal.open`. All methods take and return documents of
    ``store.doc_type``; results are best-first lists of :class:`Hit`. The argument checks
    (``_check_open``, ``_filter``, ``_query_matrix`` ...) come from :class:`StoreChecks`.
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
        self._check_search(limit, aggregate)
        if not len(queries):
            return []
        vf, matrix = self._query_matrix(queries, field)
        return self._vector_search(vf, matrix, limit, self._filter(where), aggregate, exact)

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
        """:meth:`search` without the documents: ``(id, score)`` pairs, best first.

        The same ranking as :meth:`search` (same filters, nested aggregation and exact/ANN
        choice), for callers that need only which documents match (recommendation lists,
        deduplication, evaluation, fusion of several searches): no document is read or
        validated, which on the embedded store makes a query several times cheaper.
        """
        self._check_search(limit, aggregate)
        vf, matrix = self._query_matrix([query], field)
        return self._vector_search_ids(vf, matrix, limit, self._filter(where), aggregate, exact)[0]

    def search_ids_batch(
        self,
        queries: Sequence[Any] | np.ndarray,
        *,
        field: str | None = None,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        aggregate: Aggregate = "max",
        exact: bool | None = None,
    ) -> list[list[tuple[str, float]]]:
        """:meth:`search_ids` for many queries at once (one list per query)."""
        self._check_search(limit, aggregate)
        if not len(queries):
            return []
        vf, matrix = self._query_matrix(queries, field)
        return self._vector_search_ids(vf, matrix, limit, self._filter(where), aggregate, exact)

    def _check_search(self, limit: int, aggregate: str) -> None:
        self._check_open()
        if limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit}")
        if aggregate not in ("max", "mean"):
            raise ConfigError(f"aggregate must be 'max' or 'mean', got {aggregate!r}")

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

    def _vector_search_ids(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[tuple[str, float]]]:
        """The ranking of :meth:`_vector_search` without documents. This default reads them
        anyway; backends override it with a path that does not."""
        ranked = self._vector_search(field, queries, limit, where, aggregate, exact)
        return [[(h.id, h.score) for h in hits] for hits in ranked]

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        raise UnsupportedOperation(f"the {self.backend} backend does not support text search", capability="text")

    @abstractmethod
    def _get_setting(self, key: str) -> Any: ...

    @abstractmethod
    def _set_setting(self, key: str, value: Any) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...
