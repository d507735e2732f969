"""Argument checks of the :class:`~polymodal.store.base.Store` contract, kept apart from it.

Every public store method checks what it is given here before a backend hook sees it:
documents (type, vector dimensions, fixed on first use), queries (field, dimension, NaN,
zero vectors), filters (syntax, and fields a filter can test), capabilities, and whether
the store is still open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic

import numpy as np

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList, doclist_of
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError, SchemaError, UnsupportedOperation
from polymodal.store import filters as flt
from polymodal.store.types import Capabilities, T, VectorField, _values_at

__all__ = ["StoreChecks"]

_F32 = np.dtype(np.float32)


class StoreChecks(Generic[T]):
    """The checking half of :class:`~polymodal.store.base.Store` (a mixin it inherits): the
    helpers its public methods, and backends, call on their arguments."""

    capabilities: ClassVar[Capabilities]
    backend: ClassVar[str]
    doc_type: type[T]
    vector_fields: dict[str, VectorField]
    _closed: bool

    if TYPE_CHECKING:  # defined by Store

        def _get_setting(self, key: str) -> Any: ...

        def set_setting(self, key: str, value: Any) -> None: ...

    # -- documents -----------------------------------------------------------------------------
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

    # -- open state, capabilities, filters and queries -----------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError("this store is closed; open it again with polymodal.open(...)")

    def _require(self, capability: str) -> None:
        if not getattr(self.capabilities, capability):
            raise UnsupportedOperation(
                f"the {self.backend} backend does not support {capability} search", capability=capability
            )

    def _filter(self, where: Mapping[str, Any] | None) -> flt.Filter | None:
        if where is None:
            return None
        if not self.capabilities.filter:
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
        if vf.dim is not None:
            return vf.dim
        known: dict[str, int] = self.__dict__.setdefault("_known_dims", {})
        dim = known.get(vf.path)
        if dim is None:
            dim = self._field_dim(vf.path)
            if dim is not None:  # fixed once and for ever (see _check_dims): ask the backend once
                known[vf.path] = dim
        return dim

    def _query_matrix(self, queries: Sequence[Any] | np.ndarray, field: str | None) -> tuple[VectorField, np.ndarray]:
        if type(queries) is list and len(queries) == 1:
            checked = self._one_query(queries[0], field)
            if checked is not None:
                return checked
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

    def _one_query(self, q: Any, field: str | None) -> tuple[VectorField, np.ndarray] | None:
        """The checks of :meth:`_query_matrix` for the usual single query (a float32 vector of
        the right size), with the same arithmetic, in a few microseconds; None for anything
        else, which the general path then checks (and refuses with its messages)."""
        if type(q) is not np.ndarray or q.ndim != 1 or (q.dtype is not _F32 and q.dtype != _F32):
            return None
        vf = self.vector_fields.get(field) if field is not None else None
        if vf is None:
            if field is not None or len(self.vector_fields) != 1:
                return None
            vf = next(iter(self.vector_fields.values()))
        if q.shape[0] != (vf.dim if vf.dim is not None else self._dim_of(vf)):
            return None
        q64 = q.astype(np.float64)
        squares = float(np.add.reduce(q64 * q64))  # as np.linalg.norm(axis=1) sums them
        if not (squares > 0 and math.isfinite(squares)):  # NaN, infinity or zero: the general path says which
            return None
        if vf.metric == "cosine":
            return vf, (q64 / math.sqrt(squares)).astype(np.float32)[None]
        return vf, np.ascontiguousarray(q)[None]

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
