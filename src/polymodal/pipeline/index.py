"""The Index step: records into a store, which is opened (or created) on first use."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polymodal.doc.base import Doc
from polymodal.embed.base import EmbedderConfig
from polymodal.errors import ConfigError, SchemaError
from polymodal.pipeline.records import resolve_ref

if TYPE_CHECKING:
    from polymodal.store.base import Store

__all__ = ["Index"]


class Index:
    """Add items to a store (an upsert by id) and pass them on unchanged.

    Records become documents of the store's schema: the fields the schema declares are kept,
    working fields (decoded pixels, samples) are left out. A new store is created with
    ``schema`` (a Doc class or ``"module:Class"``; default
    :class:`~polymodal.library.schema.MediaItem`, which fits what Decode/Embed/Translate write).
    The configs of the embedders that made its vectors are saved with the store (setting
    ``"embedders"``) so queries can be embedded the same way later.
    """

    def __init__(
        self,
        store: str | Path | Store[Any],
        *,
        schema: type[Doc] | str | None = None,
        options: Mapping[str, Any] | None = None,
        name: str = "index",
        timeout: float | None = None,
    ) -> None:
        if isinstance(schema, str):
            schema = resolve_ref(schema, what="schema")
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, Doc)):
            raise ConfigError(f"schema must be a polymodal Doc class, got {schema!r}")
        self.name, self.timeout = name, timeout
        self.target = store
        self.schema: type[Doc] | None = schema
        self.options = dict(options or {})
        self.embedders: dict[str, EmbedderConfig] = {}
        self._store: Store[Any] | None = None
        self._owned = False
        self._lock = threading.Lock()

    def record_embedder(self, field: str, config: EmbedderConfig) -> None:
        """Note that ``field``'s vectors come from ``config`` (saved with the store)."""
        self.embedders[field] = config

    def store(self) -> Store[Any]:
        """The store, opened (or created) on first use."""
        with self._lock:
            if self._store is None:
                self._store = self._open()
                if self.embedders:
                    saved = dict(self._store.get_setting("embedders") or {})
                    saved.update({f: c.model_dump(mode="json") for f, c in self.embedders.items()})
                    self._store.set_setting("embedders", saved)
            return self._store

    def _open(self) -> Store[Any]:
        from polymodal.store.base import Store
        from polymodal.store.registry import open_store

        if isinstance(self.target, Store):
            return self.target
        self._owned = True
        uri = os.fspath(self.target)
        schema = self.schema
        if schema is None and (uri.startswith("memory://") or not _is_store(uri)):
            from polymodal.library.schema import MediaItem

            schema = MediaItem
        return open_store(uri, schema, **self.options)

    def run(self, batch: list[Any]) -> list[Any]:
        store = self.store()
        store.add([self._doc(item, store.doc_type) for item in batch])
        return list(batch)

    def _doc(self, item: Any, doc_type: type[Doc]) -> Doc:
        if isinstance(item, doc_type):
            return item
        if isinstance(item, Doc):
            item = item.__dict__
        if not isinstance(item, Mapping):
            raise SchemaError(f"step {self.name!r} takes records (dicts) or documents, got {type(item).__name__}")
        fields = doc_type.model_fields
        return doc_type(**{k: v for k, v in item.items() if k in fields})

    def close(self) -> None:
        """Close the store if this step opened it."""
        with self._lock:
            if self._store is not None and self._owned:
                self._store.close()
            self._store = None


def _is_store(uri: str) -> bool:
    """Whether ``uri`` names an existing store (other backends decide for themselves)."""
    if "://" in uri and not uri.lower().startswith("file://"):
        return True
    from polymodal.store.embedded.db import DB_NAME

    path = Path(uri[len("file://") :] if uri.lower().startswith("file://") else uri).expanduser()
    return (path / DB_NAME).exists()
