"""The Milvus backend's own parts: URIs and secrets, errors when the server is down, retries,
filter translation, words and snippets; and, on Milvus Lite, filters the contract suite does not
reach (NaN and infinite floats, huge ints, aware datetimes, typed dicts and lists, nested
documents) and the deep-search paths a selective Python-checked filter takes.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

import polymodal as pm
from polymodal.errors import BackendError, ConfigError, OptionalDependencyError
from polymodal.store import filters as flt
from polymodal.store.milvus.expr import filter_body, quote, translate
from polymodal.store.milvus.text import snippet, stems, term_chunks
from polymodal.store.milvus.uri import parse_uri, redact

HAVE_LITE = all(importlib.util.find_spec(m) for m in ("pymilvus", "milvus_lite", "snowballstemmer"))
lite = pytest.mark.skipif(not HAVE_LITE, reason="pymilvus, milvus-lite or snowballstemmer missing")
stemmer = pytest.mark.skipif(not importlib.util.find_spec("snowballstemmer"), reason="snowballstemmer missing")


# -- URIs ----------------------------------------------------------------------------------------
def test_server_uri_defaults_and_secrets():
    t = parse_uri("milvus://ann:s3cr%40t@db.example:1234/clips?db=prod&token=T0K3N&timeout=2.5&retries=4")
    assert (t.address, t.collection, t.lite) == ("http://db.example:1234", "clips", False)
    assert (t.user, t.password, t.token, t.db, t.timeout, t.retries) == ("ann", "s3cr@t", "T0K3N", "prod", 2.5, 4)
    assert "s3cr" not in t.redacted and "T0K3N" not in t.redacted
    assert t.redacted == "milvus://ann:***@db.example:1234/clips?db=prod&token=***&timeout=2.5&retries=4"
    plain = parse_uri("milvus://localhost/docs")
    assert (plain.address, plain.redacted) == ("http://localhost:19530", "milvus://localhost:19530/docs")
    assert parse_uri("milvus://h/c?tls=true").address == "https://h:19530"
    assert parse_uri("milvus://[::1]:9/c").address == "http://[::1]:9"


def test_lite_uri_paths(tmp_path, monkeypatch):
    t = parse_uri(f"milvus+lite://{tmp_path}/data/store.db/clips")
    assert (t.address, t.collection, t.lite) == (str(tmp_path / "data" / "store.db"), "clips", True)
    monkeypatch.chdir(tmp_path)
    assert parse_uri("milvus+lite://rel/store.db/c").address == str(tmp_path / "rel" / "store.db")


@pytest.mark.parametrize(
    "uri",
    [
        "milvus://host",  # no collection
        "milvus://host/",
        "milvus://host/9lives",  # Milvus names start with a letter or _
        "milvus://host/a-b",
        "milvus://host/c?colour=red",  # unknown option
        "milvus://host/c?timeout=soon",
        "milvus://host:notaport/c",
        "milvus:///c",  # no host
        "milvus+lite:///tmp/store/c",  # Lite needs a .db path
        "postgres://host/c",
    ],
)
def test_bad_uris_fail_clearly(uri):
    with pytest.raises(ConfigError):
        parse_uri(uri)


def test_bad_uri_messages_hide_the_password():
    with pytest.raises(ConfigError) as info:
        parse_uri("milvus://u:hunter2@host/bad-name")
    assert "hunter2" not in str(info.value)
    assert redact("milvus://u:hunter2@h/c?token=abc") == "milvus://u:***@h/c?token=***"


# -- connection errors ---------------------------------------------------------------------------
@lite
def test_unreachable_server_is_a_backend_error_naming_the_uri():
    """Nothing listens on port 1: the error comes at open, names the URI, and hides the password."""
    with pytest.raises(BackendError) as info:
        pm.open("milvus://ann:hunter2@127.0.0.1:1/clips", schema=Item, timeout=3)
    message = str(info.value)
    assert "milvus://ann:***@127.0.0.1:1/clips" in message
    assert "hunter2" not in message
    assert info.value.backend == "milvus"
    assert info.value.__cause__ is not None


def test_missing_driver_names_the_extra(monkeypatch):
    from polymodal.store.milvus import MilvusStore

    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[milvus\]"):
        MilvusStore("milvus://localhost/c", pm.Doc)


class _Flaky(Exception):
    def __init__(self, message: str, code: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _connection(retries: int = 2):
    from polymodal.store.milvus.client import Connection
    from polymodal.store.milvus.uri import parse_uri as parse

    conn = Connection.__new__(Connection)
    conn.target = parse("milvus://u:pw@h/c")
    conn.timeout, conn.retries, conn._reload = 1.0, retries, None
    return conn


def test_transient_errors_are_retried_and_others_are_not(monkeypatch):
    pytest.importorskip("grpc")
    monkeypatch.setattr("polymodal.store.milvus.client.time.sleep", lambda s: None)
    conn = _connection()
    calls = []

    def flaky(*, timeout):
        calls.append(timeout)
        if len(calls) < 3:
            raise _Flaky("server unavailable")
        return "ok"

    assert conn.call("query", flaky) == "ok"
    assert calls == [1.0, 1.0, 1.0]

    def broken(*, timeout):
        calls.append(timeout)
        raise _Flaky("expression is malformed")

    calls.clear()
    with pytest.raises(BackendError, match=r"query failed for milvus://u:\*\*\*@h:19530/c") as info:
        conn.call("query", broken)
    assert len(calls) == 1 and isinstance(info.value.__cause__, _Flaky)

    def down(*, timeout):
        calls.append(timeout)
        raise _Flaky("connection refused")

    calls.clear()
    with pytest.raises(BackendError):
        conn.call("query", down)
    assert len(calls) == 3  # one try and two retries


def test_an_unloaded_collection_is_reloaded_and_the_call_retried():
    conn = _connection()
    reloaded = []
    conn.on_unloaded(lambda: reloaded.append(True))

    def search(*, timeout):
        if not reloaded:
            raise _Flaky("collection 'c' is in state 'released'; call load() before search", code=101)
        return [1]

    assert conn.call("search", search) == [1]
    assert reloaded == [True]


# -- filter translation --------------------------------------------------------------------------
class Part(pm.Doc):
    name: str = ""
    weight: float = 0.0


class Item(pm.Doc):
    title: str = ""
    n: int = 0
    x: float | None = None
    ok: bool | None = None
    tags: list[str] = []
    nums: list[int] = []
    counts: dict[str, int] = {}
    attrs: dict[str, str] = {}
    extra: dict = {}
    when: datetime | None = None
    day: date | None = None
    part: Part | None = None
    parts: pm.DocList[Part] | None = None
    v: pm.Vector[3] | None = None


def tr(where):
    return translate(flt.parse(where), Item)


@pytest.mark.parametrize(
    ("where", "expr"),
    [
        ({"title": "a"}, 'fbody["title"] == "a"'),
        ({"title": {"$ne": "a"}}, '((not exists fbody["title"]) or fbody["title"] < "a" or fbody["title"] > "a")'),
        ({"n": {"$gt": 3}}, '(fbody["n"] > 3 or fbody["n"] >= "0")'),
        ({"n": {"$not": {"$gt": 3}}}, '((not exists fbody["n"]) or fbody["n"] <= 3 or fbody["n"] < "0")'),
        ({"x": {"$lt": 1.5}}, '(fbody["x"] < 1.5 or fbody["x"] == "-Infinity")'),
        ({"x": 2}, 'fbody["x"] == 2.0'),  # literals of the stored JSON type
        ({"n": 2.0}, 'fbody["n"] == 2'),
        ({"n": {"$gt": 2.5}}, '(fbody["n"] >= 3 or fbody["n"] >= "0")'),
        ({"n": {"$ne": 2.5}}, None),  # an int never equals 2.5: every document
        ({"ok": True}, 'fbody["ok"] == true'),
        ({"ok": {"$ne": True}}, '((not exists fbody["ok"]) or fbody["ok"] == false)'),
        ({"tags": {"$in": ["a", "b"]}}, '(json_contains(fbody["tags"], "a") or json_contains(fbody["tags"], "b"))'),
        ({"tags": {"$nin": ["a"]}}, '(not json_contains(fbody["tags"], "a"))'),
        ({"tags": None}, '(not exists fbody["tags"])'),
        ({"attrs.k": "v"}, 'fbody["attrs"]["k"] == "v"'),
        ({"part.name": "p"}, 'fbody["part"]["name"] == "p"'),
        ({"extra": {"$exists": True}}, 'exists fbody["extra"]'),
        ({"day": {"$gte": date(2020, 1, 2)}}, 'fbody["day"] >= "2020-01-02"'),
        ({"id": {"$in": ["a", 'q"uote']}}, '(fbody["id"] == "a" or fbody["id"] == "q\\"uote")'),
        (
            {"$not": {"$or": [{"n": 1}, {"title": "a"}]}},
            '(((not exists fbody["n"]) or fbody["n"] < 1 or fbody["n"] > 1 or fbody["n"] >= "") and '
            '((not exists fbody["title"]) or fbody["title"] < "a" or fbody["title"] > "a"))',
        ),
    ],
)
def test_exact_translations(where, expr):
    t = tr(where)
    assert (t.expr, t.exact, t.never) == (expr, True, False)


@pytest.mark.parametrize(
    "where",
    [
        {"n": "3"},  # a string never equals a number
        {"ok": 1},  # a number never equals a boolean
        {"ok": {"$gt": False}},  # booleans have no order
        {"when": {"$gte": "2020-01-01"}},  # text never compares with a datetime
        {"when": {"$lt": date(2020, 1, 1)}},  # a date is not a datetime
        {"day": {"$lt": datetime(2020, 1, 1)}},
        {"tags": 5},
        {"n": 2.5},
        {"nums": 2.5},
        {"$and": [{"n": 1}, {"title": 2}]},
    ],
)
def test_type_brackets_are_decided_without_a_query(where):
    assert tr(where).never


@pytest.mark.parametrize(
    ("where", "superset"),
    [
        ({"parts.name": "p"}, None),  # inside a nested document list
        ({"extra.k": 1}, None),  # untyped dict value
        ({"tags": {"$gt": "m"}}, 'exists fbody["tags"]'),  # no "some element > x" in Milvus
        ({"when": {"$gt": datetime(2020, 1, 1, tzinfo=UTC)}}, 'exists fbody["when"]'),
        ({"n": {"$gt": 1e30}}, 'exists fbody["n"]'),
        ({"$and": [{"n": 1}, {"parts.name": "p"}]}, 'fbody["n"] == 1'),
        ({"$or": [{"n": 1}, {"parts.name": "p"}]}, None),
    ],
)
def test_inexact_translations_are_supersets(where, superset):
    t = tr(where)
    assert (t.expr, t.exact) == (superset, False)


def test_naive_datetimes_exclude_aware_values():
    t = tr({"when": {"$gte": datetime(2020, 1, 10)}})
    assert t.exact
    assert t.expr.startswith('(fbody["when"] >= "2020-01-10T00:00:00" and not (fbody["when"] like "%Z"')


def test_filter_body_drops_nulls_empty_lists_and_unfilterable_fields():
    body = {
        "id": "a",
        "title": "t",
        "x": None,
        "tags": [],
        "attrs": {},
        "counts": {"k": None},
        "v": None,
        "parts": [{"id": "p", "name": "n", "weight": 1.0}],
        "part": {"id": "q", "name": None, "weight": 2.0},
    }
    assert filter_body(Item, body) == {
        "id": "a",
        "title": "t",
        "attrs": {},
        "counts": {},
        "part": {"id": "q", "weight": 2.0},
    }


def test_quote_escapes():
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


# -- words ---------------------------------------------------------------------------------------
@stemmer
def test_stems_fold_case_accents_and_suffixes():
    assert stems("Boats, CAFÉS and running") == ["boat", "cafe", "and", "run"]


@stemmer
def test_snippet_marks_words_and_windows_long_texts():
    long = " ".join(f"w{i}" for i in range(40)) + " harbours " + " ".join(f"z{i}" for i in range(40))
    out = snippet(long, {"harbour"})
    assert "[harbours]" in out and out.startswith("…") and out.endswith("…")
    assert len(out.split()) == 16
    assert snippet("Boats, in the harbour.", {"boat"}) == "[Boats], in the harbour."


@stemmer
def test_long_texts_become_several_rows():
    chunks = list(term_chunks("word " * 30_000))
    assert len(chunks) > 1 and all(len(c.encode()) <= 60_000 for c in chunks)


# -- on Milvus Lite ------------------------------------------------------------------------------
def _items(n: int = 48) -> list[Item]:
    out = []
    rng = np.random.default_rng(0)
    specials = [float("nan"), float("inf"), float("-inf"), None, 1.5, -2.0]
    for i in range(n):
        out.append(
            Item(
                id=f"i{i}",
                title=["alpha", "beta", "Gamma", "", "delta"][i % 5],
                n=[0, 1, 2**70, -(2**70), 7, 100][i % 6],
                x=specials[i % 6],
                ok=[True, False, None][i % 3],
                tags=[["a"], ["a", "b"], [], ["c"]][i % 4],
                nums=[[1, 2], [], [3]][i % 3],
                counts={"k": i % 3} if i % 2 else {},
                attrs={"colour": ["red", "blue"][i % 2]} if i % 3 else {},
                extra={"k": i % 4, "s": "x"} if i % 5 else {},
                when=[
                    datetime(2020, 1, 1, 12),
                    datetime(2020, 1, 1, 12, tzinfo=UTC),
                    datetime(2020, 1, 1, 14, tzinfo=UTC) + timedelta(microseconds=5),
                    None,
                    datetime(2021, 6, 1, tzinfo=UTC).astimezone(__import__("datetime").timezone(timedelta(hours=2))),
                ][i % 5],
                day=date(2020, 1, 1 + i % 20) if i % 4 else None,
                part=Part(name=f"p{i % 3}", weight=float(i)) if i % 2 else None,
                parts=[Part(name=f"q{j}", weight=float(j)) for j in range(i % 3)] or None,
                v=rng.normal(size=3),
            )
        )
    return out


ITEM_FILTERS = [
    {"x": {"$gt": 0}},
    {"x": {"$lte": 1.5}},
    {"x": {"$ne": 1.5}},
    {"x": {"$not": {"$gt": 0}}},
    {"x": None},
    {"x": {"$exists": True}},
    {"n": {"$gt": 5}},
    {"n": {"$lt": 1}},
    {"n": {"$ne": 1}},
    {"n": {"$not": {"$lt": 1}}},
    {"n": 2**63 - 1},
    {"n": {"$in": [0, 7, "7"]}},
    {"n": 7.0},  # an int field against a float operand
    {"n": 7.5},
    {"n": {"$gt": 6.5}},
    {"n": {"$lte": 0.5}},
    {"n": {"$gt": 1e30}},
    {"x": {"$gt": 1}},  # a float field against an int operand
    {"x": -2},
    {"ok": False},
    {"ok": {"$ne": False}},
    {"ok": {"$nin": [True, None]}},
    {"tags": "a"},
    {"tags": {"$ne": "a"}},
    {"tags": {"$in": ["b", None]}},
    {"tags": {"$gte": "b"}},
    {"nums": {"$gt": 2}},
    {"nums": 2.0},
    {"counts.k": {"$gte": 1}},
    {"counts.k": None},
    {"attrs.colour": {"$ne": "red"}},
    {"extra.k": {"$gt": 1}},
    {"extra": {"$exists": False}},
    {"when": {"$gte": datetime(2020, 1, 1, 12)}},
    {"when": {"$lt": datetime(2020, 1, 1, 13, tzinfo=UTC)}},
    {"when": {"$gt": datetime(2021, 5, 31, 23, tzinfo=UTC)}},
    {"when": {"$ne": datetime(2020, 1, 1, 12)}},
    {"day": {"$gt": date(2020, 1, 10)}},
    {"part.name": "p1"},
    {"part.weight": {"$gt": 10}},
    {"part": None},
    {"parts.name": "q1"},
    {"parts.weight": {"$gte": 1}},
    {"parts": None},
    {"$or": [{"parts.name": "q1"}, {"x": {"$gt": 0}}]},
    {"$not": {"$and": [{"n": {"$gt": 0}}, {"tags": "a"}]}},
    {"title": {"$in": ["", "beta"]}},
    {"title": {"$gt": "Z"}},
]


@pytest.fixture(scope="module")
def items_store(tmp_path_factory):
    if not HAVE_LITE:
        pytest.skip("pymilvus, milvus-lite or snowballstemmer missing")
    from polymodal.store.milvus import MilvusStore

    store = MilvusStore(f"milvus+lite://{tmp_path_factory.mktemp('m')}/items.db/items", Item)
    store.add(_items())
    yield store
    store.close()


@lite
@pytest.mark.parametrize("where", ITEM_FILTERS, ids=lambda w: str(w)[:50])
def test_filters_agree_with_the_reference(items_store, where):
    """count, scan, filtered vector and text search all select exactly the reference's documents."""
    items = _items()
    parsed = flt.parse(where)
    want = {d.id for d in items if flt.matches(parsed, d)}
    assert items_store.count(where) == len(want)
    assert {r["id"] for r in items_store.scan(["title"], where=where)} == want
    q = np.array([1.0, 0.5, -0.2])
    got = items_store.search(q, field="v", limit=len(items), where=where)
    assert {h.id for h in got} == want
    if want:
        best = max(want, key=lambda i: float(items[int(i[1:])].v @ q / np.linalg.norm(items[int(i[1:])].v)))
        assert items_store.search(q, field="v", limit=1, where=where)[0].id == best


