"""JSON and JSON Lines for documents, with orjson (numpy arrays are written natively).

Tensors whose dtype the schema fixes (every ``Vector``) are plain nested lists; other tensors
are ``{"dtype", "shape", "data"}`` objects so their dtype survives. A float tensor holding NaN
or infinity (which JSON cannot spell) is written as ``{"dtype", "shape", "b64"}`` with its raw
bytes, so every value round-trips exactly.

Reading an array of flat documents with vectors (what ``to_json`` writes for most schemas)
goes through simdjson (``polymodal.io._simdjson``), which hands each vector over as one block
of numbers instead of a Python float per element; any other input, and any input that path
does not take as it is, is read by orjson, whose results and errors are the reference.
"""

from __future__ import annotations

import base64
import gc
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from pydantic import TypeAdapter, ValidationError

from polymodal.doc.base import Doc, schema_error
from polymodal.doc.doclist import DocList
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import FormatError, SchemaError
from polymodal.io import _simdjson

__all__ = ["doc_to_jsonable", "dumps_docs", "dumps_json", "iter_jsonl", "loads_docs", "write_jsonl"]

_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _tensor(value: np.ndarray, spec: FieldSpec) -> Any:
    """Nested lists where they alone bring the tensor back exactly, else a dtype/shape object."""
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raw = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
        return {"dtype": raw.dtype.str, "shape": list(value.shape), "b64": base64.b64encode(raw.tobytes()).decode()}
    if not value.flags.c_contiguous or value.dtype.byteorder == ">":
        value = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("="))
    assert spec.tensor is not None
    if spec.tensor.vector or (spec.tensor.dtype is not None and _lists_are_exact(value)):
        return value.tolist() if value.ndim == 0 else value  # orjson writes no 0-d arrays
    return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel()}


def _lists_are_exact(value: np.ndarray) -> bool:
    """Whether nested lists read back into a fixed-dtype field give exactly ``value``. They lose
    the shape of a 0-size dimension, and float16/float32 are written in their own shortest form,
    which the field's exact-cast check (done in float64) rejects (34915672 as float32 is written
    34915670.0). Vectors are cast without that check, so their lists are always exact."""
    return 0 not in value.shape and (value.dtype.kind != "f" or value.dtype.itemsize == 8)


def _float(value: float) -> Any:
    return value if math.isfinite(value) else ("NaN" if value != value else ("Infinity" if value > 0 else "-Infinity"))


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _other(doc_type: type[Doc], spec: FieldSpec, value: Any) -> Any:
    key = (doc_type, spec.name)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = _ADAPTERS[key] = TypeAdapter(doc_type.model_fields[spec.name].rebuild_annotation())
    return adapter.dump_python(value, mode="json")


def doc_to_jsonable(doc: Doc) -> dict[str, Any]:
    """A dict orjson can write (numpy arrays stay arrays); the fast path behind ``to_json``."""
    doc_type = type(doc)
    values = doc.__dict__
    return {spec.name: _jsonable(doc_type, spec, values[spec.name]) for spec in schema_of(doc_type).fields}


def _jsonable(doc_type: type[Doc], spec: FieldSpec, v: Any) -> Any:
    """One field value as orjson writes it."""
    if v is None:
        return None
    if spec.kind in ("vector", "tensor"):
        return _tensor(v, spec)
    if spec.kind == "docs":
        return [doc_to_jsonable(d) for d in v]
    if spec.kind == "doc":
        return doc_to_jsonable(v)
    if spec.kind == "bytes":
        return base64.b64encode(v).decode("ascii")
    if spec.scalar == "float" and isinstance(v, float):
        return _float(v)
    if spec.kind in ("scalar", "url"):
        return v
    return _other(doc_type, spec, v)


