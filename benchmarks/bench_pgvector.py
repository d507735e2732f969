# ruff: noqa: N803, N806, E501
"""polymodal's PostgreSQL + pgvector store against raw pgvector SQL and the embedded store.

Side by side, in one process and one run, on the dataset of ``bench_store.py`` (imported from
it: 100,000 x 512 real all-MiniLM-L6-v2 embeddings of sentences found on this machine, mapped to
512-d by a fixed orthonormal projection; 1,000 held-out queries; ``category = i % 100`` after a
seeded shuffle) and the same HNSW parameters (M=16, ef_construction=200, cosine):

* raw pgvector SQL with psycopg, written the way pgvector's own Python package does it: a table
  ``(id, text, category, vec vector(512))``, vectors sent and received in pgvector's binary
  format, ingest by binary ``COPY`` in batches of 10,000 then ``CREATE INDEX ... USING hnsw
  (vec vector_cosine_ops)``; search ``SET hnsw.ef_search``, ``ORDER BY vec <=> %s LIMIT 10``;
* polymodal's pgvector store (``polymodal.open("postgresql://...", schema=...)``): ``add`` in
  batches of 10,000, then ``search`` (hits with their documents) and ``search_ids`` (ids +
  scores, no document read);
* polymodal's embedded store (``bench_store.Polymodal``: ``add`` in 10,000-batches +
  ``checkpoint``), for scale.

Measured: ingest (wall, client CPU, server CPU, rows/s), recall@10 against numpy brute force for
an ef sweep, single-query p50/p99 latency and QPS at the smallest ef reaching recall@10 >= 0.98
and at raw's ef (the overhead at equal work), filtered search at 1% selectivity, polymodal over
raw ratios with PASS/FAIL for "at most 1.3x", and a profile of polymodal's search path (every
SQL round trip timed, cProfile of the Python side).

By default a private PostgreSQL 18 + pgvector server is started in a temporary directory
(``scripts/pgserver.py``) with ``shared_buffers=1GB`` and ``maintenance_work_mem=1GB`` (so HNSW
builds run in memory), and its CPU time (postmaster and every backend, parallel index workers
included) is read from ``/proc``; ``--pg-url`` uses an existing server as it is configured
(server CPU is then not reported).

    python benchmarks/bench_pgvector.py                 # 100k x 512, writes benchmarks/results/pgvector.md
    python benchmarks/bench_pgvector.py --size 10k      # the first 10,000 documents of the same data (printed only)
    python benchmarks/bench_pgvector.py --quick         # smoke run: 20,000 synthetic vectors, no files written
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see bench_store.py
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import contextlib
import cProfile
import gc
import platform
import pstats
import re
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_store as bs  # the dataset, ground truth, recall and the embedded-store runner

M, EFC, K, N_CAT, BATCH = bs.M, bs.EFC, bs.K, bs.N_CAT, bs.BATCH
EFS, TARGET_RECALL = bs.EFS, bs.TARGET_RECALL
TARGET_RATIO = 1.3
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
log = bs.log


# -- the server ----------------------------------------------------------------------------------
def _pgserver() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_pgserver", ROOT / "scripts" / "pgserver.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Server:
    """A PostgreSQL server: private (started here, tuned, CPU measured) or given by URL."""

    SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}

    def __init__(self, url: str | None, tmp: Path) -> None:
        import psycopg

        self.datadir: Path | None = None
        if url is None:
            self.datadir = tmp / "pgdata"
            pg = _pgserver()
            url = pg.start(self.datadir)
            with psycopg.connect(url, autocommit=True) as conn:
                for key, value in self.SETTINGS.items():
                    conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
            pg.stop(self.datadir)
            url = pg.start(self.datadir)
        self.url = url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self.version = str(conn.execute("SHOW server_version").fetchone()[0])
            self.pgvector = str(
                conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
            )
            self.settings = {
                k: str(conn.execute(f"SHOW {k}").fetchone()[0])
                for k in (
                    "shared_buffers",
                    "maintenance_work_mem",
                    "work_mem",
                    "max_parallel_maintenance_workers",
                    "synchronous_commit",
                    "jit",
                )
            }

    def postmaster(self) -> psutil.Process | None:
        if self.datadir is None:
            return None
        return psutil.Process(int((self.datadir / "postmaster.pid").read_text().split()[0]))

    def cpu_s(self) -> float | None:
        """CPU seconds of the whole server so far: the postmaster, its reaped children (which
        include finished parallel workers) and its live children."""
        pm = self.postmaster()
        if pm is None:
            return None
        t = pm.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in pm.children():
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total

    def stop(self) -> None:
        if self.datadir is not None:
            _pgserver().stop(self.datadir)


class Clock:
    """Wall, client process CPU and server CPU seconds of a block."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> "Clock":
        self.s0 = self.server.cpu_s()
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0
        s1 = self.server.cpu_s()
        self.server_cpu = None if s1 is None or self.s0 is None else s1 - self.s0


