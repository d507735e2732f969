"""The embedded store under crashes, concurrent processes and damaged files.

What is promised (and proved here):

* every acknowledged ``add``/``delete``/``set_setting`` survives ``kill -9`` of the writer at
  any moment (during writes, checkpoints and close), and an unacknowledged one is all or
  nothing; reopening always finds a whole store whose vector indexes agree with its database;
* readers in other processes keep working, and see whole documents, while another writes;
  two writers take turns; a writer that cannot get the lock gets a clear error;
* vectors survive restarts; an index checkpoint behind the database is caught up on open,
  and a damaged, missing or foreign checkpoint is rebuilt from the database;
* opening something that is not a (compatible) store fails with a clear error.

Child processes run ``reliability_worker.py``; they print ``ack N`` only after call N returned.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import polymodal as pm
from polymodal.store.embedded import db

HERE = Path(__file__).parent
WORKER_PATH = HERE / "reliability_worker.py"


def _load_worker():
    name = "polymodal_tests_reliability_worker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


W = _load_worker()
Item, Seg, OPTIONS = W.Item, W.Seg, W.OPTIONS
CHILD_TIMEOUT = 120.0  # only against hanging children; nothing here measures speed


# -- child processes -------------------------------------------------------------------------
class Child:
    """A worker process whose stdout lines arrive on a queue (None at end of output)."""

    def __init__(self, *args: object, stdin: bool = False) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER_PATH), *map(str, args)],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, out: queue.Queue) -> None:
        for line in stream:
            out.put(line.rstrip("\n"))
        out.put(None)

    def next_line(self, timeout: float = CHILD_TIMEOUT) -> str | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            pytest.fail(f"child {self.proc.args[2]} printed nothing for {timeout} s; stderr:\n{self.err}")
        if line is not None:
            self.seen.append(line)
        return line

    def expect(self, prefix: str) -> str:
        while (line := self.next_line()) is not None:
            if line.startswith(prefix):
                return line
        self.finish()
        pytest.fail(f"child ended before printing {prefix!r}; rc={self.proc.returncode}; stderr:\n{self.err}")

    @property
    def err(self) -> str:
        return "".join(self.stderr)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=CHILD_TIMEOUT)

    def finish(self) -> int:
        """Wait for the child to end; read the rest of its output; return its exit status."""
        try:
            rc = self.proc.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"child {self.proc.args[2]} hung; stderr:\n{self.err}")
        while self.next_line() is not None:
            pass
        for t in self._threads:
            t.join(timeout=CHILD_TIMEOUT)
        return rc

    def close_stdin(self) -> None:
        self.proc.stdin.close()


# -- checks ----------------------------------------------------------------------------------
def check_database(store) -> None:
    """SQLite and FTS5 integrity, and the store's own bookkeeping, are intact."""
    conn = store._conn
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.execute("INSERT INTO fts(fts) VALUES ('integrity-check')")
    rids = {r for (r,) in conn.execute("SELECT rid FROM docs")}
    vec_rows = conn.execute("SELECT key, rid FROM vectors").fetchall()
    assert {rid for _, rid in vec_rows} <= rids, "vectors of documents that are gone"
    keys = {k for k, _ in vec_rows}
    assert not keys & {k for (k,) in conn.execute("SELECT key FROM free_slots")}, "a slot both used and free"
    for key in keys:
        fid = key >> db.FIELD_SHIFT
        assert key - (fid << db.FIELD_SHIFT) < db.get_meta(conn, f"next_slot:{fid}", 0)
    assert {r >> 20 for (r,) in conn.execute("SELECT rowid FROM fts")} <= rids, "texts of documents that are gone"


