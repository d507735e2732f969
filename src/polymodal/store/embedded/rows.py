"""Rows of the embedded store's database: vector slots per field (allocated, freed and reused
across writes), document bodies as JSON and plain values read back from it, and SQL helpers
for long ``IN`` lists and string literals.

A vector's key is its field id shifted left by ``db.FIELD_SHIFT`` plus its slot in that
field's index, so each field's keys form one range.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from polymodal.store.embedded import db

__all__ = ["allocate", "free_vectors", "write_vectors"]


def free_vectors(conn: sqlite3.Connection, rids: list[int]) -> list[tuple[int, int]]:
    """Delete the vectors of documents being replaced or deleted; return (key, rid)."""
    rows = _select_in(conn, "SELECT key, rid FROM vectors WHERE rid IN ({})", rids)
    if rows:
        keys = [(k,) for k, _ in rows]
        conn.executemany("DELETE FROM vectors WHERE key = ?", keys)
        conn.executemany("INSERT OR IGNORE INTO free_slots(key) VALUES (?)", keys)
    return [(int(k), int(r)) for k, r in rows]


def write_vectors(
    conn: sqlite3.Connection, field_ids: dict[str, int], rids: list[int], flats: list[Any]
) -> list[tuple[int, int, str, np.ndarray]]:
    per_field: dict[int, list[tuple[int, str, np.ndarray]]] = {}
    for rid, flat in zip(rids, flats, strict=True):
        for path, pos, vec in flat.vectors:
            per_field.setdefault(field_ids[path], []).append((rid, ".".join(map(str, pos)), vec))
    written: list[tuple[int, int, str, np.ndarray]] = []
    rows = []
    for fid, items in per_field.items():
        keys = allocate(conn, fid, len(items))
        for key, (rid, pos, vec) in zip(keys, items, strict=True):
            rows.append((key, rid, pos, np.ascontiguousarray(vec, dtype="<f4").tobytes()))
            written.append((key, rid, pos, vec))
    conn.executemany("INSERT INTO vectors(key, rid, pos, vec) VALUES (?, ?, ?, ?)", rows)
    return written


def allocate(conn: sqlite3.Connection, fid: int, n: int) -> list[int]:
    lo, hi = fid << db.FIELD_SHIFT, (fid + 1) << db.FIELD_SHIFT
    reuse = [
        k
        for (k,) in conn.execute(
            "SELECT key FROM free_slots WHERE key >= ? AND key < ? ORDER BY key LIMIT ?", (lo, hi, n)
        )
    ]
    if reuse:
        conn.executemany("DELETE FROM free_slots WHERE key = ?", [(k,) for k in reuse])
    start = int(db.get_meta(conn, f"next_slot:{fid}", 0))
    extra = n - len(reuse)
    if extra:
        db.set_meta(conn, f"next_slot:{fid}", start + extra)
    return reuse + [lo + start + i for i in range(extra)]


def _select_in(conn: sqlite3.Connection, sql: str, values: Sequence[Any], chunk: int = 900) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        out.extend(conn.execute(sql.format(",".join("?" * len(part))), part).fetchall())
    return out


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _body_json(body: dict[str, Any]) -> str:
    """A document body as JSON; ints beyond 64 bits (inside plain dict/list fields) are written
    as decimal text, which validation turns back into ints."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        from polymodal.io.json import _big_ints_as_text

        return orjson.dumps(_big_ints_as_text(body), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _plain(scalar: str | None, value: Any) -> Any:
    """A JSON value as the field's Python type (SQLite gives 1/0 for booleans, text for NaN)."""
    if value is None:
        return None
    if scalar == "bool":
        return bool(value)
    if scalar == "float":
        return float(value)
    if scalar == "int" and isinstance(value, str):
        return int(value)
    return value
