"""The Qdrant backend beyond the shared contract (which runs it in local mode).

What is promised (and proved here):

* URIs: ``qdrant://[:KEY@]host[:port]/collection?options`` and ``qdrant+local://DIR/collection``
  parse as documented, bad ones fail with a ConfigError, and no message or attribute ever shows
  the API key; a server that is down is a ``BackendError`` naming the redacted URI, at once;
* transient driver errors are retried and others are not; a missing driver names the extra;
* filters translate to native Qdrant conditions that agree with the reference evaluator on a
  schema with every kind of value, for every operator; what Qdrant cannot order (strings) is
  checked in Python and still yields exactly ``limit`` hits;
* large batches are split into several requests and all arrive; leftovers of an interrupted
  write never show up in text search; two stores share one local directory; the server-only
  code paths (search params, payload indexes, the exact re-search) give the same answers.
"""

from __future__ import annotations

import math
import pickle
import socket
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

import polymodal as pm
from polymodal.store import filters as flt
from polymodal.store.qdrant.connection import Connection, is_transient, parse_uri, redact


class Seg(pm.Doc):
    start: float
    text: str = ""
    v: pm.Vector[4] | None = None


class Item(pm.Doc):
    title: str
    n: int = 0
    tags: list[str] = []
    v: pm.Vector[4] | None = None
    segs: pm.DocList[Seg] | None = None


def _store(schema: type = Item, name: str = "c", **options: Any):
    pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant import QdrantStore

    return QdrantStore(f"qdrant+local://:memory:/{name}", schema, **options)


def _items(n: int = 40, seed: int = 0) -> list[Item]:
    rng = np.random.default_rng(seed)
    words = ["harbour", "boats", "forest", "river", "snow"]
    return [
        Item(
            id=f"i{k}",
            title=f"{words[k % 5]} item {k} {'mango' if k % 7 == 0 else ''}",
            n=k,
            tags=[words[k % 3]],
            v=rng.normal(size=4),
            segs=[
                Seg(id=f"i{k}-s{j}", start=j, text=f"{words[(k + j) % 5]} talk", v=rng.normal(size=4))
                for j in range(k % 3)
            ],
        )
        for k in range(n)
    ]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- URIs -------------------------------------------------------------------------------------------
def test_server_uri_defaults_options_and_secrets():
    t = parse_uri("qdrant://db.example/clips")
    assert (t.host, t.port, t.collection, t.local, t.https, t.api_key) == (
        "db.example",
        6333,
        "clips",
        False,
        False,
        None,
    )
    t = parse_uri("qdrant://:s3cret@db:7000/clips?https=true&grpc=1&grpc_port=7001&timeout=2.5&retries=5&pool_size=4")
    assert (t.port, t.https, t.prefer_grpc, t.grpc_port, t.timeout, t.retries, t.pool_size) == (
        7000,
        True,
        True,
        7001,
        2.5,
        5,
        4,
    )
    assert t.api_key == "s3cret"
    assert "s3cret" not in t.uri and "s3cret" not in repr(t)
    assert t.uri == "qdrant://:***@db:7000/clips?https=true&grpc=1&grpc_port=7001&timeout=2.5&retries=5&pool_size=4"
    t = parse_uri("qdrant://db/clips?api_key=k3y", retries=0)
    assert (t.api_key, t.retries) == ("k3y", 0)
    assert "k3y" not in t.uri
    assert parse_uri("qdrant://db/clips?api_key=a", api_key="b").api_key == "b"  # the keyword wins
    assert redact("qdrant://u:pw@h/c?api_key=z") == "qdrant://u:***@h/c?api_key=***"
    lone = parse_uri("qdrant://k3y@db/clips")  # a name alone before @ is the key as well
    assert (lone.api_key, lone.uri) == ("k3y", "qdrant://***@db/clips")


def test_local_uris(tmp_path):
    t = parse_uri(f"qdrant+local://{tmp_path}/data/clips")
    assert (t.local_path, t.collection, t.local) == (f"{tmp_path}/data", "clips", True)
    assert parse_uri("qdrant+local://rel/dir/clips").local_path == "rel/dir"
    assert parse_uri("qdrant+local://:memory:/clips").local_path == ":memory:"
    assert parse_uri(f"qdrant+local://{tmp_path}/data/clips").uri == f"qdrant+local://{tmp_path}/data/clips"


