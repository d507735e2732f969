"""Apache Arrow, Parquet and pandas for documents.

Column types: ``Vector[D]`` -> ``fixed_size_list<float32>[D]`` (what analytics tools expect of an
embedding); other tensors -> ``struct<dtype: string, shape: list<int64>, data: binary>`` (exact
dtype and shape); nested ``DocList`` -> ``list<struct<...>>``; media URLs -> string; media bytes
-> binary; fields of other types -> their JSON text. The schema description is kept in the
Arrow schema metadata. Reading builds columns and validates them column-wise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from pydantic import TypeAdapter

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.doc.docvec import DocVec, NestedColumn, stack_rows
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import ConfigError, FormatError, OptionalDependencyError, PolymodalError, SchemaError
from polymodal.io.columns import as_vec, vec_from_columns
from polymodal.io.json import dumps_json

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["from_table", "iter_parquet", "to_pandas", "to_table", "write_parquet"]

_INT64 = 2**63


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise OptionalDependencyError.for_package("pyarrow", "parquet", "Arrow and Parquet support") from None
    return pa


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _adapter(doc_type: type[Doc], name: str) -> TypeAdapter[Any]:
    key = (doc_type, name)
    if key not in _ADAPTERS:
        _ADAPTERS[key] = TypeAdapter(doc_type.model_fields[name].rebuild_annotation())
    return _ADAPTERS[key]


# -- writing --------------------------------------------------------------------------------
def _tensor_struct(pa: Any) -> Any:
    return pa.struct([("dtype", pa.string()), ("shape", pa.list_(pa.int64())), ("data", pa.binary())])


def _vec_arrays(vec: DocVec[Any], pa: Any) -> tuple[list[Any], list[Any]]:
    """Arrow arrays and fields for every column of ``vec``."""
    doc_type = type(vec)._type()
    arrays, fields = [], []
    for spec in schema_of(doc_type).fields:
        arr = _column_array(spec, vec.raw_column(spec.name), len(vec), doc_type, pa)
        arrays.append(arr)
        meta = {"polymodal": orjson.dumps(spec.to_dict())}
        fields.append(pa.field(spec.name, arr.type, nullable=True, metadata=meta))
    return arrays, fields


def _column_array(spec: FieldSpec, col: Any, n: int, doc_type: type[Doc], pa: Any) -> Any:
    if spec.kind == "vector" and spec.tensor is not None and spec.tensor.fixed_shape:
        dim = spec.tensor.fixed_shape[0]
        if isinstance(col, np.ndarray):
            flat, mask = col.reshape(-1), None
        else:
            mask = np.array([v is None for v in col], dtype=bool)  # bool even when empty
            rows = [np.zeros(dim, np.float32) if v is None else v for v in col]
            flat = np.concatenate(rows) if rows else np.zeros(0, np.float32)
        values = pa.array(flat.astype(np.float32, copy=False))
        out = pa.FixedSizeListArray.from_arrays(values, dim, mask=pa.array(mask) if mask is not None else None)
        return out
    if spec.kind in ("vector", "tensor"):
        rows = list(col) if isinstance(col, np.ndarray) else col
        return pa.array(
            [None if a is None else {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()} for a in rows],
            type=_tensor_struct(pa),
        )
    if isinstance(col, NestedColumn):
        child_arrays, child_fields = _vec_arrays(col.child, pa)
        struct = pa.StructArray.from_arrays(child_arrays, fields=child_fields)
        return pa.ListArray.from_arrays(pa.array(col.offsets.astype(np.int32)), struct, mask=pa.array(~col.present))
    if spec.kind == "doc":
        assert spec.doc_type is not None
        present = [v is not None for v in col]
        sub = stack_rows([v for v in col if v is not None], spec.doc_type)
        child_arrays, child_fields = _vec_arrays(sub, pa)
        # expand rows of present docs back to n rows (nulls where absent)
        idx = np.cumsum(present) - 1
        taken = [a.take(pa.array(np.where(present, idx, 0))) if len(sub) else pa.nulls(n, a.type) for a in child_arrays]
        return pa.StructArray.from_arrays(taken, fields=child_fields, mask=pa.array(~np.array(present, dtype=bool)))
    if spec.kind == "url":
        return pa.array([None if v is None else str(v) for v in col], type=pa.string())
    if spec.kind == "bytes":
        return pa.array([None if v is None else bytes(v) for v in col], type=pa.binary())
    if spec.scalar == "int":
        if any(v is not None and not -_INT64 <= v < _INT64 for v in col):
            return pa.array([None if v is None else str(v) for v in col], type=pa.string())
        return pa.array(col, type=pa.int64())
    if spec.scalar is not None:
        return pa.array(col, type={"str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}[spec.scalar])
    adapter = _adapter(doc_type, spec.name)
    return pa.array(  # JSON text; ints beyond 64 bits as decimal text, as in polymodal.io.json
        [None if v is None else dumps_json(adapter.dump_python(v, mode="json")).decode() for v in col],
        type=pa.string(),
    )


def to_table(docs: Iterable[Doc] | DocVec[Any], doc_type: type[Doc]) -> pa.Table:
    """An Arrow table with one row per document (schema description in the metadata)."""
    pa = _pa()
    vec = as_vec(docs, doc_type)
    arrays, fields = _vec_arrays(vec, pa)
    meta = {"polymodal.schema": orjson.dumps(schema_of(doc_type).to_dict())}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


def write_parquet(
    path: str | Path, batches: Iterable[Iterable[Doc]], doc_type: type[Doc], *, compression: str = "zstd"
) -> int:
    """Write batches of documents as row groups of one Parquet file; returns the count.

    A Parquet file has one schema, but an ``int`` column is ``int64`` or, when it holds an int
    beyond 64 bits, ``string``: later batches are cast to the first batch's schema. If writing
    fails, the partial file is removed, so no file silently holds fewer documents.

    Raises:
        SchemaError: a later batch cannot be cast to the file's schema (an int beyond 64 bits
            in a column the first batch wrote as ``int64``).
    """
    import pyarrow.parquet as pq

    pa = _pa()
    _check_parquet_codec(compression, pa)
    writer = None
    total = 0
    try:
        for batch in batches:
            table = to_table(batch, doc_type)
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema, compression=compression, write_page_checksum=True)
            elif not table.schema.equals(writer.schema, check_metadata=False):
                table = _cast_to(table, writer.schema, pa)
            writer.write_table(table)
            total += table.num_rows
        if writer is None:  # no documents: still write a valid, empty file with the schema
            table = to_table([], doc_type)
            writer = pq.ParquetWriter(str(path), table.schema, compression=compression, write_page_checksum=True)
            writer.write_table(table)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(path).unlink(missing_ok=True)
        raise
    writer.close()
    return total


_PARQUET_CODECS = ("none", "snappy", "gzip", "brotli", "lz4", "zstd")


def _check_parquet_codec(compression: str, pa: Any) -> None:
    """Reject an unknown codec before the file is created (pyarrow creates it, then fails)."""
    name = compression.lower()
    if name not in _PARQUET_CODECS or (name != "none" and not pa.Codec.is_available(name)):
        raise ConfigError(f"unknown or unavailable Parquet compression {compression!r}; use one of {_PARQUET_CODECS}")


def _cast_to(table: pa.Table, schema: pa.Schema, pa: Any) -> pa.Table:
    """``table`` with the file's schema; a column that does not fit is named in the error."""
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        bad = next((f.name for f in schema if table.schema.field(f.name).type != f.type), "")
        raise SchemaError(
            f"column {bad!r} of a later batch does not fit the Parquet file's schema, which the first "
            f"batch set (an int beyond 64 bits where the first batch had none?): {exc}",
            field=bad,
        ) from None


