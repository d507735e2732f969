"""End-to-end: the HTTP server (``polymodal.serve``) over a media library and a generic store.

Two stores: the demo corpus indexed with the offline profile (real models: text, image and sound
queries), and a small generic store built here (vector fields, nested DocList, tensors, texts)
that has no models. Every route is checked for its behaviour and its contract, then auth, the
allow-lists (path traversal, SSRF), and the request limits.
"""

from __future__ import annotations

import http.server
import inspect
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import polymodal as pm

pytest.importorskip("fastapi")
pytest.importorskip("prometheus_client")

from fastapi.testclient import TestClient

from polymodal.io import binary
from polymodal.serve import security
from polymodal.serve.http import BINARY, create_app
from polymodal.serve.service import MAX_FILTER_DEPTH, MAX_FILTER_TERMS, Limits, Service

KEY = "test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMITS = Limits(max_body_bytes=256 << 10, max_docs=20, max_limit=50, max_ids=10)
LIBRARY_LIMITS = LIMITS.model_copy(update={"max_body_bytes": 16 << 20})  # the demo photos are larger
LIBRARY_HIT_KEYS = {"id", "uri", "score", "modality", "start", "end", "snippet", "media", "name"}
STORE_HIT_KEYS = {"id", "score", "field", "snippet", "doc", "match"}
CLIP_BYTES = bytes(range(256)) * 8


# -- the generic store ------------------------------------------------------------------------
class Part(pm.Doc):
    text: str = ""
    start: float | None = None
    end: float | None = None
    vec: pm.Vector[4] | None = None


class Item(pm.Doc):
    title: str
    year: int = 2000
    tags: list[str] = []
    uri: str | None = None
    thumb: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    embedding: pm.Vector[4] | None = None
    parts: pm.DocList[Part] | None = None


WORDS = ("harbour", "forest", "mountain")


def make_items(n: int = 12, *, media: Path | None = None) -> list[Item]:
    """Items with every kind of field; item 0 points at a file under ``media``."""
    rng = np.random.default_rng(7)
    items = []
    for i in range(n):
        word = WORDS[i % 3]
        parts = None
        if i % 3 != 2:
            parts = [
                Part(id=f"i{i}-p{j}", text=f"{word} talk {j}", start=2.0 * j, end=2.0 * j + 2, vec=rng.normal(size=4))
                for j in range(2)
            ]
        items.append(
            Item(
                id=f"i{i}",
                title=f"{word} clip {i}",
                year=2000 + i,
                tags=[word, "even" if i % 2 == 0 else "odd"],
                uri=str(media / "clip.bin") if media is not None and i == 0 else None,
                thumb=np.full((2, 3, 3), i, np.uint8) if i % 2 == 0 else None,
                embedding=rng.normal(size=4),
                parts=parts,
            )
        )
    return items


@dataclass
class Generic:
    client: TestClient
    service: Service
    store: Any
    media: Path
    secret: Path
    tmp: Path


@contextmanager
def generic_store(tmp: Path, **service_kw: Any) -> Iterator[Generic]:
    """A generic store with a media root holding ``clip.bin`` and a symlink that escapes it."""
    media = tmp / "media"
    media.mkdir(parents=True)
    (media / "clip.bin").write_bytes(CLIP_BYTES)
    outside = tmp / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("root:x:0:0 sentinel: never served\n")
    (media / "escape.txt").symlink_to(secret)
    store = pm.open(tmp / "store", schema=Item)
    store.add(make_items(media=media))
    kw: dict[str, Any] = {"api_key": KEY, "media_roots": (str(media),), "limits": LIMITS, **service_kw}
    service = Service(store=store, **kw)
    try:
        yield Generic(TestClient(create_app(service), headers=AUTH), service, store, media, secret, tmp)
    finally:
        store.close()


@pytest.fixture
def generic(tmp_path: Path) -> Iterator[Generic]:
    with generic_store(tmp_path) as g:
        yield g


# -- the media library --------------------------------------------------------------------------
@dataclass
class Library:
    client: TestClient
    service: Service
    root: Path
    db: Path


@pytest.fixture(scope="module")
def library(indexed, tmp_path_factory) -> Iterator[Library]:
    """The indexed demo corpus, served from a copy of its store (tests here add and delete)."""
    root, _, db, _ = indexed
    copy = tmp_path_factory.mktemp("served") / "store"
    shutil.copytree(db, copy)
    service = Service.open(str(copy), api_key=KEY, limits=LIBRARY_LIMITS)
    yield Library(TestClient(create_app(service), headers=AUTH), service, Path(root), copy)
    service.store.close()


def enc(doc_id: str) -> str:
    """An id as one URL path segment: "/" and "." percent-encoded, so no client normalises
    ``..`` away before the server sees it."""
    return urllib.parse.quote(doc_id, safe="").replace(".", "%2E")


def names(hits: list[dict[str, Any]]) -> list[str]:
    return [Path(h["uri"]).name for h in hits]