def test_a_directory_held_by_another_client_is_a_clear_error(tmp_path):
    qdrant_client = pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant import QdrantStore

    holder = qdrant_client.QdrantClient(path=str(tmp_path / "held"))  # as another process would
    uri = f"qdrant+local://{tmp_path}/held/clips"
    with pytest.raises(pm.BackendError, match="already accessed") as info:
        QdrantStore(uri, Item)
    assert uri in str(info.value)
    holder.close()


@pytest.mark.parametrize(
    "uri",
    [
        "qdrant://db",  # no collection
        "qdrant://db/a/b",  # two path segments
        "qdrant://db/clips?colour=red",  # unknown option
        "qdrant://db/clips?timeout=soon",
        "qdrant://db/clips?https=maybe",
        "qdrant://db/cl*ps",
        "qdrant:///clips",  # no host
        "qdrant+local://clips",  # no directory
        "qdrant+local://:memory:/",
        "qdrant+local://dir/c?x=1",
        "milvus://db/clips",
    ],
)
def test_bad_uris_fail_clearly(uri):
    with pytest.raises(pm.ConfigError):
        parse_uri(uri)


def test_bad_uri_messages_hide_the_key():
    with pytest.raises(pm.ConfigError) as info:
        parse_uri("qdrant://:hunter2@db/clips?colour=red")
    assert "hunter2" not in str(info.value)
    assert "colour" in str(info.value)


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
@pytest.mark.parametrize("opener", ["class", "pm.open"])
def test_unreachable_server_is_a_backend_error_naming_the_uri(opener):
    pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant import QdrantStore

    port = _closed_port()
    uri = f"qdrant://:topsecret@127.0.0.1:{port}/clips?retries=1"
    open_it = (lambda: QdrantStore(uri, Item)) if opener == "class" else (lambda: pm.open(uri, schema=Item))
    with pytest.raises(pm.BackendError) as info:
        open_it()  # pm.open: the registry maps qdrant:// to this backend
    err = info.value
    assert f"127.0.0.1:{port}/clips" in str(err)
    assert "topsecret" not in str(err) and "topsecret" not in repr(vars(err))
    assert err.backend == "qdrant"
    assert err.__cause__ is not None
    assert "topsecret" not in str(pickle.loads(pickle.dumps(err)))


def test_missing_driver_names_the_extra(monkeypatch):
    from polymodal.store.qdrant import QdrantStore

    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(pm.OptionalDependencyError) as info:
        QdrantStore("qdrant+local://:memory:/c", Item)
    assert info.value.extra == "qdrant"
    assert "polymodal[qdrant]" in str(info.value)


def test_transient_errors_are_retried_and_others_are_not(monkeypatch):
    pytest.importorskip("qdrant_client")
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    import polymodal.store.qdrant.connection as connection

    monkeypatch.setattr(connection.time, "sleep", lambda s: None)
    assert is_transient(ResponseHandlingException(httpx.ConnectError("refused")))
    assert is_transient(UnexpectedResponse(503, "Unavailable", b"", httpx.Headers()))
    assert not is_transient(UnexpectedResponse(400, "Bad Request", b"", httpx.Headers()))
    assert not is_transient(ValueError("bad"))
    conn = Connection(parse_uri("qdrant+local://:memory:/c", retries=2))
    calls = []

    def flaky(fail: int, exc: Exception) -> int:
        calls.append(1)
        if len(calls) <= fail:
            raise exc
        return 42

    assert conn.call("x", flaky, 2, httpx.ConnectError("refused")) == 42
    calls.clear()
    with pytest.raises(pm.BackendError, match="after 3 attempts"):
        conn.call("x", flaky, 3, httpx.ReadTimeout("slow"))
    calls.clear()
    with pytest.raises(pm.BackendError, match="error from Qdrant"):
        conn.call("x", flaky, 1, ValueError("no such thing"))
    assert len(calls) == 1  # not retried
    conn.close()


