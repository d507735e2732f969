"""Documents to rows and back: JSON bodies, vector rows (scored and raw), plain scanned values.

Vectors travel in pgvector's binary format (``vector_send``/``vector_recv``: int16 dimension,
int16 unused, big-endian float32), both as query parameters and in ``COPY``: printing 512
floats as text and parsing them back costs more than the HNSW search itself.
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from polymodal.doc.base import Doc
from polymodal.store.base import VectorField
from polymodal.store.flatten import Flat, set_at
from polymodal.store.pgvector.ddl import Names

if TYPE_CHECKING:
    import psycopg

__all__ = ["adapt", "body_json", "copy_vectors", "load_docs", "plain", "scan_page", "vector_rows"]

VectorRow = tuple[int, str, np.ndarray, bytes]  # (batch index, position, vector as scored, raw float32)
_ADAPTED: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()  # connection -> vector oid
_DUMPERS: dict[int, type] = {}
#: connection -> the (ef_search, iterative scan) its session is set to
SESSION: weakref.WeakKeyDictionary[Any, tuple[int, bool | None]] = weakref.WeakKeyDictionary()
_INT8, _TEXT, _BYTEA = 20, 25, 17


def _dumper(oid: int) -> type:
    """A binary dumper of numpy arrays as pgvector ``vector`` values (one class per type oid)."""
    if oid not in _DUMPERS:
        from psycopg.adapt import Dumper
        from psycopg.pq import Format

        class VectorDumper(Dumper):
            format = Format.BINARY

            def dump(self, obj: Any) -> bytes:
                a = np.asarray(obj, dtype=">f4")
                return struct.pack(">HH", a.shape[0], 0) + a.tobytes()

        VectorDumper.oid = oid
        _DUMPERS[oid] = VectorDumper
    return _DUMPERS[oid]


def adapt(conn: psycopg.Connection[Any]) -> int:
    """Send numpy arrays on ``conn`` as binary pgvector values (``%b`` parameters, binary COPY);
    the ``vector`` type's oid. Once per connection (the extension must exist)."""
    oid = _ADAPTED.get(conn)
    if oid is None:
        row = conn.execute("SELECT to_regtype('vector')::oid").fetchone()
        if row is None or row[0] is None:
            from polymodal.errors import BackendError

            raise BackendError("the pgvector extension is not installed in this database", backend="pgvector")
        oid = int(row[0])
        conn.adapters.register_dumper(np.ndarray, _dumper(oid))
        _ADAPTED[conn] = oid
    return oid


def copy_vectors(conn: psycopg.Connection[Any], table: str, rows: Sequence[tuple[int, str, np.ndarray, bytes]]) -> None:
    """``(rid, pos, vec, raw)`` rows into a field's table by binary ``COPY``."""
    oid = adapt(conn)
    with conn.cursor() as cur, cur.copy(f"COPY {table} (rid, pos, vec, raw) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([_INT8, _TEXT, oid, _BYTEA])
        for row in rows:
            copy.write_row(row)


def body_json(body: dict[str, Any]) -> str:
    """A body as JSON; ints past 64 bits inside plain fields are written as decimal text."""
    try:
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    except TypeError:
        from polymodal.io.json import _big_ints_as_text

        return orjson.dumps(_big_ints_as_text(body), option=orjson.OPT_SERIALIZE_NUMPY).decode()


def vector_rows(
    flats: Sequence[Flat], fields: dict[str, VectorField], field_ids: dict[str, int]
) -> dict[int, list[VectorRow]]:
    """Per field id, the rows to COPY: cosine fields are scored at unit length (normalised in
    float64: float32 squares overflow near 1e19); ``raw`` keeps the vector as given."""
    out: dict[int, list[VectorRow]] = {}
    for i, flat in enumerate(flats):
        for path, pos, vec in flat.vectors:
            raw = np.ascontiguousarray(vec, dtype="<f4")
            scored = raw
            if fields[path].metric == "cosine":
                norm = float(np.linalg.norm(raw.astype(np.float64)))
                scored = (raw.astype(np.float64) / (norm or 1.0)).astype(np.float32)
            out.setdefault(field_ids[path], []).append((i, ".".join(map(str, pos)), scored, raw.tobytes()))
    return out


def load_docs(
    conn: psycopg.Connection[Any],
    names: Names,
    doc_type: type[Doc],
    fields: dict[str, VectorField],
    tables: dict[str, int],
    rids: Sequence[int],
) -> dict[int, Any]:
    """Documents by rid, with their vectors (from the field ``tables`` that exist) put back."""
    if not rids:
        return {}
    rid_list = list(rids)
    with conn.pipeline():  # bodies and vectors in one round trip
        cur = conn.execute(f"SELECT rid, body FROM {names.docs} WHERE rid = ANY(%s)", [rid_list])
        vec_cur = None
        if tables:
            union = " UNION ALL ".join(
                f"SELECT {fid} AS f, rid, pos, raw FROM {names.vectors(fid)} WHERE rid = ANY(%s)"
                for fid in tables.values()
            )
            vec_cur = conn.execute(union, [rid_list] * len(tables))
        rows = cur.fetchall()
        vec_rows = vec_cur.fetchall() if vec_cur is not None else []
    bodies: dict[int, dict[str, Any]] = {int(r): b for r, b in rows}
    if vec_rows and bodies:
        paths = {fid: path for path, fid in tables.items()}
        for fid, rid, pos, raw in vec_rows:
            if int(rid) not in bodies:
                continue
            path = paths[fid]
            positions = tuple(int(p) for p in pos.split(".")) if pos else ()
            vector = np.frombuffer(raw, dtype="<f4").copy()
            set_at(bodies[int(rid)], path, fields[path].nesting, positions, vector)
    return dict(zip(bodies, doc_type.from_dicts(list(bodies.values())), strict=True))


def scan_page(
    conn: psycopg.Connection[Any], *, names: Names, fields: list[str], where: tuple[str, list[Any]], after: int
) -> list[tuple[Any, ...]]:
    """Up to 1,000 rows ``(rid, *fields)`` of top-level plain fields, read from the JSON body,
    for matching documents with rid above ``after``."""
    sql, params = where
    cols = ", ".join("d.id" if f == "id" else "d.body -> %s" for f in fields)
    keys = [f for f in fields if f != "id"]
    return conn.execute(
        f"SELECT d.rid, {cols} FROM {names.docs} d WHERE d.rid > %s AND {sql} ORDER BY d.rid LIMIT 1000",
        [*keys, after, *params],
    ).fetchall()


def plain(scalar: str | None, value: Any) -> Any:
    """A JSON value as the field's Python type (floats may be stored as "NaN", big ints as text)."""
    if value is None:
        return None
    if scalar == "float":
        return float(value)
    if scalar == "int" and isinstance(value, str):
        return int(value)
    return value
