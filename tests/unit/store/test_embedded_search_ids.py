"""The embedded store's ``search_ids`` fast path: it reads no row, so what it keeps in memory
(each slot's document id, and whether the index is current) must follow every change."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import polymodal as pm
from polymodal.store.embedded import db


class Item(pm.Doc):
    title: str
    embedding: pm.Vector[4] | None = None


def unit(i: int) -> np.ndarray:
    v = np.zeros(4, np.float32)
    v[i] = 1.0
    return v


@pytest.fixture
def path(tmp_path):
    with pm.open(tmp_path / "s", schema=Item) as s:
        s.add([Item(id=f"d{i}", title=f"t{i}", embedding=unit(i % 4) + 0.01 * i) for i in range(40)])
    return tmp_path / "s"


def ids_of(store, q, limit=5):
    return [i for i, _ in store.search_ids(q, field="embedding", limit=limit, exact=False)]


def test_another_handles_writes_show_at_once(path):
    """A write through another connection (another process, or another handle here) is seen
    by the next search_ids: its data_version check catches the index up."""
    with pm.open(path) as reader, pm.open(path) as writer:
        q = np.array([1, 0.5, 0, 0], np.float32)  # no stored vector points this way
        assert ids_of(reader, q)[0] != "fresh"
        writer.add(Item(id="fresh", title="x", embedding=q * 5))
        assert ids_of(reader, q)[0] == "fresh"
        writer.add(Item(id="fresh", title="x", embedding=unit(1) * 5))  # moved away
        assert "fresh" not in ids_of(reader, q, 10)
        writer.delete(["fresh"])
        assert "fresh" not in ids_of(reader, unit(1), 40)
        assert ids_of(reader, unit(2), 40) == [h.id for h in reader.search(unit(2), field="embedding", limit=40)]


def test_writes_from_another_process_show(path):
    code = textwrap.dedent(
        f"""
        import polymodal as pm
        with pm.open({str(path)!r}) as s:  # the stored schema
            s.add([{{"id": "other-process", "title": "x", "embedding": [0, 0.3, 9, 0]}}])
            s.delete(["d2"])
        """
    )
    with pm.open(path) as reader:
        q = np.array([0, 0.3, 9, 0], np.float32)
        assert "d2" in ids_of(reader, q, 40)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        got = ids_of(reader, q, 40)
        assert got[0] == "other-process" and "d2" not in got


def test_ids_survive_a_checkpoint_and_reopen(path):
    """Ids are not saved with the checkpoint: reopening fills them from the database, and a
    change made after the checkpoint replays over them."""
    with pm.open(path) as s:
        s.checkpoint()
        s.add(Item(id="after", title="x", embedding=np.array([0, 0, 0.2, 7], np.float32)))
    with pm.open(path) as s:
        index = s._current_index(s._field_ids["embedding"])
        assert all(index.ids[index.valid])  # every live slot knows its document
        assert ids_of(s, np.array([0, 0, 0.2, 7], np.float32))[0] == "after"
        assert sorted(ids_of(s, unit(0), 100)) == sorted(h.id for h in s.search(unit(0), field="embedding", limit=100))


def test_unknown_ids_fall_back_to_the_database(path):
    with pm.open(path) as s:
        want = s.search_ids(unit(1), field="embedding", limit=5)
        index = s._current_index(s._field_ids["embedding"])
        index.ids[:] = None  # as if an index came without them: the answer must not change
        assert s.search_ids(unit(1), field="embedding", limit=5) == want


def test_a_closed_store_refuses(path):
    s = pm.open(path)
    s.close()
    with pytest.raises(pm.ConfigError, match="closed"):
        s.search_ids(unit(0), field="embedding")


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_hits_carry_the_vectors_as_stored(tmp_path, metric):
    """With one vector field, a search takes each hit's vector from the index's matrix (no
    second read): it must be the stored vector bit for bit, however large or small."""
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(30, 4)).astype(np.float32)
    vecs[0] = [3e38, -3e38, 1e-40, 0]  # near float32's limits (products overflow float32)
    vecs[1] = 0  # a zero vector
    vecs[2] *= 1e-30
    with pm.open(tmp_path / "s", schema=Item, metric=metric) as s:
        s.add([Item(id=f"d{i}", title="t", embedding=v) for i, v in enumerate(vecs)])
        for exact in (True, False):
            for q in (vecs[0], vecs[3], np.ones(4, np.float32)):
                hits = s.search(q, field="embedding", limit=30, exact=exact)
                assert len(hits) == 30
                if metric == "cosine":  # ip and l2 of such vectors are genuinely past float32's range
                    assert all(np.isfinite(h.score) for h in hits)
                for h in hits:
                    assert h.doc.embedding.tobytes() == vecs[int(h.id[1:])].tobytes()
                assert [i for i, _ in s.search_ids(q, field="embedding", limit=30, exact=exact)] == [h.id for h in hits]
        top = s.search(vecs[0], field="embedding", limit=1, exact=True)[0]
        assert top.id == "d0"
        if metric == "cosine":
            assert top.score == pytest.approx(1.0, abs=1e-6)


def test_a_checkpoint_of_the_old_layout_is_rebuilt(path):
    """Checkpoints written before the matrix held vectors as stored (normalised cosine vectors,
    no ``matrix_raw`` in the manifest) are ignored and the index rebuilt from the database."""
    import json

    from polymodal.store.embedded.ann import _file_digest

    with pm.open(path) as s:
        s.checkpoint()
        stored = {d.id: d for d in s}
    manifest = path / "ann" / "manifest.json"
    data = json.loads(manifest.read_text())
    for entry in data["fields"].values():
        del entry["matrix_raw"]
        matrix = path / "ann" / entry["matrix"]
        old = np.load(matrix)
        norms = np.linalg.norm(old, axis=1, keepdims=True)
        np.save(matrix, (old / np.where(norms == 0, 1, norms)).astype(np.float32))  # what it used to hold
        entry["digests"][matrix.name] = _file_digest(matrix)
    manifest.write_text(json.dumps(data))
    with pm.open(path) as s:
        hits = s.search(unit(1) + 0.2, field="embedding", limit=40, exact=False)
        assert len(hits) == 40 and all(h.doc == stored[h.id] for h in hits)


# -- the -wal stamp: knowing that nobody committed, without a statement ---------------------------
def _settle(path) -> None:
    """Age the -wal file's time past the settle window, as if the last write were long ago."""
    wal = path / "store.db-wal"
    old = wal.stat().st_mtime_ns - 2 * db.WAL_SETTLE_NS
    os.utime(wal, ns=(old, old))