# -- filters ----------------------------------------------------------------------------------------
def test_translations_that_are_decided_without_a_query():
    pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant.translate import translate

    def tr(where):
        return translate(flt.parse(where))

    assert tr({"n": {"$gt": False}}).empty  # booleans have no order
    assert tr({"n": math.nan}).empty
    assert tr({"$and": [{"n": 1}, {"n": {"$lt": math.nan}}]}).empty
    assert tr({"$or": [{"n": {"$gt": True}}, {"n": 1}]}).exact
    string_order = tr({"title": {"$gte": "m"}})
    assert (string_order.exact, string_order.filter) == (False, None)  # checked in Python
    mixed = tr({"$and": [{"n": 1}, {"title": {"$gt": "a"}}]})
    assert not mixed.exact and mixed.filter is not None  # the native part still narrows
    assert not tr({"$not": {"title": {"$gt": "a"}}}).exact
    assert tr({"n": {"$in": [1, 2.0, None]}}).exact


def test_facts_follow_the_reference_paths_and_types():
    from polymodal.store.qdrant.translate import facts_of, value_fact

    assert value_fact("n", 2000) == value_fact("n", 2000.0) != value_fact("n", "2000")
    assert value_fact("b", True) != value_fact("b", 1)
    aware = datetime(2020, 1, 1, 12, tzinfo=UTC)
    assert value_fact("t", aware) == value_fact("t", aware.astimezone(timezone(timedelta(hours=5))))
    assert value_fact("t", aware) != value_fact("t", datetime(2020, 1, 1, 12))
    assert value_fact("t", date(2020, 1, 1)) != value_fact("t", datetime(2020, 1, 1))
    assert len(value_fact("s", "x" * 1000)) < 100  # long strings are hashed
    assert value_fact("f", math.nan) is None

    class Loose(pm.Doc):
        extra: dict[str, Any] = {}
        segs: pm.DocList[Seg] | None = None

    doc = Loose(id="a", extra={"k": [1, {"deep": 2}], "a.b": 3, "o": {"p": 4}}, segs=[Seg(start=1.5, text="x")])
    facts, ranges = facts_of(doc)
    assert '["e","extra.o.p"]' in facts and '["n","extra.o.p","4"]' in facts
    assert '["n","segs.start","1.5"]' in facts and {"p": "segs.start", "n": 1.5} in ranges
    assert not any("deep" in f or "a.b" in f for f in facts)  # as filters._resolve: unreachable paths


class Part(pm.Doc):
    n: int = 0
    label: str = ""
    at: datetime | None = None


class Rich(pm.Doc):
    i: int | None = None
    f: float | None = None
    s: str | None = None
    b: bool | None = None
    dt: datetime | None = None
    d: date | None = None
    ints: list[int] = []
    dates: list[date] = []
    extra: dict[str, Any] = {}
    parts: pm.DocList[Part] | None = None
    v: pm.Vector[3] | None = None


_TZ = timezone(timedelta(hours=2))
_INTS = [None, 0, 1, -1, 7, 2**70, -(2**64)]
_FLOATS = [None, 0.0, 1.5, -2.5, 7.0, math.nan, math.inf, -math.inf, 0.1]
_STRS = [None, "", "a", "B", "é", "Z", "zz", "2000", "long " * 30]
_DTS = [
    None,
    datetime(2020, 1, 1, 12),
    datetime(2020, 1, 1, 12, 0, 0, 500),
    datetime(2020, 1, 1, 10, tzinfo=UTC),
    datetime(2020, 1, 1, 11, 30, tzinfo=_TZ),
]
_DATES = [None, date(2020, 1, 1), date(1999, 12, 31), date(2020, 1, 2)]
_EXTRAS = [{}, {"k": 1}, {"k": "a", "o": {"p": 2}}, {"l": [1, "a", True, None]}, {"k": [3, 4]}, {"k": None}]
_OPERANDS = [
    0, 1, -1, 7, 1.5, -2.5, 0.1, 2**63 - 1, math.inf, -math.inf, math.nan, True, False, "", "a", "B", "é", "zz", "2000",
    "long " * 30, datetime(2020, 1, 1, 12), datetime(2020, 1, 1, 11, tzinfo=UTC), datetime(2020, 1, 1, 12, 0, 0, 100),
    date(2020, 1, 1), date(2020, 1, 2),
]  # fmt: skip
_PATHS = [
    "id", "i", "f", "s", "b", "dt", "d", "ints", "dates", "extra", "extra.k", "extra.o.p", "extra.l",
    "parts", "parts.n", "parts.label", "parts.at",
]  # fmt: skip


