"""The embedded store's SQLite database: tables, settings, and the cross-process write lock.

Tables::

    meta(key, value)                     JSON settings: schema, config, field ids, slot counters
    docs(rid, id UNIQUE, body)           one row per document; body is JSON without vectors
    vectors(key, rid, pos, vec)          key = field_id << 40 | slot; vec is raw float32
    free_slots(key)                      slots freed by deletes, reused by later inserts
    changes(seq AUTOINCREMENT, key)      every vector slot written or freed, for index catch-up
    fts(text, field, pos)                FTS5, rowid = rid << 20 | k

The database is the source of truth; vector indexes are caches rebuilt from ``changes``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from polymodal.errors import BackendError
from polymodal.store import fts

__all__ = ["DB_NAME", "FIELD_SHIFT", "WriteLock", "connect", "create_tables", "get_meta", "set_meta", "wal_stamp"]

DB_NAME = "store.db"
FIELD_SHIFT = 40
FORMAT_VERSION = 1


def connect(path: Path, *, durability: str = "normal", readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with a generous busy timeout (writers queue, never fail fast)."""
    try:
        conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'full' else 'NORMAL'}")
        conn.execute("PRAGMA cache_size = -65536")
        conn.execute("PRAGMA temp_store = MEMORY")
    except sqlite3.DatabaseError as exc:
        raise BackendError(f"cannot open the store database {path}: {exc}", backend="embedded") from exc
    return conn


def create_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(
        """
        CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS docs(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS vectors(key INTEGER PRIMARY KEY, rid INTEGER NOT NULL, pos TEXT NOT NULL,
                                           vec BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS vectors_rid ON vectors(rid);
        CREATE TABLE IF NOT EXISTS free_slots(key INTEGER PRIMARY KEY);
        CREATE TABLE IF NOT EXISTS changes(seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL);
        """
    )
    fts.create_fts(conn)


def get_meta(conn: sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else orjson.loads(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, orjson.dumps(value).decode()),
    )


# A ``-wal`` file's stamp is trusted only once its modification time is this far in the past:
# a file system stamps writes with a coarse clock (a few ms on Linux, 2 s on FAT), so a commit
# in the same tick as an earlier write can leave size and time as they were.
WAL_SETTLE_NS = 3_000_000_000


def wal_stamp(wal_path: str) -> tuple[int, int, int] | None:
    """(inode, size, modification time) of a database's ``-wal`` file, or None when it cannot
    vouch for anything: missing, or written within the last :data:`WAL_SETTLE_NS`.

    Every commit in WAL mode writes that file, so while a connection is open (which keeps the
    file in place) an unchanged settled stamp means nobody committed since it was taken. One
    ``stat`` is about half the cost of ``PRAGMA data_version``, which the search hot path
    falls back to whenever the stamp is None or has moved. The settle rule is git's answer
    to "racily clean" index entries: a stamp taken in the same clock tick as a write cannot
    tell that write from a later one.
    """
    try:
        st = os.stat(wal_path)
    except OSError:
        return None
    if time.time_ns() - st.st_mtime_ns < WAL_SETTLE_NS:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def last_seq(conn: sqlite3.Connection) -> int:
    """The newest change sequence number ever assigned (kept even when the log is trimmed)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
    return int(row[0]) if row else 0


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class WriteLock:
    """An exclusive, cross-process lock on the store directory (``flock`` on ``write.lock``).

    Held only for the duration of one write (or checkpoint), so several processes may write
    in turn; a second writer waits up to ``timeout`` seconds, then gets a clear error.
    """

    def __init__(self, directory: Path, timeout: float = 60.0) -> None:
        self.path = directory / "write.lock"
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0

    def __enter__(self) -> WriteLock:
        if self._depth:
            self._depth += 1
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise BackendError(
                        f"another process{holder} is writing to {self.path.parent}; waited {self.timeout:.0f} s. "
                        "Try again when it is done.",
                        backend="embedded",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        self._depth = 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
