"""The fast path of ``POST /search``: the body parsed by the route itself, the answer as orjson
bytes, cheap searches on the event loop, and the plain-ASGI auth and metrics middleware.

Each of these replaced a slower FastAPI/Starlette feature (body parameter, response model,
``BaseHTTPMiddleware``, the thread pool); these tests pin that nothing a client sees changed.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import polymodal as pm
from polymodal.serve.http import _Offload, create_app
from polymodal.serve.service import SearchQuery, Service

KEY = "fast-path-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Note(pm.Doc):
    text: str
    embedding: pm.Vector[4]


@pytest.fixture
def served(tmp_path: Path) -> Any:
    store = pm.open(tmp_path / "store", schema=Note)
    rng = np.random.default_rng(0)
    store.add([Note(id=f"n{i}", text=f"note {i}", embedding=rng.standard_normal(4)) for i in range(20)])
    service = Service(store=store, api_key=KEY)
    app = create_app(service)
    yield app, service, TestClient(app, headers=AUTH, raise_server_exceptions=False)
    store.close()


def test_search_answers_the_same_hits_as_the_service(served):
    _, service, client = served
    vector = [0.1, 0.2, 0.3, 0.4]
    r = client.post("/search", json={"vector": vector, "field": "embedding", "limit": 5})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    want = service.search(SearchQuery(vector=vector, field="embedding", limit=5))
    assert r.json() == {"hits": want}
    assert all("embedding" not in h["doc"] for h in r.json()["hits"])  # vectors stay out of hits


@pytest.mark.parametrize(
    ("body", "ctype", "status", "detail"),
    [
        (b'{"vector": [1, 0, 0, 0], "field": "embedding"}', "text/plain", 422, "body: send a JSON object"),
        (b'{"vector": [1, 0, 0, 0], "field": "embedding"}', None, 422, "body: send a JSON object"),
        (b'{"vector": [1, 0, 0', "application/json", 422, "body."),
        (b"", "application/json", 422, "body"),
        (b'{"text": "x", "bogus": 1}', "application/json", 422, "body.bogus"),
        (b'{"text": "x", "limit": 0}', "application/json", 422, "body.limit"),
        (b'{"text": "x", "limit": 1180591620717411303424}', "application/json", 400, "over the server's maximum"),
        (b'{"text": "x", "limit": 18446744073709551616}', "application/json", 400, "over the server's maximum"),
        (b'{"vector": [NaN, 1, 1, 1], "field": "embedding"}', "application/json", 422, ""),
        (b'{"text": "x", "where": {"a": ' + b"[" * 3000 + b"]" * 3000 + b"}}", "application/json", 400, ""),
        (b'{"text": "\\ud800"}', "application/json", 422, "body.text"),  # stdlib json takes it, pydantic not
    ],
)
def test_bad_bodies_are_refused_as_fastapi_refused_them(served, body, ctype, status, detail):
    _, _, client = served
    headers = {"content-type": ctype} if ctype else {}
    r = client.post("/search", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["detail"], str) and detail in r.json()["detail"]


def test_a_json_subtype_is_json(served):
    _, _, client = served
    r = client.post(
        "/search",
        content=b'{"vector": [1, 0, 0, 0], "field": "embedding", "limit": 2}',
        headers={"content-type": "application/vnd.example+json; charset=utf-8"},
    )
    assert r.status_code == 200 and len(r.json()["hits"]) == 2


def test_openapi_still_describes_the_search_body(served):
    _, _, client = served
    op = client.get("/openapi.json").json()["paths"]["/search"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert op["requestBody"]["required"] is True
    assert {"text", "vector", "field", "image_url", "audio_url", "limit", "where", "modality"} <= set(
        schema["properties"]
    )
    assert schema["additionalProperties"] is False
    assert "Hits" in str(op["responses"]["200"])


def test_the_key_is_still_required_and_a_crash_is_counted(served, monkeypatch):
    app, service, client = served
    anonymous = TestClient(app, raise_server_exceptions=False)
    r = anonymous.post("/search", json={"vector": [1, 0, 0, 0], "field": "embedding"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json() == {"detail": "missing or wrong API key: send Authorization: Bearer KEY"}

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(service, "search", boom)
    r = client.post("/search", json={"vector": [1, 0, 0, 0], "field": "embedding"})
    assert r.status_code == 500 and "secret" not in r.text
    metrics = client.get("/metrics").text
    assert 'polymodal_requests_total{method="POST",route="/search",status="500"} 1.0' in metrics
    # refused before routing, as before: nothing is told about which routes exist
    assert 'polymodal_requests_total{method="POST",route="unmatched",status="401"} 1.0' in metrics


def test_offload_runs_cheap_calls_inline_and_slow_ones_in_the_pool():
    loop_thread: list[int] = []
    seen: dict[str, list[int]] = {"cheap": [], "slow": [], "io": []}

    def cheap() -> None:
        seen["cheap"].append(threading.get_ident())

    def slow() -> None:
        seen["slow"].append(threading.get_ident())
        threading.Event().wait(0.003)

    def io() -> None:
        seen["io"].append(threading.get_ident())

    async def main() -> None:
        loop_thread.append(threading.get_ident())
        off = _Offload(inline_s=0.001, window=4)
        for _ in range(6):
            await off("cheap", cheap)
            await off("slow", slow)
            await off(None, io)
        assert off.inline("cheap") and not off.inline("slow")

    asyncio.run(main())
    me = loop_thread[0]
    assert seen["cheap"][0] != me and all(t == me for t in seen["cheap"][1:])  # first measured in the pool
    assert all(t != me for t in seen["slow"]) and all(t != me for t in seen["io"])


def test_a_kind_that_turns_slow_leaves_the_event_loop():
    off = _Offload(inline_s=0.001, window=3)
    where: list[bool] = []
    delay = [0.0]

    def fn() -> None:
        where.append(threading.current_thread() is threading.main_thread())
        if delay[0]:
            threading.Event().wait(delay[0])

    async def main() -> None:
        for _ in range(3):
            await off("k", fn)
        delay[0] = 0.003
        for _ in range(5):
            await off("k", fn)

    asyncio.run(main())
    assert where[1:3] == [True, True]  # cheap: inline
    assert where[3:6] == [True, True, True]  # three slow runs fill the window ...
    assert where[6:] == [False, False]  # ... then it goes to the pool


def test_similar_answers_the_service_hits_and_refuses_bad_bodies(served):
    _, service, client = served
    r = client.post("/similar", json={"ids": ["n1"], "negative": ["n2"], "limit": 3})
    assert r.status_code == 200, r.text
    assert r.json() == {"hits": service.similar(["n1"], ["n2"], limit=3)}
    assert client.post("/similar", json={"ids": ["nope"]}).status_code == 404
    assert client.post("/similar", json={"ids": []}).status_code == 422
    assert client.post("/similar", json={"ids": ["n1"], "extra": 1}).json()["detail"].startswith("body.extra")
    assert client.post("/similar", content=b"ids=n1", headers={"content-type": "text/plain"}).status_code == 422