def loadavg() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- pgvector's binary format (what the pgvector Python package registers) ------------------------
def register_vector(conn: Any) -> None:
    """Binary dumper (numpy -> vector) and loader (vector -> numpy) for ``conn``: the wire format
    of pgvector's ``vector_send``/``vector_recv`` (int16 dim, int16 unused, big-endian float32)."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    assert info is not None, "pgvector is not installed in this database"

    class VectorDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: np.ndarray) -> bytes:
            a = np.asarray(obj, dtype=">f4")
            return struct.pack(">HH", a.shape[0], 0) + a.tobytes()

    class VectorLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            dim = struct.unpack_from(">H", data)[0]
            return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)

    conn.adapters.register_dumper(np.ndarray, VectorDumper)
    conn.adapters.register_loader(info.oid, VectorLoader)


def copy_binary(rows: Iterator[tuple[str, str, int, np.ndarray]]) -> Iterator[bytes]:
    """A binary COPY stream of (id, text, category, vec) rows, built with struct (no text formatting)."""
    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    for doc_id, text, cat, vec in rows:
        i, t = doc_id.encode(), text.encode()
        v = vec.astype(">f4").tobytes()
        yield b"".join(
            (
                struct.pack(">hi", 4, len(i)),
                i,
                struct.pack(">i", len(t)),
                t,
                struct.pack(">iii", 4, cat, len(v) + 4),
                struct.pack(">HH", len(vec), 0),
                v,
            )
        )
    yield struct.pack(">h", -1)


# -- the libraries -------------------------------------------------------------------------------
class Lib:
    name = ""

    def __init__(self) -> None:
        self.parts: dict[str, dict[str, float | None]] = {}

    def timed(self, part: str, clock: Clock) -> None:
        acc = self.parts.setdefault(part, {"wall": 0.0, "cpu": 0.0, "server": 0.0})
        acc["wall"] += clock.wall  # type: ignore[operator]
        acc["cpu"] += clock.cpu  # type: ignore[operator]
        acc["server"] = None if clock.server_cpu is None or acc["server"] is None else acc["server"] + clock.server_cpu

    def total(self, key: str) -> float | None:
        vals = [p[key] for p in self.parts.values()]
        return None if any(v is None for v in vals) else float(sum(vals))  # type: ignore[arg-type]

    def set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        raise NotImplementedError

    def backend_pids(self) -> list[int]:
        return []

    def close(self) -> None:
        pass


class RawPg(Lib):
    """Raw pgvector SQL with psycopg: binary COPY, CREATE INDEX, ORDER BY vec <=> q LIMIT 10."""

    name = "raw"

    def __init__(self, ds: bs.Dataset, server: Server) -> None:
        import psycopg

        super().__init__()
        self.server = server
        self.conn = psycopg.connect(server.url, autocommit=True)
        register_vector(self.conn)
        c = self.conn
        c.execute("DROP TABLE IF EXISTS raw_items")
        c.execute(
            f"CREATE TABLE raw_items (id text PRIMARY KEY, text text NOT NULL, category int NOT NULL, "
            f"vec vector({ds.dim}) NOT NULL)"
        )
        for s in range(0, ds.n, BATCH):
            rows = ((f"d{i}", ds.texts[i], int(ds.cats[i]), ds.X[i]) for i in range(s, min(s + BATCH, ds.n)))
            with (
                Clock(server) as clk,
                c.transaction(),
                c.cursor() as cur,
                cur.copy("COPY raw_items (id, text, category, vec) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                for chunk in copy_binary(rows):
                    copy.write(chunk)
            self.timed("binary COPY", clk)
            bs._progress("raw COPY", s + BATCH, ds.n)
        with Clock(server) as clk:
            c.execute(
                f"CREATE INDEX raw_items_hnsw ON raw_items USING hnsw (vec vector_cosine_ops) "
                f"WITH (m = {M}, ef_construction = {EFC})"
            )
        self.timed("CREATE INDEX hnsw", clk)
        with Clock(server) as clk:
            c.execute("CREATE INDEX raw_items_category ON raw_items (category)")
        self.timed("CREATE INDEX category (btree)", clk)
        c.execute("VACUUM ANALYZE raw_items")
        self.size_mb = c.execute("SELECT pg_total_relation_size('raw_items')").fetchone()[0] / 2**20
        self.ef = 40
        self.ids_sql = "SELECT id, vec <=> %(q)b AS d FROM raw_items ORDER BY vec <=> %(q)b LIMIT " + str(K)
        self.docs_sql = (
            f"SELECT id, text, category, vec, vec <=> %(q)b AS d FROM raw_items ORDER BY vec <=> %(q)b LIMIT {K}"
        )

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.conn.execute(f"SET hnsw.ef_search = {int(ef)}")

    def ids(self, q: np.ndarray) -> list[tuple[str, float]]:
        return [(i, 1.0 - d) for i, d in self.conn.execute(self.ids_sql, {"q": q}).fetchall()]

    def docs(self, q: np.ndarray) -> list[dict[str, Any]]:
        rows = self.conn.execute(self.docs_sql, {"q": q}, binary=True).fetchall()
        return [{"id": i, "text": t, "category": c, "embedding": v, "score": 1.0 - d} for i, t, c, v, d in rows]

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        return {"ids": self.ids, "docs": self.docs}

    def rows(self, q: np.ndarray) -> list[int]:
        return [int(i[1:]) for i, _ in self.ids(q)]

    def filtered_ann(self, q: np.ndarray, cat: int) -> list[int]:
        """HNSW with the filter in the same query and pgvector's iterative scan (set for the
        session by the caller), re-sorted."""
        sql = (
            "WITH c AS MATERIALIZED (SELECT id, vec <=> %(q)b AS d FROM raw_items WHERE category = %(c)s "
            f"ORDER BY vec <=> %(q)b LIMIT {K}) SELECT id FROM c ORDER BY d"
        )
        return [int(i[1:]) for (i,) in self.conn.execute(sql, {"q": q, "c": cat}).fetchall()]

    def filtered_exact(self, q: np.ndarray, cat: int) -> list[int]:
        """Every vector of the category (btree on category) scored and sorted: ``+ 0`` keeps the
        planner off the HNSW index."""
        sql = f"SELECT id FROM raw_items WHERE category = %(c)s ORDER BY (vec <=> %(q)b) + 0 LIMIT {K}"
        return [int(i[1:]) for (i,) in self.conn.execute(sql, {"q": q, "c": cat}).fetchall()]

    def backend_pids(self) -> list[int]:
        return [self.conn.info.backend_pid]

    def close(self) -> None:
        self.conn.close()


class PmPg(Lib):
    """polymodal's pgvector store."""

    name = "pgvector"

    def __init__(self, ds: bs.Dataset, server: Server) -> None:
        import psycopg

        import polymodal as pm
        from polymodal.store.pgvector import ddl, search

        super().__init__()
        from polymodal.store.pgvector.pgfilter import to_sql

        self.search_mod, self.ddl, self.to_sql = search, ddl, to_sql
        Doc = bs.bench_doc_type(ds.dim)
        self.Doc = Doc
        self.collection = f"bench_{os.getpid()}"
        with contextlib.suppress(Exception), psycopg.connect(server.url, autocommit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{self.collection}" CASCADE')
        self.store = pm.open(
            server.url,
            schema=Doc,
            collection=self.collection,
            metric="cosine",
            hnsw_m=M,
            hnsw_ef_construction=EFC,
            ef_search=64,
            text_fields=(),
        )
        self.batches: list[dict[str, Any]] = []
        for s in range(0, ds.n, BATCH):
            batch = [
                Doc(id=f"d{i}", text=ds.texts[i], category=int(ds.cats[i]), embedding=ds.X[i])
                for i in range(s, min(s + BATCH, ds.n))
            ]
            with Clock(server) as clk:
                self.store.add(batch)
            self.timed("add", clk)
            self.batches.append({"n": len(batch), "wall": clk.wall, "cpu": clk.cpu, "server": clk.server_cpu})
            log(
                f"    pgvector store add {s + len(batch):,}: {clk.wall:.1f} s wall, {clk.cpu:.1f} s client CPU"
                + (f", {clk.server_cpu:.1f} s server CPU" if clk.server_cpu is not None else "")
            )
        # a bulk load leaves the HNSW index to the first ANN search, which builds it once: timed as ingest
        with Clock(server) as clk:
            self.store.search(ds.Q[0], field="embedding", limit=K, exact=False)
        self.timed("first search (builds the HNSW index)", clk)
        self.fid = self.store._fields["embedding"]
        self.table = self.store.names.vectors(self.fid)
        self.docs_table = self.store.names.docs
        with psycopg.connect(server.url, autocommit=True) as c:
            c.execute(f"VACUUM ANALYZE {self.table}")
            c.execute(f"VACUUM ANALYZE {self.docs_table}")
            self.size_mb = (
                c.execute(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind = 'r'",
                    [self.collection],
                ).fetchone()[0]
                / 2**20
            )
        # below exact_threshold polymodal would search exactly: ask for ANN so HNSW is compared with HNSW
        self.exact: bool | None = None if ds.n * ds.dim > self.store.config.exact_threshold else False

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.store.config = self.store.config.model_copy(update={"ef_search": ef})

    def ids(self, q: np.ndarray) -> list[tuple[str, float]]:
        """``store.search_ids``: the same checks and plan as ``search``, the ANN query joined
        with the document ids only, one statement."""
        return self.store.search_ids(q, field="embedding", limit=K, exact=self.exact)

    def docs(self, q: np.ndarray) -> object:
        return self.store.search(q, field="embedding", limit=K, exact=self.exact)

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        return {"ids": self.ids, "docs": self.docs}

    def rows(self, q: np.ndarray) -> list[int]:
        return [int(i[1:]) for i, _ in self.ids(q)]

    def backend_pids(self) -> list[int]:
        return [c.info.backend_pid for c in self.store._pool._idle]

    def close(self) -> None:
        self.store.close()


def ingest_pieces(ds: bs.Dataset, n: int = 2000) -> dict[str, float]:
    """Client-side preparation of one add, per 10,000 documents (s): what ``_add`` computes
    before it sends anything, and the same encoding done on whole arrays at once."""
    from polymodal.store.base import StoreConfig, vector_fields
    from polymodal.store.flatten import flatten
    from polymodal.store.pgvector import codec

    Doc = bs.bench_doc_type(ds.dim)
    docs = [Doc(id=f"d{i}", text=ds.texts[i], category=int(ds.cats[i]), embedding=ds.X[i]) for i in range(n)]
    fields = vector_fields(Doc, StoreConfig())
    scale = 10_000 / n
    out = {}
    t0 = time.perf_counter()
    flats = [flatten(d, ()) for d in docs]
    out["flatten"] = (time.perf_counter() - t0) * scale
    t0 = time.perf_counter()
    [codec.body_json(f.body) for f in flats]
    out["body_json (orjson)"] = (time.perf_counter() - t0) * scale
    t0 = time.perf_counter()
    codec.vector_rows(flats, fields, {"embedding": 0})
    out["vector_rows (normalise, float32 arrays for binary COPY, raw bytes)"] = (time.perf_counter() - t0) * scale
    t0 = time.perf_counter()
    X = np.stack([f.vectors[0][2] for f in flats]).astype(np.float32)
    unit = (X / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)).astype(">f4")
    head = struct.pack(">HH", ds.dim, 0)
    [head + row.tobytes() for row in unit]
    [row.tobytes() for row in X]
    out["the same on whole arrays (batch normalise + pgvector binary + raw bytes)"] = (time.perf_counter() - t0) * scale
    return out


