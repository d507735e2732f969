"""``DocList[T]``: a row-wise list of documents of one schema, with column access.

``DocList[Clip]`` is a real (cached) subclass of ``DocList``, the way pydantic parametrizes its
own generic models, so ``isinstance`` checks, class methods such as
``DocList[Clip].from_bytes(...)`` and pydantic fields of type ``DocList[Segment]`` all work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, SupportsIndex, TypeVar, overload

import numpy as np
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.errors import SchemaError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from polymodal.doc.docvec import DocVec

__all__ = ["DocList"]

T = TypeVar("T", bound=Doc)
R = TypeVar("R")

_PARAMETRIZED: dict[tuple[type, type], type] = {}


def parametrize(base: type, doc_type: type[Doc]) -> Any:
    """The cached subclass ``base[doc_type]`` (shared by DocList and DocVec)."""
    key = (base, doc_type)
    cls = _PARAMETRIZED.get(key)
    if cls is None:
        name = f"{base.__name__}[{doc_type.__name__}]"
        cls = type(name, (base,), {"doc_type": doc_type, "__module__": base.__module__, "__qualname__": name})
        _PARAMETRIZED[key] = cls
    return cls


def doclist_of(doc_type: type[Doc]) -> type[DocList[Any]]:
    """``DocList[doc_type]`` for a doc type known only at run time (keeps type checkers calm)."""
    cls: type[DocList[Any]] = parametrize(DocList, doc_type)
    return cls


class DocList(list[T], Generic[T]):
    """A list of documents of one schema.

    >>> import polymodal as pm
    >>> class Note(pm.Doc):
    ...     text: str
    >>> notes = pm.DocList[Note]([Note(text="a"), {"text": "b"}])
    >>> notes.text
    ['a', 'b']
    """

    doc_type: ClassVar[type[Doc] | None] = None

    def __class_getitem__(cls, item: Any) -> Any:  # type: ignore[override]
        if isinstance(item, type) and issubclass(item, Doc):
            if cls.doc_type is not None:
                raise TypeError(f"{cls.__name__} is already parametrized")
            return parametrize(cls, item)
        return super().__class_getitem__(item)  # a TypeVar: a typing alias, as for list

    def __init__(self, docs: Iterable[T | dict[str, Any]] = ()) -> None:
        super().__init__(self._coerce(d) for d in docs)

    def __reduce__(self) -> Any:
        return (_rebuild, (self.doc_type, list(self)))

    # -- element checks ------------------------------------------------------------------
    def _coerce(self, doc: Any) -> T:
        dt = self.doc_type
        if dt is None:
            if not isinstance(doc, Doc):
                raise SchemaError(f"DocList holds documents, got {type(doc).__name__}; use DocList[MyDoc] for dicts")
            return doc  # type: ignore[return-value]
        if isinstance(doc, dt):
            return doc  # type: ignore[return-value]
        if isinstance(doc, dict):
            return dt.from_dict(doc)  # type: ignore[return-value]
        raise SchemaError(
            f"{type(self).__name__} holds {dt.__name__} documents, got {type(doc).__name__}",
            expected=dt.__name__,
            actual=type(doc).__name__,
        )

    def append(self, doc: T | dict[str, Any]) -> None:
        super().append(self._coerce(doc))

    def extend(self, docs: Iterable[T | dict[str, Any]]) -> None:
        super().extend(self._coerce(d) for d in docs)

    def insert(self, index: SupportsIndex, doc: T | dict[str, Any]) -> None:
        super().insert(index, self._coerce(doc))

    def __iadd__(self, docs: Iterable[T | dict[str, Any]]) -> DocList[T]:  # type: ignore[override,misc]
        self.extend(docs)
        return self

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...  # type: ignore[overload-overlap]

    @overload
    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> DocList[T]: ...

    def __getitem__(self, index: Any) -> Any:
        """An int gives a document; a slice, a list of ints or a boolean mask gives a DocList."""
        if isinstance(index, slice):
            return self._new(super().__getitem__(index))
        if isinstance(index, (list, tuple, np.ndarray)):
            idx = np.asarray(index)
            if idx.dtype == bool:
                if len(idx) != len(self):
                    raise IndexError(f"boolean mask of length {len(idx)} for {len(self)} documents")
                idx = np.flatnonzero(idx)
            return self._new(super(DocList, self).__getitem__(int(i)) for i in idx)
        return super().__getitem__(index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, [self._coerce(d) for d in value])
        else:
            super().__setitem__(index, self._coerce(value))

    def _new(self, docs: Iterable[T]) -> DocList[T]:
        out = type(self).__new__(type(self))
        list.extend(out, docs)  # already checked: skip coercion
        return out

    def copy(self) -> DocList[T]:
        return self._new(self)

    # -- columns -------------------------------------------------------------------------
    def _field_names(self) -> Iterable[str]:
        return self.doc_type.model_fields if self.doc_type is not None else ()

    def column(self, name: str) -> list[Any]:
        """The values of one field, one per document (``docs.title`` is a shortcut)."""
        if self.doc_type is not None:
            schema_of(self.doc_type)[name]  # raises SchemaError naming the known fields
        return [d.__dict__[name] if name in d.__dict__ else getattr(d, name) for d in self]

    def set_column(self, name: str, values: Sequence[Any]) -> None:
        """Assign one value per document to a field (validated like any assignment)."""
        if len(values) != len(self):
            raise SchemaError(f"{len(values)} values for {len(self)} documents in column {name!r}", field=name)
        for doc, value in zip(self, values, strict=True):
            setattr(doc, name, value)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._field_names():
            raise AttributeError(f"{type(self).__name__!s} has no attribute or field {name!r}")
        return self.column(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._field_names():
            self.set_column(name, value)
        else:
            super().__setattr__(name, value)

    # -- conversions -----------------------------------------------------------------------
    def to_vec(self) -> DocVec[T]:
        """Column-wise copy: each fixed-shape tensor field becomes one contiguous array."""
        from polymodal.doc.docvec import docvec_of

        return docvec_of(self._require_type())(self)

    def to_doc_vec(self) -> DocVec[T]:
        """Alias of :meth:`to_vec`, the name DocArray users know."""
        return self.to_vec()

    def _require_type(self) -> type[Doc]:
        if self.doc_type is not None:
            return self.doc_type
        types = {type(d) for d in self}
        if len(types) != 1:
            raise SchemaError("this DocList mixes document types; use DocList[MyDoc] to name the schema")
        return types.pop()

    def batch(self, size: int) -> Iterator[DocList[T]]:
        """Consecutive DocLists of at most ``size`` documents."""
        if size <= 0:
            raise ValueError("batch size must be positive")
        for start in range(0, len(self), size):
            yield self[start : start + size]

    def map(
        self,
        fn: Callable[[T], R],
        *,
        backend: str = "thread",
        workers: int | None = None,
        progress: bool | str = False,
        chunksize: int = 16,
    ) -> list[R]:
        """Apply ``fn`` to each document, in a thread or process pool, keeping order.

        ``backend="process"`` needs a picklable ``fn``; ``workers=0`` runs inline.
        """
        from polymodal.doc.apply import map_items

        return map_items(fn, self, backend=backend, workers=workers, progress=progress, chunksize=chunksize)

    def map_batches(
        self,
        fn: Callable[[DocList[T]], R],
        *,
        batch_size: int,
        backend: str = "thread",
        workers: int | None = None,
        progress: bool | str = False,
    ) -> list[R]:
        """Apply ``fn`` to consecutive batches (for model calls that want many inputs at once)."""
        from polymodal.doc.apply import map_items

        return map_items(fn, list(self.batch(batch_size)), backend=backend, workers=workers, progress=progress)

    # -- serialization (thin wrappers over polymodal.io) -----------------------------------
    def to_json(self) -> bytes:
        """UTF-8 JSON array of documents (tensors as lists; see ``polymodal.io.json``)."""
        from polymodal.io import json as json_io

        return json_io.dumps_docs(self, self._require_type())

    @classmethod
    def from_json(cls, data: str | bytes) -> DocList[T]:
        from polymodal.io import json as json_io

        return cls._wrap(json_io.loads_docs(data, cls._class_type()))  # validated by the reader

    def to_bytes(self, *, compression: str | None = None) -> bytes:
        """The versioned binary format (``polymodal.io.binary``): fast, checksummed, streamable."""
        from polymodal.io import binary

        return binary.dumps(self, self._require_type(), compression=compression)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DocList[T]:
        from polymodal.io import binary

        return cls._wrap(binary.loads(data, cls._class_type()))

    def to_arrow(self) -> pa.Table:
        from polymodal.io import arrow

        return arrow.to_table(self, self._require_type())

    @classmethod
    def from_arrow(cls, table: pa.Table) -> DocList[T]:
        from polymodal.io import arrow

        return cls._wrap(arrow.from_table(table, cls._class_type()))

    def to_parquet(self, path: str | Path, *, compression: str = "zstd") -> None:
        from polymodal.io import arrow

        arrow.write_parquet(path, [self], self._require_type(), compression=compression)

    @classmethod
    def from_parquet(cls, path: str | Path) -> DocList[T]:
        from polymodal.io import arrow

        out = cls()
        for batch in arrow.iter_parquet(path, cls._class_type()):
            list.extend(out, batch)
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per document; tensors stay numpy arrays, nested DocLists become lists of dicts."""
        from polymodal.io import arrow

        return arrow.to_pandas(self, self._require_type())

    @classmethod
    def from_pandas(cls, frame: pd.DataFrame) -> DocList[T]:
        records = frame.to_dict(orient="records")
        return cls(records)  # type: ignore[arg-type]

    @classmethod
    def _class_type(cls) -> type[Doc]:
        if cls.doc_type is None:
            raise SchemaError("name the schema to decode into: DocList[MyDoc].from_...(...)")
        return cls.doc_type

    @classmethod
    def _wrap(cls, docs: list[Any]) -> DocList[T]:
        out = cls.__new__(cls)
        list.extend(out, docs)  # decoded by a validating reader: skip coercion
        return out

    # -- pydantic ----------------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        item = handler.generate_schema(cls.doc_type or Doc)
        inner = core_schema.list_schema(item)

        def wrap(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if isinstance(value, cls):
                return value  # its elements were checked on the way in
            return cls._wrap(validate(value))

        return core_schema.no_info_wrap_validator_function(
            wrap,
            inner,
            serialization=core_schema.wrap_serializer_function_ser_schema(lambda v, nxt: nxt(list(v)), schema=inner),
        )


def _rebuild(doc_type: type[Doc] | None, docs: list[Doc]) -> DocList[Any]:
    cls = DocList if doc_type is None else doclist_of(doc_type)
    out = cls.__new__(cls)
    list.extend(out, docs)
    return out
