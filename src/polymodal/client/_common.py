"""What the four clients share, whatever the protocol: the query and option types, the request
description (:class:`_Call`), building queries and upload batches, decoding a fetched
document, and turning server answers into polymodal errors, retried when transient.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from polymodal import errors
from polymodal.doc.base import Doc
from polymodal.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    FormatError,
    MediaError,
    NotFoundError,
    PolymodalError,
    SchemaError,
    UnsupportedOperation,
)

__all__ = ["SearchArgs", "SimilarArgs"]

T = TypeVar("T")
_TRANSIENT = frozenset({502, 503, 504})
_MB = 1 << 20


class SearchArgs(TypedDict, total=False):
    """How to search besides words: exactly one of ``vector``, ``image``, ``audio``,
    ``image_url``, ``audio_url`` (or ``text``), plus options."""

    vector: Sequence[float] | Any  # a list or a 1-d numpy array
    field: str  # the vector field, for ``vector``
    image: bytes | str | Path  # an image file to upload (its bytes or a local path)
    audio: bytes | str | Path
    image_url: str  # a server-side path or URL, when the server allows it
    audio_url: str
    limit: int
    where: Mapping[str, Any]
    modality: str | Sequence[str]


class SimilarArgs(TypedDict, total=False):
    limit: int
    where: Mapping[str, Any]
    modality: str | Sequence[str]


# -- errors and retries (both protocols) -------------------------------------------------------
_BY_NAME: dict[str, type[PolymodalError]] = {
    c.__name__: c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, PolymodalError)
}
# fmt: off
_BY_STATUS: dict[int, type[PolymodalError]] = {
    400: ConfigError, 404: NotFoundError, 422: SchemaError, 501: UnsupportedOperation,
    502: BackendError, 503: BackendError, 504: BackendError,
}
# fmt: on


def _error(status: int, message: str, name: str | None = None) -> PolymodalError:
    """The polymodal error for a server answer (``status`` kept as an attribute)."""
    if status == 401:
        return AuthenticationError(
            f"API key missing or wrong: pass api_key=... (sent as Authorization: Bearer KEY); server: {message}",
            status=status,
        )
    if status == 413:
        return ConfigError(f"request too large for the server ({message}): send smaller batches", status=status)
    cls = _BY_NAME.get(name or "") or _BY_STATUS.get(status) or PolymodalError
    return cls(message if status < 500 else f"server error {status}: {message}", status=status)


def _unreachable(where: str, exc: BaseException) -> BackendError:
    return BackendError(f"cannot reach the polymodal server at {where}: {exc}", backend="client", status=503)


def _transient(exc: PolymodalError) -> bool:
    return getattr(exc, "status", None) in _TRANSIENT


def _delays(retries: int, backoff: float) -> Iterator[float | None]:
    """Sleeps between attempts (exponential, jittered by x0.5-1.5, at most 30 s); None: give up."""
    for attempt in range(retries):
        yield min(backoff * 2**attempt, 30.0) * (0.5 + random.random())  # jitter, not crypto
    yield None


def _retry(once: Callable[[], T], retries: int, backoff: float) -> T:
    from polymodal import client  # the package's _sleep, looked up per call: tests replace it

    for delay in _delays(retries, backoff):
        try:
            return once()
        except PolymodalError as exc:
            if delay is None or not _transient(exc):
                raise
        client._sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def _aretry(once: Callable[[], Awaitable[T]], retries: int, backoff: float) -> T:
    from polymodal import client

    for delay in _delays(retries, backoff):
        try:
            return await once()
        except PolymodalError as exc:
            if delay is None or not _transient(exc):
                raise
        await client._asleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# -- requests, independent of the protocol and of sync/async ----------------------------------
@dataclass(frozen=True, slots=True)
class _Call:
    """One request: ``name`` is "METHOD /path" (HTTP) or the rpc name (gRPC)."""

    name: str
    payload: Any
    parse: Callable[[Any], Any]
    retry: bool = True


@dataclass(frozen=True, slots=True)
class _Query:
    kind: str
    value: Any
    field: str | None
    limit: int
    where: dict[str, Any] | None
    modality: list[str] | None


def _query(text: str | None, args: SearchArgs) -> _Query:
    ways: dict[str, Any] = {k: v for k, v in (("text", text), *((k, args.get(k)) for k in _WAYS)) if v is not None}
    if len(ways) != 1:
        raise ConfigError("give exactly one of text, vector, image, audio, image_url or audio_url")
    ((kind, value),) = ways.items()
    if kind == "vector":
        value = [float(x) for x in value]
    elif kind in ("image", "audio") and not isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = Path(value).expanduser().read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read the {kind} file {value}: {exc.strerror or exc}", uri=str(value)) from None
    return _Query(
        kind, value, args.get("field"), args.get("limit", 10), _dict(args.get("where")), _modality(args.get("modality"))
    )


_WAYS = ("vector", "image", "audio", "image_url", "audio_url")


def _dict(where: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(where) if where else None


def _modality(modality: str | Sequence[str] | None) -> list[str] | None:
    return [modality] if isinstance(modality, str) else (list(modality) if modality else None)


def _batches(docs: Iterable[Doc], batch_size: int, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(count, binary body) per upload request."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    chunk: list[Doc] = []
    for doc in docs:
        if not isinstance(doc, Doc):
            raise SchemaError(
                f"add() sends documents in the binary format: pass Doc instances, not {type(doc).__name__}"
            )
        chunk.append(doc)
        if len(chunk) == batch_size:
            yield from _encode(chunk, max_bytes)
            chunk = []
    if chunk:
        yield from _encode(chunk, max_bytes)


def _encode(chunk: list[Doc], max_bytes: int) -> Iterator[tuple[int, bytes]]:
    from polymodal.io import binary

    body = binary.dumps(chunk, type(chunk[0]))
    if len(body) <= max_bytes or len(chunk) == 1:
        yield len(chunk), body
        return
    half = len(chunk) // 2
    yield from _encode(chunk[:half], max_bytes)
    yield from _encode(chunk[half:], max_bytes)


def _decode_one(data: bytes, doc_type: type[Doc] | None) -> Doc:
    from polymodal.io import binary

    if doc_type is None:  # the schema travels in the data: rebuild the class (or import it)
        from polymodal.doc.schema import DocSchema

        doc_type = DocSchema.rebuild(binary.read_header(bytes(data))["schema"])
    docs = binary.loads(data, doc_type)
    if len(docs) != 1:
        raise FormatError(f"the server sent {len(docs)} documents for one id")
    return docs[0]


def _progress(docs: Iterable[Doc], show: bool) -> Any:
    from tqdm.auto import tqdm

    total = len(docs) if isinstance(docs, Sequence) else None
    return tqdm(total=total, unit="doc", desc="uploading", disable=not show)
