"""The tables of one collection (one PostgreSQL schema, named after the collection).

Tables::

    meta(key, value jsonb)           format, schema (DocSchema.to_dict), fingerprint, config,
                                     vector field ids, text search configuration
    settings(key, value jsonb)       set_setting() values and fixed dimensions (``dim:<path>``)
    docs(rid, id UNIQUE, body jsonb) one row per document; body is the JSON without vectors (GIN)
    texts(rid, path, pos, body, tsv) one row per text value, nested ones included; tsv is a
                                     generated tsvector with a GIN index
    v<N>(rid, pos, vec, raw)         one table per vector field: ``vec`` is what is scored (unit
                                     length for cosine) with an HNSW index, ``raw`` the float32
                                     bytes as given (documents come back bit for bit)

Vectors and texts reference ``docs`` with ``ON DELETE CASCADE``, so replacing or deleting a
document removes its vectors and texts in the same statement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from polymodal.doc.base import Doc
from polymodal.doc.schema import DocSchema, schema_of
from polymodal.errors import BackendError, ConfigError, SchemaError
from polymodal.store.base import Metric, StoreConfig, vector_fields

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "FORMAT_VERSION",
    "HNSW_MAX_DIM",
    "Names",
    "check_new",
    "create",
    "create_hnsw",
    "create_vector_table",
    "drop_hnsw",
    "from_meta",
    "load_meta",
    "lock",
    "put_setting",
]

FORMAT_VERSION = 1
TEXT_CONFIG = "english"
HNSW_MAX_DIM = 2000  # pgvector indexes vector columns of at most 2,000 dimensions
MAX_DIM = 16000  # and stores at most 16,000
OPCLASS = {"cosine": "vector_ip_ops", "ip": "vector_ip_ops", "l2": "vector_l2_ops"}
OPERATOR = {"cosine": "<#>", "ip": "<#>", "l2": "<->"}  # cosine vectors are stored at unit length


class Names:
    """Quoted, schema-qualified table names of one collection."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.schema = f'"{collection}"'
        self.meta = f"{self.schema}.meta"
        self.settings = f"{self.schema}.settings"
        self.docs = f"{self.schema}.docs"
        self.texts = f"{self.schema}.texts"

    def vectors(self, fid: int) -> str:
        return f'{self.schema}."v{fid}"'


def lock(conn: psycopg.Connection[Any], names: Names) -> None:
    """Serialize writers of one collection until the transaction ends (upserts of the same id
    from two clients must not both insert)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"polymodal:{names.collection}"])


def load_meta(conn: psycopg.Connection[Any], names: Names) -> dict[str, Any] | None:
    """The collection's meta table as a dict, or None when there is no complete collection.

    Raises:
        ConfigError: the schema exists and holds tables that no polymodal store made.
    """
    if conn.execute("SELECT to_regclass(%s)", [names.meta]).fetchone() == (None,):
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [names.collection]
            ).fetchall()
        ]
        if tables:
            raise ConfigError(
                f"the schema {names.collection!r} holds tables of another application ({', '.join(tables[:5])}); "
                "pick another collection= name"
            )
        return None
    meta = dict(conn.execute(f"SELECT key, value FROM {names.meta}").fetchall())
    return meta if "format" in meta else None


def vector_extension(conn: psycopg.Connection[Any]) -> tuple[int, ...]:
    """The pgvector version, creating the extension when it is missing (and allowed)."""
    import psycopg

    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('polymodal:extension'))")
        try:
            with conn.transaction():  # a savepoint, so the message below can be given
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except (
            psycopg.errors.InsufficientPrivilege,
            psycopg.errors.UndefinedFile,
            psycopg.errors.FeatureNotSupported,
        ) as exc:
            raise BackendError(
                "the pgvector extension is not installed in this database and could not be created "
                f"({str(exc).strip()}); install pgvector on the server and run CREATE EXTENSION vector as a superuser",
                backend="pgvector",
            ) from exc
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    assert row is not None
    return _version(str(row[0]))


def _version(text: str) -> tuple[int, ...]:
    out = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits or 0))
    return tuple(out)


def create(conn: psycopg.Connection[Any], names: Names, doc_type: type[Doc], config: StoreConfig) -> dict[str, Any]:
    """Create the collection's schema and tables (or find them made by a concurrent opener)."""
    vector_extension(conn)
    lock(conn, names)
    existing = load_meta(conn, names)
    if existing is not None:
        return existing
    schema = schema_of(doc_type)
    fields = vector_fields(doc_type, config)
    field_ids = {path: i for i, path in enumerate(fields)}
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {names.schema}")
    for sql in (
        f"CREATE TABLE {names.meta} (key text PRIMARY KEY, value jsonb NOT NULL)",
        f"CREATE TABLE {names.settings} (key text PRIMARY KEY, value jsonb NOT NULL)",
        f"CREATE TABLE {names.docs} (rid bigserial PRIMARY KEY, id text NOT NULL UNIQUE, body jsonb NOT NULL)",
        f"CREATE INDEX ON {names.docs} USING gin (body jsonb_path_ops)",
        f"CREATE TABLE {names.texts} (rid bigint NOT NULL REFERENCES {names.docs} (rid) ON DELETE CASCADE, "
        "path text NOT NULL, pos text NOT NULL, body text NOT NULL, "
        f"tsv tsvector GENERATED ALWAYS AS (to_tsvector('{TEXT_CONFIG}'::regconfig, body)) STORED)",
        f"CREATE INDEX ON {names.texts} (rid)",
        f"CREATE INDEX ON {names.texts} USING gin (tsv)",
    ):
        conn.execute(sql)
    meta = {
        "format": FORMAT_VERSION,
        "schema": schema.to_dict(),
        "fingerprint": schema.fingerprint,
        "config": config.model_dump(mode="json"),
        "fields": field_ids,
        "text_config": TEXT_CONFIG,
    }
    for key, value in meta.items():
        conn.execute(
            f"INSERT INTO {names.meta} (key, value) VALUES (%s, %s::jsonb)", [key, orjson.dumps(value).decode()]
        )
    for path, vf in fields.items():
        if vf.dim is not None:
            create_vector_table(conn, names, field_ids[path], vf.dim, vf.metric, config)
    return meta


