"""The default, server-less store: SQLite + FTS5 + hnswlib in one directory."""

from polymodal.store.embedded.store import EmbeddedStore

__all__ = ["EmbeddedStore"]
