"""Split a document into what a store keeps apart: a JSON body, its vectors, its texts.

Vectors (top-level and nested) go to the vector index with their position among nested
sub-documents; the body keeps everything else (other tensors as compact base64) and is the
JSON that filters read; texts feed full-text search. :func:`rebuild` puts a document back
together. Every backend uses this, so they all store the same thing.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.doc.tensor import tensor_to_b64

__all__ = ["Flat", "flatten", "rebuild", "set_at"]

Pos = tuple[int, ...]


@dataclass(slots=True)
class Flat:
    """One document, split: ``body`` (JSON-ready, vectors set to None), ``vectors`` as
    ``(path, pos, vector)`` and ``texts`` as ``(path, pos, text)``."""

    body: dict[str, Any]
    vectors: list[tuple[str, Pos, np.ndarray]] = field(default_factory=list)
    texts: list[tuple[str, Pos, str]] = field(default_factory=list)


_ADAPTERS: dict[tuple[type, str], TypeAdapter[Any]] = {}


def _jsonable_other(doc_type: type[Doc], name: str, value: Any) -> Any:
    key = (doc_type, name)
    adapter = _ADAPTERS.get(key)
    if adapter is None:
        adapter = _ADAPTERS[key] = TypeAdapter(doc_type.model_fields[name].annotation)  # type: ignore[arg-type]
    return adapter.dump_python(value, mode="json")


def flatten(doc: Doc, text_paths: Sequence[str] = ()) -> Flat:
    """Split ``doc``; ``text_paths`` names the str fields (dotted) to collect as texts."""
    flat = Flat(body={})
    flat.body = _walk(doc, "", (), flat, frozenset(text_paths))
    return flat


def _walk(doc: Doc, prefix: str, pos: Pos, flat: Flat, texts: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    doc_type = type(doc)
    values = doc.__dict__
    for spec in schema_of(doc_type).fields:
        v = values[spec.name]
        path = prefix + spec.name
        if v is None:
            out[spec.name] = None
        elif spec.kind == "vector":
            flat.vectors.append((path, pos, v))
            out[spec.name] = None
        elif spec.kind == "tensor":
            out[spec.name] = tensor_to_b64(v)
        elif spec.kind == "docs":
            out[spec.name] = [_walk(d, path + ".", (*pos, i), flat, texts) for i, d in enumerate(v)]
        elif spec.kind == "doc":
            out[spec.name] = _walk(v, path + ".", pos, flat, texts)
        elif spec.kind == "bytes":
            out[spec.name] = base64.b64encode(v).decode("ascii")
        elif spec.kind == "url":
            out[spec.name] = str(v)
        elif spec.kind == "scalar":
            if spec.scalar == "float" and not np.isfinite(v):
                out[spec.name] = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
            elif spec.scalar == "int" and not -(2**63) <= v < 2**63:
                out[spec.name] = str(v)  # JSON engines hold 64-bit ints; validation restores it
            else:
                out[spec.name] = v
            if spec.scalar == "str" and path in texts and v:
                flat.texts.append((path, pos, v))
        else:
            out[spec.name] = _jsonable_other(doc_type, spec.name, v)
    return out


def set_at(body: dict[str, Any], path: str, nesting: Sequence[str], pos: Pos, value: Any) -> None:
    """Put ``value`` at dotted ``path`` in a body, using ``pos`` at each nested list."""
    node: Any = body
    parts = path.split(".")
    walked = ""
    i = 0
    for part in parts[:-1]:
        walked = f"{walked}.{part}" if walked else part
        node = node[part]
        if walked in nesting:
            node = node[pos[i]]
            i += 1
    node[parts[-1]] = value


def rebuild(doc_type: type[Doc], body: dict[str, Any]) -> Doc:
    """Validate a body (with its vectors put back by :func:`set_at`) into a document."""
    return doc_type.from_dict(body)
