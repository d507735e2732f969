"""The gRPC front end over a real server on a loopback port, called with the generated stubs:
every operation, status codes and messages for client mistakes, API keys (health exempt), the
standard health service, reflection, and the message size limit."""

from __future__ import annotations

import socket

import grpc
import numpy as np
import orjson
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import polymodal as pm
from polymodal.io import binary
from polymodal.serve.grpc_server import SERVICE_NAME, grpc_code, start_grpc
from polymodal.serve.proto import polymodal_pb2 as pb
from polymodal.serve.proto import polymodal_pb2_grpc as pb_grpc
from polymodal.serve.service import Limits, Service

KEY = "k" * 8 + "-grpc-test-key"
AUTH = (("authorization", f"Bearer {KEY}"),)


class Part(pm.Doc):
    start: float
    embedding: pm.Vector[3] | None = None


class Item(pm.Doc):
    title: str
    embedding: pm.Vector[4]
    pixels: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    parts: pm.DocList[Part] | None = None


def _items() -> list[Item]:
    return [
        Item(
            id=f"i{i}",
            title=f"red car number {i}" if i % 2 else f"blue boat number {i}",
            embedding=np.arange(4, dtype=np.float32) + i,
            pixels=np.full((2, 3, 3), i, np.uint8),
            parts=[Part(id=f"i{i}.p{j}", start=j / 2, embedding=[j, i, 1]) for j in range(2)],
        )
        for i in range(8)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = pm.open(tmp_path_factory.mktemp("grpc") / "store", schema=Item)
    store.add(_items())
    service = Service(store=store, api_key=KEY, limits=Limits(max_body_bytes=64 * 1024, max_docs=20))
    port = free_port()
    server = start_grpc(service, host="127.0.0.1", port=port, max_workers=4)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield service, channel
    channel.close()
    server.stop(None)
    store.close()


@pytest.fixture
def stub(served):
    return pb_grpc.PolymodalStub(served[1])


def _call(method, request, metadata=AUTH):
    return method(request, metadata=metadata, timeout=10)


def _fails(method, request, metadata=AUTH) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        method(request, metadata=metadata, timeout=10)
    return info.value


def _error_class(err: grpc.RpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("polymodal-error")


def test_text_search_on_a_generic_store_uses_bm25(stub):
    reply = _call(stub.Search, pb.SearchRequest(text="red car", limit=3))
    assert [h.id for h in reply.hits] and all(h.id in {"i1", "i3", "i5", "i7"} for h in reply.hits)
    first = orjson.loads(reply.hits[0].json)
    assert first["id"] == reply.hits[0].id and first["field"] == "title" and "[red]" in reply.hits[0].snippet
    assert not reply.hits[0].HasField("start")  # a top-level match has no segment times


def test_vector_search_by_field_and_filter(stub):
    vec = pb.FloatVector(values=[2, 3, 4, 5])
    reply = _call(stub.Search, pb.SearchRequest(vector=vec, field="embedding", limit=2))
    assert reply.hits[0].id == "i2" and reply.hits[0].score == pytest.approx(1.0, abs=1e-5)
    nested = _call(stub.Search, pb.SearchRequest(vector=pb.FloatVector(values=[1, 3, 1]), field="parts.embedding"))
    assert nested.hits[0].id == "i3"
    where = orjson.dumps({"title": {"$in": [f"blue boat number {i}" for i in (0, 4, 6)]}}).decode()
    filtered = _call(stub.Search, pb.SearchRequest(vector=vec, field="embedding", limit=3, where=where))
    assert [h.id for h in filtered.hits] == ["i4", "i6", "i0"]


def test_similar(stub):
    reply = _call(stub.Similar, pb.SimilarRequest(ids=["i4"], limit=2))
    assert [h.id for h in reply.hits] == ["i5", "i3"]  # nearest by cosine, the example itself left out


def test_add_get_delete_in_the_binary_format(stub):
    doc = Item(
        id="g-new",
        title="green bike",
        embedding=[1, 0, 0, 0],
        pixels=np.arange(18, dtype=np.uint8).reshape(2, 3, 3),
        parts=[Part(id="g-new.p", start=1.5, embedding=[0.25, 0.5, 0.75])],
    )
    added = _call(stub.AddDocs, pb.AddDocsRequest(docs=binary.dumps([doc], Item)))
    assert added.added == 1
    got = binary.loads(_call(stub.GetDoc, pb.GetDocRequest(id="g-new")).doc, Item)
    assert got == [doc] and got[0].pixels.dtype == np.uint8 and got[0].parts[0].embedding.dtype == np.float32
    assert _call(stub.DeleteDoc, pb.DeleteDocRequest(id="g-new")).deleted == 1
    assert _call(stub.DeleteDoc, pb.DeleteDocRequest(id="g-new")).deleted == 0  # deleting twice is not an error


def test_ready(stub, served):
    reply = _call(stub.Ready, pb.ReadyRequest())
    assert reply.ready and reply.documents == served[0].store.count() and reply.schema == "Item"
    assert not reply.HasField("profile") and orjson.loads(reply.json)["schema"] == "Item"


@pytest.mark.parametrize(
    ("method", "request_", "code", "error", "words"),
    [
        ("GetDoc", pb.GetDocRequest(id="missing"), "NOT_FOUND", "NotFoundError", "missing"),
        ("Similar", pb.SimilarRequest(ids=["missing"]), "NOT_FOUND", "NotFoundError", "missing"),
        ("Search", pb.SearchRequest(limit=3), "INVALID_ARGUMENT", "ConfigError", "exactly one"),
        ("Search", pb.SearchRequest(text="x", where="[1]"), "INVALID_ARGUMENT", "SchemaError", "JSON object"),
        ("Search", pb.SearchRequest(text="x", where="{"), "INVALID_ARGUMENT", "SchemaError", "JSON object"),
        ("Search", pb.SearchRequest(text="x", limit=0), "INVALID_ARGUMENT", "SchemaError", "limit"),
        ("Search", pb.SearchRequest(text="x", limit=5000), "INVALID_ARGUMENT", "ConfigError", "maximum"),
        (
            "Search",
            pb.SearchRequest(vector=pb.FloatVector(values=[1, 2]), field="embedding"),
            "INVALID_ARGUMENT",
            "SchemaError",
            "dimension 4",
        ),
        ("Search", pb.SearchRequest(image=b"not an image"), "INVALID_ARGUMENT", "ConfigError", "vector or text"),
        ("Search", pb.SearchRequest(text="x", where='{"nope": 1}'), "INVALID_ARGUMENT", "SchemaError", "nope"),
        ("Similar", pb.SimilarRequest(), "INVALID_ARGUMENT", "ConfigError", "at least one"),
        (
            "AddDocs",
            pb.AddDocsRequest(docs=b"garbage, not documents"),
            "INVALID_ARGUMENT",
            "FormatError",
            "not polymodal binary",
        ),
        ("AddDocs", pb.AddDocsRequest(), "INVALID_ARGUMENT", "SchemaError", "binary format"),
        (
            "AddDocs",
            pb.AddDocsRequest(docs=binary.dumps([Part(id=f"p{i}", start=0) for i in range(2)], Part)),
            "INVALID_ARGUMENT",
            "SchemaError",
            "does not declare",
        ),
        (
            "AddDocs",
            pb.AddDocsRequest(docs=binary.dumps(_items() * 3, Item)),
            "INVALID_ARGUMENT",
            "ConfigError",
            "at most 20",
        ),
        ("GetDoc", pb.GetDocRequest(), "INVALID_ARGUMENT", "SchemaError", "document id"),
    ],
)
def test_client_mistakes_get_clear_status_codes(stub, method, request_, code, error, words):
    """Never UNKNOWN or INTERNAL for a bad request: the code, the polymodal class, and the reason."""
    err = _fails(getattr(stub, method), request_)
    assert err.code().name == code, err.details()
    assert _error_class(err) == error
    assert words in err.details()


def test_api_key_is_required_on_every_call_but_health(served, stub):
    for metadata in ((), (("authorization", "Bearer wrong-key-wrong-key"),), (("authorization", KEY),)):
        err = _fails(stub.Ready, pb.ReadyRequest(), metadata)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "API key" in err.details()
    err = _fails(stub.AddDocs, pb.AddDocsRequest(docs=b"x" * 1000), ())
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED  # refused before the body is parsed
    health = health_pb2_grpc.HealthStub(served[1])
    for name in ("", SERVICE_NAME):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)  # no key
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(served):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    channel = grpc.intercept_channel(served[1], _AddKey())
    db = ProtoReflectionDescriptorDatabase(channel)
    services = set(db.get_services())
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= services
    method = DescriptorPool(db).FindServiceByName(SERVICE_NAME).FindMethodByName("Search")
    assert method.input_type.full_name == "polymodal.v1.SearchRequest"


def test_reflection_needs_the_key(served):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with pytest.raises(grpc.RpcError) as info:
        ProtoReflectionDescriptorDatabase(served[1]).get_services()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_oversize_message_is_resource_exhausted(stub):
    big = Item(id="big", title="big", embedding=[1, 1, 1, 1], pixels=np.zeros((200, 200, 3), np.uint8))
    err = _fails(stub.AddDocs, pb.AddDocsRequest(docs=binary.dumps([big], Item)))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in err.details()


def test_unexpected_errors_are_internal_without_internals(served, stub, monkeypatch):
    def boom():
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served[0], "ready", boom)
    err = _fails(stub.Ready, pb.ReadyRequest())
    assert err.code() == grpc.StatusCode.INTERNAL and "secret" not in err.details()


def test_status_codes_follow_the_http_table():
    assert grpc_code(pm.NotFoundError("x")) == grpc.StatusCode.NOT_FOUND
    assert grpc_code(pm.SchemaError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_code(pm.FormatError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_code(pm.ConfigError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert grpc_code(pm.UnsupportedOperation("x")) == grpc.StatusCode.UNIMPLEMENTED
    assert grpc_code(pm.BackendError("x")) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code(RuntimeError("x")) == grpc.StatusCode.INTERNAL


def test_a_port_in_use_is_a_clear_error(served):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(pm.ConfigError, match="cannot serve gRPC"):
            start_grpc(served[0], host="127.0.0.1", port=sock.getsockname()[1])


class _AddKey(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the API key to every call (the reflection client takes no metadata)."""

    def _details(self, details):
        return details._replace(metadata=[*(details.metadata or ()), *AUTH])

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)
