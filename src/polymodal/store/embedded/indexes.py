"""The in-memory vector (ANN) indexes of an embedded store, kept in step with its database.

Each vector field has one :class:`~polymodal.store.embedded.ann.AnnIndex`, loaded from the last
checkpoint (or rebuilt from the database when no checkpoint fits), caught up from the change
log inside each read snapshot, mirrored on this process's own writes, and saved at
checkpoints. Checkpoint files carry their size and CRC in the manifest and get fresh names
each time; the database stays the only source of truth.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.store.base import StoreConfig, VectorField
from polymodal.store.embedded import db
from polymodal.store.embedded.ann import AnnIndex

__all__ = ["VectorIndexes", "drop_manifest_ahead", "read_manifest"]

_MANIFEST = "manifest.json"


class VectorIndexes:
    """The vector indexes of one store, by field id, and the change-log position each is
    current to. The store calls them under its own lock (and, to write, its write lock)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        config: StoreConfig,
        vector_fields: dict[str, VectorField],
        field_paths: dict[int, str],
        dim_of: Callable[[VectorField], int | None],
        snapshot: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._conn = conn
        self.path = path
        self.config = config
        self.vector_fields = vector_fields
        self._field_paths = field_paths
        self._dim_of = dim_of  # the store's: a field's dimension, once its first vector fixed it
        self._snapshot = snapshot  # the store's read transaction (reentrant)
        self._indexes: dict[int, AnnIndex] = {}
        self._applied: dict[int, int] = {}
        # fid -> (the connection's data_version, the -wal file's stamp) read before the index
        # was last caught up: while either reads the same, no other connection committed
        # since, so the index is current without a read transaction (this connection's writes
        # are mirrored, see apply_local; see EmbeddedStore._current_index)
        self.fresh: dict[int, tuple[int, tuple[int, int, int] | None]] = {}
        self.dirty = False  # written since the last checkpoint

    def index(self, fid: int) -> AnnIndex:
        """The field's index, loaded and caught up with every change committed before this
        read snapshot."""
        with self._snapshot():
            index = self._indexes.get(fid)
            # Fast path (one SELECT, most queries): nothing was logged since this index was
            # current, so neither a catch-up nor a reload is due. Every vector change bumps the
            # sequence; a checkpoint only trims the log up to it. A field whose dimension is not
            # in the schema must have vectors, so that its dimension is fixed and the index's.
            seq = db.last_seq(self._conn)
            if (
                index is not None
                and self._applied.get(fid) == seq
                and (index.count > 0 or self.vector_fields[self._field_paths[fid]].dim == index.dim)
            ):
                return index
            trimmed = int(db.get_meta(self._conn, "trimmed_upto", 0))
            dim = self._dim_of(self.vector_fields[self._field_paths[fid]])
            if index is None or self._applied[fid] < trimmed or (dim is not None and index.dim != dim):
                index = self._load_index(fid, trimmed, dim)
            self._catch_up(fid, index)
            return index

    def _load_index(self, fid: int, trimmed: int, dim: int | None) -> AnnIndex:
        """Load the field's checkpoint, or rebuild from the database when there is none that
        fits: missing, damaged, of another dimension or metric, or not between the trimmed
        log and the snapshot's last change (so the log replays exactly what it lacks)."""
        manifest = read_manifest(self.path)
        entry = manifest.get("fields", {}).get(str(fid)) if manifest else None
        index: AnnIndex | None = None
        seq = int(manifest.get("seq", -1))
        if isinstance(entry, dict) and trimmed <= seq <= db.last_seq(self._conn):
            try:
                index = AnnIndex.load(self.path / "ann", entry)
            except Exception:  # noqa: BLE001 - whatever is wrong with a cache, rebuild it
                index = None
            vf = self.vector_fields[self._field_paths[fid]]
            if index is not None and (index.dim != dim or index.metric != vf.metric):
                index = None
        if index is None:
            index = self._build_index(fid)
        else:
            self._applied[fid] = seq
            lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
            # ids are not in the checkpoint: a slot's document is the same now unless its vector
            # changed since, and those slots are replayed from the log right after this
            rows = self._conn.execute(
                "SELECT v.key, d.id FROM vectors v JOIN docs d ON d.rid = v.rid WHERE v.key >= ? AND v.key < ?",
                (lo, hi),
            ).fetchall()
            if rows:
                slots = np.fromiter((k - lo for k, _ in rows), dtype=np.int64, count=len(rows))
                keep = slots < index.capacity
                index.ids[slots[keep]] = np.array([i for _, i in rows], dtype=object)[keep]
        self._indexes[fid] = index
        return index

    def _build_index(self, fid: int) -> AnnIndex:
        vf = self.vector_fields[self._field_paths[fid]]
        dim = self._dim_of(vf) or 1
        lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
        with self._snapshot():
            seq = db.last_seq(self._conn)
            count = self._conn.execute("SELECT COUNT(*) FROM vectors WHERE key >= ? AND key < ?", (lo, hi)).fetchone()[
                0
            ]
            index = AnnIndex(
                dim,
                vf.metric,
                m=self.config.hnsw_m,
                ef_construction=self.config.hnsw_ef_construction,
                capacity=max(1024, count),
            )
            cur = self._conn.execute(
                "SELECT v.key, v.rid, v.pos, v.vec, d.id FROM vectors v JOIN docs d ON d.rid = v.rid "
                "WHERE v.key >= ? AND v.key < ? ORDER BY v.key",
                (lo, hi),
            )
            while batch := cur.fetchmany(20_000):
                _set_rows(index, batch, lo, dim)
        self._applied[fid] = seq
        return index

    def _catch_up(self, fid: int, index: AnnIndex) -> None:
        with self._snapshot():  # one snapshot for the sequence number and the rows
            seq = db.last_seq(self._conn)
            after = self._applied[fid]
            if seq == after:
                return
            lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
            present = self._conn.execute(
                "SELECT v.key, v.rid, v.pos, v.vec, d.id FROM vectors v JOIN (SELECT DISTINCT key FROM changes "
                "WHERE seq > ? AND key >= ? AND key < ?) c ON v.key = c.key JOIN docs d ON d.rid = v.rid",
                (after, lo, hi),
            ).fetchall()
            absent = self._conn.execute(
                "SELECT DISTINCT c.key FROM changes c LEFT JOIN vectors v ON v.key = c.key "
                "WHERE c.seq > ? AND c.key >= ? AND c.key < ? AND v.key IS NULL",
                (after, lo, hi),
            ).fetchall()
        index.remove(np.array([k - lo for (k,) in absent], dtype=np.int64))
        _set_rows(index, present, lo, index.dim)
        self._applied[fid] = seq

    def apply_local(
        self,
        freed: list[tuple[int, int]],
        written: list[tuple[int, int, str, np.ndarray]],
        before: int,
        seq: int,
        ids: dict[int, str] | None = None,
    ) -> None:
        """Mirror a committed write into the loaded indexes (when they were current).

        The write is committed when this runs, so it must not fail: an index that cannot take
        the change (one built before its field's dimension was known, say) is dropped and
        rebuilt from the database on next use. ``ids`` maps the written rows' row ids to
        document ids.
        """
        for fid, index in list(self._indexes.items()):
            if self._applied.get(fid) != before:
                self.fresh.pop(fid, None)
                continue  # behind already: the next sync replays the log instead
            lo = fid << db.FIELD_SHIFT
            mask = (1 << db.FIELD_SHIFT) - 1
            try:
                gone = np.array([k & mask for k, _ in freed if k >> db.FIELD_SHIFT == fid], dtype=np.int64)
                index.remove(gone)
                mine = [w for w in written if w[0] >> db.FIELD_SHIFT == fid]
                if mine:
                    slots = np.array([k - lo for k, _, _, _ in mine], dtype=np.int64)
                    owners = [w[1] for w in mine]
                    index.set(
                        slots,
                        np.stack([w[3] for w in mine]),
                        owners,
                        [w[2] for w in mine],
                        None if ids is None else [ids[r] for r in owners],
                    )
            except Exception:  # noqa: BLE001 - any failure: forget the index, the database has it all
                del self._indexes[fid]
                self._applied.pop(fid, None)
                self.fresh.pop(fid, None)
                continue
            self._applied[fid] = seq

    def checkpoint(self) -> None:
        """Save every index at the current change-log position, then trim the log (the caller
        holds the write lock)."""
        ann_dir = self.path / "ann"
        ann_dir.mkdir(exist_ok=True)
        seq = db.last_seq(self._conn)
        entries = {}
        for fid, path in self._field_paths.items():
            if self._dim_of(self.vector_fields[path]) is None:
                continue  # no vector yet: nothing to save, and its dimension is still open
            index = self.index(fid)
            # a fresh name per checkpoint: never rewrite the files the current manifest names
            entries[str(fid)] = index.save(ann_dir, f"{fid}-{seq}-{secrets.token_hex(4)}")
        manifest = {"seq": seq, "fields": entries}
        tmp = ann_dir / (_MANIFEST + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(manifest, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, ann_dir / _MANIFEST)
        _fsync_dir(ann_dir)
        with db.transaction(self._conn):
            self._conn.execute("DELETE FROM changes WHERE seq <= ?", (seq,))
            db.set_meta(self._conn, "trimmed_upto", seq)
        keep = {_MANIFEST} | {name for e in entries.values() for name in e["digests"]}
        for stale in ann_dir.iterdir():
            if stale.name not in keep:
                with contextlib.suppress(OSError):
                    stale.unlink()
        self.dirty = False

    def maybe_checkpoint(self, seq: int) -> None:
        """Checkpoint when the log is long; a failure here (a full disk) must not fail the
        write that triggered it, which is committed: it is reported as a warning."""
        if not self._indexes:
            return  # indexes not loaded here: the next reader (or close) builds them
        backlog = seq - int(read_manifest(self.path).get("seq", 0))
        live = sum(ix.count for ix in self._indexes.values())
        if backlog > max(20_000, live // 4):
            try:
                self.checkpoint()
            except (OSError, sqlite3.Error) as exc:
                warnings.warn(
                    f"polymodal: automatic checkpoint of {self.path} failed: {exc}", RuntimeWarning, stacklevel=4
                )


def read_manifest(path: Path) -> dict[str, Any]:
    """The checkpoint manifest, or {} when it is missing or not one (a cache: never fatal)."""
    try:
        data = json.loads((path / "ann" / _MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not (isinstance(data, dict) and type(data.get("seq")) is int and isinstance(data.get("fields"), dict)):
        return {}
    return data


def drop_manifest_ahead(conn: sqlite3.Connection, path: Path, write_lock: db.WriteLock) -> None:
    """Remove a vector checkpoint that is newer than the database.

    A checkpoint is written only after the changes it holds are committed, so one ahead of
    the database means commits were lost (a power cut under ``durability="normal"``, a
    restored backup): replaying the log from it would skip the new changes that reuse those
    sequence numbers. The manifest is read before the sequence number, so a checkpoint
    made concurrently by another process is never mistaken for one.
    """
    seq = read_manifest(path).get("seq")
    if seq is not None and seq > db.last_seq(conn):
        with write_lock, contextlib.suppress(FileNotFoundError):
            if read_manifest(path).get("seq") == seq:
                (path / "ann" / _MANIFEST).unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_rows(index: AnnIndex, rows: Sequence[tuple[int, int, str, bytes, str]], lo: int, dim: int) -> None:
    """Load ``(key, rid, pos, vec, id)`` database rows into an index."""
    if not rows:
        return
    slots = np.fromiter((r[0] - lo for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.frombuffer(b"".join(r[3] for r in rows), dtype="<f4").reshape(len(rows), dim)
    index.set(slots, vecs, [r[1] for r in rows], [r[2] for r in rows], [r[4] for r in rows])
