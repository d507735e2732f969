"""The HTTP front end (FastAPI): search, documents, media with range requests, health,
Prometheus metrics, OpenAPI, and the search page.

Every polymodal error maps to its 4xx status with a one-line ``detail``; an unexpected error is
logged and answered 500 without internals. Documents travel as JSON, or in the binary format
with ``Content-Type``/``Accept: application/vnd.polymodal.binary``.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, File, Form, HTTPException, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
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
    # added first, so it runs inside the auth middleware: its BodyTooLarge reaches FastAPI's
    # handlers as an HTTPException (413) and a client without the key gets 401 unread
    app.add_middleware(BodyLimit, max_bytes=service.limits.max_body_bytes)

    @app.middleware("http")
    async def auth_and_metrics(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        path = request.url.path
        if (
            service.api_key
            and path not in PUBLIC
            and not _media_signed(request, service)
            and not check_key(request.headers.get("authorization"), service.api_key)
        ):
            response: Any = JSONResponse(
                {"detail": "missing or wrong API key: send Authorization: Bearer KEY"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            metrics.observe(request, 401, started)
            return response
        response = await call_next(request)
        metrics.observe(request, response.status_code, started)
        return response

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

    @app.post("/search", tags=["search"], response_model=Hits, responses=_errors(400, 401, 413, 422))
    def search(query: SearchQuery) -> dict[str, Any]:
        """Search by words (``text``), a vector (``vector`` + ``field``), or a server-side file the
        server is allowed to read (``image_url``/``audio_url``). To upload a file, use
        ``POST /search/file``."""
        return {"hits": service.search(query)}

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

    @app.post("/similar", tags=["search"], response_model=Hits, responses=_errors(400, 401, 404, 413, 422))
    def similar(req: SimilarRequest) -> dict[str, Any]:
        """ "More like this": stored documents like ``ids`` and unlike ``negative``."""
        return {"hits": service.similar(req.ids, req.negative, limit=req.limit, where=req.where, modality=req.modality)}

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


def _media_signed(request: Request, service: Service) -> bool:
    path = request.url.path
    if not path.startswith("/media/") or service.api_key is None:
        return False
    doc_id = path[len("/media/") :]
    return verify_media(doc_id, service.api_key, request.query_params.get("exp"), request.query_params.get("sig"))


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
        docs = Gauge("polymodal_documents", "Documents in the store", registry=self.registry)
        docs.set_function(lambda: float(service.store.count()))

    def observe(self, request: Request, status: int, started: float) -> None:
        route = request.scope.get("route")
        name = getattr(route, "path_format", None) or "unmatched"  # "/docs/{doc_id}", no convertor
        self.requests.labels(name, request.method, str(status)).inc()
        self.latency.labels(name).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