def check_index_matches_db(store) -> None:
    """Each caught-up vector index holds exactly the database's vectors (graph and matrix)."""
    conn = store._conn
    for fid in store._field_paths:
        lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
        rows = conn.execute("SELECT key, rid, pos, vec FROM vectors WHERE key >= ? AND key < ?", (lo, hi)).fetchall()
        with store._lock:
            index = store._index(fid)
        slots = np.array(sorted(k - lo for k, _, _, _ in rows), dtype=np.int64)
        assert np.array_equal(np.flatnonzero(index.valid), slots)
        assert index.count == len(rows)
        for key, rid, pos, vec in rows:
            slot = key - lo
            assert index.matrix[slot].tobytes() == vec  # the vector exactly as stored
            assert np.allclose(index.unit(np.array([slot]))[0], index.prepare(np.frombuffer(vec, "<f4")[None])[0])
            assert (int(index.owner[slot]), index.pos[slot]) == (rid, pos)
        if len(slots):
            graph = np.asarray(index._hnsw.get_items(slots, return_type="numpy"))
            assert np.allclose(graph, index.unit(slots), atol=1e-6)
        for label in set(index._hnsw.get_ids_list()) - set(slots.tolist()):
            with pytest.raises(RuntimeError):  # a freed slot is deleted in the graph too
                index._hnsw.get_items([label])


def check_answers(store, docs: dict[str, Item], rng: np.random.Generator) -> None:
    """count, filters, text and vector search (ANN and exact) agree with ``docs``."""
    assert store.count() == len(docs)
    for tag in W.TAGS:
        assert store.count(where={"tag": tag}) == sum(d.tag == tag for d in docs.values())
    assert store.count(where={"batch": {"$gte": 20}}) == sum(d.batch >= 20 for d in docs.values())
    for doc in docs.values():
        token = doc.title.split()[0]
        assert [h.id for h in store.text_search(token)] == [doc.id]
        if doc.embedding is not None:
            top = store.search(doc.embedding, field="embedding", limit=1, exact=False)
            assert top[0].id == doc.id
        for seg in doc.segments or []:
            hits = store.text_search(seg.text.split()[0], field="segments.text")
            assert [(h.id, h.match) for h in hits] == [(doc.id, seg)]
            if seg.embedding is not None:
                top = store.search(seg.embedding, field="segments.embedding", limit=1, exact=False)
                exact = store.search(seg.embedding, field="segments.embedding", limit=3, exact=True)
                assert (top[0].id, top[0].match) == (doc.id, seg), (top, exact, seg)
    with_vec = [d for d in docs.values() if d.embedding is not None]
    for _ in range(3):
        q = rng.normal(size=8)
        ann = store.search(q, field="embedding", limit=10, exact=False)
        exact = store.search(q, field="embedding", limit=10, exact=True)
        assert [h.id for h in ann] == [h.id for h in exact]
        red = store.search(q, field="embedding", limit=5, where={"tag": "red"}, exact=False)
        assert len(red) == min(5, sum(d.tag == "red" for d in with_vec))
        assert all(h.doc.tag == "red" for h in red)


# -- kill -9 ---------------------------------------------------------------------------------
N_OPS = 60


def run_crash(tmp_path: Path, seed: int) -> None:
    """Kill a writer at a random moment (after some acks, or just as it starts a checkpoint or a
    close), reopen, and check that the store holds exactly the acknowledged operations plus, at
    most, the whole of the one in flight."""
    rng = random.Random(seed)
    path = tmp_path / f"store{seed}"
    ops = W.make_ops(seed, N_OPS)
    when = ("ack", "ckpt", "close")[seed % 3]
    target = rng.randint(0, N_OPS - 10)
    child = Child("writer", path, seed, N_OPS)
    acked = -1
    while (line := child.next_line()) is not None:
        word, _, num = line.partition(" ")
        step = N_OPS if num == "end" else int(num or N_OPS)
        if word == "ack":
            acked = step
        if word == when and step >= target:
            time.sleep(rng.uniform(0, 0.004 if when != "ack" else 0.02))
            break
    child.kill()
    rc = child.finish()
    assert rc in (0, -signal.SIGKILL), child.err
    acked = max([acked] + [int(x.split()[1]) for x in child.seen if x.startswith("ack ")])

    candidates = [W.state_after(ops, acked + 1)]
    if acked + 1 < N_OPS:
        candidates.append(W.state_after(ops, acked + 2))
    with pm.open(path, schema=Item, **OPTIONS) as store:
        stored = {d.id: d for d in store}
        state = (stored, store.get_setting("last"))
        assert state in candidates, (
            f"seed {seed}: after ack {acked} the store holds neither the acknowledged state nor that "
            f"plus the next operation ({ops[acked + 1].kind if acked + 1 < N_OPS else '-'}); "
            f"ids missing: {set(candidates[0][0]) - set(stored)}, extra: {set(stored) - set(candidates[-1][0])}"
        )
        check_database(store)
        check_index_matches_db(store)
        check_answers(store, stored, np.random.default_rng(seed))
        current = {d.title.split()[0] for d in stored.values()}
        written = {d.title.split()[0] for op in ops[: acked + 2] for d in op.docs}
        for token in sorted(written - current):  # replaced and deleted versions left no text behind
            assert store.text_search(token) == [], token
        extra = W.make_item(np.random.default_rng(seed), "after-crash", 99, 0)
        store.add(extra)
        assert store.search(np.ones(8), field="embedding", limit=100, exact=False)
    with pm.open(path, schema=Item) as store:
        assert store.get("after-crash") == extra
        assert store.count() == len(stored) + (extra.id not in stored)
        check_index_matches_db(store)


