"""Repository-wide pytest setup (applies to doctests under src/ as well as tests/)."""

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Doctests inherit `from __future__ import annotations` from their module, which turns the
    # annotations of Doc classes defined in an example into strings that pydantic then tries
    # to resolve in the module (where the example's `pm` does not exist). Run examples the way
    # a user types them: without that future import.
    for item in items:
        dtest = getattr(item, "dtest", None)
        if dtest is not None:
            dtest.globs.pop("annotations", None)
