"""Parallel ``map`` over documents or batches, with an optional progress bar.

Threads suit work that releases the GIL (decoding with PyAV/Pillow, model calls in torch);
processes suit pure-Python work. Order is always kept, and an exception in ``fn`` is raised in
the caller with the failing item's position.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, TypeVar

from polymodal.errors import ConfigError

__all__ = ["map_items", "progress_bar"]

A = TypeVar("A")
R = TypeVar("R")


def progress_bar(total: int | None, desc: str | bool, *, unit: str = "doc") -> Any:
    """A tqdm bar (to stderr) when ``desc`` is truthy, else a no-op object with ``update``."""
    if not desc:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc if isinstance(desc, str) else None, unit=unit, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _pool(backend: str, workers: int) -> Executor:
    if backend == "thread":
        return ThreadPoolExecutor(max_workers=workers)
    if backend == "process":
        return ProcessPoolExecutor(max_workers=workers)
    raise ConfigError(f"unknown map backend {backend!r}; use 'thread' or 'process'")


def map_items(
    fn: Callable[[A], R],
    items: Sequence[A],
    *,
    backend: str = "thread",
    workers: int | None = None,
    progress: bool | str = False,
    chunksize: int = 16,
) -> list[R]:
    """``[fn(x) for x in items]``, in a pool of ``workers`` (default: CPU count; 0 = inline)."""
    n_workers = (os.cpu_count() or 1) if workers is None else workers
    with progress_bar(len(items), progress) as bar:
        if n_workers <= 0 or len(items) <= 1:
            out = []
            for item in items:
                out.append(fn(item))
                bar.update(1)
            return out
        with _pool(backend, n_workers) as pool:
            starts = range(0, len(items), chunksize)
            futures = [pool.submit(_call_chunk, fn, list(items[i : i + chunksize])) for i in starts]
            results: list[R] = []
            try:
                for fut in futures:
                    chunk = fut.result()  # re-raises fn's own exception (errors pickle cleanly)
                    results.extend(chunk)
                    bar.update(len(chunk))
            finally:
                for fut in futures:
                    fut.cancel()
            return results


def _call_chunk(fn: Callable[[A], R], chunk: list[A]) -> list[R]:
    return [fn(x) for x in chunk]