def create_vector_table(
    conn: psycopg.Connection[Any], names: Names, fid: int, dim: int, metric: Metric, config: StoreConfig
) -> None:
    """The table of one vector field, with its HNSW index (fields over 2,000 dimensions have
    none and are searched exactly)."""
    if not 1 <= dim <= MAX_DIM:
        raise ConfigError(f"pgvector stores vectors of 1 to {MAX_DIM} dimensions, not {dim}")
    table = names.vectors(fid)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {table} (rid bigint NOT NULL REFERENCES {names.docs} (rid) ON DELETE CASCADE, "
        f"pos text NOT NULL, vec vector({dim}) NOT NULL, raw bytea NOT NULL)"
    )
    conn.execute(f'CREATE INDEX IF NOT EXISTS "v{fid}_rid" ON {table} (rid)')
    if dim <= HNSW_MAX_DIM:
        create_hnsw(conn, names, fid, metric, config)


def create_hnsw(conn: psycopg.Connection[Any], names: Names, fid: int, metric: Metric, config: StoreConfig) -> None:
    m = min(config.hnsw_m, 100)  # pgvector's limits: m <= 100, 2m <= ef_construction <= 1000
    ef = max(min(config.hnsw_ef_construction, 1000), 2 * m)
    table = names.vectors(fid)
    # The vectors live out of line (TOAST), so the table's own pages look too few for PostgreSQL
    # to plan parallel workers for the build: ask for them (max_parallel_maintenance_workers
    # still caps them), just for this statement.
    row = conn.execute("SELECT current_setting('max_parallel_maintenance_workers')::int").fetchone()
    workers = int(row[0]) if row else 0
    if workers > 0:
        conn.execute(f"ALTER TABLE {table} SET (parallel_workers = {workers})")
    conn.execute(
        f'CREATE INDEX IF NOT EXISTS "v{fid}_hnsw" ON {table} USING hnsw (vec {OPCLASS[metric]}) '
        f"WITH (m = {int(m)}, ef_construction = {int(ef)})"
    )
    if workers > 0:
        conn.execute(f"ALTER TABLE {table} RESET (parallel_workers)")


def drop_hnsw(conn: psycopg.Connection[Any], names: Names, fid: int) -> bool:
    """Drop a field's HNSW index (before a bulk load); whether there was one."""
    found = conn.execute("SELECT to_regclass(%s)", [f'{names.schema}."v{fid}_hnsw"']).fetchone()
    if found is None or found[0] is None:
        return False
    conn.execute(f'DROP INDEX {names.schema}."v{fid}_hnsw"')
    return True


# -- meta: what a collection remembers -----------------------------------------------------------
def put_setting(conn: psycopg.Connection[Any], names: Names, key: str, value: Any) -> None:
    conn.execute(
        f"INSERT INTO {names.settings} (key, value) VALUES (%s, %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, orjson.dumps(value).decode()],
    )


def check_new(doc_type: type[Doc], config: StoreConfig) -> None:
    """Raise what creating the collection would, before anything is written."""
    from polymodal.store.base import text_paths

    vector_fields(doc_type, config)
    text_paths(doc_type, config)


def from_meta(
    meta: dict[str, Any], doc_type: type[Doc] | None, options: dict[str, Any], where: str
) -> tuple[type[Doc], StoreConfig]:
    """The stored schema and config, checked against what the caller passed (a different
    schema, or a structural option that differs, is an error; runtime options apply)."""
    version = meta.get("format")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(
            f"the collection at {where} has format version {version}; this polymodal reads up to "
            f"{FORMAT_VERSION}: upgrade polymodal"
        )
    saved = StoreConfig.model_validate(meta["config"]).reopened(options, what="collection")
    stored = meta["schema"]
    if doc_type is None:
        doc_type = DocSchema.rebuild(stored)
    elif schema_of(doc_type).fingerprint != meta.get("fingerprint"):
        raise SchemaError(
            f"{doc_type.__name__} does not match the schema this collection was created with "
            f"({stored['name']}: {', '.join(f['name'] for f in stored['fields'])}). "
            "Open it without schema= to use the stored schema, or use another collection."
        )
    return doc_type, saved