def _jsonable_rows(docs: list[Doc], doc_type: type[Doc]) -> list[dict[str, Any]]:
    """``doc_to_jsonable`` of every document, done a field at a time when they are all exactly
    ``doc_type`` (the same dicts, built with a loop per field instead of per value)."""
    if len(docs) < 2 or any(type(d) is not doc_type for d in docs):
        return [doc_to_jsonable(d) for d in docs]
    specs = schema_of(doc_type).fields
    values = [d.__dict__ for d in docs]
    columns = [_jsonable_column(doc_type, spec, [v[spec.name] for v in values]) for spec in specs]
    names = [spec.name for spec in specs]
    return [dict(zip(names, row)) for row in zip(*columns)]  # noqa: B905 (lengths equal by construction)


def _jsonable_column(doc_type: type[Doc], spec: FieldSpec, col: list[Any]) -> list[Any]:
    """``_jsonable`` of each value of one field."""
    if spec.kind == "vector":
        if _finite_vectors(col):
            return col
    elif spec.kind in ("scalar", "url") and spec.scalar != "float":
        return col
    elif spec.scalar == "float" and spec.kind == "scalar":
        return [_float(v) if isinstance(v, float) else v for v in col]
    return [_jsonable(doc_type, spec, v) for v in col]


def _finite_vectors(col: list[Any]) -> bool:
    """Whether every value is None or a C-contiguous, native float32, 1-d array of one length
    holding only finite numbers (which ``_tensor`` would hand to orjson unchanged), checked a
    block of vectors at a time (one vectorised pass per block instead of a call per vector)."""
    present = [v for v in col if v is not None]
    if not present or type(present[0]) is not np.ndarray:
        return False
    first = present[0]
    dtype, shape = first.dtype, first.shape
    if dtype != np.float32 or len(shape) != 1:  # big-endian float32 is not equal either
        return False
    for v in present:
        if type(v) is not np.ndarray or v.dtype is not dtype or v.shape != shape or not v.flags.c_contiguous:
            return False
    step = max(1, (1 << 18) // max(1, first.nbytes))
    return all(np.isfinite(np.concatenate(present[i : i + step])).all() for i in range(0, len(present), step))


def dumps_json(obj: Any) -> bytes:
    """orjson with numpy support; ints beyond 64 bits (which orjson cannot hold) as text."""
    try:
        return orjson.dumps(obj, option=_OPTS)
    except TypeError:  # ints beyond 64 bits, which orjson (and many JSON readers) cannot hold
        return orjson.dumps(_big_ints_as_text(obj), option=_OPTS)


def _big_ints_as_text(obj: Any) -> Any:
    """Write ints beyond 64 bits as decimal strings; validation turns them back into ints."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int) and not -(2**63) <= obj < 2**64:
        return str(obj)
    if isinstance(obj, dict):
        return {k: _big_ints_as_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_big_ints_as_text(v) for v in obj]
    return obj


def dumps_docs(docs: Iterable[Doc], doc_type: type[Doc]) -> bytes:
    """A JSON array of documents, as UTF-8 bytes."""
    return dumps_json(_jsonable_rows(docs if isinstance(docs, list) else list(docs), doc_type))


def _restore(data: Any, doc_type: type[Doc]) -> Any:
    """Undo the JSON-only encodings (base64 tensors) before validation."""
    if not isinstance(data, dict):
        return data
    for spec in schema_of(doc_type).fields:
        v = data.get(spec.name)
        if v is None:
            continue
        if spec.kind in ("vector", "tensor") and isinstance(v, dict) and "b64" in v:
            try:
                arr = np.frombuffer(base64.b64decode(v["b64"]), dtype=np.dtype(v["dtype"]))
                data[spec.name] = arr.reshape(v["shape"]).copy()
            except (TypeError, ValueError, KeyError) as exc:
                raise FormatError(f"corrupt tensor in field {spec.name!r}: {exc}", field=spec.name) from None
        elif spec.kind == "docs" and isinstance(v, list) and spec.doc_type is not None:
            data[spec.name] = [_restore(d, spec.doc_type) for d in v]
        elif spec.kind == "doc" and spec.doc_type is not None:
            data[spec.name] = _restore(v, spec.doc_type)
    return data


def _parse(data: str | bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON: {exc}") from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while decoding: parsing makes thousands of containers that all stay
    alive, and the collections they trigger cost ~20% of a decode while finding nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def loads_docs(data: str | bytes, doc_type: type[Doc]) -> list[Doc]:
    """Parse a JSON array (or a single object) of documents and validate each.

    Raises:
        FormatError: not valid JSON, or not an array of objects.
        SchemaError: a document does not fit ``doc_type`` (names the index and field).
    """
    with _gc_paused():
        fast = _loads_columns(data, doc_type)
        if fast is not None:
            return fast
        parsed = _parse(data)
        items = [parsed] if isinstance(parsed, dict) else parsed
        if not isinstance(items, list):
            raise FormatError(f"expected a JSON array of documents, got {type(parsed).__name__}")
        return _validate_all(items, doc_type)


def _validate_all(items: list[Any], doc_type: type[Doc], offset: int = 0) -> list[Doc]:
    """Validate parsed documents: column-wise when the batch allows it (one array per vector
    field, vectorised checks), else, or whenever the column-wise path objects, one by one so the
    error names the document and field."""
    fast = _validate_columns(items, doc_type)
    if fast is not None:
        return fast
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(f"document {offset + i} is a JSON {type(item).__name__}, not an object")
        try:
            out.append(doc_type.model_validate(_restore(item, doc_type)))
        except ValidationError as exc:
            err = schema_error(exc, doc_type)
            raise type(err)(f"document {offset + i}: {err.message}", index=offset + i, **err._context) from None
    return out


#: model_config keys that do not change how a field validates (so column-wise validation, which
#: validates each field with its own annotation, gives what model_validate gives).
_NEUTRAL_CONFIG = frozenset({"title", "json_schema_extra", "frozen", "use_attribute_docstrings"})
_COLUMN_KINDS = frozenset({"scalar", "url", "bytes", "vector", "tensor"})
_COLUMNAR: dict[type, tuple[str, ...] | None] = {}


def _columnar_fields(doc_type: type[Doc]) -> tuple[str, ...] | None:
    """The field names when documents of ``doc_type`` may be validated column by column: the
    class adds no validators, hooks, aliases or config of its own, and has no nested documents
    or free-form fields. None otherwise (cached per class)."""
    if doc_type in _COLUMNAR:
        return _COLUMNAR[doc_type]
    names: tuple[str, ...] | None = tuple(doc_type.model_fields)
    decorators = doc_type.__pydantic_decorators__
    config = {k: v for k, v in doc_type.model_config.items() if k not in _NEUTRAL_CONFIG}
    if (
        config != {k: v for k, v in Doc.model_config.items() if k not in _NEUTRAL_CONFIG}
        or decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
        or doc_type.__pydantic_post_init__ is not None
        or doc_type.__private_attributes__
        or any(f.alias is not None or f.validation_alias is not None for f in doc_type.model_fields.values())
        or any(spec.kind not in _COLUMN_KINDS for spec in schema_of(doc_type).fields)
    ):
        names = None
    _COLUMNAR[doc_type] = names
    return names


def _validate_columns(items: list[Any], doc_type: type[Doc]) -> list[Doc] | None:
    """Column-wise validation through ``DocVec.from_columns``, or None to say "validate one by
    one": for any batch that is not a list of objects each holding exactly every field, for
    any value the vectorised checks refuse (the per-document path then reports it), and for
    batches too small to gain from it."""
    names = _columnar_fields(doc_type)
    if names is None or len(items) < 2:
        return None
    keys = set(names)
    for item in items:
        if type(item) is not dict or item.keys() != keys:
            return None
    columns: dict[str, Any] = {}
    for spec in schema_of(doc_type).fields:
        col = [item[spec.name] for item in items]
        if spec.kind == "vector":
            col = _vector_column(col)
        if (
            isinstance(col, list)
            and spec.kind in ("vector", "tensor")
            and any(type(v) is dict and "b64" in v for v in col)
        ):
            return None  # raw-bytes tensors: _restore's rules and errors apply
        columns[spec.name] = col
    return _docs_from_columns(columns, doc_type)


def _docs_from_columns(columns: dict[str, Any], doc_type: type[Doc]) -> list[Doc] | None:
    """The documents of validated columns, or None when validation refuses any value."""
    from polymodal.doc.docvec import docvec_of

    try:
        vec = docvec_of(doc_type).from_columns(columns)
    except (SchemaError, ValidationError, ValueError, TypeError):
        return None
    docs: list[Doc] = vec.to_list()
    return docs


_VECTORS: dict[type, frozenset[str]] = {}


def _loads_columns(data: str | bytes, doc_type: type[Doc]) -> list[Doc] | None:
    """A JSON array of flat documents with vectors, parsed by simdjson straight into columns
    (vectors as arrays, no Python float per element) and validated column-wise; None for
    anything else (other inputs, other schemas, any value the columns refuse), which the
    orjson path then parses, validates and reports as before."""
    names = _columnar_fields(doc_type)
    if names is None or not _starts_an_array(data):
        return None
    if doc_type not in _VECTORS:
        fields = schema_of(doc_type).fields
        # other tensors are nested lists or mappings, which the simdjson path leaves to orjson
        _VECTORS[doc_type] = (
            frozenset(s.name for s in fields if s.kind == "vector")
            if all(s.kind != "tensor" for s in fields)
            else frozenset()
        )
    vectors = _VECTORS[doc_type]
    if not vectors:  # nothing to gain over orjson
        return None
    columns = _simdjson.columns(data, names, vectors)
    if columns is None:
        return None
    for name in vectors:
        if isinstance(columns[name], list):
            columns[name] = _vector_column(columns[name])
    return _docs_from_columns(columns, doc_type)


def _starts_an_array(data: str | bytes) -> bool:
    """Whether the first non-blank character is ``[`` (a single object is one document, which
    the column path does not take)."""
    if isinstance(data, str):
        return data[:1] == "[" or (data[:1] in _BLANKS and data.lstrip(_BLANKS)[:1] == "[")
    if isinstance(data, bytes):
        return data[:1] == b"[" or (data[:1] in _BLANK_BYTES and data.lstrip(_BLANK_BYTES)[:1] == b"[")
    return False  # bytearray, memoryview: orjson reads them as they are


_BLANKS = " \t\n\r"
_BLANK_BYTES = _BLANKS.encode()


def _vector_column(values: list[Any]) -> Any:
    """One ``(n, d)`` numeric array when every value is a flat list of numbers of one length
    (what ``to_json`` writes for a ``Vector``); else the values as they are, validated one by
    one."""
    first = values[0]
    if type(first) is not list:
        return values
    width = len(first)
    for v in values:
        if type(v) is not list or len(v) != width:
            return values
    try:
        arr = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return values
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        return values
    return arr  # DocVec casts it to float32 before checking finiteness, as Vector does


def write_jsonl(path: str | Path, docs: Iterable[Doc]) -> int:
    """Write one JSON document per line; returns the count. Streams: any iterable works.

    If writing fails, the partial file is removed: its complete lines would otherwise read
    back as a valid file with fewer documents.
    """
    n = 0
    try:
        with open(path, "wb") as fh:
            for doc in docs:
                fh.write(dumps_json(doc_to_jsonable(doc)))
                fh.write(b"\n")
                n += 1
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return n


def iter_jsonl(path: str | Path, doc_type: type[Doc], *, batch_size: int = 1024) -> Iterator[DocList[Any]]:
    """Read a JSON Lines file in batches of ``batch_size`` documents (blank lines skipped)."""
    batch: list[Any] = []
    start = 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                batch.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise FormatError(f"{path}:{lineno}: invalid JSON: {exc}") from None
            if len(batch) >= batch_size:
                with _gc_paused():
                    docs = _validate_all(batch, doc_type, start)
                yield DocList[doc_type]._wrap(docs)  # type: ignore[valid-type]
                start += len(batch)
                batch = []
    if batch:
        with _gc_paused():
            docs = _validate_all(batch, doc_type, start)
        yield DocList[doc_type]._wrap(docs)  # type: ignore[valid-type]