def _rich_docs(n: int = 120) -> list[Rich]:
    rng = np.random.default_rng(7)

    def pick(values):
        return values[int(rng.integers(len(values)))]

    docs = []
    for k in range(n):
        parts = None
        if k % 3:
            parts = [
                Part(n=int(rng.integers(-2, 5)), label=pick(_STRS[1:]), at=pick(_DTS))
                for _ in range(int(rng.integers(3)))
            ]
        docs.append(
            Rich(
                id=f"r{k}",
                i=pick(_INTS),
                f=pick(_FLOATS),
                s=pick(_STRS),
                b=pick([None, True, False]),
                dt=pick(_DTS),
                d=pick(_DATES),
                ints=[int(x) for x in rng.integers(-2, 4, size=int(rng.integers(3)))],
                dates=[d for d in (pick(_DATES), pick(_DATES)) if d is not None],
                extra=pick(_EXTRAS),
                parts=parts,
                v=rng.normal(size=3),
            )
        )
    return docs


def _filters(seed: int = 3, n: int = 400) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    ops = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "null"]

    def one() -> dict[str, Any]:
        path = _PATHS[int(rng.integers(len(_PATHS)))]
        op = ops[int(rng.integers(len(ops)))]
        operand = _OPERANDS[int(rng.integers(len(_OPERANDS)))]
        if path == "id":
            operand = f"r{int(rng.integers(130))}" if rng.random() < 0.7 else operand
        if op == "null":
            return {path: None}
        if op == "$exists":
            return {path: {"$exists": bool(rng.random() < 0.5)}}
        if op in ("$in", "$nin"):
            values = [_OPERANDS[int(j)] for j in rng.integers(len(_OPERANDS), size=3)]
            return {path: {op: values + ([None] if rng.random() < 0.2 else [])}}
        return {path: {op: operand}}

    out = [one() for _ in range(n)]
    out += [{"$or": [one(), one()]} for _ in range(40)]
    out += [{"$not": one()} for _ in range(40)]
    out += [{"$and": [one(), {"$not": one()}]} for _ in range(40)]
    return out


def test_filters_match_the_reference_on_every_kind_of_value():
    store = _store(Rich)
    docs = _rich_docs()
    store.add(docs)
    got_back = store.get([d.id for d in docs])
    assert [g.model_dump_json() for g in got_back] == [d.model_dump_json() for d in docs]
    wrong = []
    for where in _filters():
        parsed = flt.parse(where)
        want = {d.id for d in docs if flt.matches(parsed, d)}
        got = {r["id"] for r in store.scan(["id"], where=where)}
        if got != want or store.count(where) != len(want):
            wrong.append((where, sorted(want - got)[:3], sorted(got - want)[:3]))
    assert not wrong, f"{len(wrong)} filters disagree with the reference, e.g. {wrong[:5]}"
    store.close()


def _brute(items: list[Item], q: np.ndarray, where: dict[str, Any] | None) -> list[str]:
    parsed = flt.parse(where)
    scored = [
        (float(it.v @ q / (np.linalg.norm(it.v) * np.linalg.norm(q))), it.id) for it in items if flt.matches(parsed, it)
    ]
    return [i for _, i in sorted(scored, key=lambda t: (-t[0], t[1]))]


@pytest.mark.parametrize(
    "where",
    [{"title": {"$gte": "r"}}, {"$and": [{"n": {"$lt": 30}}, {"title": {"$lt": "f"}}]}, {"n": {"$gt": -math.inf}}],
)
def test_python_checked_filters_still_return_limit_hits(where):
    store = _store()
    items = _items(60)
    store.add(items)
    q = np.random.default_rng(1).normal(size=4)
    want = _brute(items, q, where)
    assert len(want) >= 5
    assert [h.id for h in store.search(q, field="v", limit=5, where=where)] == want[:5]
    allowed = {d.id for d in items if flt.matches(flt.parse(where), d)}
    hits = store.text_search("item", limit=100, where=where)
    assert {h.id for h in hits} == allowed
    store.close()


def test_text_search_checks_large_id_sets_on_the_client(monkeypatch):
    import polymodal.store.qdrant.search as search

    store = _store()
    store.add(_items(60))
    where = {"n": {"$gte": 10}}
    want = [(h.id, h.snippet) for h in store.text_search("harbour talk", limit=7, where=where)]
    monkeypatch.setattr(search, "_MAX_IDS", 1)  # too many ids to send: filter the ranked rows instead
    assert [(h.id, h.snippet) for h in store.text_search("harbour talk", limit=7, where=where)] == want
    assert len(want) == 7
    store.close()


