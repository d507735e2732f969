"""``polymodal.open``: pick a backend from a URI.

A plain path (or ``file://``) is the embedded store; ``memory://`` the in-memory reference
store; other schemes are looked up in a lazy ``name -> "module:Class"`` table, extended by the
``polymodal.stores`` entry-point group, so a backend's driver is imported only when used.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

from polymodal.doc.base import Doc
from polymodal.errors import ConfigError, UnknownBackendError
from polymodal.store.base import Store

__all__ = ["BACKENDS", "known_backends", "open_store"]

T = TypeVar("T", bound=Doc)

BACKENDS: dict[str, str] = {
    "file": "polymodal.store.embedded:EmbeddedStore",
    "memory": "polymodal.store.memory:MemoryStore",
    "postgresql": "polymodal.store.pgvector:PgVectorStore",
    "postgres": "polymodal.store.pgvector:PgVectorStore",
    "qdrant": "polymodal.store.qdrant:QdrantStore",
    "qdrant+local": "polymodal.store.qdrant:QdrantStore",
    "milvus": "polymodal.store.milvus:MilvusStore",
    "milvus+lite": "polymodal.store.milvus:MilvusStore",
}


def known_backends() -> dict[str, str]:
    """Built-in backends plus those registered under the ``polymodal.stores`` entry points."""
    table = dict(BACKENDS)
    for ep in entry_points(group="polymodal.stores"):
        table.setdefault(ep.name, ep.value)
    return table


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition("://")
    return head.lower() if sep and head.replace("+", "").isalnum() else "file"


def open_store(uri: str | Path, schema: type[T] | None = None, **options: Any) -> Store[T]:
    """Open (or create) a store.

    Args:
        uri: a directory path for the embedded store, ``memory://`` for the in-memory store,
            or a backend URI such as ``postgresql://user@host/db``.
        schema: the Doc class. Needed to create a store; a persistent store remembers it, so
            reopening needs none (passing a different one is a SchemaError).
        options: backend options (``metric="cosine"``, ``text_fields=[...]``, ``ef_search=``,
            ``exact_threshold=`` ...), see :class:`polymodal.store.base.StoreConfig`.

    Raises:
        UnknownBackendError: the URI scheme names no known backend (the message lists them).
        ConfigError: missing schema for a new store, bad options.
    """
    text = str(uri)
    scheme = _scheme(text)
    table = known_backends()
    if scheme not in table:
        raise UnknownBackendError(
            f"no store backend for {scheme}://; known: {', '.join(sorted(s + '://' for s in table))} "
            "(a plain path opens the embedded store)",
            scheme=scheme,
            known=tuple(sorted(table)),
        )
    module_name, _, cls_name = table[scheme].partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if scheme == "file":
        path = text[len("file://") :] if text.lower().startswith("file://") else text
        return cls(path, schema, **options)  # type: ignore[no-any-return]
    if scheme == "memory":
        if schema is None:
            raise ConfigError("memory:// stores keep nothing between runs: pass schema=MyDoc")
        from polymodal.store.types import StoreConfig

        return cls(schema, StoreConfig.from_options(options))  # type: ignore[no-any-return]
    return cls(text, schema, **options)  # type: ignore[no-any-return]
