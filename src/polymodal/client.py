"""Python clients for a polymodal server: HTTP (:class:`Client`, :class:`AsyncClient`) and
gRPC (:class:`GrpcClient`, :class:`AsyncGrpcClient`), with the same methods and results.

* ``search``/``similar`` return hit dicts, the same shape over both protocols.
* ``add`` sends documents in the binary format, split into batches (``batch_size`` documents,
  halved again while a batch is over ``max_batch_bytes``), with an optional progress bar.
* Transient failures (connection errors, HTTP 502/503/504, gRPC UNAVAILABLE/DEADLINE_EXCEEDED)
  are retried ``retries`` times with exponential backoff and jitter; client mistakes (4xx,
  INVALID_ARGUMENT, NOT_FOUND ...) never are.
* Server errors come back as the matching polymodal error (``NotFoundError``, ``SchemaError``,
  ``ConfigError`` ...) with the server's message; a refused key is an :class:`AuthenticationError`.

>>> with Client("http://127.0.0.1:8000", api_key="...") as client:  # doctest: +SKIP
...     hits = client.search("a red bicycle", limit=5)
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

import orjson

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

__all__ = ["AsyncClient", "AsyncGrpcClient", "AuthenticationError", "Client", "GrpcClient", "SearchArgs"]

T = TypeVar("T")
BINARY = "application/vnd.polymodal.binary"
_TRANSIENT = frozenset({502, 503, 504})
_sleep: Callable[[float], None] = time.sleep  # module-level so tests can record the backoff
_asleep: Callable[[float], Awaitable[None]] = asyncio.sleep


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
_GRPC_STATUS = {  # the inverse of polymodal.serve.grpc_server.GRPC_CODE (without importing grpc here)
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 413, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
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
    for delay in _delays(retries, backoff):
        try:
            return once()
        except PolymodalError as exc:
            if delay is None or not _transient(exc):
                raise
        _sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def _aretry(once: Callable[[], Awaitable[T]], retries: int, backoff: float) -> T:
    for delay in _delays(retries, backoff):
        try:
            return await once()
        except PolymodalError as exc:
            if delay is None or not _transient(exc):
                raise
        await _asleep(delay)
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


class _HttpOps:
    """Builds each operation's HTTP request."""

    def search(self, q: _Query) -> _Call:
        if q.kind in ("image", "audio"):
            form = {"kind": q.kind, "limit": str(q.limit)}
            if q.where:
                form["where"] = orjson.dumps(q.where).decode()
            if q.modality:
                form["modality"] = ",".join(q.modality)
            payload = {"files": {"file": ("upload", bytes(q.value))}, "data": form}
            return _Call("POST /search/file", payload, _json_key("hits"))
        body = {q.kind: q.value, "field": q.field, "limit": q.limit, "where": q.where, "modality": q.modality}
        return _Call("POST /search", {"json": {k: v for k, v in body.items() if v is not None}}, _json_key("hits"))

    def similar(self, ids: list[str], negative: list[str], args: SimilarArgs) -> _Call:
        limit, where, modality = args.get("limit", 10), _dict(args.get("where")), _modality(args.get("modality"))
        body = {"ids": ids, "negative": negative, "limit": limit, "where": where, "modality": modality}
        return _Call("POST /similar", {"json": body}, _json_key("hits"))

    def add(self, body: bytes) -> _Call:
        return _Call("POST /docs", {"content": body, "headers": {"content-type": BINARY}}, _json_key("added"))

    def get(self, doc_id: str) -> _Call:
        return _Call(f"GET /docs/{_path(doc_id)}", {"headers": {"accept": BINARY}}, lambda r: r.content)

    def delete(self, doc_id: str) -> _Call:
        return _Call(f"DELETE /docs/{_path(doc_id)}", {}, _json_key("deleted"))

    def ready(self) -> _Call:
        return _Call("GET /ready", {}, lambda r: r.json())

    def health(self) -> _Call:
        return _Call("GET /health", {}, lambda r: r.json().get("status") == "ok", retry=False)


def _path(doc_id: str) -> str:
    if not doc_id:
        raise ConfigError("give a document id")
    return urllib.parse.quote(doc_id, safe="")