class Embedded(Lib):
    """polymodal's embedded store, built by bench_store.py's runner."""

    name = "embedded"

    def __init__(self, ds: bs.Dataset, tmp: Path, server: Server) -> None:
        super().__init__()
        self.p = bs.Polymodal(ds, tmp)
        for part, (w, c) in self.p.parts.items():
            self.parts[part] = {"wall": w, "cpu": c, "server": 0.0}
        self.size_mb = self.p.disk_mb

    def set_ef(self, ef: int) -> None:
        self.p.set_ef(ef)

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        return {"ids": self.p.ids, "docs": self.p.docs}

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        return self.p.batch_rows(Q)

    def close(self) -> None:
        self.p.close()


# -- timing --------------------------------------------------------------------------------------
def time_calls(fn: Callable[[np.ndarray], object], queries: np.ndarray, server: Server) -> dict[str, float]:
    """Per-call wall and client-thread CPU (percentiles), and the server's CPU per call (mean
    over the run: the server's counters tick at 10 ms)."""
    for q in queries[: min(20, len(queries))]:
        fn(q)  # warm-up (and psycopg prepares statements after 5 executions)
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    s0 = server.cpu_s()
    t_all = time.perf_counter()
    for i, q in enumerate(queries):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        fn(q)
        wall[i] = time.perf_counter_ns() - t0
        cpu[i] = time.thread_time_ns() - c0
    total = time.perf_counter() - t_all
    s1 = server.cpu_s()
    out = {
        "p50_ms": float(np.percentile(wall, 50)) / 1e6,
        "p99_ms": float(np.percentile(wall, 99)) / 1e6,
        "qps": len(queries) / total,
        "cpu_p50_ms": float(np.percentile(cpu, 50)) / 1e6,
        "cpu_mean_ms": float(cpu.mean()) / 1e6,
    }
    if s0 is not None and s1 is not None:
        out["server_ms"] = (s1 - s0) * 1e3 / len(queries)
        out["total_cpu_ms"] = out["cpu_mean_ms"] + out["server_ms"]
    return out


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# -- the profile of polymodal's search path ----------------------------------------------------------
def _statement(sql: str) -> str:
    s = " ".join(str(sql).split())
    for key, label in (
        ("BEGIN", "BEGIN (read-only, repeatable read)"),
        ("COMMIT", "COMMIT"),
        ("reltuples", "stats(): row estimate + index check (cached 1 s)"),
        ("hnsw.ef_search", "ann_settings(): ef_search, iterative scan, enable_seqscan"),
        ("WITH c AS MATERIALIZED", "ANN query (HNSW)"),
        ("SELECT rid, body", "_load: document bodies"),
        ("UNION ALL", "_load: vectors"),
        ("AS f, rid, pos, raw", "_load: vectors"),
        ("SELECT rid, id", "ids of the hits"),
    ):
        if key in s:
            return label
    return s[:60]