def search(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    r = client.post("/search", json=body)
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def assert_4xx(r: Any, *statuses: int) -> None:
    """A refusal: the expected 4xx with a one-line ``detail``."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    if statuses:
        assert r.status_code in statuses, (r.status_code, r.text)
    if r.headers.get("content-type", "").startswith("application/json"):
        detail = r.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail


# -- files the server opens -------------------------------------------------------------------
_opened: list[str] | None = None
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


@contextmanager
def opened_files() -> Iterator[list[str]]:
    """Every file the process opens meanwhile (an audit hook sees ``open`` from any thread)."""
    global _opened, _hooked
    if not _hooked:
        sys.addaudithook(_audit)
        _hooked = True
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


# ==============================================================================================
# search on the media library
# ==============================================================================================
def test_text_search_finds_the_file_with_the_contract_shape(library):
    hits = search(library.client, text="a cat", limit=3)
    assert 1 <= len(hits) <= 3
    assert "chelsea.png" in names(hits)
    for h in hits:
        assert set(h) == LIBRARY_HIT_KEYS
        assert h["media"].startswith(f"/media/{h['id']}?exp=")
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert len(search(library.client, text="a cat", limit=1)) == 1


def test_modality_and_where_filters(library):
    only = search(library.client, text="a cat", modality=["video", "audio"])
    assert only and {h["modality"] for h in only} <= {"video", "audio"}
    video = next(h for h in only if h["modality"] == "video")
    assert 0 <= video["start"] < video["end"] and video["media"].endswith(f"#t={video['start']:g}")
    where = search(library.client, text="a cat", where={"modality": "image"})
    assert where and {h["modality"] for h in where} == {"image"}
    assert_4xx(library.client.post("/search", json={"text": "a cat", "modality": ["smell"]}), 400)
    assert_4xx(library.client.post("/search", json={"text": "a cat", "where": {"size": {"$regex": "x"}}}), 400)


def test_limit_bounds(library):
    assert_4xx(library.client.post("/search", json={"text": "cat", "limit": 0}), 422)
    assert_4xx(library.client.post("/search", json={"text": "cat", "limit": LIMITS.max_limit + 1}), 400)
    assert_4xx(library.client.post("/search", json={"text": "cat", "limit": 2**70}), 400)
    assert len(search(library.client, text="cat", limit=LIMITS.max_limit)) <= LIMITS.max_limit


def test_exactly_one_query_kind(library):
    assert_4xx(library.client.post("/search", json={}), 400)
    assert_4xx(library.client.post("/search", json={"text": "cat", "vector": [0.0] * 384}), 400)
    assert_4xx(library.client.post("/search", json={"text": ""}), 400)
    assert_4xx(library.client.post("/search", json={"text": "cat", "bogus": 1}), 422)


def test_vector_search_on_the_library(library):
    hits = search(library.client, vector=[0.05] * 384, field="text_vec", limit=2)
    assert len(hits) == 2 and set(hits[0]) == STORE_HIT_KEYS
    assert "text_vec" not in hits[0]["doc"]  # hits stay small: no vectors
    assert_4xx(library.client.post("/search", json={"vector": [0.05] * 384}), 400)  # which field?
    assert_4xx(library.client.post("/search", json={"vector": [0.05] * 3, "field": "text_vec"}), 422)


def _jpeg_crop(path: Path) -> bytes:
    from PIL import Image

    photo = Image.open(path)
    w, h = photo.size
    buf = io.BytesIO()
    photo.crop((w // 10, h // 10, w - w // 10, h - h // 10)).convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_search_by_uploaded_image_and_sound(library):
    crop = _jpeg_crop(library.root / "photos" / "coffee.png")
    r = library.client.post("/search/file", files={"file": ("crop.jpg", crop, "image/jpeg")}, data={"limit": "3"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert names(hits)[0] == "coffee.png" and len(hits) <= 3
    r = library.client.post(
        "/search/file",
        files={"file": ("crop.jpg", crop, "application/octet-stream")},  # kind from the file name
        data={"limit": "3", "modality": "image,video", "where": '{"size": {"$gt": 0}}'},
    )
    assert r.status_code == 200, r.text
    assert {h["modality"] for h in r.json()["hits"]} <= {"image", "video"}
    memo = library.root / "memos" / "shopping.wav"
    if not memo.exists():
        pytest.skip("no speech synthesiser: no voice memos in the demo corpus")
    r = library.client.post("/search/file", files={"file": ("memo.wav", memo.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    assert names(r.json()["hits"])[0] == "shopping.wav"
    r = library.client.post(
        "/search/file", files={"file": ("blob", memo.read_bytes(), "application/octet-stream")}, data={"kind": "audio"}
    )
    assert r.status_code == 200 and names(r.json()["hits"])[0] == "shopping.wav"


@pytest.mark.parametrize(
    ("upload", "form", "status"),
    [
        (("x.png", b"", "image/png"), {}, 422),  # empty
        (("x.png", b"not an image at all", "image/png"), {}, 422),
        (("x.wav", b"RIFF garbage", "audio/wav"), {}, 422),
        (("x.bin", b"\x00\x01", "application/octet-stream"), {}, 422),  # cannot tell the kind
        (("x.png", b"\x89PNG", "image/png"), {"kind": "smell"}, 422),
        (("x.png", b"\x89PNG", "image/png"), {"where": "{not json"}, 422),
        (("x.png", b"\x89PNG", "image/png"), {"where": "[1]"}, 422),
        (("x.png", b"\x89PNG", "image/png"), {"limit": "0"}, 422),
        (("x.png", b"\x89PNG", "image/png"), {"limit": str(LIMITS.max_limit + 1)}, 400),
    ],
)
def test_bad_uploads_are_4xx(library, upload, form, status):
    assert_4xx(library.client.post("/search/file", files={"file": upload}, data=form), status)


def test_image_url_under_the_media_roots_is_read(library):
    hits = search(library.client, image_url=str(library.root / "photos" / "coffee.png"), limit=2)
    assert names(hits)[0] == "coffee.png"


def test_similar(library):
    cat = search(library.client, text="a cat", limit=1)[0]
    r = library.client.post("/similar", json={"ids": [cat["id"]], "limit": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert hits and len(hits) <= 3 and cat["id"] not in {h["id"] for h in hits}
    assert set(hits[0]) == LIBRARY_HIT_KEYS
    soup = search(library.client, text="tomato soup recipe", limit=1)[0]
    r = library.client.post("/similar", json={"ids": [cat["id"]], "negative": [soup["id"]], "modality": ["image"]})
    assert r.status_code == 200 and {h["modality"] for h in r.json()["hits"]} == {"image"}
    assert_4xx(library.client.post("/similar", json={"ids": ["no-such-id"]}), 404)
    assert_4xx(library.client.post("/similar", json={"ids": []}), 422)
    assert_4xx(library.client.post("/similar", json={"ids": [cat["id"]], "limit": LIMITS.max_limit + 1}), 400)
    assert_4xx(library.client.post("/similar", json={"ids": [cat["id"]] * (LIMITS.max_ids + 1)}), 400)


def test_ready_health_and_metrics(library):
    r = library.client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {
        "ready": True,
        "documents": library.service.store.count(),
        "schema": "MediaItem",
        "profile": "offline",
    }
    anonymous = TestClient(create_app(library.service))
    assert anonymous.get("/health").json() == {"status": "ok"}


# ==============================================================================================
# media: full files, ranges, content types, signed links
# ==============================================================================================
def _media_link(library: Library, query: str, modality: str) -> tuple[str, Path]:
    hit = next(h for h in search(library.client, text=query, limit=20) if h["modality"] == modality)
    return hit["media"].split("#")[0], Path(hit["uri"])


@pytest.mark.parametrize(
    ("query", "modality", "ctypes"),
    [
        ("a cat", "image", {"image/png"}),
        ("launch day", "video", {"video/mp4"}),
        ("tomato soup recipe", "text", {"text/markdown"}),
        ("buy milk and eggs", "audio", {"audio/wav", "audio/x-wav"}),
    ],
)
def test_media_full_file_with_its_content_type(library, query, modality, ctypes):
    if modality == "audio" and not (library.root / "memos").exists():
        pytest.skip("no voice memos in this corpus")
    link, path = _media_link(library, query, modality)
    r = TestClient(create_app(library.service)).get(link)  # the signed link needs no header
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] in ctypes
    assert r.content == path.read_bytes()
    assert r.headers.get("accept-ranges") == "bytes"


def test_media_range_requests(library):
    link, path = _media_link(library, "launch day", "video")
    data = path.read_bytes()
    client = TestClient(create_app(library.service))
    r = client.get(link, headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    assert r.headers["content-type"] == "video/mp4"
    r = client.get(link, headers={"Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]
    r = client.get(link, headers={"Range": f"bytes={len(data) - 10}-"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = client.get(link, headers={"Range": f"bytes={len(data) + 10}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    for bad in ("bytes=abc", "bytes=200-100", "pages=1-2"):
        r = client.get(link, headers={"Range": bad})
        assert r.status_code in (400, 416), (bad, r.status_code)  # malformed: refused, never 5xx


def test_signed_media_links(library):
    link, path = _media_link(library, "a cat", "image")
    anonymous = TestClient(create_app(library.service))
    assert anonymous.get(link).content == path.read_bytes()
    base, _, query = link.partition("?")
    params = dict(p.split("=") for p in query.split("&"))
    doc_id = base.rsplit("/", 1)[1]
    flipped = params["sig"][:-1] + ("0" if params["sig"][-1] != "0" else "1")
    other = search(library.client, text="tomato soup recipe", limit=1)[0]["id"]
    refused = [
        base,  # no signature
        f"{base}?exp={params['exp']}&sig={flipped}",  # tampered
        f"{base}?exp={int(params['exp']) + 1}&sig={params['sig']}",  # extended
        f"{base}?{security.sign_media(doc_id, KEY, ttl=-5)}",  # expired
        f"/media/{other}?{query}",  # another document's signature
        f"{base}?{security.sign_media(doc_id, 'another-key-0123456789')}",  # signed with another key
        f"{base}?exp=%C2%B2&sig={params['sig']}",  # "²".isdigit() is True
        f"{base}?exp={'9' * 5000}&sig={params['sig']}",  # int() refuses over 4300 digits
        f"{base}?exp={params['exp']}&sig={'%C3%A9' * 32}",  # compare_digest refuses non-ASCII str
        f"{base}?exp=&sig=",
    ]
    for url in refused:
        assert_4xx(anonymous.get(url), 401)
    assert library.client.get(base).status_code == 200  # the API key works instead of a signature


# ==============================================================================================
# the generic store: search, documents, round trips
# ==============================================================================================
def test_generic_text_search(generic):
    hits = search(generic.client, text="harbour", limit=50)
    assert {h["id"] for h in hits} == {f"i{i}" for i in range(0, 12, 3)}
    for h in hits:
        assert set(h) == STORE_HIT_KEYS
        assert "embedding" not in h["doc"] and all("vec" not in p for p in h["doc"]["parts"] or [])
    assert "[harbour]" in (hits[0]["snippet"] or "")
    hits = search(generic.client, text="talk", where={"year": {"$gte": 2006}})
    assert hits and all(h["doc"]["year"] >= 2006 for h in hits)
    assert_4xx(generic.client.post("/search", json={"text": "harbour", "modality": ["image"]}), 422)


def test_generic_vector_search_top_level_and_nested(generic):
    items = {d.id: d for d in make_items()}
    i4, parts = items["i4"].embedding, items["i7"].parts
    assert i4 is not None and parts is not None
    hits = search(generic.client, vector=i4.tolist(), field="embedding", limit=3)
    assert hits[0]["id"] == "i4" and hits[0]["field"] == "embedding" and len(hits) == 3
    assert hits[0]["score"] >= hits[1]["score"]
    target = parts[1]
    assert target.vec is not None
    hits = search(generic.client, vector=target.vec.tolist(), field="parts.vec", limit=2)
    assert hits[0]["id"] == "i7" and hits[0]["match"]["id"] == target.id
    hits = search(generic.client, vector=target.vec.tolist(), field="embedding", where={"tags": "even"}, limit=50)
    assert hits and all("even" in h["doc"]["tags"] for h in hits)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"vector": [1.0, 0, 0], "field": "embedding"}, 422),  # wrong dimension
        ({"vector": [1.0, 0, 0, 0], "field": "nope"}, 422),
        ({"vector": [1.0, 0, 0, 0], "field": "title"}, 422),
        ({"vector": [0.0, 0, 0, 0], "field": "embedding"}, 422),  # no direction
        ({"vector": [], "field": "embedding"}, 422),
        ({"image_url": "photo.png"}, 400),  # no models
        ({"text": "harbour", "where": {"year": {"$regex": "x"}}}, 400),
        ({"text": "harbour", "where": {"year": [1, 2]}}, 400),
    ],
)
def test_generic_bad_searches_are_4xx(generic, body, status):
    assert_4xx(generic.client.post("/search", json=body), status)


def test_generic_nan_vector_is_4xx(generic):
    r = generic.client.post(
        "/search",
        content=b'{"vector": [NaN, 1, 1, 1], "field": "embedding"}',
        headers={"content-type": "application/json"},
    )
    assert_4xx(r, 422)


def test_generic_upload_needs_models(generic):
    r = generic.client.post("/search/file", files={"file": ("x.png", b"\x89PNG", "image/png")})
    assert_4xx(r, 400)


def test_generic_similar(generic):
    r = generic.client.post("/similar", json={"ids": ["i4"], "limit": 3})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 3 and "i4" not in {h["id"] for h in hits}
    assert_4xx(generic.client.post("/similar", json={"ids": ["i4", "zz"]}), 404)


def test_docs_json_upsert_get_delete(generic):
    new = Item(
        id="n1",
        title="new harbour",
        thumb=np.arange(12, dtype=np.uint8).reshape(2, 2, 3),
        embedding=[1, 2, 3, 4],
        parts=[Part(id="n1-p0", text="hello", start=0.5, end=1.5, vec=[4, 3, 2, 1])],
    )
    before = generic.store.count()
    r = generic.client.post("/docs", json=[new.model_dump(mode="json")])
    assert r.status_code == 200 and r.json() == {"added": 1}
    got = generic.client.get("/docs/n1")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert got.json() == new.model_dump(mode="json")  # vectors and tensors included
    assert generic.store.get("n1") == new
    r = generic.client.post("/docs", json={"docs": [{**new.model_dump(mode="json"), "title": "renamed"}]})
    assert r.json() == {"added": 1}
    assert generic.client.get("/docs/n1").json()["title"] == "renamed"
    assert generic.store.count() == before + 1  # an upsert, not a second copy
    assert generic.client.delete("/docs/n1").json() == {"deleted": 1}
    assert_4xx(generic.client.get("/docs/n1"), 404)
    assert generic.client.delete("/docs/n1").json() == {"deleted": 0}
    assert generic.store.count() == before


def test_docs_json_round_trip_is_exact(generic, tmp_path):
    """GET as JSON, POST that JSON to another server, GET again: the same bytes."""
    with generic_store(tmp_path / "other") as other:
        other.store.delete([d.id for d in other.store])
        for doc_id in ("i0", "i1", "i2"):
            body = generic.client.get(f"/docs/{doc_id}").content
            r = other.client.post("/docs", content=b"[" + body + b"]", headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
            assert other.client.get(f"/docs/{doc_id}").content == body
            assert other.store.get(doc_id) == generic.store.get(doc_id)


def test_docs_binary_round_trip_is_exact(generic, tmp_path):
    r = generic.client.get("/docs/i0", headers={"Accept": BINARY})
    assert r.status_code == 200 and r.headers["content-type"] == BINARY
    (doc,) = binary.loads(r.content, Item)
    assert doc == generic.store.get("i0")
    assert doc.thumb.dtype == np.uint8 and doc.embedding.dtype == np.float32
    with generic_store(tmp_path / "other") as other:
        other.store.delete([d.id for d in other.store])
        r2 = other.client.post("/docs", content=r.content, headers={"content-type": BINARY})
        assert r2.json() == {"added": 1}
        assert other.client.get("/docs/i0", headers={"Accept": BINARY}).content == r.content
        batch = binary.dumps(make_items()[3:8], Item, compression="zstd")
        assert other.client.post("/docs", content=batch, headers={"content-type": BINARY}).json() == {"added": 5}
        assert list(other.store.get([f"i{i}" for i in range(3, 8)])) == make_items()[3:8]


def test_ids_with_slashes_and_dots_are_store_keys(generic):
    # not "%2F": the test client decodes a path twice (uvicorn does it once)
    for doc_id in ("a/b", "../x", "dir/../y", "q?x=1#frag", "sp ace", "line\nbreak\r\u2028", "/"):
        r = generic.client.post("/docs", json=[{"id": doc_id, "title": "odd id"}])
        assert r.status_code == 200
        quoted = "/docs/" + enc(doc_id)
        got = generic.client.get(quoted)
        assert got.status_code == 200 and got.json()["id"] == doc_id, doc_id
        assert generic.client.delete(quoted).json() == {"deleted": 1}


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"[{", "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b'{"docs": 3}', "application/json", 422),
        (b"[1, 2]", "application/json", 422),
        (b'"text"', "application/json", 422),
        (b'[{"id": "z", "title": 5}]', "application/json", 422),
        (b'[{"id": "z"}]', "application/json", 422),  # title is required
        (b'[{"id": "z", "title": "t", "extra": 1}]', "application/json", 422),
        (b'[{"id": "z", "title": "t", "embedding": [1, 2, 3]}]', "application/json", 422),
        (b'[{"id": "z", "title": "t", "thumb": [[[1, 2, 300]]]}]', "application/json", 422),
        (b'[{"id": "z", "title": "t", "year": 1e400}]', "application/json", None),
        (b'[{"id": "ok", "title": "t"}, {"id": "bad", "title": 5}]', "application/json", 422),
        (b"garbage", BINARY, 400),
        (b"", BINARY, 400),
    ],
)
def test_bad_documents_are_4xx_and_add_nothing(generic, body, ctype, status):
    before = generic.store.count()
    r = generic.client.post("/docs", content=body, headers={"content-type": ctype})
    assert_4xx(r, *([status] if status else []))
    assert generic.store.count() == before
    assert_4xx(generic.client.get("/docs/ok"), 404)  # a batch with a bad document adds none


def test_binary_of_another_schema_is_refused(generic):
    class Other(pm.Doc):
        name: str

    before = generic.store.count()
    r = generic.client.post("/docs", content=binary.dumps([Other(name="x")], Other), headers={"content-type": BINARY})
    assert_4xx(r)
    assert generic.store.count() == before


def test_generic_ready_and_metrics_counters(generic):
    assert generic.client.get("/ready").json() == {
        "ready": True,
        "documents": 12,
        "schema": "Item",
        "profile": None,
    }

    def value(text: str, line_start: str) -> float:
        for line in text.splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ready = 'polymodal_requests_total{method="GET",route="/ready",status="200"}'
    missing = 'polymodal_requests_total{method="GET",route="/docs/{doc_id}",status="404"}'
    first = generic.client.get("/metrics")
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    assert "# TYPE polymodal_requests_total counter" in first.text
    assert "# TYPE polymodal_request_seconds histogram" in first.text
    assert value(first.text, "polymodal_documents ") == 12
    generic.client.get("/ready")
    generic.client.get("/ready")
    generic.client.get("/docs/nope")
    generic.client.post("/docs", json=[{"id": "m1", "title": "metric"}])
    second = generic.client.get("/metrics").text
    assert value(second, ready) == value(first.text, ready) + 2
    assert value(second, missing) == value(first.text, missing) + 1
    assert value(second, "polymodal_documents ") == 13
    assert value(second, 'polymodal_request_seconds_count{route="/ready"}') >= 3


def test_openapi_is_served_and_valid(generic):
    import schemathesis

    r = generic.client.get("/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    paths = {(p, m) for p, ops in spec["paths"].items() for m in ops}
    assert {
        ("/search", "post"),
        ("/search/file", "post"),
        ("/similar", "post"),
        ("/docs", "post"),
        ("/docs/{doc_id}", "get"),
        ("/docs/{doc_id}", "delete"),
        ("/media/{doc_id}", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    } <= paths
    from schemathesis.core.result import Ok

    schema = schemathesis.openapi.from_dict(spec)
    schema.validate()  # against the OpenAPI meta-schema
    assert all(isinstance(op, Ok) for op in schema.get_all_operations())


def test_swagger_ui_does_not_shadow_the_documents(generic):
    assert "swagger" in generic.client.get("/api").text.lower()
    assert_4xx(generic.client.get("/docs/"), 404)  # the empty id, not an HTML page


# ==============================================================================================
# auth
# ==============================================================================================
def _routes(service: Service) -> list[tuple[str, str]]:
    app = create_app(service)
    out = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, route.path.replace("{doc_id:docid}", "i0").replace("{doc_id}", "i0")))
    return out


def test_every_route_but_health_and_the_page_needs_the_key(generic):
    anonymous = TestClient(create_app(generic.service))
    routes = _routes(generic.service)
    assert len(routes) >= 12
    for method, path in routes:
        if path in ("/health", "/"):
            assert anonymous.request(method, path).status_code == 200
            continue
        for headers in (
            {},
            {"Authorization": "Bearer wrong-key-0123456789abcdef"},
            {"Authorization": f"Bearer {KEY}x"},
            {"Authorization": f"Bearer {KEY[:-1]}"},
            {"Authorization": f"Basic {KEY}"},
            {"Authorization": KEY},
            {"X-API-Key": KEY},
        ):
            r = anonymous.request(method, path, headers=headers, json={})
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
    for unknown in ("/nope", "/docs", "/media/", "/docs/oauth2-redirect"):
        assert anonymous.get(unknown).status_code == 401  # nothing is told about what exists
    assert anonymous.get("/ready", headers={"Authorization": f"bearer {KEY}"}).status_code == 200


def test_keys_are_compared_in_constant_time(generic, monkeypatch):
    assert "hmac.compare_digest" in inspect.getsource(security.check_key)
    assert "hmac.compare_digest" in inspect.getsource(security.verify_media)
    seen: list[tuple[Any, Any]] = []
    real = security.hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert generic.client.get("/ready").status_code == 200
    assert (KEY.encode(), KEY.encode()) in seen


def test_no_key_configured_means_open_on_loopback(tmp_path):
    with generic_store(tmp_path, api_key=None) as g:
        anonymous = TestClient(create_app(g.service))
        assert anonymous.get("/ready").status_code == 200
        assert anonymous.get("/media/i0").content == CLIP_BYTES


def test_short_or_missing_key_files_are_refused(tmp_path, monkeypatch):
    short = tmp_path / "short"
    short.write_text("abc\n")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    good = tmp_path / "good"
    good.write_text(KEY + "\n")
    for bad in (short, empty, tmp_path / "missing"):
        with pytest.raises(pm.ConfigError):
            security.load_api_key(str(bad))
    assert security.load_api_key(str(good)) == KEY
    monkeypatch.setenv("POLYMODAL_API_KEY", KEY)
    assert security.load_api_key() == KEY


# -- `polymodal serve` as a process -----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(db: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "polymodal.cli", "serve", "--db", str(db), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    """Poll /health until it answers (a guard of 120 s against a hung start, not a speed test)."""
    import time

    import httpx

    give_up = time.monotonic() + 120
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer /health")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def served_db(indexed, tmp_path) -> Path:
    db = tmp_path / "store"
    shutil.copytree(indexed[2], db)
    return db


@pytest.fixture
def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLYMODAL_API_KEY"}
    return {**env, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def test_serve_refuses_a_public_address_without_a_key(served_db, clean_env):
    proc = _serve(served_db, "--host", "0.0.0.0", "--port", str(_free_port()), env=clean_env)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            _stop(proc)
    assert proc.returncode != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "API key" in lines[0] and "--insecure" in lines[0] and "0.0.0.0" in lines[0]
    assert "Traceback" not in err


def test_serve_starts_with_insecure_or_a_key(served_db, clean_env, tmp_path):
    import httpx

    port = _free_port()
    proc = _serve(served_db, "--host", "0.0.0.0", "--port", str(port), "--insecure", env=clean_env)
    try:
        _wait_healthy(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["documents"] > 0
    finally:
        _stop(proc)
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    port = _free_port()
    proc = _serve(served_db, "--host", "0.0.0.0", "--port", str(port), "--api-key-file", str(key_file), env=clean_env)
    try:
        _wait_healthy(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/ready", headers=AUTH).status_code == 200
    finally:
        _stop(proc)
    port = _free_port()
    proc = _serve(served_db, "--host", "0.0.0.0", "--port", str(port), env={**clean_env, "POLYMODAL_API_KEY": KEY})
    try:
        _wait_healthy(proc, port)
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/ready", headers=AUTH).status_code == 200
    finally:
        _stop(proc)


# ==============================================================================================
# security: paths, URLs
# ==============================================================================================
def test_media_is_served_only_from_the_roots(generic):
    r = generic.client.get("/media/i0")
    assert r.status_code == 200 and r.content == CLIP_BYTES
    assert r.headers["content-type"] == "application/octet-stream"
    r = generic.client.get("/media/i0", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == CLIP_BYTES[100:200]
    escape = generic.media / "escape.txt"
    planted = {
        "passwd": "/etc/passwd",
        "secret": str(generic.secret),
        "symlink": str(escape),  # inside the root, pointing out of it
        "dotdot": str(generic.media / ".." / "outside" / "secret.txt"),
        "relative": "../outside/secret.txt",
        "file-url": generic.secret.as_uri(),
        "../../etc/passwd": "/etc/passwd",
        "..": str(generic.secret),
        ".": str(generic.media),
    }
    r = generic.client.post("/docs", json=[{"id": k, "title": "planted", "uri": v} for k, v in planted.items()])
    assert r.status_code == 200
    with opened_files() as opened:
        for doc_id in planted:
            r = generic.client.get(f"/media/{enc(doc_id)}")
            assert_4xx(r, 404)
            assert b"root:" not in r.content and b"sentinel" not in r.content
        for raw in (
            "/media/..%2F..%2Fetc%2Fpasswd",
            "/media/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
            "/media/%2Fetc%2Fpasswd",
            "/media//etc/passwd",
            "/media/../../etc/passwd",
            "/media/%2e%2e/%2e%2e/etc/passwd",
            "/media/i0/../../../etc/passwd",
            f"/media/{generic.secret}",
        ):
            r = generic.client.get(raw)
            assert r.status_code in (401, 404), (raw, r.status_code)
            assert b"root:" not in r.content and b"sentinel" not in r.content
    assert not [p for p in opened if p.endswith(("secret.txt", "passwd", "escape.txt"))]


@pytest.mark.parametrize("kind", ["image_url", "audio_url"])
def test_named_local_files_outside_the_roots_are_never_opened(library, tmp_path, kind):
    sentinel = tmp_path / "sentinel.png"
    shutil.copy(library.root / "photos" / "coffee.png", sentinel)  # a real image: reading it would work
    link = library.root / "photos" / "link-out.png"
    refs = [
        str(sentinel),
        sentinel.as_uri(),
        f"file://localhost{sentinel}",
        str(library.root) + "/.." * 40 + str(sentinel),  # climbs out of the root
        str(library.root / "photos") + "/.." * 40 + str(sentinel),
        "/etc/passwd",
        "file:///etc/passwd",
        "~/.bashrc",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://127.0.0.1/x.png",
        "",
    ]
    with opened_files() as opened:
        for ref in refs:
            assert_4xx(library.client.post("/search", json={kind: ref}), 400)
    assert not [p for p in opened if "sentinel" in p or p == "/etc/passwd" or p.endswith(".bashrc")]
    # a symlink inside the root that points out of it is outside too
    link.symlink_to(sentinel)
    try:
        with opened_files() as opened:
            assert_4xx(library.client.post("/search", json={kind: str(link)}), 400)
        assert not [p for p in opened if "sentinel" in p or "link-out" in p]
    finally:
        link.unlink()


def test_similar_never_reads_an_id_that_names_a_file(library, tmp_path):
    """A client stores a document whose *id* is a file path outside the roots, then asks for
    "more like" it: the server looks the id up in the store, and never opens the file."""
    secret = tmp_path / "secret-notes.txt"
    secret.write_text("a cat sleeping on a sofa, and other secrets\n")
    planted = {"id": str(secret), "uri": str(secret), "modality": "text", "name": "secret-notes.txt"}
    assert library.client.post("/docs", json=[planted]).status_code == 200
    try:
        with opened_files() as opened:
            r = library.client.post("/similar", json={"ids": [str(secret)]})
            assert r.status_code < 500
            r = library.client.post(
                "/similar", json={"ids": [search(library.client, text="cat")[0]["id"]], "negative": [str(secret)]}
            )
            assert r.status_code == 200
        assert str(secret) not in opened
        assert_4xx(library.client.get(f"/media/{enc(str(secret))}"), 404)
    finally:
        assert library.client.delete(f"/docs/{enc(str(secret))}").json() == {"deleted": 1}


# -- SSRF -----------------------------------------------------------------------------------------
@dataclass
class Web:
    port: int
    requests: list[str]


@contextmanager
def web_server(png: bytes, *, redirect_to: str = "") -> Iterator[Web]:
    """A local HTTP server that counts requests: /allowed/photo.png (and /private/photo.png) is an
    image, /allowed/hop redirects to it, /allowed/out to ``redirect_to``, /allowed/up to /private/."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            targets = {
                "/allowed/hop": "/allowed/photo.png",
                "/allowed/out": redirect_to,
                "/allowed/up": "/private/photo.png",
            }
            if self.path in targets:
                self.send_response(302)
                self.send_header("Location", targets[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Web(server.server_address[1], seen)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_ssrf_urls_are_fetched_only_when_allowed(library, no_proxy):
    png = (library.root / "photos" / "coffee.png").read_bytes()
    with web_server(png) as evil, web_server(png, redirect_to=f"http://127.0.0.1:{evil.port}/photo.png") as web:
        base = f"http://127.0.0.1:{web.port}"
        # no --allow-url: refused without a single request
        for url in (f"{base}/allowed/photo.png", f"http://localhost:{web.port}/allowed/photo.png"):
            assert_4xx(library.client.post("/search", json={"image_url": url}), 400)
            assert_4xx(library.client.post("/search", json={"audio_url": url}), 400)
        assert web.requests == []
        allowing = Service(
            store=library.service.store,
            searcher=library.service.searcher,
            api_key=KEY,
            limits=LIBRARY_LIMITS,
            allow_urls=(f"{base}/allowed/",),
        )
        client = TestClient(create_app(allowing), headers=AUTH)
        # allowed: fetched once, and the search works
        r = client.post("/search", json={"image_url": f"{base}/allowed/photo.png", "limit": 1})
        assert r.status_code == 200, r.text
        assert names(r.json()["hits"]) == ["coffee.png"]
        assert web.requests == ["/allowed/photo.png"]
        # a redirect that stays on the list is followed
        web.requests.clear()
        assert client.post("/search", json={"image_url": f"{base}/allowed/hop", "limit": 1}).status_code == 200
        assert web.requests == ["/allowed/hop", "/allowed/photo.png"]
        # redirects off the list are not followed: to another host, or out of the prefix
        web.requests.clear()
        assert_4xx(client.post("/search", json={"image_url": f"{base}/allowed/out"}), 400)
        assert_4xx(client.post("/search", json={"image_url": f"{base}/allowed/up"}), 400)
        assert web.requests == ["/allowed/out", "/allowed/up"] and evil.requests == []
        # tricks that name the allowed prefix but reach elsewhere: none sends a request
        web.requests.clear()
        for url in (
            f"http://127.0.0.1:{web.port}@127.0.0.1:{evil.port}/allowed/photo.png",  # userinfo
            f"http://user:pw@127.0.0.1:{web.port}/allowed/photo.png",
            f"{base}/allowed/../private/photo.png",
            f"{base}/allowed/%2e%2e/private/photo.png",
            f"{base}/allowed/..%2Fprivate/photo.png",
            f"{base}/allowed\\..\\private/photo.png",
            f"{base}/allowed-not/photo.png",
            f"{base}/private/photo.png",
            f"http://127.0.0.1:{evil.port}/allowed/photo.png",
            f"https://127.0.0.1:{web.port}/allowed/photo.png",
            f"http://localhost:{web.port}/allowed/photo.png",
            f"http://127.0.0.1:{web.port}:80/allowed/photo.png",
            f"http://[::1]:{web.port}/allowed/photo.png",
        ):
            assert_4xx(client.post("/search", json={"image_url": url}), 400)
        assert web.requests == [] and evil.requests == []


def test_allowed_url_rules():
    allow = ("http://media.example/pub/", "https://cdn.example:8443/a")
    assert security.allowed_url("http://media.example/pub/x.png", allow)
    assert security.allowed_url("https://cdn.example:8443/a/b.png", allow)
    assert security.allowed_url("https://cdn.example:8443/a", allow)
    assert security.allowed_url("HTTP://MEDIA.EXAMPLE/pub/x.png", allow)
    for url in (
        "http://media.example/pubx/x.png",
        "https://cdn.example:8443/ab/c.png",  # a prefix without "/" still ends on a segment
        "http://media.example@evil.example/pub/x.png",
        "http://evil.example/pub/x.png",
        "http://media.example.evil.example/pub/x.png",
        "https://media.example/pub/x.png",  # other scheme
        "http://media.example:8080/pub/x.png",  # other port
        "http://media.example/pub/../admin",
        "http://media.example/pub/%2E%2E/admin",
        "ftp://media.example/pub/x.png",
        "file:///etc/passwd",
        "http://media.example:bad/pub/x.png",
        "http:///pub/x.png",
        "",
    ):
        assert not security.allowed_url(url, allow), url
    assert not security.allowed_url("http://media.example/pub/x.png", ())


# ==============================================================================================
# limits
# ==============================================================================================
def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    yield b'{"text": "'
    for _ in range(total // size):
        yield b"a" * size
    yield b'"}'


def test_bodies_over_the_limit_are_413_with_and_without_content_length(generic):
    before = generic.store.count()
    big = LIMITS.max_body_bytes + 1
    r = generic.client.post("/search", content=b"x" * big, headers={"content-type": "application/json"})
    assert_4xx(r, 413)
    docs = json.dumps([{"id": f"big{i}", "title": "x" * 1000} for i in range(big // 1000 + 1)]).encode()
    assert_4xx(generic.client.post("/docs", content=docs, headers={"content-type": "application/json"}), 413)
    # chunked: no Content-Length, the limit is found while reading
    r = generic.client.post("/search", content=_chunks(big), headers={"content-type": "application/json"})
    assert_4xx(r, 413)
    r = generic.client.post("/docs", content=iter([docs[i : i + 4096] for i in range(0, len(docs), 4096)]))
    assert_4xx(r, 413)

    def multipart() -> Iterator[bytes]:
        yield b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        for _ in range(big // 8192 + 1):
            yield b"\x00" * 8192
        yield b"\r\n--B--\r\n"

    r = generic.client.post(
        "/search/file", content=multipart(), headers={"content-type": "multipart/form-data; boundary=B"}
    )
    assert_4xx(r, 413)
    assert generic.store.count() == before
    # under the limit, chunked bodies work
    r = generic.client.post(
        "/search", content=iter([b'{"text": ', b'"harbour"}']), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["hits"]
    small = json.dumps([{"id": "c1", "title": "chunked"}]).encode()
    r = generic.client.post(
        "/docs", content=iter([small[:10], small[10:]]), headers={"content-type": "application/json"}
    )
    assert r.json() == {"added": 1}


def test_compressed_documents_cannot_expand_past_the_limit(generic):
    """A 1 KB zstd frame of zeros announces megabytes: refused before it is decompressed."""
    side = 600  # 600 x 600 x 3 bytes: over the 256 KiB limit once expanded
    bomb = binary.dumps(
        [Item(id="bomb", title="b", thumb=np.zeros((side, side, 3), np.uint8))], Item, compression="zstd"
    )
    assert len(bomb) < LIMITS.max_body_bytes // 10
    before = generic.store.count()
    assert_4xx(generic.client.post("/docs", content=bomb, headers={"content-type": BINARY}), 413)
    assert generic.store.count() == before


def test_batch_limits(generic):
    before = generic.store.count()
    many = [{"id": f"m{i}", "title": "many"} for i in range(LIMITS.max_docs + 1)]
    assert_4xx(generic.client.post("/docs", json=many), 400)
    assert_4xx(
        generic.client.post(
            "/docs", content=binary.dumps([Item(**d) for d in many], Item), headers={"content-type": BINARY}
        ),
        400,
    )
    assert generic.store.count() == before
    assert generic.client.post("/docs", json=many[: LIMITS.max_docs]).json() == {"added": LIMITS.max_docs}
    assert_4xx(generic.client.post("/search", json={"text": "x", "limit": LIMITS.max_limit + 1}), 400)
    assert_4xx(generic.client.post("/similar", json={"ids": ["i1"], "limit": LIMITS.max_limit + 1}), 400)
    assert_4xx(generic.client.post("/similar", json={"ids": ["i1"] * (LIMITS.max_ids + 1)}), 400)
    assert_4xx(generic.client.post("/similar", json={"ids": ["i1"] * 1001}), 422)
    assert_4xx(generic.client.post("/search", json={"vector": [0] * 65_537, "field": "embedding"}), 422)
    assert_4xx(generic.client.post("/search", json={"text": "x" * 10_001}), 422)


def _nested(depth: int, op: str = "$and") -> str:
    return f'{{"{op}":[' * depth + '{"year":1}' + "]}" * depth


@pytest.mark.parametrize(
    ("where", "status"),
    [
        (_nested(MAX_FILTER_DEPTH), 400),
        (_nested(200), 400),
        (_nested(2000), 400),
        (_nested(100_000, "$or"), 413),  # over the body limit before it is parsed
        ('{"year":' + "[" * 20_000 + "]" * 20_000 + "}", 400),
        (json.dumps({"$or": [{"year": i} for i in range(1000)]}), 400),
        (json.dumps({"year": {"$in": list(range(5000))}}), 400),
        (json.dumps({"parts.text": {"$nin": [str(i) for i in range(MAX_FILTER_TERMS + 1)]}}), 400),
        (json.dumps({"$or": [{}]}), 400),
        (json.dumps({"year": 2**64}), 422),
        (json.dumps({"year": {"$in": [-(2**70)]}}), 422),
    ],
)
def test_oversized_filters_are_4xx(generic, where, status):
    for query in (
        '"text": "harbour"',
        '"vector": [1, 0, 0, 0], "field": "embedding"',
        '"vector": [1, 0, 0, 0], "field": "parts.vec"',
    ):
        body = ("{" + query + ', "where": ' + where + "}").encode()
        assert_4xx(generic.client.post("/search", content=body, headers={"content-type": "application/json"}), status)
    if status != 413:
        body = ('{"ids": ["i1"], "where": ' + where + "}").encode()
        assert_4xx(generic.client.post("/similar", content=body, headers={"content-type": "application/json"}), status)


def test_the_largest_allowed_filters_work(generic):
    """Filters at the server's limits compile and run on the embedded store (no 5xx)."""
    deep: dict[str, Any] = {"parts.text": {"$nin": [str(i) for i in range(MAX_FILTER_TERMS - 10)]}}
    while True:
        wrapped = {"$or": [deep, {"tags": "odd"}]}
        try:
            from polymodal.serve.service import check_where

            check_where(wrapped)
        except pm.ConfigError:
            break
        deep = wrapped
    for where in (
        deep,
        {"year": {"$in": list(range(MAX_FILTER_TERMS))}},
        {"$or": [{"parts.start": i} for i in range(MAX_FILTER_TERMS)]},
        {"$and": [{"title": {"$ne": str(i)}} for i in range(MAX_FILTER_TERMS)]},
    ):
        for query in (
            {"text": "harbour"},
            {"vector": [1, 0, 0, 0], "field": "embedding"},
            {"vector": [1, 0, 0, 0], "field": "parts.vec"},
        ):
            assert generic.client.post("/search", json={**query, "where": where}).status_code == 200
