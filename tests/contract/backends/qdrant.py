"""Qdrant, in its embedded local mode (a directory under tmp_path): no server needed.

``reopen`` closes the store, which releases the directory, and opens it again without a schema.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

NAME = "qdrant"


def available() -> str | None:
    if importlib.util.find_spec("qdrant_client") is None:
        return "qdrant-client is not installed (pip install 'polymodal[qdrant]')"
    return None


def open_store(tmp_path: Path, schema: type, options: dict[str, Any]):
    from polymodal.store.qdrant import QdrantStore

    uri = f"qdrant+local://{tmp_path / 'qdrant'}/contract"
    store = QdrantStore(uri, schema, **options)

    def reopen(old):
        old.close()
        return QdrantStore(uri)

    return store, reopen
