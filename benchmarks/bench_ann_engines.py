# ruff: noqa: N803, N806
"""Why the embedded store uses hnswlib: hnswlib, faiss and usearch on the same data and parameters.

The store's ANN index may be built on any of three libraries (hnswlib, faiss, usearch). This
measures all three on this machine, one process, one run, same vectors, same HNSW parameters:
M / connectivity 16, ef_construction / expansion_add 200, inner product on unit vectors, built
with 2 threads, queried single-threaded one query at a time. usearch runs with three storage
types (f32, f16, i8); the others store f32.

Per engine: build wall and CPU seconds, RSS growth and serialized size, recall@10 against exact
top-10 for an ef sweep (stopping at recall >= 0.999 or at twice the operating point), then p50 and
p99 single-query latency (this thread's CPU time and wall time) at the operating point (smallest
ef with recall@10 >= 0.98) and at hnswlib's operating ef, median of 3 repetitions interleaved
across engines, 20 warm-up queries each. Every index is built, swept, saved and deleted before
the next is built; the latency repetitions load each one back from its file in turn, so at most
one index is in memory. A tiny runtime probe checks, per library, the features the store needs
(per-query filter, delete / update by label in place, save / load) and prints what it found.

Data: ``bench_store.load_dataset`` (100,000 x 512 real MiniLM embeddings projected to 512-d, or
1,000,000 x 128 Gaussian mixture with ``--size 1m``).

    python benchmarks/bench_ann_engines.py             # writes benchmarks/results/ann_engines.{md,json}
    python benchmarks/bench_ann_engines.py --quick     # 20,000 synthetic vectors; no files written
    python benchmarks/bench_ann_engines.py --size 1m   # writes benchmarks/results/ann_engines-1m.{md,json}
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, as every single-query path here
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import gc
import inspect
import json
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_store as bs
import store_data

M, EFC, K = 16, 200, 10
EFS = (10, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256)
TARGET_RECALL = 0.98
BUILD_THREADS = 2
ENGINES = ("hnswlib", "faiss", "usearch-f32", "usearch-f16", "usearch-i8")
BASE = "hnswlib"
RESULTS = Path(__file__).resolve().parent / "results"
log = bs.log


# -- the engines ---------------------------------------------------------------------------------
class Engine:
    """One library: ``build``, ``batch(Q, ef)`` for recall, ``one(q)`` for latency, ``save``/``load``."""

    name = ""
    ext = ""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index: object = None

    def build(self, X: np.ndarray) -> None:
        raise NotImplementedError

    def set_ef(self, ef: int) -> None:
        raise NotImplementedError

    def batch(self, Q: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def one(self, q: np.ndarray) -> object:
        raise NotImplementedError

    def save(self, path: Path) -> None:
        raise NotImplementedError

    def load(self, path: Path, n: int) -> None:
        raise NotImplementedError

    def extra(self) -> dict[str, object]:
        return {}

    def close(self) -> None:
        self.index = None
        gc.collect()


class Hnswlib(Engine):
    name = "hnswlib"

    def build(self, X: np.ndarray) -> None:
        import hnswlib

        self.index = idx = hnswlib.Index(space="ip", dim=self.dim)
        idx.init_index(max_elements=len(X), M=M, ef_construction=EFC, random_seed=42)
        idx.add_items(X, np.arange(len(X)), num_threads=BUILD_THREADS)

    def set_ef(self, ef: int) -> None:
        self.index.set_ef(ef)  # type: ignore[attr-defined]

    def batch(self, Q: np.ndarray) -> np.ndarray:
        return self.index.knn_query(Q, k=K, num_threads=2)[0]  # type: ignore[attr-defined]

    def one(self, q: np.ndarray) -> object:
        return self.index.knn_query(q, k=K, num_threads=1)  # type: ignore[attr-defined]

    def save(self, path: Path) -> None:
        self.index.save_index(str(path))  # type: ignore[attr-defined]

    def load(self, path: Path, n: int) -> None:
        import hnswlib

        self.index = idx = hnswlib.Index(space="ip", dim=self.dim)
        idx.load_index(str(path), max_elements=n)


class Faiss(Engine):
    name = "faiss"

    def build(self, X: np.ndarray) -> None:
        import faiss

        faiss.omp_set_num_threads(BUILD_THREADS)
        self.index = idx = faiss.IndexHNSWFlat(self.dim, M, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = EFC
        idx.add(X)

    def set_ef(self, ef: int) -> None:
        self.index.hnsw.efSearch = ef  # type: ignore[attr-defined]

    def batch(self, Q: np.ndarray) -> np.ndarray:
        import faiss

        faiss.omp_set_num_threads(2)
        labels = self.index.search(Q, K)[1]  # type: ignore[attr-defined]
        faiss.omp_set_num_threads(1)  # single-query latency: no OpenMP pool wake-ups
        return labels

    def one(self, q: np.ndarray) -> object:
        return self.index.search(q[None], K)  # type: ignore[attr-defined]

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))

    def load(self, path: Path, n: int) -> None:
        import faiss

        faiss.omp_set_num_threads(1)
        self.index = faiss.read_index(str(path))


class Usearch(Engine):
    def __init__(self, dim: int, dtype: str) -> None:
        super().__init__(dim)
        self.dtype = dtype
        self.name = f"usearch-{dtype}"

    def _new(self) -> object:
        from usearch.index import Index

        return Index(ndim=self.dim, metric="ip", dtype=self.dtype, connectivity=M, expansion_add=EFC)

    def build(self, X: np.ndarray) -> None:
        self.index = idx = self._new()
        idx.add(np.arange(len(X), dtype=np.uint64), X, threads=BUILD_THREADS)  # type: ignore[attr-defined]

    def set_ef(self, ef: int) -> None:
        self.index.expansion_search = ef  # type: ignore[attr-defined]

    def batch(self, Q: np.ndarray) -> np.ndarray:
        return self.index.search(Q, K, threads=2).keys.astype(np.int64)  # type: ignore[attr-defined]

    def one(self, q: np.ndarray) -> object:
        return self.index.search(q, K, threads=1)  # type: ignore[attr-defined]

    def save(self, path: Path) -> None:
        self.index.save(str(path))  # type: ignore[attr-defined]

    def load(self, path: Path, n: int) -> None:
        self.index = idx = self._new()
        idx.load(str(path))  # type: ignore[attr-defined]

    def extra(self) -> dict[str, object]:
        idx = self.index
        return {
            "hardware_acceleration": idx.hardware_acceleration,  # type: ignore[attr-defined]
            "memory_usage_mb": idx.memory_usage / 2**20,  # type: ignore[attr-defined]
        }


def make(name: str, dim: int) -> Engine:
    if name == "hnswlib":
        return Hnswlib(dim)
    if name == "faiss":
        return Faiss(dim)
    return Usearch(dim, name.split("-")[1])


# -- feature probes ------------------------------------------------------------------------------
def _probe(fn: Callable[[], str]) -> tuple[bool, str]:
    """Run one probe: (works, what was seen). Any exception means the feature is not there."""
    try:
        return True, fn()
    except Exception as e:  # noqa: BLE001 -- a failing call is the finding
        msg = (str(e).strip().splitlines() or [""])[0]
        msg = re.sub(r"^Error in .*? at \S+: ", "", msg)  # faiss: drop the C++ signature and source line
        return False, f"{type(e).__name__}: {msg[:160]}"


def probe_features(tmp: Path) -> dict[str, dict[str, dict[str, object]]]:
    """Tiny indexes (500 x 16) asking each library for what the store uses hnswlib for."""
    import faiss
    import hnswlib
    from usearch.index import Index as UIndex

    rng = np.random.default_rng(3)
    n, d = 500, 16
    X = rng.standard_normal((n, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    new = rng.standard_normal(d).astype(np.float32)
    new /= np.linalg.norm(new)
    q = X[5]
    even = np.arange(0, n, 2, dtype=np.int64)
    out: dict[str, dict[str, dict[str, object]]] = {}

    def rec(lib: str, feature: str, result: tuple[bool, str]) -> None:
        out.setdefault(lib, {})[feature] = {"ok": result[0], "seen": result[1]}
        log(f"  probe {lib} / {feature}: {'yes' if result[0] else 'NO'} -- {result[1]}")

    # hnswlib
    def h_new() -> object:
        h = hnswlib.Index(space="ip", dim=d)
        h.init_index(max_elements=n, M=M, ef_construction=EFC)
        h.add_items(X, np.arange(n))
        h.set_ef(64)
        return h

    def h_filter() -> str:
        h = h_new()
        labels, _ = h.knn_query(q, k=K, filter=lambda label: label % 2 == 0)
        got = labels[0].tolist()
        assert len(got) == K and all(x % 2 == 0 for x in got), got
        return f"knn_query(filter=callable) returned {K} labels, all allowed"

    def h_delete() -> str:
        h = h_new()
        h.mark_deleted(5)
        assert 5 not in h.knn_query(q, k=K)[0][0].tolist(), "deleted label returned"
        h.add_items(new[None], np.array([5]))  # re-add the deleted label with a new vector
        top = int(h.knn_query(new, k=1)[0][0][0])
        assert top == 5, top
        count = h.get_current_count()
        return f"mark_deleted(5) hides it; add_items(new, [5]) revives it with the new vector, count={count}"

    def h_update() -> str:
        h = h_new()
        h.add_items(new[None], np.array([7]))  # overwrite a live label
        top = int(h.knn_query(new, k=1)[0][0][0])
        assert top == 7, top
        assert h.get_current_count() == n, h.get_current_count()
        return f"add_items(new, [7]) on a live label replaces its vector, count stays {n}"

    def h_save() -> str:
        h = h_new()
        h.save_index(str(tmp / "p.hnsw"))
        h2 = hnswlib.Index(space="ip", dim=d)
        h2.load_index(str(tmp / "p.hnsw"), max_elements=n)
        h2.set_ef(64)
        assert (h2.knn_query(q, k=K)[0] == h.knn_query(q, k=K)[0]).all()
        return "save_index / load_index: same results"

    rec("hnswlib", "filter", _probe(h_filter))
    rec("hnswlib", "delete_readd", _probe(h_delete))
    rec("hnswlib", "overwrite", _probe(h_update))
    rec("hnswlib", "save_load", _probe(h_save))

    # faiss IndexHNSWFlat
    def f_new() -> object:
        f = faiss.IndexHNSWFlat(d, M, faiss.METRIC_INNER_PRODUCT)
        f.hnsw.efConstruction = EFC
        f.add(X)
        f.hnsw.efSearch = 64
        return f

    def f_filter() -> str:
        f = f_new()
        sel = faiss.IDSelectorBatch(even)
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=64)
        labels = f.search(q[None], K, params=params)[1][0].tolist()
        assert len(labels) == K and all(x % 2 == 0 for x in labels), labels
        return (
            f"search(params=SearchParametersHNSW(sel=IDSelectorBatch)) returned {K} labels, all allowed "
            "(a C++ selector, no Python callback)"
        )

    def f_delete() -> str:
        f = f_new()
        f.remove_ids(np.array([5], dtype=np.int64))
        return f"remove_ids worked, ntotal={f.ntotal}"

    def f_update() -> str:
        f = f_new()
        f.add_with_ids(new[None], np.array([5], dtype=np.int64))
        return "add_with_ids worked"

    def f_save() -> str:
        f = f_new()
        faiss.write_index(f, str(tmp / "p.faiss"))
        f2 = faiss.read_index(str(tmp / "p.faiss"))
        f2.hnsw.efSearch = 64
        assert (f2.search(q[None], K)[1] == f.search(q[None], K)[1]).all()
        return "write_index / read_index: same results"

    rec("faiss", "filter", _probe(f_filter))
    rec("faiss", "delete_readd", _probe(f_delete))
    rec("faiss", "overwrite", _probe(f_update))
    rec("faiss", "save_load", _probe(f_save))

    # usearch
    def u_new() -> object:
        u = UIndex(ndim=d, metric="ip", dtype="f32", connectivity=M, expansion_add=EFC, expansion_search=64)
        u.add(np.arange(n, dtype=np.uint64), X)
        return u

    def u_filter() -> str:
        u = u_new()
        params = [p for p in inspect.signature(u.search).parameters if "filter" in p or "predicate" in p]
        got = u.search(q, K, filter=lambda key: key % 2 == 0)  # type: ignore[call-arg]
        keys = got.keys.tolist()
        assert all(k % 2 == 0 for k in keys), f"filter= accepted but ignored: {keys}"
        return f"search(filter=) works; signature filter params: {params}"

    def u_delete() -> str:
        u = u_new()
        removed = u.remove(5)
        assert 5 not in u.search(q, K).keys.tolist(), "removed key returned"
        u.add(5, new)  # re-add the removed key with a new vector
        top = int(u.search(new, 1).keys[0])
        assert top == 5, top
        return f"remove(5) -> {removed}, key gone from results; add(5, new) after remove works, len={len(u)}"

    def u_update_live() -> str:
        u = u_new()
        u.add(7, new)  # a live key, without remove first
        hits = [int(k) for k in u.search(new, 3).keys]
        return f"add on a live key accepted: len={len(u)}, count(7)={u.count(7)}, top-3 for the new vector {hits}"

    def u_save() -> str:
        u = u_new()
        u.save(str(tmp / "p.usearch"))
        u2 = UIndex.restore(str(tmp / "p.usearch"))
        assert u2 is not None
        u2.expansion_search = 64
        assert (u2.search(q, K).keys == u.search(q, K).keys).all()
        return "save / restore: same results"

    rec("usearch", "filter", _probe(u_filter))
    rec("usearch", "delete_readd", _probe(u_delete))
    rec("usearch", "overwrite", _probe(u_update_live))
    rec("usearch", "save_load", _probe(u_save))
    return out


# -- the run -------------------------------------------------------------------------------------
def run(ds: bs.Dataset, args: argparse.Namespace, tmp: Path) -> dict:
    res: dict = {"dataset": ds.name, "note": ds.note, "n": ds.n, "dim": ds.dim, "queries": len(ds.Q)}
    log("feature probes ...")
    res["features"] = probe_features(tmp)
    engines = [e for e in ENGINES if e in args.engines]
    build: dict[str, dict] = {}
    sweep: dict[str, dict[int, float]] = {}
    op: dict[str, int | None] = {}
    files: dict[str, Path] = {}
    for name in engines:
        eng = make(name, ds.dim)
        log(f"[{ds.name}] {name}: build ...")
        m0 = bs.rss_mb()
        with bs.Clock() as c:
            eng.build(ds.X)
        mem = bs.rss_mb() - m0
        files[name] = tmp / f"{name}.index"
        eng.save(files[name])
        build[name] = {
            "wall_s": c.wall,
            "cpu_s": c.cpu,
            "rss_mb": mem,
            "file_mb": files[name].stat().st_size / 2**20,
            **eng.extra(),
        }
        log(f"  {name}: {build[name]}")
        sweep[name] = {}
        op[name] = None
        for ef in EFS:
            eng.set_ef(ef)
            r = bs.recall(eng.batch(ds.Q), ds.gt)
            sweep[name][ef] = r
            if r >= TARGET_RECALL and op[name] is None:
                op[name] = ef
            found = op[name]
            if r >= 0.999 or (found is not None and ef >= 2 * found):
                break
        log(f"  {name}: recall@10 by ef {sweep[name]} -> ef={op[name]}")
        eng.close()
        del eng
        gc.collect()
    res["build"], res["sweep"], res["op_ef"] = build, sweep, op

    # latency: at each engine's operating point, and all at hnswlib's operating ef
    base_ef = op.get(BASE) or 64
    Q = ds.Q[: args.latency_queries]
    runs: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in engines}
    recall_at: dict[str, dict[str, float]] = {name: {} for name in engines}
    for rep in range(args.reps):
        for name in engines:
            eng = make(name, ds.dim)
            eng.load(files[name], ds.n)
            points = {"base_ef": base_ef}
            ef_op = op[name]
            if ef_op is not None:
                points["op"] = ef_op
            for label, ef in points.items():
                eng.set_ef(ef)
                if rep == 0:  # recall of the loaded index at this ef, as a check on save / load
                    recall_at[name][label] = bs.recall(eng.batch(ds.Q), ds.gt)
                runs[name].setdefault(label, []).append(bs.time_calls(eng.one, Q))
            eng.close()
            del eng
            gc.collect()
        log(f"  latency repetition {rep + 1}/{args.reps} done")
    res["latency"] = {name: {label: bs.median_runs(r) for label, r in by.items()} for name, by in runs.items()}
    res["recall_at_timed_ef"] = recall_at
    res["base_ef"] = base_ef
    return res


# -- report --------------------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def report(res: dict, env: str) -> str:
    engines = list(res["build"])
    b, lat, op = res["build"], res["latency"], res["op_ef"]
    base_ef = res["base_ef"]
    out = [
        f"## ANN engines: {res['n']:,} x {res['dim']}",
        "",
        f"Data: {res['note']}. {res['queries']:,} queries, recall@10 against exact top-10 by inner product. "
        f"M / connectivity {M}, ef_construction / expansion_add {EFC}, built with {BUILD_THREADS} threads; "
        f"latency is one query at a time on one thread, {res['args']['latency_queries']} queries after 20 "
        f"warm-up, median of {res['args']['reps']} repetitions interleaved across engines (each index loaded "
        "back from its file for each repetition). CPU = this thread's CPU time (`time.thread_time_ns`).",
        "",
        "### Build",
        "",
        "| engine | build wall s | build CPU s | wall vs hnswlib | RSS growth MB | serialized MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in engines:
        out.append(
            f"| {e} | {b[e]['wall_s']:.1f} | {b[e]['cpu_s']:.1f} | {_ratio(b[e]['wall_s'], b[BASE]['wall_s'])} "
            f"| {b[e]['rss_mb']:.0f} | {b[e]['file_mb']:.0f} |"
        )
    out += [
        "",
        "### Single-query latency at the operating point (smallest ef with recall@10 >= 0.98)",
        "",
        "| engine | ef | recall@10 | CPU p50 ms | CPU p99 ms | wall p50 ms | wall p99 ms | CPU p50 vs hnswlib "
        "| wall p50 vs hnswlib |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = lat[BASE].get("op")
    for e in engines:
        if op[e] is None:
            best_ef = max(res["sweep"][e], key=lambda ef: (res["sweep"][e][ef], -int(ef)))
            out.append(
                f"| {e} | not reached | max {res['sweep'][e][best_ef]:.3f} (ef {best_ef}) | - | - | - | - | - | - |"
            )
            continue
        t = lat[e]["op"]
        out.append(
            f"| {e} | {op[e]} | {res['sweep'][e][op[e]]:.3f} | {t['cpu_p50_ms']:.3f} | {t['cpu_p99_ms']:.3f} "
            f"| {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {_ratio(t['cpu_p50_ms'], base and base['cpu_p50_ms'])} "
            f"| {_ratio(t['p50_ms'], base and base['p50_ms'])} |"
        )
    out += [
        "",
        f"### Single-query latency at equal ef ({base_ef}, hnswlib's operating point)",
        "",
        "| engine | recall@10 | CPU p50 ms | CPU p99 ms | wall p50 ms | wall p99 ms | CPU p50 vs hnswlib "
        "| wall p50 vs hnswlib |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = lat[BASE]["base_ef"]
    for e in engines:
        t = lat[e]["base_ef"]
        out.append(
            f"| {e} | {res['recall_at_timed_ef'][e]['base_ef']:.3f} | {t['cpu_p50_ms']:.3f} | {t['cpu_p99_ms']:.3f} "
            f"| {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {_ratio(t['cpu_p50_ms'], base['cpu_p50_ms'])} "
            f"| {_ratio(t['p50_ms'], base['p50_ms'])} |"
        )
    efs = sorted({int(ef) for s in res["sweep"].values() for ef in s})
    out += ["", "### Recall@10 by ef", "", "| ef | " + " | ".join(engines) + " |", "|---:|" + "---:|" * len(engines)]
    for ef in efs:
        cells = []
        for e in engines:
            r = res["sweep"][e].get(ef, res["sweep"][e].get(str(ef)))
            cells.append("" if r is None else f"{r:.3f}")
        out.append(f"| {ef} | " + " | ".join(cells) + " |")
    out += ["", *features_table(res["features"]), "", *summary(res)]
    accel = {e: b[e]["hardware_acceleration"] for e in engines if "hardware_acceleration" in b[e]}
    if accel:
        out += [
            "",
            "usearch kernels used (`hardware_acceleration`): " + ", ".join(f"{e} {a}" for e, a in accel.items()),
        ]
    out += ["", f"Environment: {env}", ""]
    return "\n".join(out)


def summary(res: dict) -> list[str]:
    """A few measured sentences: what the tables above say, against hnswlib."""
    b, lat, op, feat = res["build"], res["latency"], res["op_ef"], res["features"]
    speed, build = [], []
    for e in b:
        if e == BASE:
            continue
        build.append(f"{e} {b[e]['wall_s'] / b[BASE]['wall_s']:.2f}x")
        if op[e] is None:
            speed.append(f"{e} never reached recall@10 {TARGET_RECALL} (max {max(res['sweep'][e].values()):.3f})")
        else:
            speed.append(f"{e} {lat[e]['op']['cpu_p50_ms'] / lat[BASE]['op']['cpu_p50_ms']:.2f}x at ef {op[e]}")
    missing = [
        f"{label}: {what}"
        for lib, label in (("faiss", "faiss IndexHNSWFlat"), ("usearch", "usearch"))
        for what, key in (
            ("per-query filter", "filter"),
            ("delete", "delete_readd"),
            ("overwrite a live label", "overwrite"),
            ("save/load", "save_load"),
        )
        if not feat[lib][key]["ok"]
    ]
    return [
        "### Summary (computed from this run)",
        "",
        f"* Query CPU p50 at recall@10 >= {TARGET_RECALL}, against hnswlib at ef {op[BASE]} "
        f"({lat[BASE]['op']['cpu_p50_ms']:.3f} ms): " + "; ".join(speed) + ".",
        f"* Build wall time against hnswlib ({b[BASE]['wall_s']:.1f} s): " + "; ".join(build) + ".",
        "* Missing in the probes above (hnswlib had every feature probed: "
        f"{'yes' if all(v['ok'] for v in feat[BASE].values()) else 'NO'}): " + "; ".join(missing) + ". "
        "usearch updates a key as remove + add (two calls).",
    ]


def _cell(f: dict[str, dict[str, object]], key: str) -> str:
    p = f.get(key)
    if p is None:
        return "-"
    return f"{'yes' if p['ok'] else '**no**'}: {str(p['seen']).replace('|', '/')}"


def features_table(feat: dict[str, dict[str, dict[str, object]]]) -> list[str]:
    h, f, u = feat["hnswlib"], feat["faiss"], feat["usearch"]
    return [
        "### Features the store needs (runtime probes on a 500 x 16 index, this run)",
        "",
        "| feature | hnswlib | faiss `IndexHNSWFlat` | usearch |",
        "|---|---|---|---|",
        f"| per-query filter | {_cell(h, 'filter')} | {_cell(f, 'filter')} | {_cell(u, 'filter')} |",
        f"| delete a label, then re-add it | {_cell(h, 'delete_readd')} | {_cell(f, 'delete_readd')} "
        f"| {_cell(u, 'delete_readd')} |",
        f"| overwrite a live label's vector in one call | {_cell(h, 'overwrite')} | {_cell(f, 'overwrite')} "
        f"| {_cell(u, 'overwrite')} |",
        f"| save / load | {_cell(h, 'save_load')} | {_cell(f, 'save_load')} | {_cell(u, 'save_load')} |",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("100k", "1m"), default="100k")
    ap.add_argument("--quick", action="store_true", help="20,000 synthetic vectors; no files written")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-queries", type=int, default=1000)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    ap.add_argument("--tmp", default=None, help="directory for the saved indexes (default: the system temp dir)")
    args = ap.parse_args()
    if BASE not in args.engines:
        ap.error("--engines must include hnswlib (the baseline)")
    if args.quick:
        args.reps, args.latency_queries = 1, 200
    import faiss
    import usearch

    env = (
        f"{store_data.cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
        f"hnswlib {bs._version('hnswlib')}, faiss {faiss.__version__}, usearch {usearch.__version__}, git {bs._git()}"
    )
    log(env)
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    ds = bs.load_dataset(args.size, args.quick, 200 if args.quick else 1000)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ann-", dir=args.tmp))
    try:
        res = run(ds, args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["run"] = {
        "started": started,
        "ended": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "loadavg_start": " ".join(load0),
        "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "command": "python " + " ".join(sys.argv),
    }
    res["env"], res["args"] = env, {k: v for k, v in vars(args).items() if k != "tmp"}
    text = report(res, env)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        stem = "ann_engines" if args.size == "100k" else f"ann_engines-{args.size}"
        (RESULTS / f"{stem}.md").write_text(f"<!-- written by benchmarks/bench_ann_engines.py -->\n\n{text}")
        (RESULTS / f"{stem}.json").write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
