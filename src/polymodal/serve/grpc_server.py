"""The gRPC front end: the :class:`~polymodal.serve.service.Service` operations as
``polymodal.v1.Polymodal`` (see ``proto/polymodal.proto``), the standard health service
(``grpc.health.v1.Health``, answering without a key) and server reflection.

Documents travel in the binary format (:mod:`polymodal.io.binary`). Every call but health needs
the metadata ``authorization: Bearer KEY`` when the service has a key (compared in constant
time). Requests over ``Limits.max_body_bytes`` are refused by gRPC itself with
RESOURCE_EXHAUSTED. Polymodal errors map to status codes through the same table as HTTP
(:data:`polymodal.errors.HTTP_STATUS`, via :data:`GRPC_CODE`), with the error class named in the
trailing metadata ``polymodal-error``; an unexpected error is logged and answered INTERNAL
without internals.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
import orjson
import pydantic

from polymodal.errors import ConfigError, PolymodalError, SchemaError, http_status
from polymodal.serve.proto import polymodal_pb2 as pb
from polymodal.serve.proto import polymodal_pb2_grpc as pb_grpc
from polymodal.serve.security import check_key
from polymodal.serve.service import SearchQuery, Service

__all__ = ["ERROR_METADATA", "GRPC_CODE", "SERVICE_NAME", "grpc_code", "start_grpc"]

log = logging.getLogger("polymodal.serve")
SERVICE_NAME = "polymodal.v1.Polymodal"
#: Trailing metadata key naming the polymodal error class (clients rebuild the same class).
ERROR_METADATA = "polymodal-error"
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_UNAUTHENTICATED = "missing or wrong API key: send the metadata 'authorization: Bearer KEY'"

#: gRPC status for each HTTP status of :func:`polymodal.errors.http_status` (one table for both).
GRPC_CODE: dict[int, grpc.StatusCode] = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    500: grpc.StatusCode.INTERNAL,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def grpc_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code for ``exc`` (derived from its HTTP status; INTERNAL when unknown)."""
    return GRPC_CODE.get(http_status(exc), grpc.StatusCode.INTERNAL)


R = TypeVar("R")
_Method = Callable[[Any, Any, grpc.ServicerContext], R]


def _rpc(method: _Method[R]) -> _Method[R]:
    """Run one call, turning errors into status codes with a one-line message."""

    @functools.wraps(method)
    def call(self: Any, request: Any, context: grpc.ServicerContext) -> R:
        try:
            return method(self, request, context)
        except PolymodalError as exc:
            code = grpc_code(exc)
            if code is grpc.StatusCode.INTERNAL:
                log.exception("unexpected polymodal error in %s", method.__name__, exc_info=exc)
            context.set_trailing_metadata(((ERROR_METADATA, type(exc).__name__),))
            context.abort(code, " ".join(str(exc).split()))
        except pydantic.ValidationError as exc:
            errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
            context.set_trailing_metadata(((ERROR_METADATA, "SchemaError"),))
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(errors) or "invalid request")
        except Exception as exc:  # logged; the client gets no internals
            log.exception("unexpected error in %s", method.__name__, exc_info=exc)
            context.abort(grpc.StatusCode.INTERNAL, "internal error (see the server log)")
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    return call


