"""Backends under the contract suite, discovered from ``tests/contract/backends/*.py``."""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from types import ModuleType

import pytest

from . import backends as _pkg


def _modules() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(_pkg.__path__):
        module = importlib.import_module(f"{_pkg.__name__}.{info.name}")
        if hasattr(module, "open_store"):
            found[module.NAME] = module
    return found


BACKENDS = _modules()


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    module = BACKENDS[request.param]
    reason = module.available() if hasattr(module, "available") else None
    if reason:
        pytest.skip(f"{request.param} backend unavailable: {reason}")
    return request.param


@pytest.fixture
def make_store(backend, tmp_path):
    """make_store(schema, **options) -> (store, reopen or None); stores are closed afterwards."""
    opened = []

    def make(schema, **options):
        store, reopen = BACKENDS[backend].open_store(tmp_path, schema, options)
        opened.append(store)

        def tracked_reopen(old):
            new = reopen(old)
            opened.append(new)
            return new

        return store, (tracked_reopen if reopen else None)

    yield make
    for s in opened:
        with contextlib.suppress(Exception):  # a test may have closed or broken it on purpose
            s.close()