def _json_key(key: str) -> Callable[[Any], Any]:
    return lambda response: response.json()[key]


def _http_check(response: Any) -> Any:
    """The response, or the polymodal error for a 4xx/5xx answer."""
    if response.status_code < 400:
        return response
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    message = str(detail or response.text or response.reason_phrase).strip()
    raise _error(response.status_code, message, response.headers.get("x-polymodal-error"))


class _GrpcOps:
    """Builds each operation's gRPC request."""

    def __init__(self) -> None:
        from polymodal.serve.proto import polymodal_pb2

        self.pb = polymodal_pb2

    def search(self, q: _Query) -> _Call:
        fields: dict[str, Any] = {q.kind: self.pb.FloatVector(values=q.value) if q.kind == "vector" else q.value}
        if q.field is not None:
            fields["field"] = q.field
        where = orjson.dumps(q.where).decode() if q.where else ""
        request = self.pb.SearchRequest(limit=q.limit, where=where, modality=q.modality or (), **fields)
        return _Call("Search", request, _grpc_hits)

    def similar(self, ids: list[str], negative: list[str], args: SimilarArgs) -> _Call:
        where, modality = _dict(args.get("where")), _modality(args.get("modality")) or ()
        text = orjson.dumps(where).decode() if where else ""
        request = self.pb.SimilarRequest(
            ids=ids, negative=negative, limit=args.get("limit", 10), where=text, modality=modality
        )
        return _Call("Similar", request, _grpc_hits)

    def add(self, body: bytes) -> _Call:
        return _Call("AddDocs", self.pb.AddDocsRequest(docs=body), lambda r: int(r.added))

    def get(self, doc_id: str) -> _Call:
        return _Call("GetDoc", self.pb.GetDocRequest(id=doc_id), lambda r: r.doc)

    def delete(self, doc_id: str) -> _Call:
        return _Call("DeleteDoc", self.pb.DeleteDocRequest(id=doc_id), lambda r: int(r.deleted))

    def ready(self) -> _Call:
        return _Call("Ready", self.pb.ReadyRequest(), lambda r: orjson.loads(r.json))

    def health(self) -> _Call:
        from grpc_health.v1 import health_pb2

        request, serving = health_pb2.HealthCheckRequest(service=""), health_pb2.HealthCheckResponse.SERVING
        return _Call("health.Check", request, lambda r: r.status == serving, retry=False)


def _grpc_hits(reply: Any) -> list[dict[str, Any]]:
    return [orjson.loads(h.json) for h in reply.hits]


def _grpc_error(exc: Any, target: str) -> PolymodalError:
    code = exc.code()
    status = _GRPC_STATUS.get(getattr(code, "name", ""), 500)
    name = next((str(v) for k, v in (exc.trailing_metadata() or ()) if k == "polymodal-error"), None)
    message = exc.details() or getattr(code, "name", "error")
    if status == 503 and name is None:
        return _unreachable(target, Exception(message))
    return _error(status, message, name)


# -- the public API, once for sync and once for async ------------------------------------------
class _Base:
    def __init__(self, *, retries: int, backoff: float, max_batch_bytes: int, ops: _HttpOps | _GrpcOps) -> None:
        if retries < 0 or backoff < 0:
            raise ConfigError("retries and backoff must not be negative")
        self.retries, self.backoff, self.max_batch_bytes = retries, backoff, max_batch_bytes
        self._ops = ops