def _where(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise SchemaError("where must be a JSON object") from None
    if not isinstance(parsed, dict):
        raise SchemaError("where must be a JSON object")
    return parsed


def _opt(value: Any, kind: type) -> Any:
    return kind(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


def _hit(h: dict[str, Any]) -> pb.Hit:
    """A hit dict of :class:`Service` as a proto ``Hit``: typed fields where the hit has them
    (library hits have uri/modality/start/end; generic hits keep theirs inside ``doc``), and the
    whole hit as JSON."""
    found = h.get("doc")
    doc: dict[str, Any] = found if isinstance(found, dict) else {}
    fields = {
        "uri": _opt(h.get("uri", doc.get("uri")), str),
        "modality": _opt(h.get("modality", doc.get("modality")), str),
        "start": _opt(h.get("start"), float),
        "end": _opt(h.get("end"), float),
        "snippet": _opt(h.get("snippet"), str),
        "media": _opt(h.get("media"), str),
    }
    present = {k: v for k, v in fields.items() if v is not None}
    return pb.Hit(
        id=str(h["id"]),
        score=float(h["score"]),
        json=orjson.dumps(h, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
        **present,
    )


def _hits(hits: list[dict[str, Any]]) -> pb.SearchReply:
    return pb.SearchReply(hits=[_hit(h) for h in hits])


class PolymodalServicer(pb_grpc.PolymodalServicer):  # type: ignore[misc]
    """``polymodal.v1.Polymodal``, delegating every call to one :class:`Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @_rpc
    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchReply:  # noqa: N802
        kind = request.WhichOneof("query")
        query: dict[str, Any] = {
            "limit": request.limit if request.HasField("limit") else 10,
            "where": _where(request.where),
            "modality": list(request.modality) or None,
            "field": request.field if request.HasField("field") else None,
        }
        files: dict[str, bytes] = {}
        if kind == "vector":
            query["vector"] = list(request.vector.values)
        elif kind in ("text", "image_url", "audio_url"):
            query[kind] = getattr(request, kind)
        elif kind in ("image", "audio"):
            files[kind] = getattr(request, kind)
            if not files[kind]:
                raise SchemaError(f"the uploaded {kind} is empty")
        return _hits(self.service.search(SearchQuery(**query), **files))

    @_rpc
    def Similar(self, request: pb.SimilarRequest, context: grpc.ServicerContext) -> pb.SearchReply:  # noqa: N802
        hits = self.service.similar(
            list(request.ids),
            list(request.negative),
            limit=request.limit if request.HasField("limit") else 10,
            where=_where(request.where),
            modality=list(request.modality) or None,
        )
        return _hits(hits)

    @_rpc
    def AddDocs(self, request: pb.AddDocsRequest, context: grpc.ServicerContext) -> pb.AddDocsReply:  # noqa: N802
        from polymodal.io import binary

        if not request.docs:
            raise SchemaError("no documents: send them in the binary format (polymodal.io.binary.dumps)")
        docs = binary.loads(request.docs, self.service.store.doc_type)
        return pb.AddDocsReply(added=self.service.add(docs))

    @_rpc
    def GetDoc(self, request: pb.GetDocRequest, context: grpc.ServicerContext) -> pb.GetDocReply:  # noqa: N802
        from polymodal.io import binary

        doc = self.service.get(_id(request.id))
        return pb.GetDocReply(doc=binary.dumps([doc], type(doc)))

    @_rpc
    def DeleteDoc(self, request: pb.DeleteDocRequest, context: grpc.ServicerContext) -> pb.DeleteDocReply:  # noqa: N802
        return pb.DeleteDocReply(deleted=self.service.delete(_id(request.id)))

    @_rpc
    def Ready(self, request: pb.ReadyRequest, context: grpc.ServicerContext) -> pb.ReadyReply:  # noqa: N802
        state = self.service.ready()
        profile = state.get("profile")
        return pb.ReadyReply(
            ready=bool(state.get("ready")),
            documents=int(state.get("documents") or 0),
            schema=str(state.get("schema") or ""),
            json=orjson.dumps(state).decode(),
            **({"profile": str(profile)} if profile is not None else {}),
        )


def _id(doc_id: str) -> str:
    if not doc_id:
        raise SchemaError("give a document id")
    return doc_id


class _ApiKey(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuse every call but the health service unless it carries the key (constant time)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method.startswith(_HEALTH_PREFIX):
            return continuation(details)
        metadata = {m.key: m.value for m in details.invocation_metadata or ()}
        header = metadata.get("authorization")
        if check_key(header if isinstance(header, str) else None, self._key):
            return continuation(details)
        handler = continuation(details)

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, _UNAUTHENTICATED)

        # Raw bytes in (no deserializer): a refused request is never parsed.
        if handler is not None and handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        if handler is not None and handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


def start_grpc(service: Service, *, host: str, port: int, max_workers: int = 8) -> grpc.Server:
    """Serve ``service`` over gRPC on ``host:port``; returns the started server (not blocking).

    With ``port=0`` the system picks a free port: ``server.bound_port`` says which. Stop it with
    ``server.stop(grace)``.

    Raises:
        ConfigError: the address cannot be bound (in use, or not an address of this machine).
    """
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection

    limit = service.limits.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="polymodal-grpc"),
        interceptors=[_ApiKey(service.api_key)] if service.api_key else [],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a port in use is an error, never a silent share
        ],
    )
    pb_grpc.add_PolymodalServicer_to_server(PolymodalServicer(service), server)  # type: ignore[no-untyped-call]
    checker = health.HealthServicer()
    for name in ("", SERVICE_NAME):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(f"cannot serve gRPC on {address}: {exc}") from None
    if bound == 0:
        raise ConfigError(f"cannot serve gRPC on {address} (port in use, or not an address of this machine)")
    server.start()
    server.bound_port = bound  # with port=0 the system picked it: this is where to connect
    return server
