"""``DocVec[T]``: documents stored column-wise.

Each tensor or vector field whose rows all share one shape and dtype is one contiguous array of
shape ``(n, *shape)``; other fields are Python lists; a nested ``DocList[Sub]`` field is one
flattened ``DocVec[Sub]`` over every sub-document plus row offsets (the Arrow list layout), so
the segment vectors of a whole batch of videos are again one array.

Rows (``vec[i]``) are documents whose tensors are zero-copy views into the columns: writing into
``vec[i].embedding[...]`` changes the column. Reassigning a field of a row does not; assign
``vec[i] = doc`` or a whole column (``vec.title = [...]``) instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import TypeAdapter, ValidationError

from polymodal.doc.base import Doc, schema_error
from polymodal.doc.doclist import DocList, doclist_of, parametrize
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import SchemaError

__all__ = ["DocVec", "NestedColumn"]

T = TypeVar("T", bound=Doc)


@dataclass(slots=True)
class NestedColumn:
    """A ``DocList[Sub]`` field, flattened: rows ``i`` own ``child[offsets[i]:offsets[i+1]]``."""

    child: DocVec[Any]
    offsets: np.ndarray  # int64, n + 1
    present: np.ndarray  # bool, n: False where the field is None

    def row(self, i: int) -> DocVec[Any] | None:
        if not self.present[i]:
            return None
        part: DocVec[Any] = self.child[int(self.offsets[i]) : int(self.offsets[i + 1])]
        return part

    def take(self, rows: np.ndarray) -> NestedColumn:
        counts = self.offsets[1:] - self.offsets[:-1]
        spans = [np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows]
        picked = np.concatenate(spans).astype(np.int64) if spans else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts[rows])]).astype(np.int64)
        return NestedColumn(self.child._take(picked), offsets, self.present[rows].copy())

    def slice(self, start: int, stop: int) -> NestedColumn:
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        return NestedColumn(self.child[lo:hi], self.offsets[start : stop + 1] - lo, self.present[start:stop])


Column = np.ndarray | list[Any] | NestedColumn


def docvec_of(doc_type: type[Doc]) -> type[DocVec[Any]]:
    """``DocVec[doc_type]`` for a doc type known only at run time (keeps type checkers calm)."""
    cls: type[DocVec[Any]] = parametrize(DocVec, doc_type)
    return cls


class DocVec(Generic[T]):
    """Documents of one schema stored column by column.

    >>> import numpy as np, polymodal as pm
    >>> class Item(pm.Doc):
    ...     embedding: pm.Vector[4]
    >>> vec = pm.DocVec[Item]([Item(embedding=np.ones(4)) for _ in range(3)])
    >>> vec.embedding.shape
    (3, 4)
    >>> np.shares_memory(vec[1].embedding, vec.embedding)
    True
    """

    doc_type: ClassVar[type[Doc] | None] = None

    def __class_getitem__(cls, item: Any) -> Any:
        if isinstance(item, type) and issubclass(item, Doc):
            return parametrize(cls, item)
        return super().__class_getitem__(item)  # type: ignore[misc]

    def __init__(self, docs: Iterable[T | dict[str, Any]] = ()) -> None:
        dt = self._type()
        rows = docs if isinstance(docs, DocList) and docs.doc_type is dt else doclist_of(dt)(docs)
        self._n = len(rows)
        self._cols: dict[str, Column] = {}
        for spec in schema_of(dt).fields:
            values = [d.__dict__[spec.name] for d in rows]
            self._cols[spec.name] = _build_column(spec, values)

    @classmethod
    def _type(cls) -> type[Doc]:
        if cls.doc_type is None:
            raise SchemaError("name the schema: DocVec[MyDoc](...)")
        return cls.doc_type

    @classmethod
    def from_columns(cls, columns: dict[str, Any], *, n: int | None = None, validate: bool = True) -> DocVec[T]:
        """Build from one value per field: arrays of shape ``(n, ...)``, lists, or
        ``NestedColumn``. Missing ``id`` values are generated; other missing fields use defaults.

        Raises:
            SchemaError: unknown field, columns of different lengths, or invalid values.
        """
        schema = schema_of(cls._type())
        unknown = set(columns) - set(schema.by_name)
        if unknown:
            raise SchemaError(
                f"unknown field(s) {sorted(unknown)} for {cls._type().__name__}", field=sorted(unknown)[0]
            )
        lengths = {name: _col_len(col) for name, col in columns.items()}
        if n is not None:
            lengths.setdefault("<n>", n)
        if len(set(lengths.values())) > 1:
            raise SchemaError(f"columns have different lengths: {lengths}")
        n = next(iter(lengths.values()), 0)
        out = cls.__new__(cls)
        out._n = n
        out._cols = {}
        for spec in schema.fields:
            if spec.name in columns:
                col = columns[spec.name]
                out._cols[spec.name] = _validate_column(spec, col, cls._type()) if validate else col
            else:
                out._cols[spec.name] = _default_column(spec, n, cls._type())
        return out

    # -- sizes and rows ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    @property
    def nbytes(self) -> int:
        """Bytes held by tensor columns (nested ones included); lists are not counted."""
        total = 0
        for col in self._cols.values():
            if isinstance(col, np.ndarray):
                total += col.nbytes
            elif isinstance(col, NestedColumn):
                total += col.child.nbytes + col.offsets.nbytes + col.present.nbytes
        return total

    def _row(self, i: int) -> T:
        values: dict[str, Any] = {}
        for name, col in self._cols.items():
            if isinstance(col, NestedColumn):
                sub = col.row(i)
                values[name] = None if sub is None else sub.to_list()
            else:
                values[name] = col[i, ...] if isinstance(col, np.ndarray) else col[i]  # 0-d rows stay arrays
        return self._type()._trusted(values)  # type: ignore[return-value]

    def __getitem__(self, index: Any) -> Any:
        """An int gives a document (tensors are views); a slice gives a DocVec of views; a
        list of ints or a boolean mask gives a DocVec copy."""
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -self._n <= i < self._n:
                raise IndexError(f"index {i} out of range for {self._n} documents")
            return self._row(i % self._n if self._n else i)
        if isinstance(index, slice):
            start, stop, step = index.indices(self._n)
            if step != 1:
                return self._take(np.arange(start, stop, step))
            return self._slice(start, max(start, stop))
        idx = np.asarray(index)
        if idx.dtype == bool:
            if len(idx) != self._n:
                raise IndexError(f"boolean mask of length {len(idx)} for {self._n} documents")
            idx = np.flatnonzero(idx)
        return self._take(idx.astype(np.int64))

    def _slice(self, start: int, stop: int) -> DocVec[T]:
        out = type(self).__new__(type(self))
        out._n = stop - start
        out._cols = {
            name: col.slice(start, stop) if isinstance(col, NestedColumn) else col[start:stop]
            for name, col in self._cols.items()
        }
        return out

    def _take(self, rows: np.ndarray) -> DocVec[T]:
        out = type(self).__new__(type(self))
        out._n = len(rows)
        out._cols = {}
        for name, col in self._cols.items():
            if isinstance(col, np.ndarray):
                out._cols[name] = col[rows]
            elif isinstance(col, NestedColumn):
                out._cols[name] = col.take(rows)
            else:
                out._cols[name] = [col[int(r)] for r in rows]
        return out

    def __setitem__(self, index: int, doc: T) -> None:
        """Write every field of ``doc`` into row ``index``."""
        dt = self._type()
        if not isinstance(doc, dt):
            raise SchemaError(f"{type(self).__name__} holds {dt.__name__} documents, got {type(doc).__name__}")
        i = int(index) % self._n
        for spec in schema_of(dt).fields:
            col = self._cols[spec.name]
            value = doc.__dict__[spec.name]
            if isinstance(col, np.ndarray):
                if value is None or np.shape(value) != col.shape[1:]:
                    self._cols[spec.name] = col = list(col)  # no longer stackable
                    col[i] = value
                else:
                    col[i] = value
            elif isinstance(col, NestedColumn):
                rows = [self[j] if j != i else doc for j in range(self._n)]
                self._cols[spec.name] = _build_column(spec, [r.__dict__[spec.name] for r in rows])
            else:
                col[i] = value

    def __iter__(self) -> Iterator[T]:
        for i in range(self._n):
            yield self._row(i)

    def to_list(self) -> DocList[T]:
        """Row-wise documents (tensors are views into this DocVec's arrays)."""
        dt = self._type()
        if (
            dt.__pydantic_post_init__ is not None
            or dt.__private_attributes__
            or any(isinstance(col, NestedColumn) for col in self._cols.values())
        ):
            return doclist_of(dt)._wrap([self._row(i) for i in range(self._n)])
        return doclist_of(dt)._wrap(_trusted_rows(dt, self._n, self._cols))

    def to_doc_list(self) -> DocList[T]:
        """Alias of :meth:`to_list`, the name DocArray users know."""
        return self.to_list()

    # -- columns ---------------------------------------------------------------------------
    def column(self, name: str) -> Any:
        """A field's column: an ``(n, ...)`` array for stacked tensors, a list of ``DocVec``
        (or None) for nested documents, else a list."""
        schema_of(self._type())[name]
        col = self._cols[name]
        if isinstance(col, NestedColumn):
            return [col.row(i) for i in range(self._n)]
        return col

    def raw_column(self, name: str) -> Column:
        """The stored column itself (a ``NestedColumn`` for nested documents)."""
        schema_of(self._type())[name]
        return self._cols[name]

    def set_column(self, name: str, values: Any) -> None:
        """Replace a column, validated (shape, dtype and finiteness for tensors)."""
        spec = schema_of(self._type())[name]
        if _col_len(values) != self._n:
            raise SchemaError(f"{_col_len(values)} values for {self._n} documents in column {name!r}", field=name)
        self._cols[name] = _validate_column(spec, values, self._type())

    def __getattr__(self, name: str) -> Any:
        dt = type(self).doc_type
        if name.startswith("_") or dt is None or name not in dt.model_fields:
            raise AttributeError(f"{type(self).__name__} has no attribute or field {name!r}")
        return self.column(name)

    def __setattr__(self, name: str, value: Any) -> None:
        dt = type(self).doc_type
        if dt is not None and name in dt.model_fields:
            self.set_column(name, value)
        else:
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} n={self._n} nbytes={self.nbytes}>"

    def __reduce__(self) -> Any:
        return (_rebuild, (self._type(), self._n, self._cols))


