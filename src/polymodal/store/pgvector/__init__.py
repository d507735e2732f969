"""PostgreSQL + pgvector store: ``polymodal.open("postgresql://user:pw@host:5432/db?collection=clips", schema=Clip)``.

URI: any libpq URI (``postgresql://`` or ``postgres://``; ``postgresql:///db?host=/run/postgresql``
for a Unix socket; ``sslmode=``, ``application_name=`` and other libpq parameters pass through)
plus ``collection=NAME`` (or the ``collection=`` keyword): the PostgreSQL schema that holds the
collection's tables (default ``polymodal``; lower-case letters, digits and ``_``). One database
holds any number of collections. Reopening needs no schema: the document schema, the store
options and the settings live in the collection's own tables. Keywords: ``pool_size=4``,
``connect_timeout=10``, ``wait_timeout=60``, ``retries=3``, ``retry_backoff=0.1``, and the
:class:`~polymodal.store.base.StoreConfig` options.

Storage (:mod:`.ddl`): documents as JSONB (GIN-indexed), one table per vector field with an
HNSW index (``vector_ip_ops`` for cosine, on unit-length vectors, and for ip; ``vector_l2_ops``
for l2; fields over 2,000 dimensions have no index and are searched exactly), one row per text
value with a generated ``tsvector`` (GIN). Filters become SQL (:mod:`.pgfilter`) with the exact
semantics of :mod:`polymodal.store.filters` and run inside the HNSW query with pgvector's
iterative index scans, falling back to exact search when ANN finds fewer than ``limit``, so
``limit`` hits come back whenever ``limit`` documents match. Text search ranks by ``ts_rank_cd``
(English stemming) and marks snippets with ``[brackets]``; hybrid search fuses in Python.
:meth:`PgVectorStore.explain` shows the plan of a search.

Vectors travel in pgvector's binary format (query parameters and ``COPY``), never as text. A
search over a field with one vector per document is one statement (ANN joined with the
documents, outside an explicit transaction, search options set once per connection): one round
trip. Writes are one transaction each (no partial batches), serialized per collection by an
advisory lock. A bulk load (an add of 1,000+ vectors into a field holding at most twice as many)
drops the field's HNSW index, and later adds append to the bare table; the next ANN search (or
:meth:`PgVectorStore.explain`) builds the index once, as pgvector builds fastest, and until then
searches are exact. So a load in batches costs about what ``COPY`` + ``CREATE INDEX`` costs,
and the first search after it waits for the build (as the embedded store's first search does). Connections
come from a small pool; transient errors (connection lost, server restarting, serialization
failures, deadlocks) are retried with backoff, which is safe because every operation is
idempotent; a server that is down is a :class:`~polymodal.errors.BackendError` naming the URI
without its password. PostgreSQL text cannot hold NUL characters: such documents are refused.

Needs ``pip install 'polymodal[postgres]'`` (psycopg 3) and a server with pgvector (0.8+ for
iterative scans; with older versions filtered searches fall back to exact more often).
"""

from polymodal.store.pgvector.store import PgVectorStore

__all__ = ["PgVectorStore"]
