"""Serialization speed and memory: polymodal against DocArray 0.40 and the raw libraries, in one run.

Run from the repository root (``pip install -e '.[parquet,bench]'`` first)::

    python benchmarks/bench_serialization.py            # full: 10,000 docs, DocVec 100,000 x 512
    python benchmarks/bench_serialization.py --quick    # smoke run: 2,000 docs, DocVec 20,000 x 512

Part 1 (documents): equivalent schemas in polymodal and DocArray (id, title, author, year, rating,
a 512-d float32 embedding) filled with the same values. Each format is timed as encode, decode and
round trip (encode then decode of its own output, the sum per repetition); every number is the
median of ``--repeats`` repetitions after one warm-up, with ``gc.collect()`` before each one.
"Raw" rows do the same job with the library underneath and nothing else (orjson on plain dicts,
msgpack + ``ndarray.tobytes`` on columns, pyarrow on columns): they are the floor for polymodal.

Part 2 (DocVec): a 100,000 x 512 float32 DocVec through ``polymodal.io.binary`` against raw
``ndarray.tobytes()`` / ``np.copy`` / ``zlib.crc32`` on the same array, in GB/s.

Part 3 (memory): tracemalloc around building a DocVec from a prebuilt array
(``DocVec[T].from_columns``) and from a DocList; what the DocVec keeps, against the array's bytes.

The tables go to stdout and (full runs, or ``--out PATH``) to ``benchmarks/results/serialization.md``
plus a ``.json`` twin with every repetition.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import orjson
from docarray import BaseDoc
from docarray import DocList as DADocList
from docarray.typing import NdArray as DANdArray

import polymodal as pm
from polymodal.io import binary as pm_binary

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_data

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 512

TARGET_BINARY = 5.0  # DocArray protobuf round trip / polymodal binary round trip
TARGET_JSON = 3.0  # DocArray JSON round trip / polymodal JSON round trip
TARGET_COPY = 0.5  # DocVec encode GB/s / raw ndarray.tobytes() GB/s ("memory-copy speed")
TARGET_MEMORY = 1.1  # bytes a DocVec holds / the raw array's nbytes


# -- schemas (the same fields in both libraries) ------------------------------------------------
class Article(pm.Doc):
    title: str
    author: str
    year: int
    rating: float
    embedding: pm.Vector[DIM]


class Row(pm.Doc):
    embedding: pm.Vector[DIM]


class DAArticle(BaseDoc):
    """The same schema in DocArray (module level, so that DocArray's pickle protocol works)."""

    title: str
    author: str
    year: int
    rating: float
    embedding: DANdArray[DIM]


def make_values(n: int, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "id": [f"{i:032x}" for i in range(n)],
        "title": [f"A study of topic {i} in multimodal retrieval" for i in range(n)],
        "author": [f"Author {i % 97}" for i in range(n)],
        "year": [1950 + i % 75 for i in range(n)],
        "rating": [round(float(x), 6) for x in rng.uniform(0, 5, n)],
        "embedding": rng.standard_normal((n, DIM), dtype=np.float32),
    }


def rows(values: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(values)
    return [{k: values[k][i] for k in names} for i in range(len(values["id"]))]


# -- timing ---------------------------------------------------------------------------------------
@dataclass
class Timing:
    name: str
    encode: float
    decode: float
    round_trip: float
    size: int
    note: str = ""
    runs: list[tuple[float, float]] = field(default_factory=list)


def time_codec(
    name: str,
    encode: Callable[[], Any],
    decode: Callable[[Any], Any],
    repeats: int,
    size: Callable[[Any], int] = len,
    note: str = "",
) -> Timing:
    """Median encode, decode and (per-repetition) encode+decode, after one warm-up."""
    decode(encode())  # warm-up: imports, caches, first-touch allocations
    runs = []
    out = None
    for _ in range(repeats):
        out = None
        gc.collect()
        t0 = time.perf_counter()
        out = encode()
        t1 = time.perf_counter()
        decode(out)
        t2 = time.perf_counter()
        runs.append((t1 - t0, t2 - t1))
    enc = statistics.median(r[0] for r in runs)
    dec = statistics.median(r[1] for r in runs)
    rt = statistics.median(r[0] + r[1] for r in runs)
    return Timing(name, enc, dec, rt, size(out), note, runs)


def time_fn(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# -- part 1: 10,000 documents --------------------------------------------------------------------
def bench_docs(n: int, repeats: int, tmp: Path) -> list[Timing]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = make_values(n)
    emb = values["embedding"]
    pm_docs = pm.DocList[Article]([Article(**r) for r in rows(values)])
    pm_vec = pm_docs.to_vec()
    da_type = DADocList[DAArticle]
    da_docs = da_type([DAArticle(**r) for r in rows(values)])
    plain = rows(values)  # what raw orjson writes: the same dicts, the embedding a numpy row

    check_equal(pm_docs, da_docs, values)
    out: list[Timing] = []
    pm_type = pm.DocList[Article]

    # polymodal
    out.append(time_codec("polymodal binary", pm_docs.to_bytes, pm_type.from_bytes, repeats))
    for codec in available_codecs():
        out.append(
            time_codec(
                f"polymodal binary {codec}",
                lambda c=codec: pm_docs.to_bytes(compression=c),
                pm_type.from_bytes,
                repeats,
            )
        )
    out.append(
        time_codec(
            "polymodal binary, DocVec in/out",
            lambda: pm_binary.dumps(pm_vec, Article),
            lambda b: list(pm_binary.iter_vecs(b, Article)),
            repeats,
            note="columnar path: no row objects",
        )
    )
    out.append(time_codec("polymodal JSON", pm_docs.to_json, pm_type.from_json, repeats))
    pq_path = tmp / "pm.parquet"

    def pm_pq_write() -> Path:
        pm_docs.to_parquet(pq_path)
        return pq_path

    out.append(
        time_codec(
            "polymodal Parquet (zstd)",
            pm_pq_write,
            pm_type.from_parquet,
            repeats,
            size=lambda p: p.stat().st_size,
            note="tmp file",
        )
    )

    # DocArray
    out.append(
        time_codec(
            "DocArray protobuf",
            lambda: da_docs.to_bytes(protocol="protobuf", compress=None),
            lambda b: da_type.from_bytes(b, protocol="protobuf", compress=None),
            repeats,
        )
    )
    out.append(time_codec("DocArray JSON", da_docs.to_json, da_type.from_json, repeats))
    out.append(
        time_codec(
            "DocArray pickle",
            lambda: da_docs.to_bytes(protocol="pickle", compress=None),
            lambda b: da_type.from_bytes(b, protocol="pickle", compress=None),
            repeats,
        )
    )

    # raw libraries underneath
    def raw_cols_encode() -> bytes:
        meta = msgpack.packb({k: values[k] for k in ("id", "title", "author", "year", "rating")})
        return len(meta).to_bytes(8, "little") + meta + emb.tobytes()

    def raw_cols_decode(b: bytes) -> Any:
        m = int.from_bytes(b[:8], "little")
        cols = msgpack.unpackb(memoryview(b)[8 : 8 + m])
        cols["embedding"] = np.frombuffer(b, np.float32, offset=8 + m).reshape(-1, DIM).copy()
        return cols

    out.append(
        time_codec(
            "raw msgpack + tobytes (columns)", raw_cols_encode, raw_cols_decode, repeats, note="floor for binary"
        )
    )
    out.append(
        time_codec(
            "raw orjson (dicts)",
            lambda: orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY),
            orjson.loads,
            repeats,
            note="floor for JSON: parse only, no arrays",
        )
    )

    def raw_orjson_arrays(b: bytes) -> Any:
        docs = orjson.loads(b)
        return docs, np.array([d["embedding"] for d in docs], dtype=np.float32)

    out.append(
        time_codec(
            "raw orjson + np.array",
            lambda: orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY),
            raw_orjson_arrays,
            repeats,
            note="parse + one float32 array",
        )
    )
    raw_pq = tmp / "raw.parquet"

    def raw_pq_write() -> Path:
        emb_col = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), DIM)
        table = pa.table({**{k: values[k] for k in ("id", "title", "author", "year", "rating")}, "embedding": emb_col})
        pq.write_table(table, raw_pq, compression="zstd")
        return raw_pq

    def raw_pq_read(p: Path) -> Any:
        table = pq.read_table(p)
        cols = {k: table.column(k).to_pylist() for k in ("id", "title", "author", "year", "rating")}
        flat = table.column("embedding").combine_chunks().flatten().to_numpy()
        cols["embedding"] = flat.reshape(-1, DIM)
        return cols

    out.append(
        time_codec(
            "raw pyarrow Parquet (zstd)",
            raw_pq_write,
            raw_pq_read,
            repeats,
            size=lambda p: p.stat().st_size,
            note="floor for Parquet",
        )
    )
    return out