class _SyncApi(_Base, ABC):
    @abstractmethod
    def _once(self, call: _Call) -> Any: ...

    def _run(self, call: _Call) -> Any:
        return _retry(lambda: self._once(call), self.retries if call.retry else 0, self.backoff)

    def search(self, text: str | None = None, **query: Unpack[SearchArgs]) -> list[dict[str, Any]]:
        """Hits (dicts, best first) for words, a vector (with ``field``), or an image or sound.

        Args:
            text: words to search for; or exactly one of ``vector=`` (with ``field=``),
                ``image=``/``audio=`` (bytes or a local path, uploaded), ``image_url=``/``audio_url=``
                (read by the server, when it allows them). Options: ``limit``, ``where``, ``modality``.

        Raises:
            ConfigError: not exactly one query, or a limit over the server's maximum.
            SchemaError: a vector of the wrong size, an unknown field, a bad filter.
            AuthenticationError: the API key is missing or wrong.
            BackendError: the server stayed unavailable through every retry.
        """
        hits: list[dict[str, Any]] = self._run(self._ops.search(_query(text, query)))
        return hits

    def similar(
        self, ids: Sequence[str], negative: Sequence[str] = (), **opts: Unpack[SimilarArgs]
    ) -> list[dict[str, Any]]:
        """Stored documents like ``ids`` and unlike ``negative``."""
        hits: list[dict[str, Any]] = self._run(self._ops.similar(list(ids), list(negative), opts))
        return hits

    def add(self, docs: Iterable[Doc], *, batch_size: int = 500, progress: bool = False) -> int:
        """Upsert documents in batches (binary format); returns how many the server added.

        Args:
            docs: Doc instances of the store's schema (any iterable; streamed batch by batch).
            batch_size: documents per request (keep it within the server's ``max_docs``); a batch
                over ``max_batch_bytes`` is halved until it fits.
            progress: show a progress bar (tqdm) on stderr.

        Raises:
            ConfigError: a document alone is over the server's size limit, or too many per batch.
            SchemaError: not Doc instances, or documents that do not fit the store's schema.
        """
        added = 0
        with _progress(docs, progress) as bar:
            for count, body in _batches(docs, batch_size, self.max_batch_bytes):
                added += self._run(self._ops.add(body))
                bar.update(count)
        return added

    def get(self, doc_id: str, doc_type: type[Doc] | None = None) -> Doc:
        """One document, vectors and tensors included (``doc_type`` defaults to the sent schema)."""
        return _decode_one(self._run(self._ops.get(doc_id)), doc_type)

    def delete(self, doc_id: str) -> int:
        """Delete a document; 0 when it was not there."""
        return int(self._run(self._ops.delete(doc_id)))

    def ready(self) -> dict[str, Any]:
        """Readiness: documents, schema and profile of the served store."""
        state: dict[str, Any] = self._run(self._ops.ready())
        return state

    def health(self) -> bool:
        """Whether the server answers (no key needed, no retries)."""
        try:
            return bool(self._run(self._ops.health()))
        except PolymodalError:
            return False

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...


class _AsyncApi(_Base, ABC):
    @abstractmethod
    async def _once(self, call: _Call) -> Any: ...

    async def _run(self, call: _Call) -> Any:
        return await _aretry(lambda: self._once(call), self.retries if call.retry else 0, self.backoff)

    async def search(self, text: str | None = None, **query: Unpack[SearchArgs]) -> list[dict[str, Any]]:
        """Hits (dicts, best first) for words, a vector (with ``field``), or an image or sound."""
        hits: list[dict[str, Any]] = await self._run(self._ops.search(_query(text, query)))
        return hits

    async def similar(
        self, ids: Sequence[str], negative: Sequence[str] = (), **opts: Unpack[SimilarArgs]
    ) -> list[dict[str, Any]]:
        """Stored documents like ``ids`` and unlike ``negative``."""
        hits: list[dict[str, Any]] = await self._run(self._ops.similar(list(ids), list(negative), opts))
        return hits

    async def add(self, docs: Iterable[Doc], *, batch_size: int = 500, progress: bool = False) -> int:
        """Upsert documents in batches (binary format); returns how many the server added."""
        added = 0
        with _progress(docs, progress) as bar:
            for count, body in _batches(docs, batch_size, self.max_batch_bytes):
                added += await self._run(self._ops.add(body))
                bar.update(count)
        return added

    async def get(self, doc_id: str, doc_type: type[Doc] | None = None) -> Doc:
        """One document, vectors and tensors included (``doc_type`` defaults to the sent schema)."""
        return _decode_one(await self._run(self._ops.get(doc_id)), doc_type)

    async def delete(self, doc_id: str) -> int:
        """Delete a document; 0 when it was not there."""
        return int(await self._run(self._ops.delete(doc_id)))

    async def ready(self) -> dict[str, Any]:
        """Readiness: documents, schema and profile of the served store."""
        state: dict[str, Any] = await self._run(self._ops.ready())
        return state

    async def health(self) -> bool:
        """Whether the server answers (no key needed, no retries)."""
        try:
            return bool(await self._run(self._ops.health()))
        except PolymodalError:
            return False

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...