@pytest.mark.parametrize("seed", range(25))
def test_kill_9_at_random_moments_loses_no_acknowledged_write(tmp_path, seed):
    """Kill the writer at random points; fix: db.transaction around each write, checkpoint
    files written before the manifest that names them, catch-up from the change log."""
    run_crash(tmp_path, seed)


@pytest.mark.stress
@pytest.mark.parametrize("seed", range(1000, 1200))
def test_kill_9_stress(tmp_path, seed):
    """The same, 200 more times (deselected unless run with ``-m stress``)."""
    run_crash(tmp_path, seed)


def test_checkpoint_behind_the_database_is_caught_up_after_kill(tmp_path):
    """Writes after the last checkpoint live only in the database and its change log; a new
    process replays them into the loaded checkpoint (fix: EmbeddedStore._catch_up)."""
    path = tmp_path / "store"
    child = Child("ckpt-then-more", path, stdin=True)
    child.expect("ready")
    child.kill()
    child.finish()
    manifest = json.loads((path / "ann" / "manifest.json").read_text())
    docs, _ = W.state_after(W.make_ops(7, 40), 40)
    expected = dict(sorted(docs.items())[1:])
    with pm.open(path, schema=Item, **OPTIONS) as store:
        assert manifest["seq"] < db.last_seq(store._conn)  # the checkpoint is behind
        assert {d.id: d for d in store} == expected
        check_index_matches_db(store)
        check_answers(store, expected, np.random.default_rng(0))


@pytest.mark.parametrize("nth", [1, 4, 6, 10, 11, 12, 13, 14, 16])
def test_death_at_each_step_of_a_checkpoint(tmp_path, nth):
    """Die before each file-system step of a checkpoint (array and graph fsyncs, the manifest's
    fsync and rename, the directory fsync, stale-file removal): the next open answers from
    the old checkpoint plus the log, or the new one, never from half-written files."""
    path = tmp_path / "store"
    child = Child("die-in-checkpoint", path, nth)
    rc = child.finish()
    assert rc == 137 or (rc == 0 and child.seen[-1].startswith("survived")), child.err
    docs, _ = W.state_after(W.make_ops(11, 40), 40)
    expected = dict(sorted(docs.items())[1:])
    with pm.open(path, schema=Item, **OPTIONS) as store:
        assert {d.id: d for d in store} == expected
        check_index_matches_db(store)
        check_answers(store, expected, np.random.default_rng(nth))
        store.checkpoint()
    manifest = json.loads((path / "ann" / "manifest.json").read_text())
    named = {name for e in manifest["fields"].values() for name in e["digests"]}
    assert {p.name for p in (path / "ann").iterdir()} == named | {"manifest.json"}  # nothing stale left