@contextlib.contextmanager
def trace_sql() -> Iterator[dict[str, list[float]]]:
    """Client wall time of every statement: its ``Connection.execute`` plus the ``fetch*`` of its
    cursor (in pipeline mode the round trip happens at the fetch, or at the pipeline's end for
    statements never fetched, such as ``COMMIT``: their wait is not in this table)."""
    import psycopg

    seen: dict[str, list[float]] = {}
    label: dict[int, int] = {}  # id(cursor) -> index into seen[...]
    original = psycopg.Connection.execute
    fetches = {name: getattr(psycopg.Cursor, name) for name in ("fetchall", "fetchone")}

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        t0 = time.perf_counter_ns()
        cur = original(self, query, params, **kw)
        times = seen.setdefault(_statement(query), [])
        times.append((time.perf_counter_ns() - t0) / 1e6)
        label[id(cur)] = (_statement(query), len(times) - 1)  # type: ignore[assignment]
        return cur

    def wrap(name: str) -> Callable[..., Any]:
        fetch = fetches[name]

        def traced(self: Any, *a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter_ns()
            out = fetch(self, *a, **kw)
            where = label.pop(id(self), None)
            if where is not None:
                seen[where[0]][where[1]] += (time.perf_counter_ns() - t0) / 1e6  # type: ignore[index]
            return out

        return traced

    psycopg.Connection.execute = execute  # type: ignore[method-assign]
    for name in fetches:
        setattr(psycopg.Cursor, name, wrap(name))
    try:
        yield seen
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]
        for name, fetch in fetches.items():
            setattr(psycopg.Cursor, name, fetch)


