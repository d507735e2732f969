"""One vector field's search structures: an hnswlib HNSW graph plus a flat float32 matrix.

Slots are small integers handed out by the database (reused after deletes); a slot is both the
HNSW label and the matrix row. The matrix serves exact search (small collections, selective
filters). hnswlib rather than faiss or usearch, measured here (``benchmarks/bench_ann_engines.py``,
100k x 512 at recall@10 >= 0.98): faiss answers a little faster (0.93x hnswlib's CPU time) but
its HNSW index can neither delete nor overwrite a vector, which an upserting store needs;
usearch is slower at float32 (2.3x) and float16 (1.4x), its int8 index never reaches 0.98
recall, and its Python search takes no filter. hnswlib has all of it: per-query filter
callbacks, in-place updates and deletes by label, save/load, and the fastest float32 build.
Reading vectors back out of it is slow, so a flat copy is kept beside it.

Both are caches of the database: :meth:`save` writes them at a checkpoint sequence number and
the store replays later changes from its change log on open.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import OptionalDependencyError

__all__ = ["AnnIndex"]


def _hnswlib() -> Any:
    try:
        import hnswlib
    except ImportError:
        raise OptionalDependencyError.for_package("hnswlib", "store", "The embedded vector index") from None
    return hnswlib


class AnnIndex:
    """HNSW + flat matrix for one vector field.

    The graph holds cosine vectors normalised; the matrix holds every vector exactly as stored
    in the database (so a search can hand documents their vectors without reading them again),
    with ``scale`` = 1 / norm per slot for cosine scoring (0 for a zero vector, which scores 0).
    """

    def __init__(self, dim: int, metric: str, *, m: int = 16, ef_construction: int = 200, capacity: int = 1024) -> None:
        self.dim = dim
        self.metric = metric
        self.m = m
        self.ef_construction = ef_construction
        self.matrix = np.zeros((capacity, dim), np.float32)
        self.scale = np.zeros(capacity, np.float32)  # cosine: 1 / norm of each slot's vector
        self.valid = np.zeros(capacity, bool)
        self.owner = np.zeros(capacity, np.int64)  # the document (row id) each slot belongs to
        self.ids = np.full(capacity, None, dtype=object)  # and that document's id (search_ids reads no row)
        self.labeled = np.zeros(capacity, bool)  # slots ever added to the graph (deleted or not)
        self.pos: list[str] = [""] * capacity  # the sub-document position ("3" or "3.1") of each slot
        self.count = 0
        self._ef = -1  # the ef last set on the graph
        self._hnsw = self._new_hnsw(capacity)

    def _new_hnsw(self, capacity: int) -> Any:
        index = _hnswlib().Index(space="l2" if self.metric == "l2" else "ip", dim=self.dim)
        index.init_index(max_elements=capacity, M=self.m, ef_construction=self.ef_construction, random_seed=42)
        return index

    @property
    def capacity(self) -> int:
        return len(self.valid)

    def _grow(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        new_cap = max(needed, int(self.capacity * 1.5) + 1024)
        matrix = np.zeros((new_cap, self.dim), np.float32)
        matrix[: self.capacity] = self.matrix
        scale = np.zeros(new_cap, np.float32)
        scale[: self.capacity] = self.scale
        self.scale = scale
        valid = np.zeros(new_cap, bool)
        valid[: self.capacity] = self.valid
        owner = np.zeros(new_cap, np.int64)
        owner[: self.capacity] = self.owner
        labeled = np.zeros(new_cap, bool)
        labeled[: self.capacity] = self.labeled
        ids = np.full(new_cap, None, dtype=object)
        ids[: self.capacity] = self.ids
        self.ids = ids
        self.pos.extend([""] * (new_cap - self.capacity))
        self.matrix, self.valid, self.owner, self.labeled = matrix, valid, owner, labeled
        self._hnsw.resize_index(new_cap)
        self._ef = -1

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors as the graph holds them: float32, normalised for cosine (zero vectors stay zero)."""
        arr = np.asarray(vectors, dtype=np.float32)
        if self.metric == "cosine" and len(arr):
            norms = _norms(arr)[:, None]
            arr = np.asarray(arr / np.where(norms == 0, 1, norms), dtype=np.float32)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def unit(self, slots: np.ndarray) -> np.ndarray:
        """The vectors at ``slots`` as scored: a copy, normalised for cosine."""
        rows: np.ndarray = self.matrix[slots]
        if self.metric == "cosine":
            rows *= self.scale[slots][:, None]
        return rows

    def set(
        self,
        slots: np.ndarray,
        vectors: np.ndarray,
        owners: Sequence[int],
        positions: Sequence[str],
        ids: Sequence[str] | None = None,
    ) -> None:
        """Insert or overwrite the vectors at ``slots``, owned by documents ``owners`` (row ids)
        whose ids are ``ids`` (None: unknown, searches then look them up)."""
        if not len(slots):
            return
        slots = np.asarray(slots, dtype=np.int64)
        raw = np.ascontiguousarray(vectors, dtype=np.float32)
        arr = self.prepare(raw)
        self._grow(int(slots.max()) + 1)
        fresh = ~self.valid[slots]
        # A label already in the graph (a live slot overwritten, or a freed one reused; hnswlib
        # revives deleted labels, replace_deleted stays off) is an update, and hnswlib's updates
        # run in parallel can leave a node that no search reaches: those go one thread.
        known = self.labeled[slots]
        if known.any():
            self._hnsw.add_items(arr[known], slots[known], num_threads=1)
        if not known.all():
            self._hnsw.add_items(arr[~known], slots[~known], num_threads=min(2, os.cpu_count() or 1))
        self.labeled[slots] = True
        self.matrix[slots] = raw
        if self.metric == "cosine":
            self.scale[slots] = _inverse(_norms(raw))
        self.owner[slots] = np.asarray(owners, dtype=np.int64)
        self.ids[slots] = None if ids is None else np.array(ids, dtype=object)
        for slot, p in zip(slots.tolist(), positions, strict=True):
            self.pos[slot] = p
        self.count += int(np.count_nonzero(fresh))
        self.valid[slots] = True

    def remove(self, slots: np.ndarray) -> None:
        for s in np.asarray(slots, dtype=np.int64):
            s = int(s)
            if s < self.capacity and self.valid[s]:
                self._hnsw.mark_deleted(s)
                self.valid[s] = False
                self.ids[s] = None
                self.matrix[s] = 0
                self.scale[s] = 0
                self.count -= 1

    # -- search --------------------------------------------------------------------------------
    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        allowed: np.ndarray | None = None,
        exact: bool | None = None,
        ef: int = 64,
        exact_threshold: int = 2_000_000,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-``k`` ``(slots, scores)`` per query among valid (and ``allowed``) slots.

        ``allowed`` is a boolean mask over slots. Exact search is used when asked, or when
        the candidates times the dimension is at most ``exact_threshold`` (see
        :class:`~polymodal.store.base.StoreConfig` for why the default is what it is).
        """
        n_cand = self.count if allowed is None else int(np.count_nonzero(allowed[: self.capacity] & self.valid))
        k = min(k, n_cand)
        if k <= 0:
            empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
            return [empty for _ in range(len(queries))]
        use_exact = exact if exact is not None else n_cand * self.dim <= exact_threshold
        if use_exact:
            return self._exact(queries, k, allowed, n_cand)
        return self._ann(queries, k, allowed, ef)

    def top_ids(
        self, q: np.ndarray, k: int, *, exact: bool | None, ef: int, exact_threshold: int
    ) -> list[tuple[str, float]] | None:
        """:meth:`search` for one unfiltered query, as ``(document id, score)`` pairs; None when
        an id is not known here (the caller then asks the database). The HNSW call is made
        directly when ANN is the plan: this is the hot path of ``Store.search_ids``."""
        k = min(k, self.count)
        if k <= 0:
            return []
        if (exact if exact is not None else self.count * self.dim <= exact_threshold) or self.metric == "l2":
            slots, scores = self.search(q[None], k, exact=exact, ef=ef, exact_threshold=exact_threshold)[0]
            labels, values = slots, scores.tolist()
        else:
            if max(ef, k) != self._ef:
                self._hnsw.set_ef(max(ef, k))
                self._ef = max(ef, k)
            try:
                found, dists = self._hnsw.knn_query(q, k=k, num_threads=1)
            except RuntimeError:
                return self.top_ids(q, k, exact=True, ef=ef, exact_threshold=exact_threshold)
            labels, values = found[0], (1.0 - dists).tolist()[0]  # as search(): float32 scores, exactly
        ids = self.ids.take(labels).tolist()
        return None if None in ids else list(zip(ids, values))  # noqa: B905 - equal lengths, and strict= costs

    def _exact(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, n_cand: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Brute force over the flat matrix. Few candidates (a selective filter): copy their
        rows out and score those. Many (no filter, a loose one): score the matrix in place and
        mask the rest, as copying the rows costs more than the products it saves
        (benchmarks/results/exact_threshold.md: 5-10x faster unfiltered)."""
        mask = self.valid if allowed is None else self.valid & allowed[: self.capacity]
        if n_cand is None:
            n_cand = int(np.count_nonzero(mask))
        gather = 4 * n_cand < self.capacity
        cand = np.flatnonzero(mask) if gather else None
        sub = self.matrix[cand] if cand is not None else self.matrix
        scale = None
        if self.metric == "cosine":
            scale = self.scale[cand] if cand is not None else self.scale
        out = []
        for q in queries:
            scores = -np.linalg.norm(sub - q, axis=1) if self.metric == "l2" else self.dots(sub, q, scale)
            if cand is None:
                scores[~mask] = -np.inf
                top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.flatnonzero(mask)
                slots = top
            else:
                top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
                slots = cand[top]
            order = np.lexsort((slots, -scores[top]))
            out.append((slots[order], scores[top][order].astype(np.float64)))
        return out

    @staticmethod
    def dots(rows: np.ndarray, q: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
        """``rows @ q``, times ``scale`` (cosine); rows whose product overflows float32 (values
        near its limit) are scored again in float64."""
        with np.errstate(over="ignore", invalid="ignore"):
            scores: np.ndarray = rows @ q
            if scale is not None:
                scores *= scale
        if not np.isfinite(scores).all():
            bad = ~np.isfinite(scores)
            wide = rows[bad].astype(np.float64) @ q.astype(np.float64)
            with np.errstate(over="ignore"):  # ip past float32's range stays infinite
                scores[bad] = wide if scale is None else wide * scale[bad]
        return scores

    def _ann(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None, ef: int
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        if max(ef, k) != self._ef:
            self._hnsw.set_ef(max(ef, k))
            self._ef = max(ef, k)
        filt = None
        if allowed is not None:
            mask = allowed

            def filt(label: int) -> bool:
                return bool(mask[label])

        try:
            labels, dists = self._hnsw.knn_query(queries, k=k, num_threads=1, filter=filt)
        except RuntimeError:  # the graph could not reach k allowed points: answer exactly
            return self._exact(queries, k, allowed)
        scores = -np.sqrt(np.maximum(dists, 0)) if self.metric == "l2" else 1.0 - dists
        if len(queries) == 1:
            return [(labels[0].astype(np.int64), scores[0].astype(np.float64))]
        labels, scores = labels.astype(np.int64), scores.astype(np.float64)
        return [(labels[i], scores[i]) for i in range(len(queries))]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path, stem: str) -> dict[str, Any]:
        """Write the graph and matrix under ``stem``; returns the manifest entry, with the size
        and CRC-32 of each file so that :meth:`load` can refuse damaged ones."""
        high = int(np.flatnonzero(self.valid)[-1]) + 1 if self.count else 0
        graph = directory / f"{stem}.hnsw"
        matrix = directory / f"{stem}.npy"
        valid = directory / f"{stem}.valid.npy"
        owner = directory / f"{stem}.owner.npy"
        pos = directory / f"{stem}.pos.npy"
        self._hnsw.save_index(str(graph))
        arrays = (
            (matrix, self.matrix[:high]),
            (valid, self.valid[:high]),
            (owner, self.owner[:high]),
            (pos, np.array(self.pos[:high], dtype=str)),
        )
        for path, arr in arrays:
            with open(path, "wb") as fh:
                np.save(fh, arr)
                fh.flush()
                os.fsync(fh.fileno())
        _fsync_path(graph)
        files = (graph, matrix, valid, owner, pos)
        return {
            "graph": graph.name,
            "matrix": matrix.name,
            "valid": valid.name,
            "owner": owner.name,
            "pos": pos.name,
            "dim": self.dim,
            "metric": self.metric,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "count": self.count,
            "matrix_raw": True,  # older checkpoints held normalised cosine vectors: rebuilt
            "digests": {p.name: _file_digest(p) for p in files},
        }

    @classmethod
    def load(cls, directory: Path, entry: dict[str, Any]) -> AnnIndex:
        """Load an index saved by :meth:`save`.

        Raises:
            ValueError: a file is missing from the entry's digests, has another size or CRC,
                or the arrays disagree with each other or with the entry; OSError: a file is
                unreadable. Both mean: rebuild from the database.
        """
        self = cls.__new__(cls)
        if entry.get("matrix_raw") is not True:
            raise ValueError("checkpoint from a version whose matrix held normalised vectors")
        self.dim, self.metric = int(entry["dim"]), str(entry["metric"])
        self.m, self.ef_construction = int(entry["m"]), int(entry["ef_construction"])
        digests = entry["digests"]

        def check(name: str, digest: list[int]) -> None:
            if name not in digests or list(digests[name]) != digest:
                raise ValueError(f"checkpoint file {name} is damaged (size or CRC differs from the manifest)")

        def read(role: str) -> np.ndarray:
            path = directory / str(entry[role])  # files are never rewritten: checked, then loaded
            check(path.name, _file_digest(path))
            return np.asarray(np.load(path, allow_pickle=False))

        arrays = [read(role) for role in ("matrix", "valid", "owner", "pos")]
        matrix, valid, owner, pos = arrays
        n = len(valid)
        if (
            matrix.shape != (n, self.dim)
            or valid.dtype != bool
            or owner.shape != (n,)
            or pos.shape != (n,)
            or int(np.count_nonzero(valid)) != int(entry["count"])
        ):
            raise ValueError("checkpoint arrays disagree with each other or with the manifest")
        # hnswlib trusts its file: a damaged graph loads silently and can crash a later query
        check(str(entry["graph"]), _file_digest(directory / str(entry["graph"])))
        index = _hnswlib().Index(space="l2" if self.metric == "l2" else "ip", dim=self.dim)
        index.load_index(str(directory / entry["graph"]), max_elements=max(1024, math.ceil(n * 1.25)))
        # the graph keeps the capacity it was saved with, which is larger than the arrays when the
        # last slots were freed; the arrays follow it, as hnswlib cannot shrink below its labels
        capacity = max(1024, math.ceil(n * 1.25), int(index.get_max_elements()))
        self.matrix = np.zeros((capacity, self.dim), np.float32)
        self.matrix[:n] = matrix
        self.scale = np.zeros(capacity, np.float32)
        if self.metric == "cosine" and n:
            self.scale[:n] = _inverse(_norms(self.matrix[:n]))
        self.valid = np.zeros(capacity, bool)
        self.valid[:n] = valid
        self.owner = np.zeros(capacity, np.int64)
        self.owner[:n] = owner
        self.ids = np.full(capacity, None, dtype=object)  # not saved: the store fills them from its database
        self.pos = [str(p) for p in pos] + [""] * (capacity - n)
        self.count = int(np.count_nonzero(valid))
        self.labeled = np.zeros(capacity, bool)
        self.labeled[np.asarray(index.get_ids_list(), dtype=np.int64)] = True
        index.resize_index(capacity)
        self._hnsw = index
        self._ef = -1
        return self


def _norms(rows: np.ndarray) -> np.ndarray:
    """Row norms in float64 (float32 squares overflow near 1e19)."""
    wide = rows.astype(np.float64)
    norms: np.ndarray = np.sqrt(np.einsum("ij,ij->i", wide, wide))
    return norms


def _inverse(norms: np.ndarray) -> np.ndarray:
    """1 / norm as float32, 0 for a zero vector (which then scores 0 under cosine)."""
    inverse: np.ndarray = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    return inverse


def _file_digest(path: Path) -> list[int]:
    """[size, CRC-32] of a checkpoint file, read in chunks (graphs and matrices can be large)."""
    size, crc = 0, 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
    return [size, crc]


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