# -- writes -------------------------------------------------------------------------------------------
def test_large_batches_are_split_and_all_arrive(monkeypatch):
    store = _store()
    client = store._conn.client
    sizes: list[int] = []
    upsert = client.upsert

    def counting(collection, points, **kw):
        sizes.append(len(points))
        return upsert(collection, points=points, **kw)

    monkeypatch.setattr(client, "upsert", counting)
    items = _items(1500, seed=3)
    store.add(items)
    assert store.count() == 1500
    assert len(sizes) > 6 and max(sizes) <= 256
    assert list(store.get(["i0", "i777", "i1499"])) == [items[0], items[777], items[1499]]
    q = items[777].v
    assert store.search(q, field="v", limit=1)[0].id == "i777"
    assert {h.id for h in store.text_search("mango", limit=1000)} == {f"i{k}" for k in range(0, 1500, 7)}
    store.close()


def test_dropped_connections_during_a_write_lose_and_duplicate_nothing(monkeypatch):
    pytest.importorskip("qdrant_client")
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    import polymodal.store.qdrant.connection as connection

    monkeypatch.setattr(connection.time, "sleep", lambda s: None)
    store = _store()
    client = store._conn.client
    failures = {"upsert": [2, 5], "delete": [1]}  # the 2nd and 5th upsert, the 1st delete: connection lost
    calls = {"upsert": 0, "delete": 0}

    def dropping(name):
        real = getattr(client, name)

        def call(*args, **kwargs):
            calls[name] += 1
            if calls[name] in failures[name]:
                raise ResponseHandlingException(httpx.RemoteProtocolError("Server disconnected"))
            return real(*args, **kwargs)

        return call

    for name in failures:
        monkeypatch.setattr(client, name, dropping(name))
    items = _items(600, seed=4)
    store.add(items)
    assert store.count() == 600
    assert list(store.get([it.id for it in items])) == items
    rows = client.count(store._text).count
    assert rows == sum(1 + len(it.segs) for it in items)  # every text row once
    assert {h.id for h in store.text_search("mango", limit=1000)} == {f"i{k}" for k in range(0, 600, 7)}
    store.close()


def test_leftover_rows_of_an_interrupted_write_are_ignored():
    pytest.importorskip("qdrant_client")
    from qdrant_client import models as m

    from polymodal.store.qdrant import layout

    store = _store()
    store.add(_items(10))
    # a write that died after its text rows: a row of another generation for i3
    stale = {"p": "i3", "f": "segs.text", "pos": "9", "g": "x", "t": "zebra"}
    row = m.PointStruct(id=layout.row_id("i3", "segs.text", "9"), vector={}, payload=stale)
    store._conn.client.upsert(store._text, points=[row])
    assert store.text_search("zebra") == []
    assert [h.id for h in store.text_search("river item 3")][:1] == ["i3"]  # its own rows still count
    store.add(Item(id="i3", title="zebra crossing"))  # a new write replaces everything
    assert [h.id for h in store.text_search("zebra")] == ["i3"]
    store.close()


class Free(pm.Doc):
    v: pm.Vector | None = None
    segs: pm.DocList[Seg] | None = None


def test_settings_are_replaced_not_merged_and_dims_survive_reopen(tmp_path):
    pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant import QdrantStore

    uri = f"qdrant+local://{tmp_path}/q/free"
    store = QdrantStore(uri, Free, metric="l2")
    store.set_setting("embedder", {"name": "a", "dim": 3})
    store.set_setting("embedder", {"name": "b"})
    assert store.get_setting("embedder") == {"name": "b"}
    store.add([Free(id="x", v=[1, 0, 0]), Free(id="y", v=[0, 1, 0], segs=[Seg(start=0, v=[0, 0, 1, 0])])])
    store.close()
    again = QdrantStore(uri)
    assert again.get_setting("embedder") == {"name": "b"}
    with pytest.raises(pm.SchemaError, match="dimension 3"):
        again.add(Free(id="z", v=[1, 2]))
    hit = again.search([0, 0.9, 0], field="v", limit=1)[0]
    assert (hit.id, hit.score) == ("y", pytest.approx(-0.1, abs=1e-6))
    nested = again.search([0, 0, 1, 0], field="segs.v", limit=1)[0]
    assert (nested.id, nested.match.start, nested.score) == ("y", 0.0, pytest.approx(0.0, abs=1e-6))
    with pytest.raises(pm.ConfigError, match="metric"):
        QdrantStore(uri, metric="cosine")  # a structural option is fixed
    again.close()


