"""The Python clients against real servers on loopback ports (uvicorn in a thread for HTTP,
``start_grpc`` for gRPC), over one store: every operation over both protocols, sync and async,
with the same results; API keys; exact binary round trips; batched uploads with a progress bar;
retries with backoff for transient failures only; size limits."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import numpy as np
import pytest

import polymodal as pm
import polymodal.client as pmc
from polymodal.client import AsyncClient, AsyncGrpcClient, AuthenticationError, Client, GrpcClient
from polymodal.serve.grpc_server import start_grpc
from polymodal.serve.http import create_app
from polymodal.serve.service import Limits, Service

KEY = "client-test-key-0123456789"
PROTOCOLS = ("http", "grpc")


class Part(pm.Doc):
    start: float
    end: float | None = None
    embedding: pm.Vector[3] | None = None


class Item(pm.Doc):
    title: str
    embedding: pm.Vector[4]
    pixels: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    depth: pm.NdArray[np.float64, "n"] | None = None
    meta: dict[str, Any] = {}
    parts: pm.DocList[Part] | None = None
    cover: Part | None = None


def _item(i: int, *, size: int = 2) -> Item:
    return Item(
        id=f"i{i}",
        title=f"red car number {i}" if i % 2 else f"blue boat number {i}",
        embedding=np.arange(4, dtype=np.float32) + i,
        pixels=np.full((size, 3, 3), i % 256, np.uint8),
        parts=[Part(id=f"i{i}.p{j}", start=j / 2, end=j / 2 + 0.5, embedding=[j, i, 1]) for j in range(2)],
    )


class _Http:
    """uvicorn serving an ASGI app in a thread, on a socket bound before it starts."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", interface="asgi3"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(1000):  # startup, not a timing assertion
            if self.server.started or not self.thread.is_alive():
                break
            time.sleep(0.01)
        assert self.server.started, "uvicorn did not start"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = pm.open(tmp_path_factory.mktemp("client") / "store", schema=Item)
    store.add([_item(i) for i in range(8)])
    service = Service(store=store, api_key=KEY, limits=Limits(max_body_bytes=256 * 1024, max_docs=30))
    http = _Http(create_app(service))
    port = _free_port()
    grpc_server = start_grpc(service, host="127.0.0.1", port=port, max_workers=4)
    yield {"service": service, "http": http.url, "grpc": f"127.0.0.1:{port}"}
    grpc_server.stop(None)
    http.stop()
    store.close()


def _client(served, protocol: str, **kw: Any) -> Client | GrpcClient:
    kw.setdefault("api_key", KEY)
    return Client(served["http"], **kw) if protocol == "http" else GrpcClient(served["grpc"], **kw)


def _aclient(served, protocol: str, **kw: Any) -> AsyncClient | AsyncGrpcClient:
    kw.setdefault("api_key", KEY)
    return AsyncClient(served["http"], **kw) if protocol == "http" else AsyncGrpcClient(served["grpc"], **kw)


@pytest.fixture(params=PROTOCOLS)
def client(request, served):
    with _client(served, request.param) as c:
        yield c


@pytest.fixture
def counted(served, monkeypatch):
    """Counts the server's calls of one Service method, optionally failing the first ones."""

    def install(name: str, fail: list[Exception] | None = None) -> list[int]:
        calls: list[int] = []
        real = getattr(served["service"], name)
        errors = list(fail or [])

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            if errors:
                raise errors.pop(0)
            return real(*args, **kwargs)

        monkeypatch.setattr(served["service"], name, wrapper)
        return calls

    return install


@pytest.fixture
def sleeps(monkeypatch):
    """Records the backoff sleeps instead of sleeping."""
    seen: list[float] = []

    async def asleep(delay: float) -> None:
        seen.append(delay)

    monkeypatch.setattr(pmc, "_sleep", seen.append)
    monkeypatch.setattr(pmc, "_asleep", asleep)
    return seen


