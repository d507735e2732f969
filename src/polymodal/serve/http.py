"""The HTTP front end (FastAPI): search, documents, media with range requests, health,
Prometheus metrics, OpenAPI, and the search page.

Every polymodal error maps to its 4xx status with a one-line ``detail``; an unexpected error is
logged and answered 500 without internals. Documents travel as JSON, or in the binary format
with ``Content-Type``/``Accept: application/vnd.polymodal.binary``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import struct
import time
from collections import deque
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor

from polymodal.errors import PolymodalError, SchemaError, http_status
from polymodal.serve.security import BodyLimit, check_key, verify_media
from polymodal.serve.service import SearchQuery, Service, doc_json

__all__ = ["BINARY", "SimilarRequest", "create_app"]


class _DocIdConvertor(PathConvertor):
    """A document id in a URL: any string, "/" and line breaks included (the path convertor's
    ``.*`` stops at a newline, so such an id answered "Not Found" from the router)."""

    regex = "[\\s\\S]*"


register_url_convertor("docid", _DocIdConvertor())

log = logging.getLogger("polymodal.serve")
BINARY = "application/vnd.polymodal.binary"
PUBLIC = {"/health", "/", "/favicon.ico"}


class SimilarRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(min_length=1, max_length=1000, description="Documents to find more like.")
    negative: list[str] = Field(default_factory=list, max_length=1000, description="Documents to move away from.")
    limit: int = Field(10, ge=1)
    where: dict[str, Any] | None = None
    modality: list[str] | None = Field(None, max_length=10)


class Hits(BaseModel):
    hits: list[dict[str, Any]]


class Added(BaseModel):
    added: int


class Deleted(BaseModel):
    deleted: int


class Error(BaseModel):
    """Every refusal: one line that says what was wrong."""

    detail: str


_REASONS = {
    400: "A bad request: the detail says why.",
    401: "Missing or wrong API key (send Authorization: Bearer KEY).",
    404: "No such document, or no media for it.",
    413: "The request body is over the server's limit.",
    422: "The request does not fit the schema: the detail names the field.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for the refusals a route can give. 422 is listed on every route with
    parameters, so FastAPI does not document its own list-shaped validation error: this server
    answers every error as :class:`Error`."""
    return {code: {"model": Error, "description": _REASONS[code]} for code in codes}