def available_codecs() -> list[str]:
    """zlib always; zstd and lz4 when their packages (the ``compress`` extra) are installed."""
    codecs = ["zlib"]
    for codec, module in (("zstd", "zstandard"), ("lz4", "lz4.frame")):
        try:
            __import__(module)
        except ImportError:
            continue
        codecs.append(codec)
    return codecs


def check_equal(pm_docs: Any, da_docs: Any, values: dict[str, Any]) -> None:
    """Every codec must give back the same values before its speed means anything."""
    pm_type = pm.DocList[Article]
    backs = [("binary", pm_type.from_bytes(pm_docs.to_bytes())), ("JSON", pm_type.from_json(pm_docs.to_json()))]
    backs += [(c, pm_type.from_bytes(pm_docs.to_bytes(compression=c))) for c in available_codecs()]
    with tempfile.TemporaryDirectory() as d:
        pm_docs.to_parquet(Path(d) / "x.parquet")
        backs.append(("Parquet", pm_type.from_parquet(Path(d) / "x.parquet")))
    for name, back in backs:
        assert list(back) == list(pm_docs), f"polymodal {name} round trip changed the documents"
    da_type = type(da_docs)
    pb = da_type.from_bytes(da_docs.to_bytes(protocol="protobuf", compress=None), protocol="protobuf", compress=None)
    for name, back in [("protobuf", pb), ("JSON", da_type.from_json(da_docs.to_json()))]:
        assert [d.id for d in back] == values["id"], f"DocArray {name}: ids"
        assert [d.title for d in back] == values["title"], f"DocArray {name}: titles"
        got = np.stack([np.asarray(d.embedding, dtype=np.float32) for d in back])
        assert np.array_equal(got, values["embedding"]), f"DocArray {name}: embeddings"
    assert np.array_equal(np.stack([d.embedding for d in pm_docs]), np.stack([d.embedding for d in da_docs]))


