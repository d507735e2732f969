"""The gRPC clients (grpcio): :class:`GrpcClient` and :class:`AsyncGrpcClient`, the request each
operation makes, and gRPC status codes read back as polymodal errors."""

from __future__ import annotations

from typing import Any

import orjson

from polymodal.client._api import _AsyncApi, _Base, _SyncApi
from polymodal.client._common import _MB, SimilarArgs, _Call, _dict, _error, _modality, _Query, _unreachable
from polymodal.errors import PolymodalError

__all__ = ["AsyncGrpcClient", "GrpcClient"]

# fmt: off
_GRPC_STATUS = {  # the inverse of polymodal.serve.grpc_server.GRPC_CODE (without importing grpc here)
    "INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 413, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}
# fmt: on


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
