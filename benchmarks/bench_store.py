# ruff: noqa: N803, N806
"""The embedded store against raw hnswlib, raw faiss and DocArray's HnswDocumentIndex.

Side by side, in one process and one run, on the same vectors and the same HNSW parameters
(M=16, ef_construction=200, cosine):

* dataset A: 100,000 x 512, real all-MiniLM-L6-v2 embeddings of sentences found on this
  machine, mapped to 512-d by a fixed orthonormal projection (see ``store_data.py``);
* dataset B: 1,000,000 x 128, a clustered Gaussian mixture (the analogue of DocArray's
  one-million-document benchmark, which used SIFT1M, 128-d).

Measured per library: ingest time (polymodal: ``add`` in batches of 10,000 + ``checkpoint``,
which builds the lazy HNSW index and saves it; raw: ``hnswlib.add_items`` + an SQLite insert of
the same rows), RSS growth, recall@10 against numpy brute force for an ef sweep, then p50/p99
single-query latency and QPS at the smallest ef reaching recall@10 >= 0.98, filtered search at 1%
selectivity, and read/update/delete latencies (as DocArray's benchmark reported them).

    python benchmarks/bench_store.py --size both          # writes benchmarks/results/store.{md,json}
    python benchmarks/bench_store.py --size 100k --quick  # smoke run on small synthetic data
    python benchmarks/bench_store.py --report             # rewrite store.{md,json} from store-<size>.json
"""

import os

# Single-query paths are single-threaded in every library timed here (hnswlib and faiss get one
# thread for queries); numpy's BLAS would otherwise wake a second thread for each exact search,
# which on a loaded machine turns 1 ms into a scheduler quantum. Override from the environment.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import contextlib
import gc
import json
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_data

M, EFC, K = 16, 200, 10
EFS = (10, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256, 384, 512)
TARGET_RECALL = 0.98
N_CAT = 100  # category = i % 100 after shuffling: each category is 1% of the documents
BATCH = 10_000
RESULTS = Path(__file__).resolve().parent / "results"
NOTES = """\
Where the time goes (from the tables below and a profile of the same calls at 100k x 512):

* The ids target is judged as the issue words it, "on the same data and parameters": raw hnswlib
  and polymodal at one ef, the smallest on the grid at which both reach recall@10 >= 0.98. Their
  graphs are built by the same hnswlib call with the same parameters, but with two threads, so
  two builds differ, and so does the ef each needs for the target recall (in an earlier 1M run,
  on a coarser grid, polymodal's graph needed ef 48 where raw's needed 32). When the two
  operating points differ, a second row shows each library at its own ef.
* polymodal's own ANN call (`AnnIndex.search`, the HNSW query plus its wrapper) runs at
  0.95-1.13x raw across runs. `store.search_ids` adds about 0.01 ms: checking and normalising
  the query (one pass over it), knowing that no other connection committed since the index was
  caught up (one `stat` of the `-wal` file once it has been still for 3 s, else one
  `PRAGMA data_version`; if one did, the read snapshot and change-log catch-up run first), and
  the slot -> document id map kept in memory beside the graph.
* With documents: one SQLite read of the 10 bodies (the vectors come from the index's matrix,
  which holds them exactly as stored, when the schema has one vector field; no read transaction
  when nobody committed meanwhile), JSON parsing, 10 validated `Doc` objects and the `Hit`s.
* DocArray: at 100k x 512 its `find` is only about 6x raw hnswlib, so 5x faster than DocArray
  would leave polymodal about 20% over raw hnswlib for everything, documents included, while
  raw hnswlib plus a bare SQLite fetch of the same 10 rows is already about 1.4x raw. That
  leaves about 0.05 ms for the documents; polymodal's SELECT of the 10 bodies, their parsing,
  10 validated documents and the hits take about 0.06 ms even with warm caches (0.015, 0.005,
  0.027 and 0.016 ms, timed alone). faiss answers a little faster than hnswlib here but cannot
  delete or overwrite a vector. At 1M x 128 (DocArray's bound about 18x) it is met.
* Filtered search is exact (recall 1.0) below `exact_threshold`; its latency is the SQL filter over
  the matching rows (15-16 ms at 1M), not the vector part (raw numpy: 1.4-1.8 ms).
* Ingest: the HNSW build is the same hnswlib call as raw, read back from SQLite; the SQLite insert
  (documents, vectors, change log) is about 10% of the CPU time.
"""
FILTER_MAIN = "polymodal: search(where=...) (auto: exact below exact_threshold)"


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def _progress(what: str, done: int, total: int) -> None:
    if total >= 200_000 and done % 100_000 == 0:
        log(f"    {what}: {done:,}/{total:,}")


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


# -- data ----------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    note: str
    X: np.ndarray  # documents, unit length
    Q: np.ndarray  # queries, unit length
    texts: list[str]
    cats: np.ndarray  # category of each document (1% each)
    gt: np.ndarray = field(init=False)  # exact top-K rows per query
    members: list[np.ndarray] = field(init=False)
    gt_f: list[np.ndarray] = field(init=False)  # exact filtered top-K per query (category i % N_CAT)
    exact_ms: list[float] = field(init=False)

    def __post_init__(self) -> None:
        t0 = time.perf_counter()
        self.gt = exact_topk(self.X, self.Q, K)
        self.members = [np.flatnonzero(self.cats == c) for c in range(N_CAT)]
        self.gt_f = []
        for i, q in enumerate(self.Q):
            rows = self.members[i % N_CAT]
            s = self.X[rows] @ q
            self.gt_f.append(rows[np.argsort(-s, kind="stable")[:K]])
        log(f"  ground truth for {self.name} in {time.perf_counter() - t0:.1f} s")

    @property
    def n(self) -> int:
        return len(self.X)

    @property
    def dim(self) -> int:
        return self.X.shape[1]