def create_app(service: Service) -> Any:
    """The ASGI application for one :class:`Service` (with the body-size limit inside)."""
    # Swagger UI lives at /api: at FastAPI's default /docs it shadowed the document routes
    app = FastAPI(
        title="polymodal",
        version=_version(),
        description="Multimodal search over one store.",
        docs_url="/api",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url="/api/oauth2-redirect",
    )
    metrics = _Metrics(service)
    app.state.service = service
    offload = app.state.offload = _Offload()
    # added first, so it runs inside the auth middleware: its BodyTooLarge reaches FastAPI's
    # handlers as an HTTPException (413) and a client without the key gets 401 unread
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)
    app.add_middleware(_Guard, service=service, metrics=metrics)

    @app.exception_handler(PolymodalError)
    async def polymodal_error(request: Request, exc: PolymodalError) -> JSONResponse:
        status = http_status(exc)
        if status >= 500 and status not in (501, 503):
            log.exception("unexpected polymodal error on %s", request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": " ".join(str(exc).split())},
            status_code=status,
            headers={"X-Polymodal-Error": type(exc).__name__},  # clients rebuild the exact class
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(errors) or "invalid request"}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal error (see the server log)"}, status_code=500)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", tags=["service"], responses=_errors(401))
    def ready() -> dict[str, Any]:
        """Readiness: the store is open and answers."""
        return service.ready()

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors(401)},
    )
    def prometheus() -> Response:
        """Prometheus metrics: requests by route and status, latency, documents."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post(
        "/search",
        tags=["search"],
        response_model=Hits,
        responses=_errors(400, 401, 413, 422),
        openapi_extra=_json_body(SearchQuery),
    )
    async def search(request: Request) -> Response:
        """Search by words (``text``), a vector (``vector`` + ``field``), or a server-side file the
        server is allowed to read (``image_url``/``audio_url``). To upload a file, use
        ``POST /search/file``."""
        # the body is parsed here, not by a `query: SearchQuery` parameter, and the answer is
        # orjson bytes, not a dict for a response model: orjson + one validation, and no
        # response-model pass or thread-pool hop for it, cost a fraction of FastAPI's path (the
        # OpenAPI body is declared above, so the schema is unchanged)
        query = _parse_json(SearchQuery, request, await request.body())
        hits = await offload(_search_kind(query, service), service.search, query)
        return _json_response({"hits": hits})

    @app.post("/search/file", tags=["search"], response_model=Hits, responses=_errors(400, 401, 413, 422))
    def search_file(
        file: Annotated[UploadFile, File(description="An image or audio file to search with.")],
        kind: Annotated[str, Form(description="image, audio, or auto (from the content type and name).")] = "auto",
        limit: Annotated[int, Form(ge=1)] = 10,
        where: Annotated[str | None, Form(description="Filter as JSON.")] = None,
        modality: Annotated[str | None, Form(description="Comma-separated modalities.")] = None,
    ) -> dict[str, Any]:
        """Search with an uploaded image or sound."""
        data = file.file.read(service.limits.max_body_bytes + 1)
        if not data:
            raise SchemaError("the uploaded file is empty")
        kind = _kind(kind, file.content_type or "", file.filename or "")
        query = SearchQuery(
            limit=limit,
            where=_json_form(where, "where"),
            modality=[m for m in (modality or "").split(",") if m] or None,
        )
        return {"hits": service.search(query, **{kind: data})}

    @app.post(
        "/similar",
        tags=["search"],
        response_model=Hits,
        responses=_errors(400, 401, 404, 413, 422),
        openapi_extra=_json_body(SimilarRequest),
    )
    async def similar(request: Request) -> Response:
        """ "More like this": stored documents like ``ids`` and unlike ``negative``."""
        req = _parse_json(SimilarRequest, request, await request.body())  # as in search()
        hits = await offload(
            "similar",
            lambda: service.similar(req.ids, req.negative, limit=req.limit, where=req.where, modality=req.modality),
        )
        return _json_response({"hits": hits})

    @app.post(
        "/docs",
        tags=["documents"],
        response_model=Added,
        responses=_errors(400, 401, 413, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    BINARY: {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    )
    async def add_docs(request: Request) -> dict[str, Any]:
        """Upsert documents: a JSON array (or ``{"docs": [...]}``), or the binary format."""
        body = await request.body()
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype == BINARY:
            from polymodal.io import binary

            if _expanded_size(body) > service.limits.max_body_bytes:
                raise HTTPException(
                    413, f"the documents expand to over the limit of {service.limits.max_body_bytes} bytes"
                )
            docs: list[Any] = binary.loads(body, service.store.doc_type)
        else:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise HTTPException(400, f"invalid JSON: {exc}") from None
            found = parsed.get("docs") if isinstance(parsed, dict) else parsed
            if not isinstance(found, list) or not all(isinstance(d, dict) for d in found):
                raise HTTPException(422, 'send a JSON array of documents (objects), or {"docs": [...]}')
            docs = found
        return {"added": service.add(docs)}

    # {doc_id:docid}: ids may hold "/" (the store allows any string); an id is only ever a store key
    @app.get(
        "/docs/{doc_id:docid}",
        tags=["documents"],
        responses={200: {"content": {BINARY: {}}}, **_errors(401, 404, 422)},
    )
    def get_doc(doc_id: str, request: Request) -> Response:
        """One document (JSON with vectors; the binary format with ``Accept: ...binary``)."""
        doc = service.get(doc_id)
        if BINARY in request.headers.get("accept", ""):
            from polymodal.io import binary

            return Response(binary.dumps([doc], type(doc)), media_type=BINARY)
        return Response(orjson.dumps(doc_json(doc, vectors=True)), media_type="application/json")

    @app.delete("/docs/{doc_id:docid}", tags=["documents"], response_model=Deleted, responses=_errors(401, 422))
    def delete_doc(doc_id: str) -> dict[str, int]:
        """Delete a document (``deleted: 0`` when it was not there)."""
        return {"deleted": service.delete(doc_id)}

    @app.get(
        "/media/{doc_id:docid}",
        tags=["documents"],
        response_class=FileResponse,
        responses={
            200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
            206: {"description": "Part of the file (a Range request)."},
            416: {"description": "The Range cannot be satisfied (an empty body)."},
            **_errors(401, 404, 422),
        },
    )
    def media(doc_id: str) -> FileResponse:
        """The file behind a document, with HTTP range requests (browsers seek in video/audio).
        Served only from the store's media roots."""
        path = service.media_path(doc_id)
        return FileResponse(path, filename=path.name, content_disposition_type="inline")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_page())

    return app


