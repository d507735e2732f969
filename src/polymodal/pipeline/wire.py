"""How a batch of items and an error travel between a pipeline and a remote step.

Two payload formats:

* **JSON** (``application/json``): ``{"items": [...]}`` for records. Values JSON cannot hold
  are tagged objects ``{"$pm": kind, ...}``: numpy arrays (dtype, shape, base64 bytes, exact to
  the bit), bytes, media URLs and bytes (their class survives, so Decode still knows the
  modality), decoded media (AudioData, VideoData, MeshData) and documents.
* **Binary** (``application/vnd.polymodal.binary``, polymodal's document format): a batch of
  documents of one type, for speed; the type travels in ``X-Polymodal-Doc-Type``.

Documents are rebuilt only as types the receiver allows (``doc_types=``), never by importing a
class the other side names: a payload is data, not code.

Errors travel as ``{"detail", "error", "context"}`` with the HTTP status of
:func:`polymodal.errors.http_status`; the client rebuilds the same polymodal error class, so
``except MediaError`` works across a network hop as it does in-process.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

import numpy as np
import orjson

from polymodal import errors
from polymodal.doc.base import Doc
from polymodal.errors import BackendError, FormatError, PolymodalError, SchemaError

__all__ = [
    "BINARY",
    "DOC_TYPE_HEADER",
    "JSON",
    "decode_items",
    "doc_types_in",
    "encode_items",
    "error_from_payload",
    "error_payload",
    "type_name",
]

JSON = "application/json"
BINARY = "application/vnd.polymodal.binary"
DOC_TYPE_HEADER = "x-polymodal-doc-type"
TAG = "$pm"
Format = Literal["auto", "json", "binary"]


def type_name(cls: type) -> str:
    """``"module:QualName"``: how a document type is named on the wire."""
    return f"{cls.__module__}:{cls.__qualname__}"


# -- payloads --------------------------------------------------------------------------------
def encode_items(items: Sequence[Any], *, format: Format = "auto") -> tuple[bytes, dict[str, str]]:
    """The request or response body for ``items`` and its headers.

    ``auto`` sends documents of one type in the binary format and anything else as JSON.

    Raises:
        SchemaError: a value that cannot travel (an arbitrary Python object), or ``binary``
            asked for items that are not documents of one type.
    """
    doc_type = _single_doc_type(items)
    if format == "binary" and doc_type is None:
        raise SchemaError("the binary format carries documents of one type; send records as JSON")
    if doc_type is not None and format != "json":
        from polymodal.io import binary

        return binary.dumps(items, doc_type), {"content-type": BINARY, DOC_TYPE_HEADER: type_name(doc_type)}
    from polymodal.io.json import dumps_json

    return dumps_json({"items": [_encode(item) for item in items]}), {"content-type": JSON}


def decode_items(body: bytes, content_type: str, doc_type: str | None, allowed: Mapping[str, type[Doc]]) -> list[Any]:
    """Items from a body written by :func:`encode_items`.

    Raises:
        FormatError: malformed JSON or binary data, or an unknown tag.
        SchemaError: a document of a type the receiver does not allow (names it).
    """
    if content_type.split(";")[0].strip().lower() == BINARY:
        from polymodal.io import binary

        return list(binary.loads(body, _allowed(doc_type or "", allowed)))
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON payload: {exc}") from None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("items"), list):
        raise FormatError('expected a JSON object {"items": [...]}')
    return [_decode(item, allowed) for item in parsed["items"]]


def doc_types_in(items: Iterable[Any]) -> dict[str, type[Doc]]:
    """The document types among ``items`` (top level): a client accepts them back."""
    return {type_name(type(i)): type(i) for i in items if isinstance(i, Doc)}


def _single_doc_type(items: Sequence[Any]) -> type[Doc] | None:
    kinds = {type(i) for i in items}
    if len(kinds) == 1:
        (kind,) = kinds
        if issubclass(kind, Doc):
            return kind
    return None


def _allowed(name: str, allowed: Mapping[str, type[Doc]]) -> type[Doc]:
    cls = allowed.get(name)
    if cls is None:
        raise SchemaError(
            f"documents of type {name or '(unnamed)'} are not accepted here; "
            f"accepted: {', '.join(sorted(allowed)) or 'none'} (pass doc_types=[...] to allow one)",
            doc_type=name,
        )
    return cls


# -- values ----------------------------------------------------------------------------------
def _array(arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.hasobject:
        raise SchemaError("arrays of Python objects cannot be sent to a remote step")
    data = np.ascontiguousarray(arr)
    return {TAG: "ndarray", "dtype": data.dtype.str, "shape": list(data.shape), "b64": _b64(data.tobytes())}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _encode(value: Any) -> Any:
    from polymodal.doc.url import MediaBytes, MediaUrl
    from polymodal.media.types import AudioData, MeshData, VideoData

    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, MediaUrl):
        return {TAG: "url", "kind": type(value).__name__, "value": str(value)}
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return _array(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        kind = type(value).__name__ if isinstance(value, MediaBytes) else None
        return {TAG: "bytes", "kind": kind, "b64": _b64(bytes(value))}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Doc):
        from polymodal.io.json import doc_to_jsonable

        return {TAG: "doc", "type": type_name(type(value)), "data": doc_to_jsonable(value)}
    if isinstance(value, Mapping):
        if TAG in value:
            raise SchemaError(f"a record may not use the key {TAG!r}: it marks encoded values on the wire")
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise SchemaError(f"record keys must be strings to cross the wire, got {type(bad).__name__}")
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, AudioData):
        return {TAG: "audio", "samples": _array(value.samples), "sample_rate": value.sample_rate}
    if isinstance(value, VideoData):
        audio = _encode(value.audio) if value.audio is not None else None
        frames, times = _array(value.frames), _array(value.timestamps)
        return {
            TAG: "video",
            "frames": frames,
            "timestamps": times,
            "audio": audio,
            "fps": value.fps,
            "duration": value.duration,
        }
    if isinstance(value, MeshData):
        return {TAG: "mesh", "vertices": _array(value.vertices), "faces": _array(value.faces)}
    raise SchemaError(
        f"cannot send a {type(value).__name__} to a remote step: use numbers, text, lists, dicts, "
        "numpy arrays, bytes, media or documents"
    )


def _decode(value: Any, allowed: Mapping[str, type[Doc]]) -> Any:
    if isinstance(value, list):
        return [_decode(v, allowed) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: _decode(v, allowed) for k, v in value.items()}
    try:
        return _decode_tagged(tag, value, allowed)
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        if isinstance(exc, PolymodalError):
            raise
        raise FormatError(f"corrupt {tag!r} value in the payload: {exc}") from None


def _decode_tagged(tag: str, value: dict[str, Any], allowed: Mapping[str, type[Doc]]) -> Any:
    from polymodal.doc import url
    from polymodal.media.types import AudioData, MeshData, VideoData

    if tag == "ndarray":
        raw = base64.b64decode(value["b64"], validate=True)
        return np.frombuffer(raw, dtype=np.dtype(value["dtype"])).reshape(value["shape"]).copy()
    if tag == "bytes":
        data = base64.b64decode(value["b64"], validate=True)
        kind = value.get("kind")
        cls = getattr(url, kind, None) if kind in url.__all__ else None
        return cls(data) if cls is not None and issubclass(cls, url.MediaBytes) else data
    if tag == "url":
        cls = getattr(url, value["kind"], None) if value["kind"] in url.__all__ else None
        return cls(value["value"]) if cls is not None and issubclass(cls, url.MediaUrl) else value["value"]
    if tag == "audio":
        return AudioData(_decode_tagged("ndarray", value["samples"], allowed), int(value["sample_rate"]))
    if tag == "video":
        audio = _decode(value["audio"], allowed) if value["audio"] is not None else None
        frames = _decode_tagged("ndarray", value["frames"], allowed)
        times = _decode_tagged("ndarray", value["timestamps"], allowed)
        return VideoData(frames, times, audio, float(value["fps"]), float(value["duration"]))
    if tag == "mesh":
        vertices = _decode_tagged("ndarray", value["vertices"], allowed)
        return MeshData(vertices, _decode_tagged("ndarray", value["faces"], allowed))
    if tag == "doc":
        from polymodal.io.json import dumps_json, loads_docs

        return loads_docs(dumps_json(value["data"]), _allowed(value["type"], allowed))[0]
    raise FormatError(f"unknown value kind {tag!r} in the payload (a newer polymodal on the other side?)")


# -- errors ----------------------------------------------------------------------------------
def error_payload(exc: BaseException) -> dict[str, Any]:
    """The JSON body of an error answer: message, polymodal class name and plain context."""
    if not isinstance(exc, PolymodalError):
        return {"detail": " ".join(str(exc).split()) or type(exc).__name__, "error": None, "context": {}}
    name = type(exc).__name__ if type(exc).__name__ in errors.__all__ else "PolymodalError"
    context = {k: v for k, v in exc._context.items() if _plain(v)}
    return {"detail": " ".join(str(exc).split()), "error": name, "context": context}


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    return isinstance(value, (list, tuple)) and all(_plain(v) for v in value)


def error_from_payload(status: int, body: bytes, where: str) -> PolymodalError:
    """Rebuild the error a remote step answered with (``where`` prefixes the message)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        text = body[:200].decode("utf-8", "replace").strip()
        return BackendError(f"{where}: HTTP {status} {text}", backend=where, status=status)
    detail = str(payload.get("detail") or f"HTTP {status}")
    found = payload.get("context")
    context: dict[str, Any] = found if isinstance(found, dict) else {}
    name = payload.get("error")
    cls = getattr(errors, name, None) if isinstance(name, str) and name in errors.__all__ else None
    message = f"{where}: {detail}"
    if isinstance(cls, type) and issubclass(cls, PolymodalError):
        try:
            return cls(message, **{**context, "status": status})
        except TypeError:  # a context key the class does not take as it stands
            pass
    return BackendError(message, backend=where, status=status)