@lite
def test_selective_python_checked_filters_still_return_limit_hits(tmp_path, monkeypatch):
    """A filter Milvus cannot express, matching few documents: the search goes deeper, then (past
    the result window) ranks every candidate exactly, and still returns exactly ``limit`` hits."""
    from polymodal.store.milvus import MilvusStore
    from polymodal.store.milvus import collections as store_module

    class Seg(pm.Doc):
        tag: str = ""
        text: str = ""

    class Vid(pm.Doc):
        segs: pm.DocList[Seg] | None = None
        v: pm.Vector[4] | None = None

    rng = np.random.default_rng(1)
    docs = [
        Vid(
            id=f"d{i}",
            segs=[Seg(tag="rare" if i % 40 == 0 else "common", text=f"word{i % 7} boat")],
            v=rng.normal(size=4),
        )
        for i in range(200)
    ]
    s = MilvusStore(f"milvus+lite://{tmp_path}/s.db/vids", Vid)
    s.add(docs)
    where = {"segs.tag": "rare"}
    want = [d.id for d in docs if d.segs[0].tag == "rare"]
    q = rng.normal(size=4)
    order = sorted(want, key=lambda i: -float(docs[int(i[1:])].v @ q / np.linalg.norm(docs[int(i[1:])].v)))
    for window in (16384, 8):  # the default, then a tiny window that forces the exact fallback
        monkeypatch.setattr(store_module, "WINDOW", window)
        assert [h.id for h in s.search(q, field="v", limit=3, where=where)] == order[:3]
        assert {h.id for h in s.text_search("boat", limit=3, where=where)} <= set(want)
        assert len(s.text_search("boat", limit=3, where=where)) == 3
    s.close()


