"""Opening an embedded store's database: create its tables and metadata, or check and read
those of an existing store (format version, schema fingerprint, options).

Structural options (``metric``, ``text_fields``, ``hnsw_*``) are fixed when a store is created;
the others given on reopen override the saved ones for that session.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from polymodal.doc.base import Doc
from polymodal.doc.schema import DocSchema, schema_of
from polymodal.errors import ConfigError, SchemaError
from polymodal.store.base import StoreConfig, T
from polymodal.store.embedded import db
from polymodal.store.embedded.rows import _sql_str
from polymodal.store.embedded.sqlfilter import _json_path, indexed_fields

__all__ = ["open_or_create"]


def open_or_create(
    conn: sqlite3.Connection, path: Path, write_lock: db.WriteLock, doc_type: type[T] | None, options: dict[str, Any]
) -> tuple[type[T], StoreConfig]:
    """Open a complete store without the write lock (so opening never waits for a writer);
    create one, or finish one whose creation died, under it."""
    if _is_complete(conn):
        return _open_existing(conn, path, doc_type, options)
    with write_lock:
        if _is_complete(conn):  # another process created it meanwhile
            return _open_existing(conn, path, doc_type, options)
        if doc_type is None:  # a creation that died before its first commit
            raise ConfigError(f"the store at {path} was never completed; pass schema= to create it")
        foreign = _foreign_tables(conn)
        if foreign:
            raise ConfigError(
                f"{path / db.DB_NAME} is a database of another application (tables {foreign}), not a polymodal store"
            )
        return _create(conn, doc_type, options)


def _create(conn: sqlite3.Connection, doc_type: type[T] | None, options: dict[str, Any]) -> tuple[type[T], StoreConfig]:
    assert doc_type is not None
    config = StoreConfig.from_options(options)
    schema = schema_of(doc_type)
    from polymodal.store.base import vector_fields

    fields = {path: i for i, path in enumerate(vector_fields(doc_type, config))}
    db.create_tables(conn)  # idempotent; executescript commits on its own
    with db.transaction(conn):
        db.set_meta(conn, "format", db.FORMAT_VERSION)
        db.set_meta(conn, "schema", schema.to_dict())
        db.set_meta(conn, "fingerprint", schema.fingerprint)
        db.set_meta(conn, "config", config.model_dump(mode="json"))
        db.set_meta(conn, "fields", fields)
        db.set_meta(conn, "trimmed_upto", 0)
        for name in indexed_fields(doc_type):
            expr = f"json_extract(body, {_sql_str(_json_path([name]))})"
            conn.execute(f'CREATE INDEX IF NOT EXISTS "docs_f_{name}" ON docs({expr})')
    return doc_type, config


def _open_existing(
    conn: sqlite3.Connection, path: Path, doc_type: type[T] | None, options: dict[str, Any]
) -> tuple[type[T], StoreConfig]:
    version = db.get_meta(conn, "format")
    if not isinstance(version, int) or version > db.FORMAT_VERSION:
        raise ConfigError(
            f"the store at {path} has format version {version}; this polymodal reads up to "
            f"{db.FORMAT_VERSION}: upgrade polymodal"
        )
    stored = db.get_meta(conn, "schema")
    if doc_type is None:
        doc_type = DocSchema.rebuild(stored)  # type: ignore[assignment]
    elif schema_of(doc_type).fingerprint != db.get_meta(conn, "fingerprint"):
        raise SchemaError(
            f"{doc_type.__name__} does not match the schema this store was created with "
            f"({stored['name']}: {', '.join(f['name'] for f in stored['fields'])}). "
            "Open it without schema= to use the stored schema, or create a new store.",
        )
    saved = StoreConfig.model_validate(db.get_meta(conn, "config")).reopened(options)
    assert doc_type is not None
    return doc_type, saved


def _is_complete(conn: sqlite3.Connection) -> bool:
    """Whether the database holds a store whose creation committed (it has a format)."""
    has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
    return has_meta is not None and db.get_meta(conn, "format") is not None


_OWN_TABLES = ("meta", "docs", "vectors", "free_slots", "changes", "fts")


def _foreign_tables(conn: sqlite3.Connection) -> list[str]:
    """Tables that no polymodal store makes (a store.db of another application)."""
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return sorted(n for n in names if n not in _OWN_TABLES and not n.startswith(("fts_", "sqlite_")))


def _check_new(doc_type: type[Doc], options: dict[str, Any]) -> None:
    """Raise the ConfigError/SchemaError that creating a store would, before anything is written."""
    from polymodal.store.base import text_paths, vector_fields

    config = StoreConfig.from_options(options)
    vector_fields(doc_type, config)
    text_paths(doc_type, config)