# -- concurrent processes --------------------------------------------------------------------
def test_readers_keep_working_while_another_process_writes(tmp_path):
    """Readers never fail, never see a document half old and half new (body and vectors of two
    versions) or a hit whose document is not the one the index scored, and never see the count
    of never-deleted documents go down; at the end they see everything (fix: read snapshots)."""
    path = tmp_path / "store"
    with pm.open(path, schema=Item, **OPTIONS) as store:
        store.add([W.versioned(f"init{i}", i, "init") for i in range(10)])
    stop = tmp_path / "stop.json"
    readers = [Child("reader", path, stop) for _ in range(2)]
    for r in readers:
        r.expect("ready")
    writer = Child("churn", path, 30)
    assert writer.finish() == 0, writer.err
    with pm.open(path, schema=Item) as store:
        final = {"count": store.count(), "newest": ["k29-0", "k29-1", "k29-2"]}
        assert store.count(where={"tag": "keep"}) == 90
        check_index_matches_db(store)
        check_database(store)
    tmp = tmp_path / "stop.tmp"
    tmp.write_text(json.dumps(final))
    tmp.rename(stop)
    for r in readers:
        assert r.finish() == 0, r.err
        assert r.seen[-1].startswith("ok "), r.seen


def test_two_writer_processes_take_turns(tmp_path):
    """Two processes writing interleaved batches lose nothing and corrupt nothing; the last
    upsert of a shared id wins whole (fix: WriteLock around every write)."""
    path = tmp_path / "store"
    pm.open(path, schema=Item, **OPTIONS).close()
    writers = [Child("interleaved", path, prefix, 40) for prefix in ("a", "b")]
    for w in writers:
        assert w.finish() == 0, w.err
    with pm.open(path, schema=Item, **OPTIONS) as store:
        expected = {f"{p}{b}-{j}": W.versioned(f"{p}{b}-{j}", b, p) for p in "ab" for b in range(40) for j in range(3)}
        stored = {d.id: d for d in store}
        shared = stored.pop("shared")
        assert stored == expected
        assert shared in (W.versioned("shared", 39, "a"), W.versioned("shared", 39, "b"))
        check_database(store)
        check_index_matches_db(store)
        for doc in list(expected.values())[::7]:
            assert store.search(doc.embedding, field="embedding", limit=1, exact=False)[0].id == doc.id


def test_writer_gets_clear_error_when_another_process_holds_the_lock(tmp_path):
    """While another process holds the write lock, reads and opening still work, and a write
    with a short ``lock_timeout`` fails with a BackendError that says another process (and
    its pid) is writing, having written nothing (fix: db.WriteLock)."""
    path = tmp_path / "store"
    docs = [W.versioned(f"x{i}", i, "keep") for i in range(5)]
    with pm.open(path, schema=Item) as store:
        store.add(docs)
    holder = Child("holdlock", path, stdin=True)
    try:
        holder.expect("locked")
        store = pm.open(path, schema=Item, lock_timeout=0.2)
        assert store.count() == 5
        assert store.get("x1") == docs[1]
        assert store.search(docs[2].embedding, field="embedding", limit=1, exact=False)[0].id == "x2"
        assert [h.id for h in store.text_search("v3")] == ["x3"]
        with pytest.raises(pm.BackendError, match="another process") as info:
            store.add(W.versioned("new", 1, "keep"))
        assert str(holder.proc.pid) in str(info.value)
        assert info.value.backend == "embedded"
        with pytest.raises(pm.BackendError, match="another process"):
            store.delete("x1")
        assert store.count() == 5
    finally:
        holder.close_stdin()
        holder.finish()
    store.add(W.versioned("new", 1, "keep"))
    assert store.count() == 6
    store.close()