@lite
def test_reopen_checks_options_and_foreign_collections(tmp_path):
    from polymodal.store.milvus import MilvusStore

    uri = f"milvus+lite://{tmp_path}/r.db/things"
    with pytest.raises(ConfigError, match="pass schema"):
        MilvusStore(uri)
    s = MilvusStore(uri, Item, metric="ip")
    s.set_setting("embedder", {"name": "x"})
    s.close()
    with pytest.raises(ConfigError, match="metric"):
        MilvusStore(uri, metric="l2")
    s2 = MilvusStore(uri, ef_search=99)
    assert (s2.config.metric, s2.config.ef_search, s2.get_setting("embedder")) == ("ip", 99, {"name": "x"})
    assert "things" in repr(s2)
    s2.close()
    with pytest.raises(ConfigError):
        MilvusStore(uri, Item, hnsw_m=2)  # a bad option fails before anything is touched


@lite
def test_a_restarting_server_loses_nothing(tmp_path):
    """The server goes away under an open store and comes back on the same address (with its
    collections unloaded, as after a restart): calls retry through it, nothing written is lost,
    and writing goes on."""
    server_mod = pytest.importorskip("milvus_lite.adapter.grpc.server")
    from polymodal.store.milvus import MilvusStore

    data = str(tmp_path / "server.db")
    server, db, port = server_mod.start_server_in_thread(data_dir=data, host="127.0.0.1", port=0)
    store = MilvusStore(f"milvus://127.0.0.1:{port}/items", Item, retries=8)
    restarted: list = []
    try:
        items = _items()
        store.add(items[:20])
        server.stop(grace=0).wait()
        db.close()
        timer = threading.Timer(
            1.0, lambda: restarted.append(server_mod.start_server_in_thread(data_dir=data, host="127.0.0.1", port=port))
        )
        timer.start()
        assert store.count() == 20  # waits for the server to come back
        timer.join()
        store.add(items[20:30])
        assert store.count() == 30
        assert store.get("i25") == items[25]
        assert store.search(items[3].v, field="v", limit=1)[0].id == "i3"
    finally:
        store.close()
        for srv, sdb, _ in restarted:
            srv.stop(grace=0)
            sdb.close()


