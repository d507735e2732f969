"""The FastAPI application behind a step server (imported only when one is made, since FastAPI
is an optional dependency; :mod:`polymodal.pipeline.remote` documents the behaviour)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from polymodal.doc.base import Doc
from polymodal.errors import ConfigError, OverloadedError, PolymodalError, http_status
from polymodal.pipeline import wire
from polymodal.pipeline.steps import Step
from polymodal.serve.security import BodyLimit, check_key

__all__ = ["build_app"]

log = logging.getLogger("polymodal.pipeline")


def build_app(
    step: Step,
    *,
    api_key: str | None,
    doc_types: Sequence[type[Doc]],
    max_body_bytes: int,
    max_items: int,
    max_inflight: int,
) -> Any:
    """The ASGI application serving ``step`` (see :func:`polymodal.pipeline.remote.create_step_app`)."""
    allowed = {wire.type_name(t): t for t in doc_types}
    schema = getattr(step, "schema", None)
    if isinstance(schema, type) and issubclass(schema, Doc):
        allowed.setdefault(wire.type_name(schema), schema)
    slots = threading.BoundedSemaphore(max_inflight)
    app = FastAPI(title=f"polymodal step {step.name}", description="One pipeline step: POST a batch to /run.")
    # added before the auth middleware so it runs inside it, as in polymodal.serve.http: an
    # over-limit body becomes a clean 413 and a caller without the key gets 401 unread
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        if api_key and request.url.path != "/health" and not check_key(request.headers.get("authorization"), api_key):
            return JSONResponse(
                {"detail": "missing or wrong API key: send Authorization: Bearer KEY", "error": None, "context": {}},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)

    @app.exception_handler(PolymodalError)
    async def polymodal_error(request: Request, exc: PolymodalError) -> JSONResponse:
        return JSONResponse(wire.error_payload(exc), status_code=http_status(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("step %r failed unexpectedly", step.name, exc_info=exc)
        payload = wire.error_payload(exc)  # the step's own words; no traceback leaves the server
        payload["detail"] = f"{type(exc).__name__}: {payload['detail']}"
        return JSONResponse(payload, status_code=500)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        return {"name": step.name, "type": type(step).__name__, "doc_types": sorted(allowed)}

    @app.post("/run")
    async def run(request: Request) -> Response:
        """Run the step on a batch (JSON ``{"items": [...]}`` or the binary document format)."""
        body = await request.body()
        items = wire.decode_items(
            body, request.headers.get("content-type", wire.JSON), request.headers.get(wire.DOC_TYPE_HEADER), allowed
        )
        if len(items) > max_items:
            raise ConfigError(f"at most {max_items} items per request; send smaller batches")
        if not slots.acquire(blocking=False):
            raise OverloadedError(
                f"step {step.name!r} is busy ({max_inflight} requests running); retry later",
                backend=f"step server {step.name}",
                reason="overloaded",
            )
        try:
            out = await run_in_threadpool(step.run, items)
        finally:
            slots.release()
        binary = request.headers.get("content-type", "").startswith(wire.BINARY)
        produced = {wire.type_name(type(d)) for d in out if isinstance(d, Doc)}
        fmt: wire.Format = "auto" if binary and produced <= set(allowed) else "json"
        payload, headers = wire.encode_items(out, format=fmt)
        return Response(payload, headers=headers)

    return app
