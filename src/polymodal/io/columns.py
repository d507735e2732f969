"""Columnar encoding shared by the binary format: a DocVec <-> (msgpack-able meta, raw buffers).

Stacked tensors travel as raw little-endian buffers (memory-copy speed, no per-float work);
scalars, strings and bytes travel as msgpack lists; nested ``DocList`` fields are flattened with
offsets, so segment vectors of a whole batch are again one buffer. Decoding builds columns and
validates them column-wise (vectorised for tensors), never document by document.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.doc.docvec import DocVec, NestedColumn, stack_rows
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import FormatError, PolymodalError, SchemaError

__all__ = ["Buffers", "as_vec", "decode_vec", "encode_vec", "vec_from_columns"]

ALIGN = 64
_INT64 = 2**63


class Buffers:
    """Collects raw array buffers, 64-byte aligned, and remembers where each one starts."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def add(self, arr: np.ndarray) -> list[int]:
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        pad = -self.size % ALIGN
        if pad:
            self.parts.append(b"\x00" * pad)
            self.size += pad
        start = self.size
        self.parts.append(memoryview(arr).cast("B") if arr.size else b"")  # type: ignore[arg-type]
        self.size += arr.nbytes
        return [start, arr.nbytes]


def as_vec(docs: Iterable[Doc] | DocVec[Any], doc_type: type[Doc]) -> DocVec[Any]:
    """The batch as a ``DocVec[doc_type]``; documents of another schema are a SchemaError, since
    the header names ``doc_type`` and a reader would misread them."""
    if isinstance(docs, DocVec):
        if type(docs).doc_type is not doc_type:
            raise SchemaError(
                f"cannot write a {type(docs).__name__} as {doc_type.__name__} documents",
                expected=doc_type.__name__,
                actual=type(docs).__name__,
            )
        return docs
    rows = docs if isinstance(docs, DocList) and docs.doc_type is doc_type else DocList[doc_type](docs)  # type: ignore[valid-type]
    return stack_rows(rows, doc_type)


def _adapter(doc_type: type[Doc], name: str) -> TypeAdapter[Any]:
    key = (doc_type, name)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        # rebuild_annotation keeps the Annotated metadata (serializers, constraints) pydantic strips
        annotation = doc_type.model_fields[name].rebuild_annotation()
        adapter = _ADAPTERS[key] = TypeAdapter(list[annotation])  # type: ignore[valid-type]
    return adapter


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def encode_vec(vec: DocVec[Any], bufs: Buffers) -> dict[str, Any]:
    """Meta for one DocVec; tensor data goes to ``bufs``."""
    doc_type = type(vec)._type()
    cols: dict[str, Any] = {}
    for spec in schema_of(doc_type).fields:
        col = vec.raw_column(spec.name)
        cols[spec.name] = _encode_column(spec, col, doc_type, bufs)
    return {"n": len(vec), "c": cols}


def _encode_column(spec: FieldSpec, col: Any, doc_type: type[Doc], bufs: Buffers) -> dict[str, Any]:
    if isinstance(col, np.ndarray):
        return {"k": "a", "d": _dtype_str(col.dtype), "s": list(col.shape), "b": bufs.add(col)}
    if isinstance(col, NestedColumn):
        return {"k": "n", "o": bufs.add(col.offsets), "p": bufs.add(col.present), "c": encode_vec(col.child, bufs)}
    if spec.kind in ("vector", "tensor"):
        return {"k": "t", "v": [None if a is None else [_dtype_str(a.dtype), list(a.shape), bufs.add(a)] for a in col]}
    if spec.kind == "doc":
        assert spec.doc_type is not None
        present = [v is not None for v in col]
        sub = stack_rows([v for v in col if v is not None], spec.doc_type)
        return {"k": "d", "p": present, "c": encode_vec(sub, bufs)}
    if spec.kind in ("scalar", "url", "bytes"):
        values = col
        if spec.scalar == "int" and any(v is not None and not -_INT64 <= v < _INT64 for v in values):
            return {"k": "i", "v": [None if v is None else str(v) for v in values]}
        if spec.kind == "url":
            values = [None if v is None else str(v) for v in values]
        elif spec.kind == "bytes":
            values = [None if v is None else bytes(v) for v in values]
        return {"k": "v", "v": values}
    return {"k": "j", "v": _adapter(doc_type, spec.name).dump_python(list(col), mode="json")}


def _dtype_str(dtype: np.dtype[Any]) -> str:
    return dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str