def test_second_writer_waits_for_the_lock(tmp_path):
    """A write with the default lock timeout waits for the other process rather than failing,
    and cannot complete while the lock is held."""
    path = tmp_path / "store"
    store = pm.open(path, schema=Item)
    holder = Child("holdlock", path, stdin=True)
    holder.expect("locked")
    errors: list[BaseException] = []

    def write():
        try:
            store.add(W.versioned("waited", 1, "keep"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(timeout=0.5)
    try:
        assert thread.is_alive(), f"the write finished while another process held the lock: {errors}"
    finally:
        holder.close_stdin()
        holder.finish()
        thread.join(timeout=CHILD_TIMEOUT)
    assert not errors
    assert store.get("waited") == W.versioned("waited", 1, "keep")
    store.close()


# -- damaged checkpoints ---------------------------------------------------------------------
def _entry_files(ann: Path, role: str) -> list[Path]:
    manifest = json.loads((ann / "manifest.json").read_text())
    return [ann / e[role] for e in manifest["fields"].values()]


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(np.random.default_rng(0).bytes(p.stat().st_size))


def _flip_middle(p: Path) -> None:
    data = bytearray(p.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0x5A for b in data[mid : mid + 64])
    p.write_bytes(bytes(data))


def _set_manifest(ann: Path, value) -> None:
    (ann / "manifest.json").write_text(value if isinstance(value, str) else json.dumps(value))


def _remove_files(ann: Path) -> None:
    for p in ann.iterdir():
        if p.name != "manifest.json":
            p.unlink()


def _short_owner(ann: Path) -> None:
    for p in _entry_files(ann, "owner"):
        np.save(p, np.load(p)[:-1])


def _wrong_dim(ann: Path) -> None:
    manifest = json.loads((ann / "manifest.json").read_text())
    for e in manifest["fields"].values():
        e["dim"] = 3
    _set_manifest(ann, manifest)


CORRUPTIONS = {
    "truncated-graph": lambda ann: [_truncate(p) for p in _entry_files(ann, "graph")],
    "empty-graph": lambda ann: [p.write_bytes(b"") for p in _entry_files(ann, "graph")],
    "garbage-graph": lambda ann: [_garbage(p) for p in _entry_files(ann, "graph")],
    "flipped-graph-bytes": lambda ann: [_flip_middle(p) for p in _entry_files(ann, "graph")],
    "garbage-matrix": lambda ann: [_garbage(p) for p in _entry_files(ann, "matrix")],
    "flipped-matrix-bytes": lambda ann: [_flip_middle(p) for p in _entry_files(ann, "matrix")],
    "truncated-valid": lambda ann: [_truncate(p) for p in _entry_files(ann, "valid")],
    "short-owner": _short_owner,
    "garbage-pos": lambda ann: [_garbage(p) for p in _entry_files(ann, "pos")],
    "wrong-dim": _wrong_dim,
    "manifest-not-json": lambda ann: _set_manifest(ann, "{not json"),
    "manifest-a-list": lambda ann: _set_manifest(ann, []),
    "manifest-missing-keys": lambda ann: _set_manifest(ann, {"seq": 1, "fields": {"0": {"graph": "x"}}}),
    "manifest-wrong-types": lambda ann: _set_manifest(ann, {"seq": "soon", "fields": []}),
    "missing-files": _remove_files,
    "no-manifest": lambda ann: (ann / "manifest.json").unlink(),
    "no-ann-dir": lambda ann: [_remove_files(ann), (ann / "manifest.json").unlink(), ann.rmdir()],
}


@pytest.fixture(scope="module")
def saved_docs():
    docs, _ = W.state_after(W.make_ops(3, 60), 60)
    return docs


@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_damaged_checkpoint_is_rebuilt_from_the_database(tmp_path, saved_docs, damage):
    """A checkpoint that is truncated, garbage, inconsistent, unreadable or gone never stops a
    store from opening or answering correctly: the index is rebuilt from the database and the
    next checkpoint is good again (fix: EmbeddedStore._load_index)."""
    path = tmp_path / "store"
    with pm.open(path, schema=Item, **OPTIONS) as store:
        store.add(list(saved_docs.values()))
        store.checkpoint()
    CORRUPTIONS[damage](path / "ann")
    with pm.open(path, schema=Item, **OPTIONS) as store:
        assert {d.id: d for d in store} == saved_docs
        check_index_matches_db(store)
        check_answers(store, saved_docs, np.random.default_rng(1))
        store.add(W.make_item(np.random.default_rng(5), "later", 70, 0))
        store.checkpoint()
    with pm.open(path, schema=Item, **OPTIONS) as store:
        assert store.count() == len(saved_docs) + 1
        check_index_matches_db(store)


def test_checkpoint_ahead_of_the_database_is_not_trusted(tmp_path, saved_docs):
    """A checkpoint newer than the database (its last commits lost, say by a power cut under
    durability="normal", or a database restored from a backup) must not be used: its vectors
    belong to documents the database does not have (fix: EmbeddedStore._load_index)."""
    path = tmp_path / "store"
    items = list(saved_docs.values())
    with pm.open(path, schema=Item, **OPTIONS) as store:
        store.add(items[:20])
    backup = (path / db.DB_NAME).read_bytes()
    with pm.open(path, schema=Item, **OPTIONS) as store:
        store.delete([d.id for d in items[:5]])
        store.add(items[20:])
        store.checkpoint()
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (path / (db.DB_NAME + suffix)).unlink()
    (path / db.DB_NAME).write_bytes(backup)
    with pm.open(path, schema=Item, **OPTIONS) as store:
        expected = {d.id: d for d in items[:20]}
        assert {d.id: d for d in store} == expected
        check_index_matches_db(store)
        store.add(items[20:25])
        expected.update({d.id: d for d in items[20:25]})
        check_index_matches_db(store)
        check_answers(store, expected, np.random.default_rng(2))


def test_reload_after_deleting_the_highest_slots_can_grow_again(tmp_path):
    """An index loaded from a checkpoint whose last slots were freed must still grow when new
    vectors arrive (fix: AnnIndex.load sizes its arrays to the graph's capacity)."""
    path = tmp_path / "store"
    rng = np.random.default_rng(0)
    with pm.open(path, schema=Item, **OPTIONS) as store:
        store.add([Item(id=f"d{i}", title="t", batch=0, tag="red", embedding=rng.normal(size=8)) for i in range(3000)])
        store.search(np.ones(8), field="embedding", exact=False)
        store.delete([f"d{i}" for i in range(500, 3000)])
        store.checkpoint()
    with pm.open(path, schema=Item, **OPTIONS) as store:
        new = [Item(id=f"n{i}", title="t", batch=1, tag="red", embedding=rng.normal(size=8)) for i in range(3000)]
        store.search(np.ones(8), field="embedding", exact=False)
        store.add(new[:1000])  # reuses freed slots up to 1500: the arrays grow, the graph must not shrink
        store.add(new[1000:])
        assert store.count() == 3500
        for doc in new[::500]:
            assert store.search(doc.embedding, field="embedding", limit=1, exact=False)[0].id == doc.id
        check_index_matches_db(store)


def test_index_updates_mixed_with_inserts_keep_every_vector_reachable():
    """Overwriting slots already in the HNSW graph in the same batch as new inserts (what
    catch-up and upserts do) leaves every vector findable by ANN. hnswlib updates run in
    parallel with inserts orphan nodes now and then (fix: AnnIndex.set updates on one thread)."""
    from polymodal.store.embedded.ann import AnnIndex

    lost = []
    for trial in range(300):
        rng = np.random.default_rng(trial)
        index = AnnIndex(8, "cosine")
        index.set(np.arange(30), rng.normal(size=(30, 8)), [0] * 30, [""] * 30)
        for start in range(30, 102, 6):
            slots = np.concatenate([rng.choice(start, size=6, replace=False), np.arange(start, start + 6)])
            index.set(slots, rng.normal(size=(12, 8)), [0] * 12, [""] * 12)
        slots = np.flatnonzero(index.valid)
        found = index.search(index.matrix[slots], 1, exact=False, ef=400)
        lost += [(trial, int(s)) for s, (top, _) in zip(slots, found, strict=True) if top[0] != s]
    assert lost == []


class Loose(pm.Doc):
    title: str = ""
    embedding: pm.Vector | None = None


def test_checkpoint_before_the_first_vector_of_an_unsized_field(tmp_path):
    """A field whose dimension is fixed by its first vector may be checkpointed (or searched)
    before it has one; later vectors must still be added, searched and reloaded, and the add
    that commits them must not raise (fix: indexes built for an unknown dimension are dropped)."""
    path = tmp_path / "store"
    with pm.open(path, schema=Loose) as store:
        store.add(Loose(id="a", title="no vector"))
        assert store.search(np.ones(5)) == []
        store.checkpoint()
        store.add(Loose(id="b", embedding=np.arange(1, 6)))
        assert store.search(np.arange(1, 6), exact=False)[0].id == "b"
        check_index_matches_db(store)
    with pm.open(path) as store:
        assert store.search(np.arange(1, 6), exact=False)[0].id == "b"
        with pytest.raises(pm.SchemaError, match="dimension 5"):
            store.add(Loose(id="c", embedding=np.ones(3)))


# -- opening ---------------------------------------------------------------------------------
def test_open_non_empty_directory_that_is_not_a_store(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(pm.ConfigError, match="not a polymodal store"):
        pm.open(tmp_path, schema=Item)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written there


def test_open_a_file_as_a_store(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(pm.ConfigError, match="not a directory"):
        pm.open(tmp_path / "file", schema=Item)


def test_open_missing_store_without_schema(tmp_path):
    with pytest.raises(pm.ConfigError, match="schema="):
        pm.open(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_open_with_bad_options_creates_nothing(tmp_path):
    with pytest.raises(pm.ConfigError, match="hnsw_m"):
        pm.open(tmp_path / "s", schema=Item, hnsw_m=1)
    assert not (tmp_path / "s").exists()
    with pm.open(tmp_path / "s", schema=Item) as store:
        assert store.count() == 0


def test_open_newer_format_version(tmp_path):
    path = tmp_path / "store"
    pm.open(path, schema=Item).close()
    with sqlite3.connect(path / db.DB_NAME) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(db.FORMAT_VERSION + 1),))
    conn.close()
    for schema in (Item, None):
        with pytest.raises(pm.ConfigError, match=r"format version 2.*upgrade polymodal"):
            pm.open(path, schema=schema)


def test_open_garbage_database(tmp_path):
    path = tmp_path / "store"
    path.mkdir()
    (path / db.DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(pm.PolymodalError, match=r"store\.db"):
        pm.open(path, schema=Item)
    assert (path / db.DB_NAME).read_bytes() == b"this is not sqlite" * 100


def test_open_another_applications_sqlite_database(tmp_path):
    """A store.db made by something else is not taken over."""
    path = tmp_path / "store"
    path.mkdir()
    with sqlite3.connect(path / db.DB_NAME) as conn:
        conn.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT)")
    conn.close()
    with pytest.raises(pm.ConfigError, match="not a polymodal store"):
        pm.open(path, schema=Item)
    with sqlite3.connect(path / db.DB_NAME) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert tables == {"accounts"}


def test_reopen_with_a_different_schema(tmp_path):
    path = tmp_path / "store"
    pm.open(path, schema=Item).close()
    with pytest.raises(pm.SchemaError, match="does not match"):
        pm.open(path, schema=Loose)
    with pm.open(path) as store:  # the stored schema still opens it
        assert store.count() == 0


@pytest.mark.parametrize(("option", "value"), [("metric", "l2"), ("hnsw_m", 32), ("text_fields", ("title",))])
def test_reopen_with_a_structural_option_changed(tmp_path, option, value):
    path = tmp_path / "store"
    pm.open(path, schema=Item, metric="cosine").close()
    with pytest.raises(pm.ConfigError, match=option):
        pm.open(path, schema=Item, **{option: value})
    with pm.open(path, schema=Item, ef_search=5) as store:  # search-time options may change
        assert store.config.ef_search == 5
        assert store.config.metric == "cosine"


def test_vectors_survive_restarts(tmp_path, saved_docs):
    """Close and reopen several times, with and without checkpoints in between."""
    path = tmp_path / "store"
    items = list(saved_docs.values())
    for i in range(3):
        with pm.open(path, schema=Item, **OPTIONS) as store:
            store.add(items[i * 10 : (i + 1) * 10])
            if i == 1:
                store.checkpoint()
    expected = {d.id: d for d in items[:30]}
    with pm.open(path, schema=Item, **OPTIONS) as store:
        assert {d.id: d for d in store} == expected
        check_index_matches_db(store)
        check_answers(store, expected, np.random.default_rng(3))