def test_reopen_checks_schemas_and_foreign_collections(tmp_path):
    pytest.importorskip("qdrant_client")
    from qdrant_client import QdrantClient

    from polymodal.store.qdrant import QdrantStore

    uri = f"qdrant+local://{tmp_path}/q/items"
    with pytest.raises(pm.ConfigError, match="pass schema"):
        QdrantStore(uri)
    QdrantStore(uri, Item).close()
    with pytest.raises(pm.SchemaError):
        QdrantStore(uri, Seg)
    client = QdrantClient(path=str(tmp_path / "other"))
    client.create_collection("theirs", vectors_config={})
    client.close()
    with pytest.raises(pm.ConfigError, match="not a polymodal store"):
        QdrantStore(f"qdrant+local://{tmp_path}/other/theirs")


def test_two_stores_share_one_local_directory(tmp_path):
    pytest.importorskip("qdrant_client")
    from polymodal.store.qdrant import QdrantStore

    a = QdrantStore(f"qdrant+local://{tmp_path}/q/a", Item)
    b = QdrantStore(f"qdrant+local://{tmp_path}/q/b", Seg)
    a.add(_items(3))
    b.add(Seg(id="s", start=1.0))
    a.close()
    assert b.get("s").start == 1.0  # closing one store leaves the shared client open for the other
    b.close()
    a = QdrantStore(f"qdrant+local://{tmp_path}/q/a")
    assert a.count() == 3
    a.close()


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_nested_search_other_metrics(metric):
    store = _store(metric=metric)
    items = _items(30, seed=5)
    store.add(items)
    q = np.random.default_rng(8).normal(size=4)

    def score(v):
        return float(v @ q) if metric == "ip" else -float(np.linalg.norm(v - q))

    best = sorted(
        (
            (max(score(s.v) for s in it.segs), it.id, max(it.segs, key=lambda s: score(s.v)).id)
            for it in items
            if it.segs
        ),
        key=lambda t: (-t[0], t[1]),
    )[:5]
    for aggregate in ("max", "mean"):
        hits = store.search(q, field="segs.v", limit=5, aggregate=aggregate)
        assert all(h.match.id == max(h.doc.segs, key=lambda s: score(s.v)).id for h in hits)
    hits = store.search(q, field="segs.v", limit=5)
    assert [(h.id, h.match.id) for h in hits] == [(i, s) for _, i, s in best]
    assert [h.score for h in hits] == pytest.approx([sc for sc, _, _ in best], rel=1e-4, abs=1e-5)
    store.close()


@pytest.mark.filterwarnings("ignore::UserWarning")  # local mode warns that it ignores index options
def test_server_code_paths_give_the_same_answers(monkeypatch):
    import polymodal.store.qdrant.search as search
    from polymodal.store.qdrant.connection import Connection

    items = _items(50)
    q = np.random.default_rng(2).normal(size=4)
    where = {"n": {"$lt": 30}}
    local = _store()
    local.add(items)
    want = [h.id for h in local.search(q, field="v", limit=5, where=where)]
    local.close()

    monkeypatch.setattr(Connection, "local", property(lambda self: False))  # take the server branches
    run = search._run
    seen: list[Any] = []

    def short_once(store, field, name, queries, limit, qfilter, params):
        seen.append(params)
        out = run(store, field, name, queries, limit, qfilter, params)
        if len(seen) == 1:  # an HNSW traversal that stopped short
            out[0].points = out[0].points[:2]
        return out

    monkeypatch.setattr(search, "_run", short_once)
    store = _store(name="server", exact_threshold=0)  # exact=None picks HNSW
    store.add(items)
    for exact in (None, False):
        seen.clear()
        assert [h.id for h in store.search(q, field="v", limit=5, where=where, exact=exact)] == want
        assert seen[-1].exact is True  # repeated exactly
    store.close()