# -- reading --------------------------------------------------------------------------------
def from_table(table: pa.Table, doc_type: type[Doc]) -> list[Doc]:
    """Documents from an Arrow table written by :func:`to_table` (validated column-wise).

    Raises:
        SchemaError: a column the schema does not have, a missing required one, or values
            that do not fit (names the field).
        FormatError: columns whose Arrow layout is not what :func:`to_table` writes.
    """
    pa = _pa()
    try:
        return _read_vec(table.columns, table.column_names, table.num_rows, doc_type).to_list()
    except PolymodalError:
        raise
    except _layout_errors(pa) as exc:
        raise FormatError(f"cannot read documents from the Arrow table: {exc!r}") from None


def _layout_errors(pa: Any) -> tuple[type[Exception], ...]:
    """What reading raises for columns that are not laid out as :func:`to_table` writes them
    (corrupt or foreign data); polymodal's own errors pass through untouched."""
    return (OSError, pa.ArrowException, UnicodeError, TypeError, ValueError, KeyError, AttributeError)


def _read_vec(arrays: list[Any], names: list[str], n: int, doc_type: type[Doc]) -> DocVec[Any]:
    schema = schema_of(doc_type)
    cols: dict[str, Any] = {}
    for name, arr in zip(names, arrays, strict=True):
        spec = schema[name]  # unknown column: SchemaError naming the fields
        cols[name] = _read_column(spec, _combine(arr), n, doc_type)
    return vec_from_columns(doc_type, cols, n)


def _combine(arr: Any) -> Any:
    return arr.combine_chunks() if hasattr(arr, "combine_chunks") else arr