def _media_signed(scope: dict[str, Any], service: Service) -> bool:
    path: str = scope["path"]
    if not path.startswith("/media/") or service.api_key is None:
        return False
    doc_id = path[len("/media/") :]
    params = Request(scope).query_params
    return verify_media(doc_id, service.api_key, params.get("exp"), params.get("sig"))


_UNAUTHORIZED = orjson.dumps({"detail": "missing or wrong API key: send Authorization: Bearer KEY"})


class _Guard:
    """ASGI middleware: the API key on every route but the public ones, and the request metrics.

    Plain ASGI, not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs the
    application in a task of its own and streams the response through a memory channel, which
    cost more server CPU per search than the rest of the request path together."""

    def __init__(self, app: Any, service: Service, metrics: _Metrics) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        key = self.service.api_key
        if key and scope["path"] not in PUBLIC and not self._authorized(scope, key):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _UNAUTHORIZED})
            self.metrics.observe(scope, 401, started)
            return
        status = 500  # what the server's error middleware answers when the application raises

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(scope, status, started)

    def _authorized(self, scope: dict[str, Any], key: str) -> bool:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if header is not None and check_key(header.decode("latin-1"), key):  # constant-time compare
            return True
        return _media_signed(scope, self.service)


class _Offload:
    """Runs a call on the event loop when it has been cheap, else in the thread pool.

    A vector search over a small store takes a few hundred microseconds: sending it to a worker
    thread and back (two thread wake-ups, GIL hand-offs) cost about as much again, and one
    process runs one search at a time under the GIL either way. A kind of call whose fastest
    run of the last ``window`` took over ``inline_s`` (a big store, a model, a database across
    the network) goes to the thread pool, so it does not hold up other requests. The fastest
    run, not the mean: waiting for a core on a busy machine only ever adds time, so one slow
    sample says little, while ``window`` slow ones in a row do. A kind of None always goes to
    the pool (reads of named files or URLs)."""

    def __init__(self, inline_s: float = 0.001, window: int = 16) -> None:
        self.inline_s = inline_s
        self.recent: dict[str, deque[float]] = {}
        self.window = window

    async def __call__(self, kind: str | None, fn: Any, *args: Any) -> Any:
        if kind is None:
            return await run_in_threadpool(fn, *args)
        recent = self.recent.get(kind)
        if recent is None:
            recent = self.recent[kind] = deque(maxlen=self.window)
        if recent and min(recent) < self.inline_s:
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                recent.append(time.perf_counter() - t)

        took: list[float] = []  # filled in the worker thread, read back here on the event loop

        def timed() -> Any:
            t = time.perf_counter()
            try:
                return fn(*args)
            finally:
                took.append(time.perf_counter() - t)

        try:
            return await run_in_threadpool(timed)
        finally:
            recent.extend(took)  # nothing when cancelled before the call ended

    def inline(self, kind: str) -> bool:
        """Whether the next call of ``kind`` runs on the event loop."""
        recent = self.recent.get(kind)
        return recent is not None and len(recent) > 0 and min(recent) < self.inline_s


def _search_kind(query: SearchQuery, service: Service) -> str | None:
    """What a search will do, for :class:`_Offload`: a store lookup ("vector", "text"), a
    model ("model"), or a read of a named file or URL (None: always off the event loop)."""
    if query.image_url is not None or query.audio_url is not None:
        return None
    if query.vector is not None:
        return "vector"
    return "text" if service.searcher is None else "model"