def _trusted_rows(doc_type: type[Doc], n: int, cols: dict[str, Column]) -> list[Any]:
    """Every row as a document, built the way ``Doc._trusted`` builds one (the values passed
    validation when the columns did) but in one loop: ``zip`` over the columns, stacked tensors
    iterated as row views. For classes without ``model_post_init`` or private attributes and
    without nested columns (the caller checks), which need pydantic's own construction."""
    names = list(cols)
    columns: list[Any] = []
    for col in cols.values():
        if isinstance(col, np.ndarray):
            # iterating gives the same row views as col[i, ...]; 1-D columns would give numpy
            # scalars instead of 0-d arrays, so those keep the indexing
            columns.append(list(col) if col.ndim >= 2 else [col[i, ...] for i in range(n)])
        else:
            columns.append(col)
    fields_set = set(names)
    new = doc_type.__new__
    setattr_ = object.__setattr__
    out = []
    for values in zip(*columns, strict=True):
        obj = new(doc_type)
        setattr_(obj, "__dict__", dict(zip(names, values)))  # noqa: B905 - same length
        setattr_(obj, "__pydantic_fields_set__", set(fields_set))
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        out.append(obj)
    return out


def _rebuild(doc_type: type[Doc], n: int, cols: dict[str, Column]) -> DocVec[Any]:
    cls = docvec_of(doc_type)
    out = cls.__new__(cls)
    out._n = n
    out._cols = cols
    return out