def _read_column(spec: FieldSpec, arr: Any, n: int, doc_type: type[Doc]) -> Any:
    pa = _pa()
    t = arr.type
    if pa.types.is_fixed_size_list(t):
        values = arr.flatten() if arr.null_count == 0 else None
        if values is not None and len(values) == n * t.list_size:
            return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(n, t.list_size).copy()
        return [None if v is None else np.asarray(v, dtype=np.float32) for v in arr.to_pylist()]
    if spec.kind in ("vector", "tensor"):
        out: list[np.ndarray | None] = []
        for row in arr.to_pylist():
            if row is None:
                out.append(None)
                continue
            try:
                out.append(np.frombuffer(row["data"], dtype=np.dtype(row["dtype"])).reshape(row["shape"]).copy())
            except (TypeError, ValueError, KeyError) as exc:
                raise FormatError(f"corrupt tensor in column {spec.name!r}: {exc}") from None
        return _stack_if_uniform(out)
    if spec.kind == "docs":
        assert spec.doc_type is not None
        if not pa.types.is_list(t):
            raise SchemaError(f"column {spec.name!r} is {t}, expected a list of documents", field=spec.name)
        offsets = arr.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        struct = arr.values.slice(arr.offsets[0].as_py(), int(offsets[-1]))
        child = _read_vec(struct.flatten(), [f.name for f in struct.type], len(struct), spec.doc_type)
        present = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        return NestedColumn(child, offsets, present)
    if spec.kind == "doc":
        assert spec.doc_type is not None
        present = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        kept = arr.filter(pa.array(present))
        rows = iter(_read_vec(kept.flatten(), [f.name for f in arr.type], len(kept), spec.doc_type))
        return [next(rows) if present[i] else None for i in range(n)]
    values = arr.to_pylist()
    if spec.scalar == "int" and pa.types.is_string(t):
        return [None if v is None else int(v) for v in values]
    if spec.kind == "other":
        return [None if v is None else orjson.loads(v) for v in values]
    return values


def _stack_if_uniform(rows: list[Any]) -> Any:
    """One contiguous ``(n, ...)`` array when every row shares shape and dtype (the layout a
    DocVec keeps, validated in one vectorised step), else the list of rows."""
    first = rows[0] if rows else None
    if first is None or any(r is None or r.shape != first.shape or r.dtype != first.dtype for r in rows):
        return rows
    return np.stack(rows)


def iter_parquet(path: str | Path, doc_type: type[Doc], *, batch_size: int = 4096) -> Iterator[DocList[Any]]:
    """Read a Parquet file in batches (bounded memory).

    Page checksums (written by :func:`write_parquet`) are verified, so a corrupt page is an
    error rather than wrong values.

    Raises:
        FileNotFoundError: no such file.
        FormatError: not a Parquet file, truncated or corrupt (after yielding the intact batches).
        SchemaError: the data does not fit ``doc_type``.
    """
    pa = _pa()
    import pyarrow.parquet as pq

    errors = _layout_errors(pa)
    if not Path(path).exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        pf = pq.ParquetFile(str(path), page_checksum_verification=True)
    except errors as exc:
        raise FormatError(f"cannot read Parquet file {path}: {exc}") from None
    try:
        batches = pf.iter_batches(batch_size=batch_size)
        seen = 0
        while True:
            try:
                rb = next(batches, None)
                if rb is None:
                    break
                docs = _read_vec(rb.columns, rb.schema.names, rb.num_rows, doc_type).to_list()
            except PolymodalError:
                raise
            except errors as exc:
                raise FormatError(f"corrupt Parquet file {path}: {exc}") from None
            seen += len(docs)
            yield DocList[doc_type]._wrap(docs)  # type: ignore[valid-type]
        if seen != pf.metadata.num_rows:  # corrupt column metadata can make pyarrow yield fewer rows
            announced = pf.metadata.num_rows
            raise FormatError(f"corrupt Parquet file {path}: it announces {announced} rows, {seen} were read")
    finally:
        pf.close()


def to_pandas(docs: Iterable[Doc], doc_type: type[Doc]) -> pd.DataFrame:
    """A DataFrame, one row per document: tensors stay numpy arrays, nested documents are
    lists of dicts, other values as they are in the documents."""
    try:
        import pandas as pd
    except ImportError:
        raise OptionalDependencyError.for_package("pandas", "parquet", "DataFrame conversion") from None
    rows = list(docs)
    data: dict[str, list[Any]] = {}
    for spec in schema_of(doc_type).fields:
        values = [d.__dict__[spec.name] for d in rows]
        if spec.kind == "docs":
            values = [None if v is None else [x.model_dump() for x in v] for v in values]
        elif spec.kind == "doc":
            values = [None if v is None else v.model_dump() for v in values]
        # object dtype where a value is None, so pandas does not turn None into NaN
        data[spec.name] = pd.Series(values, dtype=object) if any(v is None for v in values) else values
    return pd.DataFrame(data, columns=[s.name for s in schema_of(doc_type).fields])