# -- part 2: DocVec 100,000 x 512 -----------------------------------------------------------------
def bench_docvec(n: int, repeats: int) -> dict[str, float]:
    arr = np.random.default_rng(1).standard_normal((n, DIM), dtype=np.float32)
    gb = arr.nbytes / 1e9
    vec = pm.DocVec[Row].from_columns({"embedding": arr})
    data = pm_binary.dumps(vec, Row)
    back = _first_vec(data)
    assert np.array_equal(back.embedding, arr) and back.id == vec.id, "DocVec binary round trip"
    writable = bytearray(data)
    res = {
        "n": n,
        "array_bytes": arr.nbytes,
        "encoded_bytes": len(data),
        "raw tobytes()": gb / time_fn(arr.tobytes, repeats),
        "raw np.copy": gb / time_fn(lambda: np.copy(arr), repeats),
        "raw zlib.crc32": gb / time_fn(lambda: zlib.crc32(arr), repeats),
    }
    # the format checksums what it copies: one tobytes-like copy plus one CRC pass is its floor
    res["bound: tobytes + crc32 (computed)"] = 1 / (1 / res["raw tobytes()"] + 1 / res["raw zlib.crc32"])
    res["polymodal dumps(vec)"] = gb / time_fn(lambda: pm_binary.dumps(vec, Row), repeats)
    res["polymodal iter_vecs(bytes)"] = gb / time_fn(lambda: _first_vec(data), repeats)
    res["polymodal iter_vecs(bytearray)"] = gb / time_fn(lambda: _first_vec(writable), repeats)
    res["round trip: raw tobytes + frombuffer().copy()"] = gb / time_fn(
        lambda: np.frombuffer(arr.tobytes(), np.float32).copy(), repeats
    )
    res["round trip: polymodal dumps + iter_vecs(bytes)"] = gb / time_fn(
        lambda: _first_vec(pm_binary.dumps(vec, Row)), repeats
    )
    # loads() builds one Doc per row: a different job, timed fewer times
    res["polymodal loads (row docs)"] = gb / time_fn(lambda: pm_binary.loads(data, Row), max(1, repeats // 3))
    return res


def _first_vec(data: bytes | bytearray) -> Any:
    """The one DocVec in ``data``, reading to the end marker (so its checks are timed too)."""
    vecs = list(pm_binary.iter_vecs(data, Row))
    assert len(vecs) == 1
    return vecs[0]


# -- part 3: memory --------------------------------------------------------------------------------
def traced(build: Callable[[], Any]) -> tuple[Any, int, int]:
    """(result, bytes still held after build, peak bytes during build), both above the baseline."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    obj = build()
    gc.collect()
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return obj, cur - base, peak - base


def bench_memory(n: int) -> list[dict[str, Any]]:
    arr = np.random.default_rng(2).standard_normal((n, DIM), dtype=np.float32)
    ids = [f"{i:032x}" for i in range(n)]
    raw = arr.nbytes
    out = []

    def record(case: str, vec: Any, held: int, peak: int, new_array: bool, extra: int = 0, note: str = "") -> None:
        """``held``/``peak`` are tracemalloc bytes above the baseline; when the build did not
        allocate the array (zero-copy), the array's bytes are added to what the DocVec holds."""
        total = held + extra + (0 if new_array else vec.nbytes)
        peak_total = peak + (0 if new_array else raw)
        out.append(
            {
                "case": case,
                "nbytes": vec.nbytes,
                "objects": total - vec.nbytes,
                "total": total,
                "peak_extra": peak,
                "ratio": total / raw,
                "peak_ratio": peak_total / raw,
                "note": note,
            }
        )

    vec, held, peak = traced(lambda: pm.DocVec[Row].from_columns({"embedding": arr}))
    assert np.shares_memory(vec.embedding, arr)
    record(
        "DocVec.from_columns(prebuilt array), ids generated",
        vec,
        held,
        peak,
        False,
        note="array kept zero-copy; objects = the generated id strings and their list",
    )
    vec, held, peak = traced(lambda: pm.DocVec[Row].from_columns({"embedding": arr, "id": ids}))
    record(
        "DocVec.from_columns(prebuilt array, prebuilt ids)",
        vec,
        held,
        peak,
        False,
        extra=_list_bytes(ids),
        note="the ids, built before, are counted too",
    )
    vec, held, peak = _from_doclist(arr, ids)
    record(
        "DocVec[Row](DocList)",
        vec,
        held,
        peak,
        True,
        note="np.stack makes a new array; id strings shared with the DocList",
    )
    del vec
    writable = bytearray(pm_binary.dumps(pm.DocVec[Row].from_columns({"embedding": arr, "id": ids}), Row))
    vec, held, peak = traced(lambda: _first_vec(writable))
    record(
        "binary.iter_vecs(bytearray)",
        vec,
        held,
        peak,
        False,
        note="array is a zero-copy view into the buffer; ids decoded",
    )
    return out


def _from_doclist(arr: np.ndarray, ids: list[str]) -> tuple[Any, int, int]:
    docs = pm.DocList[Row]([Row(id=ids[i], embedding=arr[i]) for i in range(len(ids))])
    return traced(lambda: pm.DocVec[Row](docs))


def _list_bytes(items: list[str]) -> int:
    return sys.getsizeof(items) + sum(sys.getsizeof(s) for s in items)


# -- report ----------------------------------------------------------------------------------------
def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def machine() -> dict[str, str]:
    import docarray
    import pyarrow
    import pydantic

    info = {
        "cpu_count": str(os.cpu_count()),
        "cpu": store_data.cpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pydantic": pydantic.VERSION,
        "orjson": orjson.__version__,
        "pysimdjson": importlib.metadata.version("pysimdjson"),
        "msgpack": ".".join(map(str, msgpack.version)),
        "pyarrow": pyarrow.__version__,
        "docarray": docarray.__version__,
        "polymodal": pm.__version__,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
    }
    try:
        import google.protobuf

        info["protobuf"] = google.protobuf.__version__
    except ImportError:
        pass
    if hasattr(os, "getloadavg"):
        info["load average (1 min) at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def render(
    args: argparse.Namespace,
    info: dict[str, str],
    docs: list[Timing],
    vec: dict[str, float],
    mem: list[dict[str, Any]],
    elapsed: float,
) -> tuple[str, dict[str, Any]]:
    by = {t.name: t for t in docs}
    pb, dj = by["DocArray protobuf"], by["DocArray JSON"]
    lines = [
        f"### Documents: {args.docs:,} docs (id, title, author, year, rating, {DIM}-d float32 embedding)",
        "",
        f"Median of {args.repeats} repetitions after one warm-up; times in ms; round trip = encode + decode "
        "of its own output, per repetition.",
        "",
        "| format | encode ms | decode ms | round trip ms | size MB | round trip vs DocArray protobuf | "
        "vs DocArray JSON | note |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in docs:
        lines.append(
            f"| {t.name} | {ms(t.encode)} | {ms(t.decode)} | {ms(t.round_trip)} | {t.size / 1e6:.1f} | "
            f"{pb.round_trip / t.round_trip:.2f}x | {dj.round_trip / t.round_trip:.2f}x | {t.note} |"
        )
    gbs = {k: v for k, v in vec.items() if k not in ("n", "array_bytes", "encoded_bytes")}
    lines += [
        "",
        f"### DocVec: {vec['n']:,} x {DIM} float32 ({vec['array_bytes'] / 1e6:.1f} MB), binary format",
        "",
        f"Median of {args.repeats} repetitions; GB/s of array bytes (1 GB = 1e9 B); encoded size "
        f"{vec['encoded_bytes'] / 1e6:.1f} MB.",
        "",
        "| operation | GB/s | vs raw tobytes() |",
        "|---|---:|---:|",
    ]
    for k, v in gbs.items():
        lines.append(f"| {k} | {v:.2f} | {v / vec['raw tobytes()']:.2f}x |")
    lines += [
        "",
        f"### Memory: DocVec of {args.vec:,} x {DIM} float32 (raw array {mem[0]['nbytes'] / 1e6:.1f} MB), tracemalloc",
        "",
        "| construction | DocVec.nbytes MB | + Python objects MB | total / raw array | peak / raw array | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for m in mem:
        lines.append(
            f"| {m['case']} | {m['nbytes'] / 1e6:.1f} | {(m['total'] - m['nbytes']) / 1e6:.2f} | "
            f"{m['ratio']:.3f}x | {m['peak_ratio']:.3f}x | {m['note']} |"
        )

    bin_ratio = pb.round_trip / by["polymodal binary"].round_trip
    json_ratio = dj.round_trip / by["polymodal JSON"].round_trip
    copy_ratio = vec["polymodal dumps(vec)"] / vec["raw tobytes()"]
    mem_ratio = max(m["ratio"] for m in mem)
    raw_json_ratio = dj.round_trip / by["raw orjson (dicts)"].round_trip
    targets = [
        ("binary round trip vs DocArray protobuf", bin_ratio, f">= {TARGET_BINARY:g}x", bin_ratio >= TARGET_BINARY),
        ("JSON round trip vs DocArray JSON", json_ratio, f">= {TARGET_JSON:g}x", json_ratio >= TARGET_JSON),
        ("DocVec encode GB/s vs raw tobytes()", copy_ratio, f">= {TARGET_COPY:g}x", copy_ratio >= TARGET_COPY),
        (
            "DocVec memory held vs raw array (worst case)",
            mem_ratio,
            f"<= {TARGET_MEMORY:g}x",
            mem_ratio <= TARGET_MEMORY,
        ),
    ]
    head = ["### Targets", "", "| target | measured | required | met |", "|---|---:|---:|---|"]
    head += [f"| {name} | {val:.2f}x | {req} | {'yes' if ok else '**NO**'} |" for name, val, req, ok in targets]
    head += [
        "",
        "For scale: raw orjson on plain dicts (dumps + loads, no validation, vectors left as Python lists) "
        f"round-trips "
        f"{raw_json_ratio:.2f}x faster than DocArray JSON on this machine, the ceiling for any JSON "
        "reader that makes a Python float per number, as orjson does; polymodal reads vectors through "
        "simdjson, straight into float32 blocks. polymodal JSON (validated, vectors as float32 arrays) takes "
        f"{by['polymodal JSON'].round_trip / by['raw orjson (dicts)'].round_trip:.2f}x the raw orjson round trip.",
        "",
    ]
    mach = ["### Machine", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()]
    mach += [
        f"| command | `python benchmarks/bench_serialization.py{' --quick' if args.quick else ''}"
        f"{'' if args.repeats == default_repeats(args.quick) else f' --repeats {args.repeats}'}` |",
        f"| wall time | {elapsed:.0f} s |",
        f"| load average (1 min) at end | {_load()} |",
    ]
    text = "\n".join(head + lines + [""] + mach) + "\n"
    data = {
        "machine": info,
        "docs": [t.__dict__ for t in docs],
        "docvec": vec,
        "memory": mem,
        "targets": [{"name": n, "measured": v, "required": r, "met": ok} for n, v, r, ok in targets],
    }
    return text, data


def default_repeats(quick: bool) -> int:
    return 3 if quick else 7


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions per measurement")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the table (default: results/serialization.md; --quick writes none)",
    )
    args = parser.parse_args()
    args.docs = 2_000 if args.quick else 10_000
    args.vec = 20_000 if args.quick else 100_000
    args.repeats = args.repeats or default_repeats(args.quick)

    start = time.perf_counter()
    info = machine()
    with tempfile.TemporaryDirectory() as d:
        docs = bench_docs(args.docs, args.repeats, Path(d))
    vec = bench_docvec(args.vec, args.repeats)
    mem = bench_memory(args.vec)
    text, data = render(args, info, docs, vec, mem, time.perf_counter() - start)
    print(text)
    out = args.out or (None if args.quick else RESULTS / "serialization.md")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("# Serialization benchmark results\n\n" + text)
        out.with_suffix(".json").write_text(json.dumps(data, indent=1, default=str))
        print(f"written: {out} and {out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