_LONG_NUMBER = re.compile(rb"\d{20}")
_UNPARSED = object()


def _parse_json(model: type[Any], request: Request, body: bytes) -> Any:
    """A JSON request body validated by a pydantic model, refused as FastAPI refuses a body
    parameter: 422 for a body not sent as JSON, invalid JSON or a field that does not fit (the
    field named under ``body.``), 400 for JSON nested too deep to parse.

    orjson parses nearly every body (a fifth of the standard library's time); a body it refuses
    (``NaN``, lone surrogates, nesting over 1024) or one with a 20-digit number (orjson makes an
    integer over 64 bits a float, so ``limit: 2**70`` would pass for a float) is parsed as
    FastAPI parses it, with the standard library's ``json``, so both answer alike."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/json" and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "send a JSON object (Content-Type: application/json)", "type": "model_type"}]
        )
    data: Any = _UNPARSED
    if not _LONG_NUMBER.search(body):
        with contextlib.suppress(orjson.JSONDecodeError):
            data = orjson.loads(body)
    if data is _UNPARSED:
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "ctx": {"error": exc.msg},
                    }
                ]
            ) from None
        except (RecursionError, ValueError):  # too deep; bytes that are no Unicode at all
            raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a JSON body read by the route itself (see :func:`_parse_json`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def _json_response(content: Any) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


_BIN_HEAD = struct.Struct("<8sHHI")  # polymodal.io.binary: magic, version, flags, header length
_BIN_FRAME = struct.Struct("<4sBBHIQQI")  # "PMFR", kind, codec, 0, meta_len, stored_len, raw_len, crc32


def _expanded_size(body: bytes) -> int:
    """What the frames of a binary upload say they decompress to, read before decompressing: a
    1 KB zstd frame of a zero tensor expands to gigabytes, past the body-size limit.

    Malformed data counts what it can and stops; :func:`polymodal.io.binary.loads` reports it.
    """
    if len(body) < _BIN_HEAD.size:
        return 0
    pos = _BIN_HEAD.size + _BIN_HEAD.unpack_from(body)[3] + 4
    total = 0
    while pos + _BIN_FRAME.size <= len(body):
        magic, kind, _codec, _zero, _meta, stored_len, raw_len, _crc = _BIN_FRAME.unpack_from(body, pos)
        if magic != b"PMFR" or kind != 1:
            break
        total += raw_len
        pos += _BIN_FRAME.size + stored_len
    return total


def _kind(kind: str, content_type: str, filename: str) -> str:
    if kind in ("image", "audio"):
        return kind
    if kind != "auto":
        raise SchemaError(f"kind must be image, audio or auto, got {kind!r}")
    if content_type.startswith("image/"):
        return "image"
    if content_type.startswith(("audio/", "video/")):
        return "audio"
    from pathlib import Path

    from polymodal.library.build import modality_of

    found = modality_of(Path(filename))
    if found in ("image", "audio"):
        return found
    raise SchemaError("cannot tell whether the upload is an image or a sound: pass kind=image or kind=audio")


def _json_form(value: str | None, name: str) -> dict[str, Any] | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise SchemaError(f"{name} must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise SchemaError(f"{name} must be a JSON object")
    return parsed


def _page() -> str:
    try:
        return (resources.files("polymodal.serve") / "static" / "index.html").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return "<!doctype html><title>polymodal</title><p>The search page is not installed.</p>"


def _version() -> str:
    from polymodal import __version__

    return __version__


class _Metrics:
    """Prometheus metrics in a registry of their own (several apps can live in one process)."""

    def __init__(self, service: Service) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "polymodal_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "polymodal_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        docs = Gauge("polymodal_documents", "Documents in the store", registry=self.registry)
        docs.set_function(lambda: float(service.store.count()))

    def observe(self, scope: dict[str, Any], status: int, started: float) -> None:
        name = getattr(scope.get("route"), "path_format", None) or "unmatched"  # "/docs/{doc_id}"
        key = (name, scope["method"], status)
        children = self._children.get(key)
        if children is None:  # label lookups are the slow part of an observation: once per key
            children = (self.requests.labels(name, scope["method"], str(status)), self.latency.labels(name))
            self._children[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