# -- every operation, both protocols ------------------------------------------------------------
def test_search_by_text_vector_and_nested_vector(client):
    words = client.search("red car", limit=3)
    assert words and {h["id"] for h in words} <= {"i1", "i3", "i5", "i7"} and "[red]" in words[0]["snippet"]
    vec = client.search(vector=np.array([2, 3, 4, 5]), field="embedding", limit=2)
    assert vec[0]["id"] == "i2" and vec[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert "embedding" not in vec[0]["doc"]  # hits stay small
    nested = client.search(vector=[1, 3, 1], field="parts.embedding", limit=1)
    assert nested[0]["id"] == "i3" and nested[0]["match"]["start"] == 0.5
    only = client.search(vector=[2, 3, 4, 5], field="embedding", where={"title": {"$in": ["blue boat number 6"]}})
    assert [h["id"] for h in only] == ["i6"]


def test_both_protocols_return_the_same_hits(served):
    with _client(served, "http") as http, _client(served, "grpc") as grpc_:
        for query in ({"text": "blue boat"}, {"vector": [1, 2, 3, 4], "field": "embedding"}):
            assert http.search(**query, limit=4) == grpc_.search(**query, limit=4)
        assert http.similar(["i2"], ["i7"], limit=3) == grpc_.similar(["i2"], ["i7"], limit=3)
        assert http.ready() == grpc_.ready()


def test_similar_ready_health(client, served):
    hits = client.similar(["i4"], limit=2)
    assert [h["id"] for h in hits] == ["i5", "i3"]
    state = client.ready()
    assert (
        state["ready"] is True and state["schema"] == "Item" and state["documents"] == served["service"].store.count()
    )
    assert client.health() is True


def test_binary_round_trip_is_exact(client):
    doc = Item(
        id=f"exact-{type(client).__name__}",
        title="Ünïcode ✓ title",
        embedding=np.array([0.1, -2.5, 1e-30, 12345.678], np.float32),
        pixels=np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8),
        depth=np.array([np.pi, -0.0, 1e-300]),
        meta={"big": 2**62, "nested": {"a": [1, 2.5, None]}},
        parts=[Part(id="p0", start=0.0, end=1.25, embedding=[1, 2, 3]), Part(id="p1", start=2.0)],
        cover=Part(id="c", start=-1.0, embedding=[0.5, 0.25, 0.125]),
    )
    assert client.add([doc]) == 1
    back = client.get(doc.id, Item)
    assert back == doc
    assert back.pixels.dtype == np.uint8 and back.depth.dtype == np.float64 and back.embedding.dtype == np.float32
    assert back.depth.tobytes() == doc.depth.tobytes() and back.meta["big"] == 2**62
    assert back.parts[0].embedding.tolist() == [1, 2, 3] and back.parts[1].embedding is None
    generic = client.get(doc.id)  # no class given: from the schema in the data (imported, or rebuilt)
    assert generic.model_dump(mode="json") == doc.model_dump(mode="json")
    assert client.delete(doc.id) == 1
    assert client.delete(doc.id) == 0
    with pytest.raises(pm.NotFoundError, match=doc.id):
        client.get(doc.id, Item)


def test_errors_come_back_as_polymodal_errors(client):
    with pytest.raises(pm.NotFoundError, match="no document"):
        client.similar(["missing"])
    with pytest.raises(pm.SchemaError, match="dimension 4"):
        client.search(vector=[1, 2], field="embedding")
    with pytest.raises(pm.ConfigError, match="maximum"):
        client.search("x", limit=5000)
    with pytest.raises(pm.ConfigError, match="vector or text"):
        client.search(image=b"\x89PNG not really")
    with pytest.raises(pm.ConfigError, match="exactly one"):
        client.search("x", vector=[1, 2, 3, 4])
    with pytest.raises(pm.MediaError, match="cannot read"):
        client.search(image="/no/such/file.png")
    with pytest.raises(pm.SchemaError, match="Doc instances"):
        client.add([{"id": "x", "title": "x"}])


# -- security and limits --------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("key", [None, "wrong-key-wrong-key-wrong"])
def test_missing_or_wrong_key_is_refused_but_health_works(served, protocol, key, counted):
    calls = counted("ready")
    with _client(served, protocol, api_key=key, backoff=0) as c:
        with pytest.raises(AuthenticationError, match="API key missing or wrong"):
            c.ready()
        with pytest.raises(AuthenticationError):
            c.search("red")
        assert c.health() is True
    assert calls == []  # refused before reaching the service, and never retried


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_oversize_request_is_refused_clearly(served, protocol, counted):
    calls = counted("add")
    big = _item(99, size=40_000)  # one document over the 256 KiB limit: cannot be split further
    with _client(served, protocol) as c, pytest.raises(pm.ConfigError, match="request too large") as info:
        c.add([big])
    assert info.value.status == 413 and calls == []


# -- batching -------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_large_upload_is_split_into_batches_with_a_progress_bar(served, protocol, counted, capsys):
    calls = counted("add")
    docs = [_item(100 + i) for i in range(70)]
    with _client(served, protocol) as c:
        assert c.add(docs, batch_size=25, progress=True) == 70  # the server takes at most 30 per request
        assert len(calls) == 3
        assert c.get("i169", Item) == docs[-1]
    assert "70/70" in capsys.readouterr().err
    calls.clear()
    heavy = [_item(200 + i, size=2800) for i in range(12)]  # ~25 KB each: 12 -> 6 + 6 -> four batches of 3
    with _client(served, protocol, max_batch_bytes=100 * 1024) as c:
        assert c.add(heavy, batch_size=12) == 12
    assert len(calls) == 4
    served["service"].store.delete([d.id for d in docs + heavy])


