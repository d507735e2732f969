"""Backends under the contract suite. A new backend joins by adding one entry to BACKENDS.

Each entry opens a fresh, empty store for a schema and returns it, plus a function that closes
and reopens it (None for backends that keep nothing between opens).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import polymodal as pm


def _memory(tmp_path: Path, schema: type, options: dict[str, Any]):
    return pm.open("memory://", schema=schema, **options), None


def _embedded(tmp_path: Path, schema: type, options: dict[str, Any]):
    path = tmp_path / "store"
    store = pm.open(path, schema=schema, **options)

    def reopen(old):
        old.close()
        return pm.open(path)

    return store, reopen


BACKENDS: dict[str, Callable[..., Any]] = {"memory": _memory, "embedded": _embedded}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return request.param


@pytest.fixture
def make_store(backend, tmp_path):
    """make_store(schema, **options) -> (store, reopen or None); stores are closed afterwards."""
    opened = []

    def make(schema, **options):
        store, reopen = BACKENDS[backend](tmp_path, schema, options)
        opened.append(store)

        def tracked_reopen(old):
            new = reopen(old)
            opened.append(new)
            return new

        return store, (tracked_reopen if reopen else None)

    yield make
    for s in opened:
        s.close()