def _col_len(col: Any) -> int:
    if isinstance(col, NestedColumn):
        return len(col.present)
    return len(col)


def _build_column(spec: FieldSpec, values: list[Any]) -> Column:
    """Stack already-validated values where they allow it."""
    if spec.kind in ("vector", "tensor") and values:
        first = values[0]
        if first is not None and all(
            v is not None and v.shape == first.shape and v.dtype == first.dtype for v in values
        ):
            return np.stack(values)
        return values
    if spec.kind == "docs":
        assert spec.doc_type is not None
        present = np.array([v is not None for v in values], dtype=bool)
        counts = np.array([len(v) if v is not None else 0 for v in values], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        flat = [d for v in values if v is not None for d in v]
        child = docvec_of(spec.doc_type)(doclist_of(spec.doc_type)._wrap(flat))
        return NestedColumn(child, offsets, present)
    return values


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _validate_column(spec: FieldSpec, col: Any, doc_type: type[Doc]) -> Column:
    """Validate a whole column at once (vectorised for stacked tensors)."""
    try:
        if isinstance(col, NestedColumn):
            if spec.kind != "docs" or col.child.doc_type is not spec.doc_type:
                raise SchemaError(f"field {spec.name!r} is not DocList[{col.child.doc_type}]", field=spec.name)
            return col
        if spec.tensor is not None and isinstance(col, np.ndarray) and col.ndim >= 1:
            return _validate_stack(spec, col)
        key = (doc_type, spec.name)
        adapter = _ADAPTERS.get(key)
        if adapter is None:
            field = doc_type.model_fields[spec.name]
            # rebuild_annotation() keeps Annotated metadata (the TensorSpec of NdArray[...] fields)
            adapter = _ADAPTERS[key] = TypeAdapter(list[field.rebuild_annotation()])  # type: ignore[misc,arg-type]
        values = adapter.validate_python(list(col))
        return _build_column(spec, values) if spec.kind in ("vector", "tensor", "docs") else values
    except ValidationError as exc:
        err = schema_error(exc, doc_type)
        raise SchemaError(f"column {spec.name!r}: {err.message}", field=spec.name) from None


def _validate_stack(spec: FieldSpec, arr: np.ndarray) -> np.ndarray:
    from pydantic_core import PydanticCustomError

    assert spec.tensor is not None
    t = spec.tensor
    try:
        if t.vector and arr.dtype != np.float32 and arr.dtype.kind in "biuf":
            # cast first, as Vector casts one value: a finite float64 beyond float32's range
            # becomes infinity and is refused below
            with np.errstate(over="ignore"):
                arr = arr.astype(np.float32)
        if t.vector and arr.dtype.kind == "f":  # checked first, so every bad row is named the same way
            bad = _first_non_finite_row(arr)
            if bad is not None:
                raise SchemaError(f"column {spec.name!r}: row {bad} is not finite (NaN or infinity)", field=spec.name)
        probe = t.validate(arr[0]) if len(arr) else None
        if probe is not None and probe.dtype != arr.dtype:
            arr = arr.astype(probe.dtype)
        if t.shape is not None:
            t._check_shape(arr.shape[1:])
    except PydanticCustomError as exc:
        raise SchemaError(f"column {spec.name!r}: {exc.message()}", field=spec.name) from None
    return arr


def _first_non_finite_row(arr: np.ndarray, block_bytes: int = 1 << 18) -> int | None:
    """Index of the first row holding NaN or infinity, checked in ~256 KiB blocks so a large
    column never needs a temporary boolean array of its own size."""
    rows = max(1, block_bytes // max(1, arr[0].nbytes)) if len(arr) else 1
    for start in range(0, len(arr), rows):
        block = arr[start : start + rows]
        if not np.isfinite(block).all():
            per_row = np.isfinite(block.reshape(len(block), -1)).all(axis=1)
            return start + int(np.flatnonzero(~per_row)[0])
    return None


def _default_column(spec: FieldSpec, n: int, doc_type: type[Doc]) -> Column:
    field = doc_type.model_fields[spec.name]
    if spec.name == "id":
        from polymodal.doc.base import new_id

        return [new_id() for _ in range(n)]
    if field.is_required():
        raise SchemaError(f"column {spec.name!r} is required", field=spec.name)
    values = [field.get_default(call_default_factory=True) for _ in range(n)]
    return _build_column(spec, values)


def stack_rows(docs: Sequence[Doc], doc_type: type[Doc]) -> DocVec[Any]:
    """``DocVec[doc_type]`` of already-validated documents (no re-validation)."""
    return docvec_of(doc_type)(doclist_of(doc_type)._wrap(list(docs)))