def exact_topk(X: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(Q), k), np.int64)
    for s in range(0, len(Q), 64):
        S = Q[s : s + 64] @ X.T
        part = np.argpartition(-S, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, 1), axis=1, kind="stable")
        out[s : s + 64] = np.take_along_axis(part, order, 1)
    return out


def recall(found: list[list[int]] | np.ndarray, truth: np.ndarray | list[np.ndarray]) -> float:
    return float(
        np.mean([len(set(map(int, f)) & set(map(int, t))) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def load_dataset(which: str, quick: bool, n_queries: int) -> Dataset:
    rng = np.random.default_rng(7)
    if quick:  # no model needed: a small mixture at the same dimensions
        n = 20_000
        dim = 512 if which == "100k" else 128
        X, Q = store_data.gmm(n, n_queries, dim, n_clusters=200)
        texts = [f"synthetic document {i}" for i in range(n)]
        note = f"quick: Gaussian mixture {n:,} x {dim}"
    elif which == "100k":
        X384, Q384, texts = store_data.minilm(100_000, 1000, log=log)
        X, Q = store_data.project(X384, 512), store_data.project(Q384, 512)
        Q = Q[:n_queries]
        texts = texts[:100_000]
        note = (
            "100,000 real all-MiniLM-L6-v2 embeddings (384-d) of sentences from this machine's "
            "Python stdlib docstrings, /usr/share/doc and man pages, mapped to 512-d by a fixed "
            "orthonormal projection; 1,000 held-out sentences as queries"
        )
    else:
        X, Q = store_data.gmm(1_000_000, n_queries, 128)
        texts = store_data.machine_texts(101_000)[:100_000]
        note = (
            "1,000,000 x 128 Gaussian mixture: 2,000 clusters (Zipf-like sizes), per-axis noise "
            "decaying as (1+j)^-0.75 under a random rotation, unit length; queries drawn from the same mixture"
        )
    cats = rng.permutation(len(X)) % N_CAT
    texts = [texts[i % len(texts)] for i in range(len(X))]
    return Dataset(which, note, X, Q, texts, cats)


# -- timing --------------------------------------------------------------------------------------
def time_calls(fn: Callable[[np.ndarray], object], queries: np.ndarray) -> dict[str, float]:
    """Per-call wall-clock and CPU time (this thread's; every timed path is single-threaded)."""
    for q in queries[: min(20, len(queries))]:
        fn(q)  # warm-up
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    t_all = time.perf_counter()
    for i, q in enumerate(queries):
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        fn(q)
        wall[i] = time.perf_counter_ns() - t0
        cpu[i] = time.thread_time_ns() - c0
    total = time.perf_counter() - t_all
    return {
        "p50_ms": float(np.percentile(wall, 50)) / 1e6,
        "p99_ms": float(np.percentile(wall, 99)) / 1e6,
        "qps": len(queries) / total,
        "cpu_p50_ms": float(np.percentile(cpu, 50)) / 1e6,
        "cpu_p99_ms": float(np.percentile(cpu, 99)) / 1e6,
        "cpu_qps": len(queries) / (cpu.sum() / 1e9),
    }


class Clock:
    """Wall-clock and process CPU seconds (all threads) of a block."""

    def __enter__(self) -> "Clock":
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.w0, time.process_time() - self.c0


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# -- the libraries -------------------------------------------------------------------------------
class Lib:
    """One library: build once, then ``ids(Q)`` for recall and ``paths`` for latency."""

    name = ""
    mem_mb: float = 0.0
    ef = 64

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}  # ingest step -> [wall s, CPU s]

    def timed(self, part: str, clock: Clock) -> None:
        acc = self.parts.setdefault(part, [0.0, 0.0])
        acc[0] += clock.wall
        acc[1] += clock.cpu

    @property
    def build_s(self) -> float:
        return sum(w for w, _ in self.parts.values())

    @property
    def build_cpu(self) -> float:
        return sum(c for _, c in self.parts.values())

    def set_ef(self, ef: int) -> None:
        self.ef = ef

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        raise NotImplementedError

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class RawHnsw(Lib):
    name = "hnswlib"

    def __init__(self, ds: Dataset, tmp: Path) -> None:
        import hnswlib

        super().__init__()
        m0 = rss_mb()
        with Clock() as c:
            self.index = hnswlib.Index(space="ip", dim=ds.dim)
            self.index.init_index(max_elements=ds.n, M=M, ef_construction=EFC, random_seed=42)
            self.index.add_items(ds.X, np.arange(ds.n), num_threads=min(2, os.cpu_count() or 1))
        self.timed("hnswlib add_items", c)
        self.mem_mb = rss_mb() - m0
        # the raw document store beside it: one SQLite table, the same rows polymodal keeps
        c = Clock().__enter__()
        self.db = sqlite3.connect(str(tmp / "raw.db"), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute(
            "CREATE TABLE docs(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, vec BLOB NOT NULL)"
        )
        for s in range(0, ds.n, BATCH):
            rows = [
                (
                    i,
                    f"d{i}",
                    orjson.dumps({"id": f"d{i}", "text": ds.texts[i], "category": int(ds.cats[i])}).decode(),
                    ds.X[i].tobytes(),
                )
                for i in range(s, min(s + BATCH, ds.n))
            ]
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")
        c.__exit__()
        self.timed("SQLite insert", c)
        self.cat_masks: dict[int, np.ndarray] = {}
        self.cats = ds.cats
        self.X = ds.X
        self.members = ds.members

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        self.index.set_ef(self.ef)
        labels, _ = self.index.knn_query(Q, k=K, num_threads=2)
        return labels.tolist()

    def search(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels, dists = self.index.knn_query(q, k=K, num_threads=1)
        return labels[0], 1.0 - dists[0]

    def search_docs(self, q: np.ndarray) -> list[dict]:
        labels, scores = self.search(q)
        ids = labels.tolist()
        rows = self.db.execute(
            f"SELECT rid, body, vec FROM docs WHERE rid IN ({','.join('?' * len(ids))})", ids
        ).fetchall()
        by_rid = {}
        for rid, body, vec in rows:
            d = orjson.loads(body)
            d["embedding"] = np.frombuffer(vec, dtype=np.float32).copy()
            by_rid[rid] = d
        return [dict(by_rid[i], score=float(s)) for i, s in zip(ids, scores.tolist(), strict=True)]

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        self.index.set_ef(self.ef)
        return {"ids": self.search, "docs": self.search_docs}

    def filtered(self, q: np.ndarray, cat: int) -> np.ndarray:
        mask = self.cat_masks.setdefault(cat, self.cats == cat)
        labels, _ = self.index.knn_query(q, k=K, num_threads=1, filter=lambda label: bool(mask[label]))
        return labels[0]

    def filtered_exact(self, q: np.ndarray, cat: int) -> np.ndarray:
        rows = self.members[cat]
        s = self.X[rows] @ q
        top = np.argpartition(-s, K)[:K]
        return rows[top[np.argsort(-s[top])]]


class RawFaiss(Lib):
    name = "faiss"

    def __init__(self, ds: Dataset) -> None:
        import faiss

        self.faiss = faiss
        faiss.omp_set_num_threads(min(2, os.cpu_count() or 1))
        super().__init__()
        m0 = rss_mb()
        with Clock() as c:
            self.index = faiss.IndexHNSWFlat(ds.dim, M, faiss.METRIC_INNER_PRODUCT)
            self.index.hnsw.efConstruction = EFC
            self.index.add(ds.X)
        self.timed("faiss add", c)
        self.mem_mb = rss_mb() - m0

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        self.faiss.omp_set_num_threads(2)
        self.index.hnsw.efSearch = self.ef
        _, labels = self.index.search(Q, K)
        return labels.tolist()

    def search(self, q: np.ndarray) -> object:
        return self.index.search(q[None], K)

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        self.faiss.omp_set_num_threads(1)  # single-query latency: no thread pool wake-ups
        self.index.hnsw.efSearch = self.ef
        return {"ids": self.search}


def bench_doc_type(dim: int) -> type:
    import polymodal as pm

    class BenchDoc(pm.Doc):
        text: str
        category: int
        embedding: pm.Vector[dim]  # type: ignore[valid-type]

    return BenchDoc


class Polymodal(Lib):
    name = "polymodal"

    def __init__(self, ds: Dataset, tmp: Path, *, text_fields: tuple[str, ...] | None = (), index: bool = True) -> None:
        import polymodal as pm

        super().__init__()
        Doc = bench_doc_type(ds.dim)
        self.Doc = Doc
        m0 = rss_mb()
        self.store = pm.open(
            tmp / ("pm" if index else "pm-fts"),
            schema=Doc,
            metric="cosine",
            hnsw_m=M,
            hnsw_ef_construction=EFC,
            ef_search=64,
            text_fields=text_fields,
        )
        for s in range(0, ds.n, BATCH):
            batch = [
                Doc(id=f"d{i}", text=ds.texts[i], category=int(ds.cats[i]), embedding=ds.X[i])
                for i in range(s, min(s + BATCH, ds.n))
            ]
            with Clock() as c:
                self.store.add(batch)
            self.timed("add", c)
            _progress("polymodal add", s + BATCH, ds.n)
        if not index:
            self.store.close()
            return
        self.fid = self.store._field_ids["embedding"]
        with Clock() as c:
            self.index = self.store._index(self.fid)  # the lazy HNSW build from SQLite
        self.timed("HNSW build", c)
        with Clock() as c:
            self.store.checkpoint()  # saves graph + matrix, trims the change log
        self.timed("save", c)
        self.mem_mb = rss_mb() - m0
        self.disk_mb = self.store.size_on_disk() / 2**20
        rows = self.store._conn.execute("SELECT rid, id FROM docs").fetchall()
        self.rid2row = np.zeros(max(r for r, _ in rows) + 1, np.int64)
        for rid, i in rows:
            self.rid2row[rid] = int(i[1:])

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.store.config = self.store.config.model_copy(update={"ef_search": ef})

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        res = self.index.search(Q, K, ef=self.ef, exact=False)
        return [self.rid2row[self.index.owner[slots]].tolist() for slots, _ in res]

    def ann(self, q: np.ndarray) -> object:
        """AnnIndex.search alone: the HNSW query plus polymodal's wrapper around it."""
        return self.index.search(q[None], K, ef=self.ef, exact_threshold=self.store.config.exact_threshold)

    def ids(self, q: np.ndarray) -> list[tuple[str, float]]:
        """``store.search_ids``: the public ids + scores search (checks, freshness check, ANN,
        slot -> id from memory)."""
        return self.store.search_ids(q, field="embedding", limit=K)

    def docs(self, q: np.ndarray) -> object:
        return self.store.search(q, field="embedding", limit=K)

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        return {"ann": self.ann, "ids": self.ids, "docs": self.docs}

    def close(self) -> None:
        self.store.close()


class DocArrayHnsw(Lib):
    name = "docarray"

    def __init__(self, ds: Dataset, tmp: Path, n: int) -> None:
        from docarray import BaseDoc, DocList
        from docarray.index import HnswDocumentIndex
        from docarray.typing import NdArray
        from pydantic import Field

        dim = ds.dim

        class DADoc(BaseDoc):
            text: str
            category: int
            embedding: NdArray[dim] = Field(
                dim=dim,
                space="cosine",
                M=M,
                ef_construction=EFC,
                ef=64,
                max_elements=n,
                num_threads=min(2, os.cpu_count() or 1),
            )

        self.DADoc, self.DocList = DADoc, DocList
        self.n = n
        super().__init__()
        m0 = rss_mb()
        self.index = HnswDocumentIndex[DADoc](work_dir=str(tmp / "docarray"))
        for s in range(0, n, BATCH):
            batch = DocList[DADoc](
                [
                    DADoc(id=f"d{i}", text=ds.texts[i], category=int(ds.cats[i]), embedding=ds.X[i])
                    for i in range(s, min(s + BATCH, n))
                ]
            )
            with Clock() as c:
                self.index.index(batch)
            self.timed("index", c)
            _progress("docarray index", s + BATCH, n)
        self.mem_mb = rss_mb() - m0
        self.hnsw = self.index._hnsw_indices["embedding"]

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.hnsw.set_ef(ef)

    def batch_rows(self, Q: np.ndarray) -> list[list[int]]:
        out = []
        for s in range(0, len(Q), 100):
            docs, _ = self.index.find_batched(Q[s : s + 100], search_field="embedding", limit=K)
            out.extend([int(d.id[1:]) for d in dl] for dl in docs)
        return out

    def find(self, q: np.ndarray) -> object:
        return self.index.find(q, search_field="embedding", limit=K)

    def paths(self) -> dict[str, Callable[[np.ndarray], object]]:
        return {"docs": self.find}

    def filtered(self, q: np.ndarray, cat: int) -> list[int]:
        # the pre-filter's own limit must cover every match, or DocArray searches a sample of them
        query = (
            self.index.build_query()
            .filter(filter_query={"category": {"$eq": cat}}, limit=self.n)
            .find(query=q, search_field="embedding", limit=K)
            .build()
        )
        docs = self.index.execute_query(query).documents
        return [int(d.id[1:]) for d in docs]


# -- one dataset ---------------------------------------------------------------------------------
def run_dataset(ds: Dataset, args: argparse.Namespace) -> dict:
    res: dict = {"dataset": ds.name, "note": ds.note, "n": ds.n, "dim": ds.dim, "queries": len(ds.Q)}
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-store-{ds.name}-", dir=args.tmp))
    libs: dict[str, Lib] = {}
    try:
        log(f"[{ds.name}] raw hnswlib + raw SQLite ...")
        libs["hnswlib"] = h = RawHnsw(ds, tmp)
        log(f"  {_parts(h)}")
        log(f"[{ds.name}] raw faiss ...")
        libs["faiss"] = RawFaiss(ds)
        log(f"  {_parts(libs['faiss'])}")
        log(f"[{ds.name}] polymodal ...")
        libs["polymodal"] = p = Polymodal(ds, tmp)
        log(f"  {_parts(p)}")
        fts = None
        if args.fts and ds.name == "100k":
            log(f"[{ds.name}] polymodal with the default text_fields (FTS5 on the text field), add only ...")
            fts = Polymodal(ds, tmp, text_fields=None, index=False)
            log(f"  {_parts(fts)}")
        n_da = min(ds.n, args.docarray_max)
        da_gt = ds.gt if n_da == ds.n else exact_topk(ds.X[:n_da], ds.Q, K)
        if n_da:
            log(f"[{ds.name}] DocArray HnswDocumentIndex on {n_da:,} documents ...")
            libs["docarray"] = DocArrayHnsw(ds, tmp, n_da)
            log(f"  {_parts(libs['docarray'])}")
        res["build"] = {
            name: {"parts": lib.parts, "wall_s": lib.build_s, "cpu_s": lib.build_cpu, "mem_mb": lib.mem_mb}
            for name, lib in libs.items()
        }
        res["build"]["polymodal"]["disk_mb"] = p.disk_mb
        if fts is not None:
            res["build"]["polymodal+fts"] = {"parts": fts.parts, "wall_s": fts.build_s, "cpu_s": fts.build_cpu}
        if "docarray" in libs:
            res["build"]["docarray"]["n"] = n_da

        # recall against ef, and the operating point of each library
        sweep: dict[str, dict[int, float]] = {}
        op: dict[str, int] = {}
        for name, lib in libs.items():
            truth = da_gt if name == "docarray" else ds.gt
            sweep[name] = {}
            for ef in EFS:
                lib.set_ef(ef)
                r = recall(lib.batch_rows(ds.Q), truth)
                sweep[name][ef] = r
                if r >= TARGET_RECALL and name not in op:
                    op[name] = ef
                if r >= 0.999 or (name in op and ef >= 2 * op[name]):
                    break
            op.setdefault(name, EFS[-1])
            log(f"  {name}: recall@10 by ef {sweep[name]} -> ef={op[name]}")
        res["sweep"], res["op_ef"] = sweep, op

        # single-query latency at each library's operating point, repetitions interleaved
        nq = min(len(ds.Q), args.latency_queries)
        Q = ds.Q[:nq]
        runs: dict[str, list[dict[str, float]]] = {}
        plans = [(f"{name}:{path}", lib, op[name]) for name, lib in libs.items() for path in _paths_of(lib)]
        # "the same data and parameters": raw hnswlib and polymodal also at one ef, the smallest
        # at which both reach the target recall (their graphs differ, see the notes)
        same = res["same_ef"] = max(op["hnswlib"], op["polymodal"])
        for name in ("hnswlib", "polymodal"):
            if op[name] != same:
                plans += [(f"{name}:{path}@same-ef", libs[name], same) for path in ("ids", "docs")]
        for rep in range(args.reps):
            for key, lib, ef in plans:
                lib.set_ef(ef)
                path = key.split(":")[1].split("@")[0]
                runs.setdefault(key, []).append(time_calls(lib.paths()[path], Q))
            log(f"  latency repetition {rep + 1}/{args.reps} done")
        exact_runs = [time_calls(lambda q: _exact_one(ds.X, q), ds.Q[: min(nq, 200)]) for _ in range(args.reps)]
        lat = {k: median_runs(v) for k, v in runs.items()}
        lat["numpy-exact:ids"] = median_runs(exact_runs)
        res["latency"] = lat
        # recall of the full path (hits with documents) at the operating point, from the hits themselves
        p.set_ef(op["polymodal"])
        res["recall_docs_path"] = recall([[int(hit.id[1:]) for hit in p.docs(q)] for q in Q], ds.gt[:nq])

        res["filtered"] = run_filtered(ds, libs, op, args)
        res["crud"] = run_crud(ds, libs, args)
    finally:
        for lib in libs.values():
            with contextlib.suppress(Exception):
                lib.close()
        libs.clear()
        gc.collect()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def _parts(lib: Lib) -> str:
    steps = ", ".join(f"{k} {w:.1f} s (CPU {c:.1f})" for k, (w, c) in lib.parts.items())
    return f"{lib.name}: {steps}; RSS +{lib.mem_mb:.0f} MB"


def _paths_of(lib: Lib) -> list[str]:
    return {"hnswlib": ["ids", "docs"], "faiss": ["ids"], "polymodal": ["ann", "ids", "docs"], "docarray": ["docs"]}[
        lib.name
    ]


def _exact_one(X: np.ndarray, q: np.ndarray) -> np.ndarray:
    s = X @ q
    top = np.argpartition(-s, K)[:K]
    return top[np.argsort(-s[top])]


def run_filtered(ds: Dataset, libs: dict[str, Lib], op: dict[str, int], args: argparse.Namespace) -> dict:
    """1% selectivity: each query keeps one category (query i -> category i % 100)."""
    nq = min(len(ds.Q), args.filter_queries)
    p: Polymodal = libs["polymodal"]  # type: ignore[assignment]
    h: RawHnsw = libs["hnswlib"]  # type: ignore[assignment]
    p.set_ef(op["polymodal"])
    h.index.set_ef(op["hnswlib"])
    cases: dict[str, Callable[[int, np.ndarray], list[int]]] = {
        FILTER_MAIN: lambda i, q: [
            int(x.id[1:]) for x in p.store.search(q, field="embedding", limit=K, where={"category": i % N_CAT})
        ],
        "polymodal: search(where=..., exact=False) (HNSW + filter callback)": lambda i, q: [
            int(x.id[1:])
            for x in p.store.search(q, field="embedding", limit=K, where={"category": i % N_CAT}, exact=False)
        ],
        "raw numpy: exact over the category's rows": lambda i, q: h.filtered_exact(q, i % N_CAT).tolist(),
        "raw hnswlib: knn_query(filter=callback)": lambda i, q: h.filtered(q, i % N_CAT).tolist(),
    }
    if "docarray" in libs and libs["docarray"].n == ds.n:  # type: ignore[attr-defined]
        d: DocArrayHnsw = libs["docarray"]  # type: ignore[assignment]
        d.set_ef(op["docarray"])
        cases["docarray: filter(category) then find"] = lambda i, q: d.filtered(q, i % N_CAT)
    out = {}
    for name, fn in cases.items():
        found, times, cpu = [], [], []
        for i, q in enumerate(ds.Q[:nq]):
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            f = fn(i, q)
            times.append(time.perf_counter_ns() - t0)
            cpu.append(time.thread_time_ns() - c0)
            found.append(f)
        out[name] = {
            "recall": recall(found, ds.gt_f[:nq]),
            "full": float(np.mean([len(f) == K for f in found])),
            "p50_ms": float(np.median(times)) / 1e6,
            "cpu_p50_ms": float(np.median(cpu)) / 1e6,
        }
        log(f"  filtered {name}: {out[name]}")
    return out


def run_crud(ds: Dataset, libs: dict[str, Lib], args: argparse.Namespace) -> dict:
    """Read one document by id, update one (upsert), delete one: median ms of ``args.crud`` each."""
    rng = np.random.default_rng(3)
    n_ops = args.crud
    out: dict[str, dict[str, float]] = {}
    p: Polymodal = libs["polymodal"]  # type: ignore[assignment]
    h: RawHnsw = libs["hnswlib"]  # type: ignore[assignment]
    rows = rng.choice(ds.n, size=3 * n_ops, replace=False)
    reads, updates, deletes = rows[:n_ops], rows[n_ops : 2 * n_ops], rows[2 * n_ops :]

    def med(fn: Callable[[int], object], which: np.ndarray) -> float:
        ts = []
        for i in which.tolist():
            t0 = time.perf_counter_ns()
            fn(i)
            ts.append(time.perf_counter_ns() - t0)
        return float(np.median(ts)) / 1e6

    def raw_read(i: int) -> object:
        return h.db.execute("SELECT body, vec FROM docs WHERE id = ?", (f"d{i}",)).fetchone()

    out["raw SQLite (+hnswlib)"] = {"read_ms": med(raw_read, reads)}
    out["polymodal"] = {
        "read_ms": med(lambda i: p.store.get(f"d{i}"), reads),
        "update_ms": med(
            lambda i: p.store.add(p.Doc(id=f"d{i}", text="updated", category=int(ds.cats[i]), embedding=ds.X[i])),
            updates,
        ),
        "delete_ms": med(lambda i: p.store.delete(f"d{i}"), deletes),
    }
    if "docarray" in libs:
        d: DocArrayHnsw = libs["docarray"]  # type: ignore[assignment]
        sel = lambda arr: arr[arr < d.n]  # noqa: E731
        out["docarray"] = {
            "read_ms": med(lambda i: d.index[f"d{i}"], sel(reads)),
            "update_ms": med(
                lambda i: d.index.index(
                    d.DocList[d.DADoc](
                        [d.DADoc(id=f"d{i}", text="updated", category=int(ds.cats[i]), embedding=ds.X[i])]
                    )
                ),
                sel(updates),
            ),
            "delete_ms": med(lambda i: d.index.__delitem__(f"d{i}"), sel(deletes)),
        }
    log(f"  crud {out}")
    return out


# -- report --------------------------------------------------------------------------------------
LABELS = {
    "numpy-exact:ids": "numpy brute force (ids + scores)",
    "hnswlib:ids": "raw hnswlib `knn_query` (ids + scores)",
    "hnswlib:docs": "raw hnswlib + raw SQLite fetch of the 10 rows",
    "faiss:ids": "raw faiss `IndexHNSWFlat.search` (ids + scores)",
    "polymodal:ann": "polymodal `AnnIndex.search` (internal, slots + scores)",
    "polymodal:ids": "polymodal `store.search_ids` (ids + scores)",
    "polymodal:docs": "polymodal `store.search` (Hits with the 10 documents)",
    "hnswlib:ids@same-ef": "raw hnswlib ids + scores at the common ef",
    "polymodal:ids@same-ef": "polymodal ids + scores at the common ef",
    "hnswlib:docs@same-ef": "raw hnswlib + raw SQLite fetch at the common ef",
    "polymodal:docs@same-ef": "polymodal `store.search` at the common ef",
    "docarray:docs": "DocArray `HnswDocumentIndex.find` (documents)",
}


def targets(res: dict) -> list[tuple[str, str, str, bool]]:
    """(target, measured, goal, pass) judged on CPU-time medians (robust on a shared machine);
    the wall-clock ratio is shown beside it."""
    lat, b = res["latency"], res["build"]

    def ratio(a: str, base: str, key: str = "p50_ms") -> tuple[float, float]:
        return lat[a]["cpu_" + key] / lat[base]["cpu_" + key], lat[a][key] / lat[base][key]

    def at_same(lib: str, path: str) -> str:
        return f"{lib}:{path}@same-ef" if f"{lib}:{path}@same-ef" in lat else f"{lib}:{path}"

    t = []
    same, op = res["same_ef"], res["op_ef"]
    rec = min(res["sweep"]["polymodal"][same], res["sweep"]["hnswlib"][same])
    c, w = ratio(at_same("polymodal", "ids"), at_same("hnswlib", "ids"))
    t.append(
        (
            "search p50, ids + scores, <= 1.2x raw hnswlib on the same data and parameters (M, "
            "ef_construction, ef: the smallest ef where both reach recall@10 >= 0.98)",
            f"{c:.2f}x (wall {w:.2f}x) at ef {same}, recall {rec:.3f} or more",
            "<= 1.2x",
            c <= 1.2 and rec >= TARGET_RECALL,
        )
    )
    if op["polymodal"] != op["hnswlib"]:
        c, w = ratio("polymodal:ids", "hnswlib:ids")
        t.append(
            (
                "(each at its own smallest ef with recall@10 >= 0.98) search p50, ids + scores, <= 1.2x raw hnswlib",
                f"{c:.2f}x (wall {w:.2f}x), polymodal at ef {op['polymodal']}, raw at ef {op['hnswlib']}",
                "<= 1.2x",
                c <= 1.2,
            )
        )
    # "at most 2x raw with the 10 documents loaded": judged like for like, against raw hnswlib plus a
    # raw SQLite fetch of the same 10 rows; the strict reading (against raw hnswlib returning ids
    # only, which loads nothing) is shown as its own row.
    c2, w2 = ratio("polymodal:docs", "hnswlib:docs")
    t.append(
        (
            "search p50 with the 10 documents loaded, <= 2x raw (raw hnswlib + raw SQLite fetch of the 10 rows)",
            f"{c2:.2f}x (wall {w2:.2f}x)",
            "<= 2x",
            c2 <= 2.0,
        )
    )
    c, w = ratio("polymodal:docs", "hnswlib:ids")
    t.append(
        (
            "(strict reading) search p50 with the 10 documents loaded, <= 2x raw hnswlib returning ids only",
            f"{c:.2f}x (wall {w:.2f}x)",
            "<= 2x",
            c <= 2.0,
        )
    )
    ci = b["polymodal"]["cpu_s"] / b["hnswlib"]["cpu_s"]
    wi = b["polymodal"]["wall_s"] / b["hnswlib"]["wall_s"]
    t.append(
        (
            "ingest (add all + checkpoint) <= 1.5x raw (hnswlib add + SQLite insert)",
            f"{ci:.2f}x CPU, {wi:.2f}x wall",
            "<= 1.5x",
            ci <= 1.5,
        )
    )
    if "docarray:docs" in lat:
        c, w = ratio("docarray:docs", "polymodal:docs")
        n_da = b["docarray"]["n"]
        extra = "" if n_da == res["n"] else f" (DocArray on {n_da:,} docs, polymodal on {res['n']:,})"
        t.append(
            (
                "per query >= 5x faster than DocArray HnswDocumentIndex",
                f"{c:.1f}x (wall {w:.1f}x){extra}",
                ">= 5x",
                c >= 5.0,
            )
        )
    f = res["filtered"][FILTER_MAIN]
    t.append(
        (
            "filtered search at 1%: `limit` results, recall >= 0.95",
            f"recall {f['recall']:.3f}, {f['full'] * 100:.0f}% of queries got 10",
            "10 results, >= 0.95",
            f["full"] == 1.0 and f["recall"] >= 0.95,
        )
    )
    return t


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def recall_table(sweep: dict[str, dict[int, float]]) -> list[str]:
    """The "Recall@10 by ef" table (one column per library), as Markdown lines."""
    libs = list(sweep)
    out = ["", "Recall@10 by ef:", "", "| ef | " + " | ".join(libs) + " |", "|---|" + "---:|" * len(libs)]
    for ef in sorted({ef for sw in sweep.values() for ef in sw}):
        out.append(f"| {ef} | " + " | ".join(fmt(sweep[n].get(ef), 3) for n in libs) + " |")
    return out


def report(results: list[dict], args: argparse.Namespace, env: str) -> str:
    out = [f"Environment: {env}", ""]
    for res in results:
        res["sweep"] = {n: {int(k): v for k, v in sw.items()} for n, sw in res["sweep"].items()}
        b, lat, op = res["build"], res["latency"], res["op_ef"]
        run = res.get("run", {})
        out += [
            f"### {res['n']:,} x {res['dim']} ({res['dataset']})",
            "",
            res["note"] + ".",
            "",
            f"Run: `{run.get('command', '?')}` under `flock /tmp/polymodal-bench.lock`, {run.get('started', '?')} "
            f"to {run.get('ended', '?')}; load average (1/5/15 min) {run.get('loadavg_start', '?')} at start, "
            f"{run.get('loadavg_end', '?')} at end.",
            "",
            f"HNSW M={M}, ef_construction={EFC}, cosine; {res['queries']:,} queries for recall; latency on "
            f"{min(res['queries'], args.latency_queries):,} single queries, median of {args.reps} interleaved "
            f"runs; ef = the smallest of {list(EFS)} with recall@10 >= {TARGET_RECALL}. CPU = this thread's "
            "CPU time per call (process CPU time for ingest), immune to other processes' load; wall = clock time.",
            "",
            *_docarray_cap_note(res),
            "| ingest | wall s | CPU s | CPU x raw | steps: wall s (CPU s) | RSS growth MB |",
            "|---|---:|---:|---:|---|---:|",
        ]
        names = {
            "hnswlib": "raw hnswlib `add_items` + raw SQLite insert",
            "faiss": "raw faiss `IndexHNSWFlat.add`",
            "polymodal": "polymodal `add` (10k batches) + `checkpoint`",
            "polymodal+fts": "polymodal `add` with the default `text_fields` (FTS5 on; HNSW build not repeated)",
            "docarray": "DocArray `HnswDocumentIndex.index` (10k batches)",
        }
        base = b["hnswlib"]["cpu_s"]
        for key, label in names.items():
            if key not in b:
                continue
            e = b[key]
            steps = ", ".join(f"{k} {fmt(w, 1)} ({fmt(c, 1)})" for k, (w, c) in e["parts"].items())
            if key == "polymodal":
                steps += f"; {fmt(e['disk_mb'], 0)} MB on disk"
            if key == "docarray" and e["n"] != res["n"]:
                label += f", {e['n']:,} docs"
            out.append(
                f"| {label} | {fmt(e['wall_s'], 1)} | {fmt(e['cpu_s'], 1)} | {fmt(e['cpu_s'] / base)} | "
                f"{steps} | {fmt(e.get('mem_mb'), 0)} |"
            )
        raw = lat["hnswlib:ids"]
        out += [
            "",
            "| search (single query, k=10) | ef | recall@10 | p50 CPU ms | p50 wall ms | p99 wall ms | "
            "QPS (wall) | p50 CPU / raw hnswlib | p50 wall / raw hnswlib |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for key, label in LABELS.items():
            if key not in lat:
                continue
            lib = key.split(":")[0]
            ef = res["same_ef"] if "@" in key else op.get(lib)
            rec = 1.0 if lib == "numpy-exact" else res["sweep"][lib][ef]
            if key == "polymodal:docs":
                rec = res["recall_docs_path"]
            if key == "docarray:docs" and b["docarray"]["n"] != res["n"]:
                label += f" on {b['docarray']['n']:,} docs"
            m = lat[key]
            out.append(
                f"| {label} | {ef or '-'} | {rec:.3f} | {fmt(m['cpu_p50_ms'], 3)} | {fmt(m['p50_ms'], 3)} | "
                f"{fmt(m['p99_ms'], 3)} | {fmt(m['qps'], 0)} | {fmt(m['cpu_p50_ms'] / raw['cpu_p50_ms'])} | "
                f"{fmt(m['p50_ms'] / raw['p50_ms'])} |"
            )
        out += recall_table(res["sweep"])
        nf = min(res["queries"], args.filter_queries)
        out += [
            "",
            f"Filtered search, 1% selectivity (`where={{'category': c}}`, {nf} queries, each library at its ef above):",
            "",
            "| path | recall@10 vs exact filtered | queries with 10 results | p50 CPU ms | p50 wall ms |",
            "|---|---:|---:|---:|---:|",
        ]
        out += [
            f"| {n} | {v['recall']:.3f} | {v['full'] * 100:.0f}% | {fmt(v['cpu_p50_ms'], 3)} | {fmt(v['p50_ms'], 3)} |"
            for n, v in res["filtered"].items()
        ]
        out += [
            "",
            f"Read / update (upsert) / delete one document, median wall ms of {args.crud}:",
            "",
            "| | read | update | delete |",
            "|---|---:|---:|---:|",
        ]
        out += [
            f"| {n} | {fmt(v.get('read_ms'), 3)} | {fmt(v.get('update_ms'), 3)} | {fmt(v.get('delete_ms'), 3)} |"
            for n, v in res["crud"].items()
        ]
        out += _docarray_style(res)
        out += ["", "| target | measured | goal | |", "|---|---|---|---|"]
        out += [f"| {n} | {m} | {g} | {'PASS' if ok else '**FAIL**'} |" for n, m, g, ok in targets(res)]
        out.append("")
    return "\n".join(out)


def _summary(gathered: list[dict]) -> str:
    """The issue's speed targets, one column per size measured."""
    if not gathered:
        return ""
    cols = [targets(r) for r in gathered]
    head = " | ".join(f"{r['n']:,} x {r['dim']}" for r in gathered)
    out = ["## Targets", "", f"| target | {head} |", "|---|" + "---|" * len(gathered)]
    for i, (name, *_rest) in enumerate(cols[0]):
        cells = []
        for col in cols:
            match = [t for t in col if t[0] == name]
            cells.append(f"{'PASS' if match[0][3] else '**FAIL**'}: {match[0][1]}" if match else "-")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
        del i
    out += ["", NOTES]
    return "\n".join(out) + "\n\n"


def _docarray_cap_note(res: dict) -> list[str]:
    """A plain statement when DocArray indexed fewer documents than the others (--docarray-max)."""
    da = res["build"].get("docarray")
    if not da or da["n"] == res["n"]:
        return []
    rate = da["n"] / da["wall_s"]
    return [
        f"**DocArray was capped at {da['n']:,} of the {res['n']:,} documents** (`--docarray-max`), to keep the run "
        "inside one hold of the shared benchmark lock; it indexed them at {:,.0f} documents/s, so the full set would "
        "have taken about {:.0f} min or more (HNSW insertion slows as the graph grows). Its recall is measured "
        "against the exact top 10 of those documents, and its filtered search (a scan of the matching documents) "
        "is not run. Its query latency on the smaller index favours DocArray, so the speed ratio to it is a "
        "lower bound.".format(rate, res["n"] / rate / 60),
        "",
    ]


def _docarray_style(res: dict) -> list[str]:
    """The columns of DocArray's one-million-document benchmark (docarray.org, "One Million Scale
    Benchmark": M, ef_construct, ef, Recall@10, find by vector, find by condition, create, read,
    update, delete), end to end through each library's document API, single operations."""
    b, lat, op, flt_, crud = res["build"], res["latency"], res["op_ef"], res["filtered"], res["crud"]
    rows = [
        ("polymodal (embedded store)", "polymodal", "polymodal:docs", FILTER_MAIN, "polymodal"),
        (
            "raw hnswlib + raw SQLite table",
            "hnswlib",
            "hnswlib:docs",
            "raw hnswlib: knn_query(filter=callback)",
            "raw SQLite (+hnswlib)",
        ),
        ("DocArray HnswDocumentIndex", "docarray", "docarray:docs", "docarray: filter(category) then find", "docarray"),
    ]
    out = [
        "",
        f"In the layout of DocArray's one-million-document benchmark ({res['n']:,} x {res['dim']}; find by vector: "
        "single query returning the 10 documents; find by condition: the 1% `category` filter with a vector query; "
        "create: ingest of all documents, index included; read/update/delete: one document by id, median):",
        "",
        "| store | docs | M | ef_construct | ef | Recall@10 | find by vector p50 ms | QPS | find by condition p50 ms "
        "| create s | read ms | update ms | delete ms | RSS growth MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, lib, key, fkey, ckey in rows:
        if key not in lat:
            continue
        n = b[lib].get("n", res["n"])
        rec = res["recall_docs_path"] if lib == "polymodal" else res["sweep"][lib][op[lib]]
        f = flt_.get(fkey)
        c = crud.get(ckey, {})
        out.append(
            f"| {label} | {n:,} | {M} | {EFC} | {op[lib]} | {rec:.3f} | {fmt(lat[key]['p50_ms'], 3)} | "
            f"{fmt(lat[key]['qps'], 0)} | {fmt(f['p50_ms'] if f else None, 3)} | {fmt(b[lib]['wall_s'], 1)} | "
            f"{fmt(c.get('read_ms'), 3)} | {fmt(c.get('update_ms'), 3)} | {fmt(c.get('delete_ms'), 3)} | "
            f"{fmt(b[lib].get('mem_mb'), 0)} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("100k", "1m", "both"), default="both")
    ap.add_argument("--quick", action="store_true", help="20,000 synthetic vectors; no files written")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--filter-queries", type=int, default=300)
    ap.add_argument("--crud", type=int, default=100)
    ap.add_argument("--docarray-max", type=int, default=1_000_000, help="index at most this many docs in DocArray")
    ap.add_argument("--no-fts", dest="fts", action="store_false", help="skip the ingest run with FTS5 on")
    ap.add_argument("--tmp", default=None, help="directory for the stores (default: the system temp dir)")
    ap.add_argument("--report", action="store_true", help="only rewrite store.md/json from store-*.json")
    args = ap.parse_args()
    if args.report:
        write_results()
        return
    if args.quick:
        args.reps, args.latency_queries, args.filter_queries, args.crud = 1, 200, 100, 20
    import docarray
    import faiss
    import hnswlib  # noqa: F401

    import polymodal

    env = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, hnswlib {_version('hnswlib')}, faiss {faiss.__version__}, "
        f"DocArray {docarray.__version__}, polymodal {polymodal.__version__}, SQLite {sqlite3.sqlite_version}"
    )
    env += f", git {_git()}"
    log(env)
    for size in ("100k", "1m") if args.size == "both" else (args.size,):
        load0 = Path("/proc/loadavg").read_text().split()[:3]
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        ds = load_dataset(size, args.quick, 200 if args.quick else 1000)
        res = run_dataset(ds, args)
        res["run"] = {
            "started": started,
            "ended": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "loadavg_start": " ".join(load0),
            "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "command": "python " + " ".join(sys.argv),
        }
        del ds
        gc.collect()
        res["env"], res["args"] = env, {k: v for k, v in vars(args).items() if k != "tmp"}
        print(report([res], args, env))
        if not args.quick:  # one file per size; store.md gathers every size measured so far
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"store-{size}.json").write_text(json.dumps(res, indent=1, default=str))
    if not args.quick:
        write_results()


def write_results() -> None:
    """store.md and store.json from every store-<size>.json measured so far."""
    gathered = [
        json.loads((RESULTS / f"store-{s}.json").read_text())
        for s in ("100k", "1m")
        if (RESULTS / f"store-{s}.json").exists()
    ]
    text = "\n".join(report([r], argparse.Namespace(**r["args"]), r["env"]) for r in gathered)
    (RESULTS / "store.md").write_text(
        "<!-- written by benchmarks/bench_store.py from store-*.json -->\n\n" + _summary(gathered) + text
    )
    for r in gathered:
        r["targets"] = [{"target": n, "measured": m, "goal": g, "pass": ok} for n, m, g, ok in targets(r)]
    (RESULTS / "store.json").write_text(json.dumps(gathered, indent=1, default=str))


def _git() -> str:
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src/polymodal/store"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + (" + uncommitted changes in src/polymodal/store" if dirty else "")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