def profile_search(lib: PmPg, raw: RawPg, Q: np.ndarray, ef: int) -> dict[str, Any]:
    """Where polymodal's time goes, per query: each SQL statement (client wall, median), the
    Python around them (cProfile), and the pieces a fix would remove, timed alone."""
    lib.set_ef(ef)
    raw.set_ef(ef)
    out: dict[str, Any] = {"ef": ef, "n": len(Q)}
    for path in ("docs", "ids"):
        fn = lib.paths()[path]
        for q in Q[:20]:
            fn(q)
        with trace_sql() as seen:
            walls = []
            for q in Q:
                t0 = time.perf_counter_ns()
                fn(q)
                walls.append((time.perf_counter_ns() - t0) / 1e6)
        out[path] = {
            "total_ms": float(np.median(walls)),
            "sql": {k: (float(np.median(v)), len(v) / len(Q)) for k, v in seen.items()},
        }
    # raw's single statement, same queries and ef, for the round-trip floor
    with trace_sql() as seen:
        for q in Q:
            raw.ids(q)
    out["raw_ids_ms"] = float(np.median(next(iter(seen.values()))))
    with trace_sql() as seen:
        for _ in range(len(Q)):
            raw.conn.execute("SELECT 1").fetchall()
    out["roundtrip_ms"] = float(np.median(next(iter(seen.values()))))

    # Python pieces timed alone (medians, µs)
    def med_us(fn: Callable[[], object], n: int = 300) -> float:
        ts = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            fn()
            ts.append(time.perf_counter_ns() - t0)
        return float(np.median(ts)) / 1e3

    store = lib.store
    q = Q[0]
    hits = store.search(q, field="embedding", limit=K, exact=lib.exact)
    bodies = [h.doc.model_dump(mode="json") for h in hits]
    for b in bodies:
        b["embedding"] = np.asarray(b["embedding"], np.float32)
    vm = np.asarray(q, np.float32)
    out["pieces_us"] = {
        "_query_matrix (checks + float64 normalise)": med_us(lambda: store._query_matrix([q], "embedding")),
        "binary dump of the query (struct + tobytes)": med_us(
            lambda: struct.pack(">HH", 512, 0) + vm.astype(">f4").tobytes()
        ),
        "10 x Doc.from_dict (pydantic validation)": med_us(lambda: [lib.Doc.from_dict(dict(b)) for b in bodies]),
        "10 x Doc.model_construct (no validation)": med_us(lambda: [lib.Doc.model_construct(**b) for b in bodies]),
    }
    # cProfile of the full path, tottime by function
    prof = cProfile.Profile(time.process_time)  # CPU time: being descheduled is not charged to a function
    prof.enable()
    for qq in Q:
        lib.docs(qq)
    prof.disable()
    st = pstats.Stats(prof)
    rows = []
    for (fname, line, func), (_cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{Path(fname).name}:{line}({func})" if line else func))
    rows.sort(reverse=True)
    out["cprofile"] = [
        {"tottime_ms": tt * 1e3 / len(Q), "cumtime_ms": ct * 1e3 / len(Q), "calls": nc / len(Q), "function": f}
        for tt, ct, nc, f in rows[:15]
    ]
    total_pm = sum(tt for tt, _, _, _ in rows)
    out["cprofile_total_ms"] = total_pm * 1e3 / len(Q)
    return out


# -- the run -------------------------------------------------------------------------------------
def load(args: argparse.Namespace) -> bs.Dataset:
    ds = bs.load_dataset("100k", args.quick, 200 if args.quick else 1000)
    n = 10_000 if args.size == "10k" else len(ds.X)
    if n < len(ds.X):
        note = f"the first {n:,} documents of: {ds.note}"
        ds = bs.Dataset(f"{n // 1000}k", note, ds.X[:n], ds.Q, ds.texts[:n], ds.cats[:n])
    return ds


def sweep_lib(lib: Lib, ds: bs.Dataset) -> tuple[dict[int, float], int]:
    found: dict[int, float] = {}
    op = None
    for ef in EFS:
        lib.set_ef(ef)
        rows = lib.batch_rows(ds.Q) if isinstance(lib, Embedded) else [lib.rows(q) for q in ds.Q]  # type: ignore[attr-defined]
        found[ef] = bs.recall(rows, ds.gt)
        if found[ef] >= TARGET_RECALL and op is None:
            op = ef
        if found[ef] >= 0.999 or (op is not None and ef >= 2 * op):
            break
    return found, op or EFS[-1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pgvector-", dir=args.tmp))
    res: dict[str, Any] = {"load": {"start": loadavg()}}
    server = None
    libs: dict[str, Lib] = {}
    try:
        ds = load(args)
        res.update(dataset=ds.name, note=ds.note, n=ds.n, dim=ds.dim, queries=len(ds.Q))
        server = Server(args.pg_url, tmp)
        res["server"] = {
            "version": server.version,
            "pgvector": server.pgvector,
            "settings": server.settings,
            "private": server.datadir is not None,
        }
        log(f"PostgreSQL {server.version}, pgvector {server.pgvector}, {server.settings}")
        log(f"[{ds.name}] raw pgvector: binary COPY + CREATE INDEX ... (load {loadavg()})")
        libs["raw"] = raw = RawPg(ds, server)
        log(f"  {raw.parts}")
        log(f"[{ds.name}] polymodal pgvector store: add in {BATCH:,}-batches ... (load {loadavg()})")
        libs["pgvector"] = pmpg = PmPg(ds, server)
        log(f"  {pmpg.parts}")
        res["ingest_pieces"] = ingest_pieces(ds)
        log(f"  client-side pieces per 10k docs: {res['ingest_pieces']}")
        if not args.no_embedded:
            log(f"[{ds.name}] polymodal embedded store ... (load {loadavg()})")
            libs["embedded"] = Embedded(ds, tmp, server)
            log(f"  {libs['embedded'].parts}")
        import psycopg

        with contextlib.suppress(Exception), psycopg.connect(server.url, autocommit=True) as c:
            c.execute("CHECKPOINT")
        res["load"]["after ingest"] = loadavg()
        res["build"] = {
            name: {
                "parts": lib.parts,
                "wall_s": lib.total("wall"),
                "cpu_s": lib.total("cpu"),
                "server_s": lib.total("server"),
                "size_mb": getattr(lib, "size_mb", None),
            }
            for name, lib in libs.items()
        }
        res["pm_batches"] = pmpg.batches

        # recall against ef, and each library's operating point
        res["sweep"], res["op_ef"] = {}, {}
        for name, lib in libs.items():
            res["sweep"][name], res["op_ef"][name] = sweep_lib(lib, ds)
            log(f"  {name}: recall@10 by ef {res['sweep'][name]} -> ef={res['op_ef'][name]}")
        op = res["op_ef"]

        # single-query latency, repetitions interleaved
        nq = min(len(ds.Q), args.latency_queries)
        Q = ds.Q[:nq]
        plans = [(f"{name}:{path}", lib, op[name]) for name, lib in libs.items() for path in lib.paths()]
        plans += [("pgvector:ids@raw-ef", pmpg, op["raw"]), ("pgvector:docs@raw-ef", pmpg, op["raw"])]
        if "embedded" in libs:
            plans += [("embedded:ids@raw-ef", libs["embedded"], op["raw"])]
        runs: dict[str, list[dict[str, float]]] = {}
        for rep in range(args.reps):
            for key, lib, ef in plans:
                lib.set_ef(ef)
                path = key.split(":")[1].split("@")[0]
                runs.setdefault(key, []).append(time_calls(lib.paths()[path], Q, server))
            log(f"  latency repetition {rep + 1}/{args.reps} done (load {loadavg()})")
        res["latency"] = {k: median_runs(v) for k, v in runs.items()}
        res["latency_runs"] = runs
        pmpg.set_ef(op["pgvector"])
        res["recall_docs_path"] = bs.recall([[int(h.id[1:]) for h in pmpg.docs(q)] for q in Q], ds.gt[:nq])
        res["load"]["after latency"] = loadavg()

        res["filtered"] = run_filtered(ds, libs, op, args)
        res["filtered_plans"] = explain_filtered(raw, pmpg, ds.Q[1], 1, op)
        res["load"]["after filtered"] = loadavg()
        log(f"[{ds.name}] profile of polymodal's search path ...")
        res["profile"] = profile_search(pmpg, raw, Q[: min(nq, args.profile_queries)], op["raw"])
        res["load"]["end"] = loadavg()
    finally:
        for lib in libs.values():
            with contextlib.suppress(Exception):
                lib.close()
        if server is not None:
            server.stop()
        gc.collect()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_filtered(ds: bs.Dataset, libs: dict[str, Lib], op: dict[str, int], args: argparse.Namespace) -> dict:
    """1% selectivity: query i keeps category i % 100."""
    nq = min(len(ds.Q), args.filter_queries)
    raw: RawPg = libs["raw"]  # type: ignore[assignment]
    pmpg: PmPg = libs["pgvector"]  # type: ignore[assignment]
    raw.set_ef(op["raw"])
    raw.conn.execute("SET hnsw.iterative_scan = relaxed_order")
    pmpg.set_ef(op["pgvector"])

    def pm_ids(hits: list) -> list[int]:
        return [int(h.id[1:]) for h in hits]

    cases: dict[str, Callable[[int, np.ndarray], list[int]]] = {
        "raw SQL: HNSW + filter, iterative scan (relaxed_order), re-sorted": lambda i, q: raw.filtered_ann(
            q, i % N_CAT
        ),
        "raw SQL: exact over the category (btree)": lambda i, q: raw.filtered_exact(q, i % N_CAT),
        "polymodal pgvector: search(where=...)": lambda i, q: pm_ids(
            pmpg.store.search(q, field="embedding", limit=K, where={"category": i % N_CAT}, exact=pmpg.exact)
        ),
        "polymodal pgvector: search(where=..., exact=True)": lambda i, q: pm_ids(
            pmpg.store.search(q, field="embedding", limit=K, where={"category": i % N_CAT}, exact=True)
        ),
    }
    if "embedded" in libs:
        emb: Embedded = libs["embedded"]  # type: ignore[assignment]
        emb.set_ef(op["embedded"])
        cases["polymodal embedded: search(where=...)"] = lambda i, q: pm_ids(
            emb.p.store.search(q, field="embedding", limit=K, where={"category": i % N_CAT})
        )
    out = {}
    for name, fn in cases.items():
        found, times = [], []
        for i, q in enumerate(ds.Q[:nq]):
            t0 = time.perf_counter_ns()
            f = fn(i, q)
            times.append(time.perf_counter_ns() - t0)
            found.append(f)
        out[name] = {
            "recall": bs.recall(found, ds.gt_f[:nq]),
            "full": float(np.mean([len(f) == K for f in found])),
            "p50_ms": float(np.median(times)) / 1e6,
            "p99_ms": float(np.percentile(times, 99)) / 1e6,
        }
        log(f"  filtered {name}: {out[name]}")
    raw.conn.execute("RESET hnsw.iterative_scan")
    return out


def explain_filtered(raw: RawPg, pmpg: PmPg, q: np.ndarray, cat: int, op: dict[str, int]) -> dict[str, str]:
    """EXPLAIN ANALYZE of each filtered plan, with the settings its path runs under."""
    from polymodal.store import filters as flt
    from polymodal.store.pgvector import codec, search
    from polymodal.store.pgvector.pgfilter import to_sql

    def short(rows: list[tuple[str]]) -> str:
        lines = [re.sub(r"'\[[^\]]*\]'::vector", "'[...]'::vector", r[0]) for r in rows]
        keep = [ln for ln in lines if not ln.strip().startswith(("Buffers:", "I/O Timings:"))]
        return "\n".join(keep[:24])

    out = {}
    raw.set_ef(op["raw"])
    c = raw.conn
    with c.transaction():
        c.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        out["raw SQL: HNSW + filter, iterative scan"] = short(
            c.execute(
                "EXPLAIN (ANALYZE, BUFFERS) WITH c AS MATERIALIZED (SELECT id, vec <=> %(q)b AS d FROM raw_items "
                f"WHERE category = %(c)s ORDER BY vec <=> %(q)b LIMIT {K}) SELECT id FROM c ORDER BY d",
                {"q": q, "c": cat},
            ).fetchall()
        )
    out["raw SQL: exact over the category (btree)"] = short(
        c.execute(
            f"EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM raw_items WHERE category = %(c)s ORDER BY (vec <=> %(q)b) + 0 "
            f"LIMIT {K}",
            {"q": q, "c": cat},
        ).fetchall()
    )
    store = pmpg.store
    pmpg.set_ef(op["pgvector"])
    _, qm = store._query_matrix([q], "embedding")
    text = qm[0]
    filt = to_sql(flt.parse({"category": cat}, fields=store.doc_type.model_fields.keys()), store.doc_type)

    def ann(conn: Any) -> str:  # what store.search runs: one statement, session settings
        codec.adapt(conn)
        search.ann_session(conn, min(1000, max(store.config.ef_search, K)), store._iterative_for(filt))
        sql, params = search.ann_docs_sql(pmpg.table, pmpg.docs_table, "<#>", text, K, filt, [])
        return short(conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())

    def exact(conn: Any) -> str:
        codec.adapt(conn)
        sql, params = search.exact_sql(pmpg.table, pmpg.docs_table, "<#>", text, K, filt, nested=False, aggregate="max")
        return short(conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall())

    out["polymodal pgvector: ANN plan (search(where=...))"] = store._pool.read_one(ann, what="explain")
    out["polymodal pgvector: exact plan (search(where=..., exact=True))"] = store._pool.run(
        exact, write=False, what="explain"
    )
    return out


# -- report --------------------------------------------------------------------------------------
LABELS = {
    "raw:ids": "raw SQL: `ORDER BY vec <=> q LIMIT 10`, binary vector (ids + scores)",
    "raw:docs": "raw SQL returning the 10 rows (id, text, category, vector)",
    "pgvector:ids": "polymodal pgvector: `store.search_ids` (ids + scores)",
    "pgvector:docs": "polymodal pgvector: `store.search` (Hits with the 10 documents)",
    "pgvector:ids@raw-ef": "polymodal pgvector: ids + scores at raw's ef",
    "pgvector:docs@raw-ef": "polymodal pgvector: `store.search` at raw's ef",
    "embedded:ids": "polymodal embedded: `store.search_ids` (ids + scores)",
    "embedded:docs": "polymodal embedded: `store.search` (Hits with documents)",
    "embedded:ids@raw-ef": "polymodal embedded: ids + scores at raw pgvector's ef",
}


fmt = bs.fmt  # numbers in the tables, as bench_store writes them


def targets(res: dict) -> list[tuple[str, str, str, bool]]:
    lat = res["latency"]

    def ratio(a: str, b: str, key: str) -> float | None:
        return None if key not in lat[a] or key not in lat[b] else lat[a][key] / lat[b][key]

    out = []
    for a, b, what in (
        ("pgvector:ids@raw-ef", "raw:ids", "ids + scores"),
        ("pgvector:docs@raw-ef", "raw:docs", "hits with documents"),
    ):
        w, c = ratio(a, b, "p50_ms"), ratio(a, b, "total_cpu_ms")
        out.append(
            (
                f"search p50 latency, {what}, polymodal / raw SQL at the same ef (wall)",
                f"{w:.2f}x ({lat[a]['p50_ms']:.3f} / {lat[b]['p50_ms']:.3f} ms)",
                f"<= {TARGET_RATIO}x",
                w <= TARGET_RATIO,
            )
        )
        if c is not None:
            out.append(
                (
                    f"search CPU per query (client + server), {what}, polymodal / raw SQL",
                    f"{c:.2f}x ({lat[a]['total_cpu_ms']:.3f} / {lat[b]['total_cpu_ms']:.3f} ms)",
                    f"<= {TARGET_RATIO}x",
                    c <= TARGET_RATIO,
                )
            )
    b = res["build"]
    w = b["pgvector"]["wall_s"] / b["raw"]["wall_s"]
    out.append(
        (
            "ingest (all rows + HNSW index), polymodal `add` / raw binary COPY + CREATE INDEX (wall)",
            f"{w:.2f}x ({b['pgvector']['wall_s']:.0f} / {b['raw']['wall_s']:.0f} s)",
            f"<= {TARGET_RATIO}x",
            w <= TARGET_RATIO,
        )
    )
    f = res["filtered"]["polymodal pgvector: search(where=...)"]
    out.append(
        (
            "filtered search at 1%: `limit` results, recall >= 0.95",
            f"recall {f['recall']:.3f}, {f['full'] * 100:.0f}% of queries got 10",
            "10 results, >= 0.95",
            f["full"] == 1.0 and f["recall"] >= 0.95,
        )
    )
    return out


def report(res: dict, args: argparse.Namespace, env: str) -> str:
    b, lat, op = res["build"], res["latency"], res["op_ef"]
    srv = res["server"]
    out = [
        f"Environment: {env}",
        "",
        f"PostgreSQL {srv['version']}, pgvector {srv['pgvector']}, "
        + (
            "a private server started by the benchmark (Unix socket, same machine); "
            if srv["private"]
            else "an existing server; "
        )
        + ", ".join(f"{k}={v}" for k, v in srv["settings"].items())
        + ".",
        "",
        "Load average (1/5/15 min) over the run: " + "; ".join(f"{k} {v}" for k, v in res["load"].items()) + ".",
        "",
        f"### {res['n']:,} x {res['dim']} ({res['dataset']})",
        "",
        res["note"] + ".",
        "",
        f"HNSW m={M}, ef_construction={EFC}, cosine (raw: `vector_cosine_ops` and `<=>`; polymodal stores unit "
        "vectors and uses `vector_ip_ops` and `<#>`, the same ranking). Latency: "
        f"{min(res['queries'], args.latency_queries):,} single queries, median of {args.reps} interleaved runs; "
        f"ef = the smallest of {list(EFS)} with recall@10 >= {TARGET_RECALL}. Wall = clock time per call; "
        "CPU = client thread CPU + the server's CPU (all PostgreSQL processes) per call, which other "
        "processes' load does not inflate.",
        "",
        "| ingest | wall s | client CPU s | server CPU s | rows/s (wall) | wall x raw | steps: wall s | size MB |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    names = {
        "raw": "raw SQL: binary `COPY` (10k batches) + `CREATE INDEX` (HNSW, btree on category)",
        "pgvector": "polymodal pgvector: `add` in 10k batches (binary `COPY`), then the first ANN search "
        "builds the HNSW index",
        "embedded": "polymodal embedded: `add` in 10k batches + `checkpoint`",
    }
    base = b["raw"]["wall_s"]
    for key, label in names.items():
        if key not in b:
            continue
        e = b[key]
        steps = ", ".join(f"{k} {fmt(v['wall'], 1)}" for k, v in e["parts"].items())
        out.append(
            f"| {label} | {fmt(e['wall_s'], 1)} | {fmt(e['cpu_s'], 1)} | "
            f"{'-' if key == 'embedded' else fmt(e['server_s'], 1)} | {fmt(res['n'] / e['wall_s'], 0)} | "
            f"{fmt(e['wall_s'] / base)} | {steps} | {fmt(e['size_mb'], 0)} |"
        )
    bc = b["raw"]["parts"]["binary COPY"]
    out += [
        "",
        f"Raw binary `COPY` alone: {res['n'] / bc['wall']:,.0f} rows/s. polymodal `add` per 10k batch "
        "(wall s / client CPU s / server CPU s): "
        + ", ".join(f"{x['wall']:.1f}/{x['cpu']:.1f}/{fmt(x['server'], 1)}" for x in res["pm_batches"])
        + ".",
    ]
    out += [
        "",
        "Client-side preparation inside polymodal's `add`, per 10,000 documents (s; timed alone):",
        "",
        "| step | s per 10k |",
        "|---|---:|",
    ]
    out += [f"| {k} | {v:.2f} |" for k, v in res["ingest_pieces"].items()]
    raw = lat["raw:ids"]
    out += [
        "",
        "| search (single query, k=10) | ef | recall@10 | p50 wall ms | p99 wall ms | QPS (wall) | "
        "client CPU ms | server CPU ms | CPU ms/query (client + server) | p50 wall / raw ids | CPU / raw ids |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LABELS.items():
        if key not in lat:
            continue
        lib = key.split(":")[0]
        ef = op["raw"] if "@" in key else op[lib]
        rec = res["sweep"][lib].get(ef)
        if key == "pgvector:docs":
            rec = res["recall_docs_path"]
        m = lat[key]
        cpu = m.get("total_cpu_ms", m["cpu_mean_ms"] if lib == "embedded" else None)
        out.append(
            f"| {label} | {ef} | {fmt(rec, 3)} | {fmt(m['p50_ms'], 3)} | {fmt(m['p99_ms'], 3)} | "
            f"{fmt(m['qps'], 0)} | {fmt(m['cpu_mean_ms'], 3)} | {fmt(m.get('server_ms'), 3)} | "
            f"{fmt(cpu, 3)} | {fmt(m['p50_ms'] / raw['p50_ms'])} | "
            f"{fmt(None if cpu is None or 'total_cpu_ms' not in raw else cpu / raw['total_cpu_ms'])} |"
        )
    out += bs.recall_table(res["sweep"])
    nf = min(res["queries"], args.filter_queries)
    out += [
        "",
        f"Filtered search, 1% selectivity (`category = c`, {nf} queries, each at its ef above):",
        "",
        "| path | recall@10 vs exact filtered | queries with 10 results | p50 wall ms | p99 wall ms |",
        "|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {n} | {v['recall']:.3f} | {v['full'] * 100:.0f}% | {fmt(v['p50_ms'], 3)} | {fmt(v['p99_ms'], 3)} |"
        for n, v in res["filtered"].items()
    ]
    out += [
        "",
        "Plans of the filtered searches (`EXPLAIN (ANALYZE, BUFFERS)`, one query, the settings each path uses):",
    ]
    for name, plan in res["filtered_plans"].items():
        out += ["", f"{name}:", "", "```", plan, "```"]
    p = res["profile"]
    out += [
        "",
        f"Profile of polymodal's search path ({p['n']} queries at ef {p['ef']}; medians per query). Raw's "
        f"one statement: {p['raw_ids_ms']:.3f} ms; an empty round trip (`SELECT 1`): {p['roundtrip_ms']:.3f} ms.",
        "",
    ]
    for path in ("docs", "ids"):
        sql = p[path]["sql"]
        in_sql = sum(ms * per for ms, per in sql.values())
        out += [
            f"`{'store.search' if path == 'docs' else 'ids + scores'}`: {p[path]['total_ms']:.3f} ms in all, "
            f"{in_sql:.3f} ms in {sum(per for _, per in sql.values()):.0f} SQL statements, "
            f"{p[path]['total_ms'] - in_sql:.3f} ms in Python outside them.",
            "",
            "| statement (client wall: execute + fetch of its rows) | ms | per query |",
            "|---|---:|---:|",
        ]
        out += [f"| {k} | {ms:.3f} | {per:.0f} |" for k, (ms, per) in sorted(sql.items(), key=lambda kv: -kv[1][0])]
        out.append("")
    out += ["Python pieces timed alone (median µs):", "", "| piece | µs |", "|---|---:|"]
    out += [f"| {k} | {v:.1f} |" for k, v in p["pieces_us"].items()]
    out += [
        "",
        f"cProfile of `store.search` (client process CPU time, {p['cprofile_total_ms']:.2f} ms/query under the "
        "profiler; waiting for the server is not CPU and does not show), "
        "top functions by own time:",
        "",
        "| function | own ms/query | cumulative ms/query | calls/query |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| `{r['function']}` | {r['tottime_ms']:.3f} | {r['cumtime_ms']:.3f} | {r['calls']:.0f} |"
        for r in p["cprofile"]
    ]
    out += ["", "| target | measured | goal | |", "|---|---|---|---|"]
    out += [f"| {n} | {m} | {g} | {'PASS' if ok else '**FAIL**'} |" for n, m, g, ok in targets(res)]
    out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("100k", "10k"), default="100k")
    ap.add_argument("--quick", action="store_true", help="20,000 synthetic vectors (10k: 10,000); no files written")
    ap.add_argument("--pg-url", default=None, help="use this server (default: start a private one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--filter-queries", type=int, default=300)
    ap.add_argument("--profile-queries", type=int, default=300)
    ap.add_argument("--no-embedded", action="store_true", help="skip the embedded store")
    ap.add_argument("--tmp", default=None, help="directory for the server and the stores (default: the temp dir)")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.latency_queries, args.filter_queries, args.profile_queries = 1, 200, 100, 100
    import psycopg

    import polymodal

    env = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}, numpy {np.__version__}, psycopg {psycopg.__version__} "
        f"(libpq {psycopg.pq.version() // 10000}.{psycopg.pq.version() % 10000}), polymodal {polymodal.__version__}, git {bs._git()}"
    )
    log(env)
    started = time.perf_counter()
    res = run(args)
    res["wall_s"] = time.perf_counter() - started
    text = report(res, args, env)
    text += (
        f"\nCommand: `python benchmarks/bench_pgvector.py{' --size ' + args.size if args.size != '100k' else ''}`; "
        f"the whole run took {res['wall_s'] / 60:.0f} min.\n"
    )
    print(text)
    if not args.quick and args.size == "100k":
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "pgvector.md").write_text("<!-- written by benchmarks/bench_pgvector.py -->\n\n" + text)


if __name__ == "__main__":
    main()