def decode_vec(meta: dict[str, Any], buf: memoryview, doc_type: type[Doc], *, copy: bool) -> DocVec[Any]:
    """Rebuild and validate a DocVec from meta and the buffer region it refers to.

    Raises:
        FormatError: the meta does not describe valid columns (corrupt data).
        SchemaError: the columns do not fit ``doc_type``.
    """
    try:
        n = int(meta["n"])
        raw_cols: dict[str, Any] = meta["c"]
        if n < 0 or not isinstance(raw_cols, dict):
            raise ValueError(f"{n} rows, columns {type(raw_cols).__name__}")
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"corrupt batch description: {exc!r}") from None
    schema = schema_of(doc_type)
    unknown = [name for name in raw_cols if name not in schema.by_name]
    if unknown:
        raise SchemaError(
            f"the data has field(s) {unknown} that {doc_type.__name__} does not declare; "
            "decode into the schema it was written with",
            field=unknown[0],
        )
    columns = {}
    for name, col in raw_cols.items():
        try:
            columns[name] = _decode_column(schema[name], col, n, buf, doc_type, copy)
        except PolymodalError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            # meta that passed its checksum yet does not describe a column: say so, never crash
            raise FormatError(f"corrupt data in column {name!r}: {exc!r}", field=name) from None
    return vec_from_columns(doc_type, columns, n)


def vec_from_columns(doc_type: type[Doc], columns: dict[str, Any], n: int) -> DocVec[Any]:
    """``DocVec.from_columns`` for decoded data: a column of the wrong length is corrupt data
    (FormatError, not a schema problem), and zero rows need no validation (an empty column
    has no shape or dtype to check, so it is built from no documents instead).
    """
    for name, col in columns.items():
        rows = len(col.present) if isinstance(col, NestedColumn) else len(col)
        if rows != n:
            raise FormatError(f"corrupt data: column {name!r} has {rows} rows, expected {n}", field=name)
    if n == 0:
        for name, info in doc_type.model_fields.items():
            if name not in columns and name != "id" and info.is_required():
                raise SchemaError(f"column {name!r} is required: the data does not have it", field=name)
        return DocVec[doc_type]()  # type: ignore[valid-type,no-any-return]
    return DocVec[doc_type].from_columns(columns, n=n)  # type: ignore[valid-type,no-any-return]


def _array(ref: Any, dtype: str, shape: Any, buf: memoryview, copy: bool) -> np.ndarray:
    try:
        start, nbytes = int(ref[0]), int(ref[1])
        dt = np.dtype(dtype)
        if dt.kind not in "biuf" or start < 0 or start + nbytes > len(buf):
            raise ValueError(f"buffer reference {ref} out of range or dtype {dtype} not allowed")
        dims = [int(s) for s in shape]
        if any(d < 0 for d in dims):  # reshape would infer a -1 instead of failing
            raise ValueError(f"negative dimension in shape {dims}")
        arr = np.frombuffer(buf[start : start + nbytes], dtype=dt).reshape(dims)
    except (TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"corrupt tensor data: {exc}") from None
    return arr.copy() if copy else arr


def _decode_column(
    spec: FieldSpec, col: dict[str, Any], n: int, buf: memoryview, doc_type: type[Doc], copy: bool
) -> Any:
    kind = col.get("k") if isinstance(col, dict) else None
    if kind == "a":
        arr = _array(col["b"], col["d"], col["s"], buf, copy)
        if len(arr) != n:
            raise FormatError(f"column {spec.name!r} has {len(arr)} rows, expected {n}")
        return arr
    if kind == "n":
        if spec.kind != "docs" or spec.doc_type is None:
            raise SchemaError(f"field {spec.name!r} holds nested documents in the data", field=spec.name)
        offsets = _array(col["o"], "<i8", [n + 1], buf, copy=True)
        present = _array(col["p"], "|b1", [n], buf, copy=True)
        child = decode_vec(col["c"], buf, spec.doc_type, copy=copy)
        if offsets[0] != 0 or offsets[-1] != len(child) or np.any(np.diff(offsets) < 0):
            raise FormatError(f"corrupt offsets in nested column {spec.name!r}")
        return NestedColumn(child, offsets, present)
    if kind == "t":
        return [None if t is None else _array(t[2], t[0], t[1], buf, copy) for t in col["v"]]
    if kind == "d":
        if spec.doc_type is None:
            raise SchemaError(f"field {spec.name!r} holds a nested document in the data", field=spec.name)
        sub = decode_vec(col["c"], buf, spec.doc_type, copy=copy).to_list()
        flags = [bool(p) for p in col["p"]]
        if sum(flags) != len(sub):
            raise FormatError(f"corrupt data: {len(sub)} nested documents for {sum(flags)} in {spec.name!r}")
        rows = iter(sub)
        return [next(rows) if p else None for p in flags]
    if kind == "i":
        return [None if v is None else int(v) for v in col["v"]]
    if kind in ("v", "j"):
        return col["v"]
    raise FormatError(f"unknown column encoding {kind!r} for field {spec.name!r}")