@lite
def test_awkward_ids_and_setting_keys(tmp_path):
    """Quotes, backslashes, newlines and non-ASCII in ids and keys are data, never expression syntax."""
    from polymodal.store.milvus import MilvusStore

    class D(pm.Doc):
        t: str = ""
        v: pm.Vector[2] | None = None

    ids = ['a"b', "back\\slash", "new\nline", "日本", "tab\there", "it's", "%_like"]
    s = MilvusStore(f"milvus+lite://{tmp_path}/x.db/c", D)
    s.add([D(id=i, t=f"text {i} boats", v=[1, k]) for k, i in enumerate(ids)])
    assert [d.id for d in s.get(ids)] == ids
    assert {h.id for h in s.search([1, 0], limit=10)} == set(ids)
    assert s.count({"id": {"$in": ids[:3]}}) == 3
    assert s.text_search("日本")[0].snippet == "text [日本] boats"
    s.add(D(id=ids[1], t="replaced", v=[0, 1]))
    assert s.get(ids[1]).t == "replaced"
    s.set_setting('we"ird\\key', [1, 2])
    assert s.get_setting('we"ird\\key') == [1, 2]
    assert s.delete([*ids[:4], "missing"]) == 4
    assert s.count() == 3
    s.close()


@lite
def test_long_bodies_go_in_pieces_and_long_filter_bodies_are_trimmed(tmp_path, monkeypatch):
    """Past the JSON limit of a Milvus server (shrunk here), bodies are stored in pieces and filter
    bodies leave out their largest fields; documents, filters and searches stay exact."""
    from polymodal.store.milvus import MilvusStore, rows

    monkeypatch.setattr(rows, "JSON_LIMIT", 400)

    class Long(pm.Doc):
        title: str = ""
        text: str = ""
        n: int = 0
        pic: pm.NdArray[np.uint8, "h", "w"] | None = None
        v: pm.Vector[2] | None = None

    docs = [
        Long(
            id=f"l{i}",
            title=f"t{i}",
            text="ünïcode boats " * (i * 6),
            n=i,
            pic=np.full((12, 12), i, np.uint8) if i % 2 else None,
            v=[1.0, float(i)],
        )
        for i in range(12)
    ]
    uri = f"milvus+lite://{tmp_path}/long.db/long"
    s = MilvusStore(uri, Long)
    s.add(docs)
    assert list(s.get([d.id for d in docs])) == docs
    filters = [{"n": {"$gt": 5}}, {"text": {"$gte": "ü"}}, {"title": "t3"}, {"text": ""}, {"$not": {"n": 4}}]
    for where in filters:
        want = {d.id for d in docs if flt.matches(flt.parse(where), d)}
        assert s.count(where) == len(want), where
        assert {h.id for h in s.search([1.0, 0.5], field="v", limit=20, where=where)} == want
        assert {h.id for h in s.text_search("boat", limit=20, where=where)} == want - {"l0"}
    shorter = Long(id="l11", title="short")
    longer = Long(id="l3", title="t3", text="x " * 700, n=3, v=[1.0, 3.0])
    s.add([shorter, longer])
    assert s.get("l11") == shorter and s.get("l3") == longer
    s.delete(["l5", "l11"])
    assert s._db.rows(s._db.parts, 'parent in ["l5", "l11"]', ["pk"]) == []
    s.close()
    s2 = MilvusStore(uri, Long)  # a local class: the stored schema would rebuild an equivalent one
    assert s2.count({"text": {"$gte": "x", "$lt": "y"}}) == 1  # the trimmed marker is remembered
    assert s2.get("l9") == docs[9]
    s2.close()
