"""The rows a document becomes in the Milvus store's collections (see :mod:`.store`)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from polymodal.doc.base import Doc
from polymodal.store.base import VectorField
from polymodal.store.flatten import flatten
from polymodal.store.milvus import schema as ms
from polymodal.store.milvus.expr import filter_body
from polymodal.store.milvus.text import term_chunks

__all__ = ["JSON_LIMIT", "TRIMMED", "Batch", "decode_vector", "join_body", "pos_of", "rows_of"]

Rows = list[dict[str, Any]]
JSON_LIMIT = 60_000  # a Milvus server holds at most 65,536 bytes in one JSON (or VARCHAR) value
TRIMMED = "$trimmed"  # marks an fbody that left fields out to fit (filters check those in Python)


@dataclass(slots=True)
class Batch:
    """The rows of a batch of documents, per collection."""

    main: Rows = field(default_factory=list)
    vectors: dict[str, Rows] = field(default_factory=dict)
    texts: Rows = field(default_factory=list)
    parts: Rows = field(default_factory=list)  # bodies too long for one JSON value, in pieces
    trimmed: bool = False


def rows_of(
    docs: Sequence[Doc], doc_type: type[Doc], fields: Mapping[str, VectorField], text_fields: Sequence[str]
) -> Batch:
    """The rows of a batch of documents.

    Primary keys are the document id, or a hash of (id, field, position, chunk): the same
    document always makes the same rows, so writing a batch again is harmless. A body longer
    than one JSON value holds goes in pieces to the parts collection; an ``fbody`` that long
    leaves out its largest fields and says so (``$trimmed``), and filters check that document
    in Python.
    """
    batch = Batch(vectors={path: [] for path in fields})
    for doc in docs:
        flat = flatten(doc, text_fields)
        body = _plain_json(flat.body)
        fbody, trimmed = _fit(filter_body(doc_type, body))
        batch.trimmed = batch.trimmed or trimmed
        text = orjson.dumps(body)
        if len(text) > JSON_LIMIT:  # pieces named by their content: readers never mix two versions
            digest = hashlib.sha1(text, usedforsecurity=False).hexdigest()
            pieces = _split(text.decode())
            batch.parts.extend(
                {"pk": _key([doc.id, digest, k]), "parent": doc.id, "digest": digest, "seq": k, "data": piece}
                | {"_pad": ms.PAD}
                for k, piece in enumerate(pieces)
            )
            body = {"$parts": len(pieces), "$digest": digest}
        batch.main.append({"id": doc.id, "body": body, "fbody": fbody, "_pad": ms.PAD})
        for path, pos, vec in flat.vectors:
            batch.vectors[path].append(_vector_row(doc.id, pos, vec, fields[path].metric, fbody))
        for path, pos, value in flat.texts:
            for k, terms in enumerate(term_chunks(value)):
                key = _key([doc.id, path, list(pos), k])
                batch.texts.append(
                    {"pk": key, "parent": doc.id, "path": path, "pos": _pos(pos), "fbody": fbody, "terms": terms}
                )
    return batch


def join_body(stub: Mapping[str, Any], parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A body from its stub (``{"$parts": n, "$digest": d}``) and the parts collection's rows of its
    document (any order; pieces of other versions are ignored)."""
    mine = sorted((p for p in parts if p["digest"] == stub["$digest"]), key=lambda p: int(p["seq"]))
    if len(mine) != stub["$parts"]:
        raise ValueError(f"{len(mine)} of {stub['$parts']} pieces of a stored document body")
    text = "".join(p["data"] for p in mine)
    result: dict[str, Any] = orjson.loads(text)
    return result


def _fit(fbody: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if len(orjson.dumps(fbody)) <= JSON_LIMIT:
        return fbody, False
    out = dict(fbody)
    sizes = sorted(((len(orjson.dumps(v)), k) for k, v in out.items() if k != "id"), reverse=True)
    for _, key in sizes:
        del out[key]
        if len(orjson.dumps(out)) <= JSON_LIMIT - 20:
            break
    out[TRIMMED] = True
    return out, True


def _split(text: str) -> list[str]:
    """Pieces of at most JSON_LIMIT UTF-8 bytes (never splitting a character)."""
    pieces: list[str] = []
    data = text.encode()
    start = 0
    while start < len(data):
        end = min(start + JSON_LIMIT, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte: back off
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


def decode_vector(raw: str) -> np.ndarray:
    """A stored vector, bit for bit as it was added."""
    return np.frombuffer(base64.b64decode(raw), dtype="<f4").copy()


def pos_of(text: str) -> tuple[int, ...]:
    """A row's position among nested sub-documents (``"1.2"`` -> ``(1, 2)``)."""
    return tuple(int(p) for p in text.split(".")) if text else ()


def _vector_row(doc_id: str, pos: tuple[int, ...], vec: Any, metric: str, fbody: dict[str, Any]) -> dict[str, Any]:
    raw = np.ascontiguousarray(vec, dtype="<f4")
    indexed = raw
    if metric == "cosine":  # unit length computed in float64: huge components do not overflow
        wide = raw.astype(np.float64)
        indexed = (wide / (float(np.linalg.norm(wide)) or 1.0)).astype(np.float32)
    return {
        "pk": _key([doc_id, list(pos)]),
        "parent": doc_id,
        "pos": _pos(pos),
        "fbody": fbody,
        "raw": base64.b64encode(raw.tobytes()).decode("ascii"),
        "vec": indexed.tolist(),
    }


def _key(parts: list[Any]) -> str:
    return hashlib.sha1(orjson.dumps(parts), usedforsecurity=False).hexdigest()


def _pos(pos: Sequence[int]) -> str:
    return ".".join(map(str, pos))


def _plain_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as plain JSON values (ints beyond 64 bits as text, as the flattener writes them)."""
    try:
        data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:
        data = orjson.dumps(ms.big_ints_as_text(body), option=orjson.OPT_SERIALIZE_NUMPY)
    result: dict[str, Any] = orjson.loads(data)
    return result
