"""Milvus under the contract suite, through Milvus Lite: a ``.db`` data directory in ``tmp_path``
(pymilvus starts an in-process Milvus Lite server for it). Reopening closes the store, which
stops that server, and opens the same file again, so persistence is really exercised."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

NAME = "milvus"


def available() -> str | None:
    for module in ("pymilvus", "milvus_lite", "snowballstemmer"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'polymodal[milvus]')"
    return None


def _opener():
    import polymodal as pm
    from polymodal.store import known_backends

    if "milvus+lite" in known_backends():
        return pm.open
    from polymodal.store.milvus import MilvusStore

    return MilvusStore  # until the registry names milvus+lite://


def open_store(tmp_path: Path, schema: type, options: dict[str, Any]):
    uri = f"milvus+lite://{tmp_path / 'milvus.db'}/clips"
    opener = _opener()
    store = opener(uri, schema, **options)

    def reopen(old):
        old.close()
        return opener(uri)

    return store, reopen