# -- the four clients -------------------------------------------------------------------------
_MB = 1 << 20


class _HttpSetup(_Base):
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_batch_bytes: int = 16 * _MB,
        transport: Any = None,
    ) -> None:
        import httpx

        super().__init__(retries=retries, backoff=backoff, max_batch_bytes=max_batch_bytes, ops=_HttpOps())
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        kind = httpx.AsyncClient if isinstance(self, _AsyncApi) else httpx.Client
        self._http: Any = kind(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._transport_error = httpx.TransportError


class Client(_HttpSetup, _SyncApi):
    """HTTP client (httpx) for ``url`` (``http://host:port``).

    Args:
        api_key: sent as ``Authorization: Bearer KEY`` (every route but ``/health`` needs it).
        timeout: seconds per request.
        retries: extra attempts for transient failures, ``backoff * 2**n`` seconds apart (jittered).
        max_batch_bytes: the largest upload body ``add`` sends.
        transport: passed to ``httpx.Client`` (tests, proxies).
    """

    def _once(self, call: _Call) -> Any:
        method, _, path = call.name.partition(" ")
        try:
            response = self._http.request(method, path, **call.payload)
        except self._transport_error as exc:
            raise _unreachable(self.url, exc) from exc
        return call.parse(_http_check(response))

    def close(self) -> None:
        self._http.close()


class AsyncClient(_HttpSetup, _AsyncApi):
    """HTTP client for asyncio (httpx.AsyncClient): the methods of :class:`Client`, awaited."""

    async def _once(self, call: _Call) -> Any:
        method, _, path = call.name.partition(" ")
        try:
            response = await self._http.request(method, path, **call.payload)
        except self._transport_error as exc:
            raise _unreachable(self.url, exc) from exc
        return call.parse(_http_check(response))

    async def close(self) -> None:
        await self._http.aclose()


class _GrpcSetup(_Base):
    def __init__(
        self,
        target: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_batch_bytes: int = 16 * _MB,
        credentials: Any = None,
    ) -> None:
        import grpc
        from grpc_health.v1 import health_pb2_grpc

        from polymodal.serve.proto import polymodal_pb2_grpc

        super().__init__(retries=retries, backoff=backoff, max_batch_bytes=max_batch_bytes, ops=_GrpcOps())
        self.target, self.timeout = target, timeout
        lib: Any = grpc.aio if isinstance(self, _AsyncApi) else grpc
        options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
        if credentials is not None:
            self._channel = lib.secure_channel(target, credentials, options=options)
        else:
            self._channel = lib.insecure_channel(target, options=options)
        stub = polymodal_pb2_grpc.PolymodalStub(self._channel)  # type: ignore[no-untyped-call]
        self._stubs = {"": stub, "health": health_pb2_grpc.HealthStub(self._channel)}
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self._rpc_error = grpc.RpcError

    def _method(self, call: _Call) -> Any:
        stub, _, name = call.name.rpartition(".")
        return getattr(self._stubs[stub], name)


class GrpcClient(_GrpcSetup, _SyncApi):
    """gRPC client; ``target`` is ``host:port``. Pass ``credentials=grpc.ssl_channel_credentials()``
    for TLS. The key travels as the metadata ``authorization: Bearer KEY``."""

    def _once(self, call: _Call) -> Any:
        try:
            reply = self._method(call)(call.payload, timeout=self.timeout, metadata=self._metadata)
        except self._rpc_error as exc:
            raise _grpc_error(exc, self.target) from None
        return call.parse(reply)

    def close(self) -> None:
        self._channel.close()


class AsyncGrpcClient(_GrpcSetup, _AsyncApi):
    """gRPC client for asyncio (grpc.aio): the methods of :class:`GrpcClient`, awaited."""

    async def _once(self, call: _Call) -> Any:
        try:
            reply = await self._method(call)(call.payload, timeout=self.timeout, metadata=self._metadata)
        except self._rpc_error as exc:
            raise _grpc_error(exc, self.target) from None
        return call.parse(reply)

    async def close(self) -> None:
        await self._channel.close()