def test_wal_stamp_vouches_only_for_a_settled_file(tmp_path):
    wal = tmp_path / "x-wal"
    assert db.wal_stamp(str(wal)) is None  # no file
    wal.write_bytes(b"x")
    assert db.wal_stamp(str(wal)) is None  # written just now: a later write could share its time
    _age = wal.stat().st_mtime_ns - 2 * db.WAL_SETTLE_NS
    os.utime(wal, ns=(_age, _age))
    stamp = db.wal_stamp(str(wal))
    assert stamp == (wal.stat().st_ino, 1, _age)
    with open(wal, "ab") as fh:
        fh.write(b"y")
    assert db.wal_stamp(str(wal)) is None  # written again: not settled, and not the old stamp


def test_a_settled_index_runs_no_statement_and_still_sees_other_writers(path):
    with pm.open(path) as reader, pm.open(path) as writer:
        q = np.array([1, 0.5, 0, 0], np.float32)
        ids_of(reader, q)
        _settle(path)
        seen: list[str] = []
        reader._conn.set_trace_callback(seen.append)
        ids_of(reader, q)  # takes the stamp
        seen.clear()
        assert ids_of(reader, q)[0] != "fresh"
        assert seen == []  # current, known from one stat
        writer.add(Item(id="fresh", title="x", embedding=q * 5))
        assert ids_of(reader, q)[0] == "fresh"
        assert "PRAGMA data_version" in seen
        hits = reader.search(q, field="embedding", limit=3, exact=False)
        assert hits[0].id == "fresh" and hits[0].doc.title == "x"


def test_a_commit_during_a_search_is_not_mixed_into_its_hits(path, monkeypatch):
    """search() ranks in memory, then reads the bodies in one SELECT with no read transaction.
    A commit landing between the two must not give the ranking's rows other documents' bodies
    (or new ones): the search sees it and answers again in a snapshot."""
    from polymodal.store.embedded import store as store_mod

    with pm.open(path) as reader, pm.open(path) as writer:
        q = unit(2)
        before = reader.search(q, field="embedding", limit=3, exact=False)
        top = before[0]
        real = store_mod._select_in
        fired = []

        def commit_first(conn, sql, values, *a):
            if sql.startswith("SELECT rid, body") and not fired:
                fired.append(True)
                writer.delete([top.id])  # frees the row; a new document may take its place
                writer.add(Item(id="newcomer", title="new", embedding=unit(1)))
            return real(conn, sql, values, *a)

        monkeypatch.setattr(store_mod, "_select_in", commit_first)
        hits = reader.search(q, field="embedding", limit=3, exact=False)
        assert fired
        assert top.id not in [h.id for h in hits] and "newcomer" not in [h.id for h in hits]
        for h in hits:
            assert h.doc.id == h.id and h.doc.title == f"t{h.id[1:]}"
        monkeypatch.setattr(store_mod, "_select_in", real)
        assert [h.id for h in hits] == [h.id for h in reader.search(q, field="embedding", limit=3, exact=False)]
