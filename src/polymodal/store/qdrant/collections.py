"""Creating and reopening a store's Qdrant collections, and reading their configuration."""

from __future__ import annotations

from typing import Any

import orjson

from polymodal.doc.base import Doc
from polymodal.doc.schema import DocSchema, schema_of
from polymodal.errors import BackendError, ConfigError, SchemaError
from polymodal.store.base import StoreConfig, VectorField, text_paths, vector_fields
from polymodal.store.qdrant import layout as lay
from polymodal.store.qdrant.connection import Connection

__all__ = ["ensure_text", "metadata", "open_or_create", "vector_params", "vector_sizes"]

# payload indexes only speed a server up (local mode has none); filters are exact without them
_INDEXES = {"id": "keyword", "_f": "keyword", "_r[].p": "keyword", "_r[].n": "float", "_r[].dn": "datetime"}
_INDEXES |= {"_r[].da": "datetime", "_r[].d": "integer"}


def open_or_create(
    conn: Connection, doc_type: type[Doc] | None, options: dict[str, Any]
) -> tuple[type[Doc], StoreConfig, dict[str, str]]:
    """The schema, config and vector names of the store at ``conn``, created when missing.

    Raises:
        ConfigError: no store there and no schema, a foreign collection, a newer format, a
            structural option that differs from the store's.
        SchemaError: ``doc_type`` differs from the stored schema.
    """
    name, uri = conn.target.collection, conn.target.uri
    if not conn.call("open", conn.client.collection_exists, name):
        if doc_type is None:
            raise ConfigError(f"no polymodal store at {uri}; pass schema=MyDoc to create one there")
        _create(conn, doc_type, options)
    raw = metadata(conn, name).get("polymodal")
    if not isinstance(raw, str):
        raise ConfigError(f"the Qdrant collection at {uri} exists but is not a polymodal store")
    info = orjson.loads(raw)
    if not isinstance(info.get("format"), int) or info["format"] > lay.FORMAT:
        raise ConfigError(
            f"the store at {uri} has format {info.get('format')}; this polymodal reads up to {lay.FORMAT}: "
            "upgrade polymodal"
        )
    stored = info["schema"]
    if doc_type is None:
        doc_type = DocSchema.rebuild(stored)
    elif schema_of(doc_type).fingerprint != info["fingerprint"]:
        raise SchemaError(
            f"{doc_type.__name__} does not match the schema this store was created with "
            f"({stored['name']}: {', '.join(f['name'] for f in stored['fields'])}). "
            "Open it without schema= to use the stored schema, or create a new store."
        )
    config = StoreConfig.from_options(info["config"]).reopened(options)
    return doc_type, config, dict(info["fields"])


def _create(conn: Connection, doc_type: type[Doc], options: dict[str, Any]) -> None:
    from qdrant_client import models as m

    config = StoreConfig.from_options(options)
    fields = vector_fields(doc_type, config)
    text_paths(doc_type, config)  # bad options fail before anything is created
    names = {path: f"v{i}" for i, path in enumerate(fields)}
    schema = schema_of(doc_type)
    info = {
        "format": lay.FORMAT,
        "schema": schema.to_dict(),
        "fingerprint": schema.fingerprint,
        "config": config.model_dump(mode="json"),
        "fields": names,
    }
    vectors = {names[p]: vector_params(vf, vf.dim) for p, vf in fields.items() if vf.dim is not None}
    extra: dict[str, Any] = {}
    if not conn.local:
        extra["hnsw_config"] = m.HnswConfigDiff(m=config.hnsw_m, ef_construct=config.hnsw_ef_construction)
    name = conn.target.collection
    try:
        conn.call(
            "create collection",
            conn.client.create_collection,
            name,
            vectors_config=vectors,
            metadata={"polymodal": orjson.dumps(info).decode()},
            **extra,
        )
    except BackendError:
        if not conn.call("open", conn.client.collection_exists, name):
            raise
        return  # another process created it meanwhile
    if not conn.local:
        for key, kind in _INDEXES.items():
            conn.call("index", conn.client.create_payload_index, name, key, field_schema=m.PayloadSchemaType(kind))


def ensure_text(conn: Connection, name: str) -> None:
    """Create the text-row collection and its BM25 index; idempotent, so a creation cut short is
    finished on the next open."""
    from qdrant_client import models as m

    client = conn.client
    if not conn.call("open", client.collection_exists, name):
        try:
            conn.call("create collection", client.create_collection, name, vectors_config={})
        except BackendError:
            if not conn.call("open", client.collection_exists, name):
                raise
    meta = conn.call("open", client.get_collection, name).config.metadata or {}
    if meta.get("polymodal_text") == "ready":
        return
    index = m.TextIndexParams(type=m.TextIndexType.TEXT, tokenizer=m.TokenizerType.WORD, lowercase=True, scoring=True)
    conn.call("index", client.create_payload_index, name, "t", field_schema=index)
    if not conn.local:
        for key in ("p", "f", "g"):
            conn.call("index", client.create_payload_index, name, key, field_schema=m.PayloadSchemaType.KEYWORD)
    conn.call("index", client.update_collection, name, metadata={"polymodal_text": "ready"})


def vector_params(field: VectorField, dim: int | None) -> Any:
    """A named vector for a field: dot product on unit vectors for cosine, Euclid for l2, and a
    MAX_SIM multivector for a nested field."""
    from qdrant_client import models as m

    multi = m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM) if field.nested else None
    distance = m.Distance.EUCLID if field.metric == "l2" else m.Distance.DOT
    return m.VectorParams(size=dim, distance=distance, multivector_config=multi)


def metadata(conn: Connection, name: str) -> dict[str, Any]:
    info = conn.call("read metadata", conn.client.get_collection, name)
    return dict(info.config.metadata or {})


def vector_sizes(conn: Connection, name: str) -> dict[str, int]:
    """The named vectors a collection has, with their dimensions."""
    info = conn.call("read collection", conn.client.get_collection, name)
    vectors = info.config.params.vectors
    return {n: p.size for n, p in vectors.items()} if isinstance(vectors, dict) else {}
