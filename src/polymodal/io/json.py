"""JSON and JSON Lines for documents, with orjson (numpy arrays are written natively).

Tensors whose dtype the schema fixes (every ``Vector``) are plain nested lists; other tensors
are ``{"dtype", "shape", "data"}`` objects so their dtype survives. A float tensor holding NaN
or infinity (which JSON cannot spell) is written as ``{"dtype", "shape", "b64"}`` with its raw
bytes, so every value round-trips exactly.
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
    out: dict[str, Any] = {}
    values = doc.__dict__
    for spec in schema_of(doc_type).fields:
        v = values[spec.name]
        if v is None:
            out[spec.name] = None
        elif spec.kind in ("vector", "tensor"):
            out[spec.name] = _tensor(v, spec)
        elif spec.kind == "docs":
            out[spec.name] = [doc_to_jsonable(d) for d in v]
        elif spec.kind == "doc":
            out[spec.name] = doc_to_jsonable(v)
        elif spec.kind == "bytes":
            out[spec.name] = base64.b64encode(v).decode("ascii")
        elif spec.scalar == "float" and isinstance(v, float):
            out[spec.name] = _float(v)
        elif spec.kind in ("scalar", "url"):
            out[spec.name] = v
        else:
            out[spec.name] = _other(doc_type, spec, v)
    return out


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
    return dumps_json([doc_to_jsonable(d) for d in docs])


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
    from polymodal.doc.docvec import docvec_of

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
    try:
        vec = docvec_of(doc_type).from_columns(columns)
    except (SchemaError, ValidationError, ValueError, TypeError):
        return None
    docs: list[Doc] = vec.to_list()
    return docs


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