def test_server_document_limit_is_a_clear_error_not_retried(served, counted):
    calls = counted("add")
    with _client(served, "grpc") as c, pytest.raises(pm.ConfigError, match="at most 30 documents"):
        c.add([_item(300 + i) for i in range(31)], batch_size=31)
    assert len(calls) == 1


# -- retries ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_transient_failures_are_retried_with_backoff(served, protocol, counted, sleeps):
    calls = counted("search", fail=[pm.BackendError("store busy"), pm.BackendError("store busy")])
    with _client(served, protocol, retries=3, backoff=0.5) as c:
        assert c.search("red car", limit=1)[0]["id"] in {"i1", "i3", "i5", "i7"}
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.75 and 0.5 <= sleeps[1] <= 1.5  # exponential, with jitter


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_retries_give_up_with_the_server_error(served, protocol, counted, sleeps):
    calls = counted("search", fail=[pm.BackendError("store down")] * 5)
    with _client(served, protocol, retries=2, backoff=0.1) as c, pytest.raises(pm.BackendError, match="store down"):
        c.search("red")
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_errors_are_never_retried(served, protocol, counted, sleeps):
    calls = counted("search", fail=[pm.SchemaError("bad field", field="x")])
    with _client(served, protocol, retries=3) as c, pytest.raises(pm.SchemaError, match="bad field"):
        c.search("red")
    assert len(calls) == 1 and sleeps == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connection_errors_are_retried_then_reported(protocol, sleeps):
    port = _free_port()  # nothing listens there
    c = (
        Client(f"http://127.0.0.1:{port}", retries=2)
        if protocol == "http"
        else GrpcClient(f"127.0.0.1:{port}", retries=2)
    )
    with c:
        with pytest.raises(pm.BackendError, match="cannot reach the polymodal server"):
            c.ready()
        assert len(sleeps) == 2
        assert c.health() is False  # health reports, it does not retry
    assert len(sleeps) == 2


# -- async ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_clients_do_everything_the_sync_ones_do(served, protocol, counted, sleeps):
    doc = _item(400)

    async def run() -> None:
        async with _aclient(served, protocol) as c:
            assert await c.health() is True
            assert (await c.ready())["schema"] == "Item"
            assert [h["id"] for h in await c.search(vector=[2, 3, 4, 5], field="embedding", limit=1)] == ["i2"]
            assert (await c.search("boat", limit=2))[0]["id"] in {"i0", "i2", "i4", "i6"}
            assert [h["id"] for h in await c.similar(["i4"], limit=2)] == ["i5", "i3"]
            assert await c.add([doc, _item(401), _item(402)], batch_size=2) == 3
            assert await c.get(doc.id, Item) == doc
            assert await c.delete(doc.id) == 1 and await c.delete(doc.id) == 0
            with pytest.raises(pm.NotFoundError):
                await c.get(doc.id, Item)
            with pytest.raises(pm.SchemaError, match="dimension"):
                await c.search(vector=[1], field="embedding")
            assert [h["id"] for h in await c.search(vector=[1, 3, 1], field="parts.embedding", limit=1)] == ["i3"]
        async with _aclient(served, protocol, api_key=None) as anonymous:
            with pytest.raises(AuthenticationError):
                await anonymous.ready()
            assert await anonymous.health() is True
        async with _aclient(served, protocol, retries=2, backoff=0.1) as flaky:
            assert len(await flaky.search("red", limit=1)) == 1

    adds = counted("add")
    searches = counted("search", fail=[pm.BackendError("busy")])
    asyncio.run(run())
    assert len(adds) == 2  # three documents in batches of two
    assert len(sleeps) == 1 and len(searches) == 6  # the first search failed once and was retried
    served["service"].store.delete(["i401", "i402"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_async_upload_with_progress_and_oversize(served, protocol, capsys):
    async def run() -> None:
        async with _aclient(served, protocol) as c:
            assert await c.add([_item(500 + i) for i in range(5)], batch_size=2, progress=True) == 5
            with pytest.raises(pm.ConfigError, match="request too large"):
                await c.add([_item(599, size=40_000)])

    asyncio.run(run())
    assert "5/5" in capsys.readouterr().err
    served["service"].store.delete([f"i{500 + i}" for i in range(5)])
