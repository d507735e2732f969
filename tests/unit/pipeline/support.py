"""Helpers shared by the pipeline tests (imported as ``pipeline_support``, registered by
conftest.py): a counting fake embedder, a gate that holds a batch inside ``fn`` until released,
and ``wait_until`` for observable states.

No test asserts on wall-clock time: concurrency is made deterministic by holding the worker in
a gated batch while the other callers queue up (observed through the batcher's counters), then
releasing it. Timeouts below are safety nets that only fire when something is broken.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable

import numpy as np

from polymodal.embed.base import Embedder, EmbedderConfig

SAFETY = 20.0  # seconds before a wait is declared hung (never reached when things work)


def wait_until(predicate: Callable[[], bool], what: str = "condition") -> None:
    deadline = time.monotonic() + SAFETY
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def vector(text: str, dim: int = 8) -> np.ndarray:
    """A deterministic unit vector per text."""
    v = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


class Gate:
    """Blocks a batch containing ``key`` inside ``fn`` until :meth:`open` is called."""

    def __init__(self, key: object = "gate") -> None:
        self.key = key
        self.entered = threading.Event()
        self.released = threading.Event()

    def hold(self, items: list) -> None:
        if self.key in items:
            self.entered.set()
            assert self.released.wait(SAFETY), "gate never opened"

    def open(self) -> None:
        self.released.set()


class FakeEmbedder(Embedder):
    """An 8-d text embedder that records its batch sizes and can be held by a Gate."""

    family = "fake"

    def __init__(self, gate: Gate | None = None, dim: int = 8) -> None:
        super().__init__(EmbedderConfig(family="fake", model="fake-model", modality="text", options={"batch_size": 64}))
        self._dim = dim
        self.gate = gate
        self.calls: list[int] = []
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def _embed_batch(self, items: list) -> np.ndarray:
        with self._lock:
            self.calls.append(len(items))
        if self.gate is not None:
            self.gate.hold(items)
        return np.stack([vector(str(x), self._dim) for x in items])
