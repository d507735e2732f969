"""How documents sit in Qdrant points: ids, vectors, payloads, and the collection metadata."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from polymodal.store.base import VectorField

__all__ = [
    "FORMAT",
    "TEXT_SUFFIX",
    "best_vector",
    "decode_vectors",
    "encode_vectors",
    "json_safe",
    "point_id",
    "row_id",
    "similarities",
]

FORMAT = 1
TEXT_SUFFIX = "__text"
_NAMESPACE = uuid.UUID("5b0c1d0e-6f1b-5e57-9c3a-706f6c796d6f")  # fixed: ids must be stable forever
Pos = tuple[int, ...]


def _uuid5(name: str) -> str:
    data = name.encode("utf-8", "surrogatepass")
    return str(uuid.UUID(bytes=hashlib.sha1(_NAMESPACE.bytes + data).digest()[:16], version=5))  # noqa: S324


def point_id(doc_id: str) -> str:
    """The point id of a document: uuid5 of its id, so every writer agrees without a lookup."""
    return _uuid5(doc_id)


def row_id(doc_id: str, path: str, pos: str) -> str:
    """The point id of one text value of a document (its field path and nested position)."""
    return _uuid5(f"{doc_id}\x1f{path}\x1f{pos}")


def pos_text(pos: Pos) -> str:
    return ".".join(map(str, pos))


def pos_tuple(text: str) -> Pos:
    return tuple(int(p) for p in text.split(".")) if text else ()


def unit(arr: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 in float64 (float32 squares overflow near 1e19); zero rows stay zero."""
    norms = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)
    return (arr / np.where(norms == 0, 1, norms)).astype(np.float32)


def encode_vectors(
    items: Sequence[tuple[Pos, np.ndarray]], field: VectorField
) -> tuple[list[float] | list[list[float]], dict[str, Any]]:
    """One field's vectors of a document: what Qdrant indexes (unit vectors for cosine; the
    list of a nested field's vectors as one multivector) and the exact originals for the payload."""
    arr = np.stack([np.asarray(v, dtype=np.float32) for _, v in items])
    stored = {"pos": [pos_text(p) for p, _ in items], "b64": base64.b64encode(arr.astype("<f4").tobytes()).decode()}
    indexed = unit(arr) if field.metric == "cosine" else arr
    return (indexed.tolist() if field.nested else indexed[0].tolist()), stored


def decode_vectors(entry: dict[str, Any]) -> tuple[list[Pos], np.ndarray]:
    """The positions and original vectors of one ``_v`` payload entry."""
    positions = [pos_tuple(p) for p in entry["pos"]]
    data = np.frombuffer(base64.b64decode(entry["b64"]), dtype="<f4").astype(np.float32)
    return positions, data.reshape(len(positions), -1)


def similarities(vectors: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Scores of ``vectors`` against a (normalised for cosine) query, higher is better."""
    if metric == "l2":
        return np.asarray(-np.linalg.norm(vectors.astype(np.float64) - q, axis=1), dtype=np.float64)
    rows = unit(vectors) if metric == "cosine" else vectors
    return np.asarray(rows.astype(np.float64) @ q.astype(np.float64), dtype=np.float64)


def best_vector(entry: dict[str, Any], q: np.ndarray, metric: str) -> tuple[Pos, float, float]:
    """The best vector's position and score, and the mean score, of one ``_v`` entry."""
    positions, vectors = decode_vectors(entry)
    sims = similarities(vectors, q, metric)
    i = int(np.argmax(sims))
    return positions[i], float(sims[i]), float(sims.mean())


def json_safe(obj: Any) -> Any:
    """A body as Qdrant can hold it: ints beyond 64 bits become decimal text, which validation
    turns back into ints (as the embedded store does)."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int) and not -(2**63) <= obj < 2**63:
        return str(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj
