"""``PgVectorStore``: a collection in PostgreSQL with pgvector (see the package docstring)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from polymodal.doc.doclist import DocList
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError, OptionalDependencyError, SchemaError
from polymodal.store import filters as flt
from polymodal.store.base import Aggregate, Capabilities, Hit, Store, StoreConfig, T, VectorField, match_at, ranked_hits
from polymodal.store.flatten import flatten, set_at
from polymodal.store.pgvector import codec, ddl, search
from polymodal.store.pgvector.connection import Pool, parse_uri
from polymodal.store.pgvector.pgfilter import to_sql

if TYPE_CHECKING:
    import psycopg

    Conn = psycopg.Connection[Any]

__all__ = ["PgVectorStore"]

_CONFIG_NAME = re.compile(r"^[a-z_]+$")
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # an escaped NUL in JSON text (not an escaped backslash + "u0000")
_BULK = 1000  # vectors in one add from which a small table's HNSW index is dropped, to be built once later
_STATS_TTL = 1.0  # seconds a field table's row count and index state are trusted for planning
_ONE_STATEMENT = 10_000  # vectors from which the planner picks HNSW unaided (one-statement search)


class PgVectorStore(Store[T]):
    """A collection in PostgreSQL: ``polymodal.open("postgresql://user:pw@host/db?collection=clips", schema=Clip)``.

    Args:
        uri: ``postgresql://`` (or ``postgres://``) libpq URI; ``?collection=NAME`` picks the
            collection (a PostgreSQL schema of that name; default ``polymodal``).
        doc_type: the Doc class; needed to create a collection, not to reopen one.
        collection: the collection name, instead of the URI parameter.
        pool_size: most connections held at once (default 4).
        connect_timeout: seconds to wait for a new connection (default 10).
        wait_timeout: seconds to wait for a free pooled connection (default 60).
        retries: retries of an operation after a transient error (default 3), with exponential
            backoff starting at ``retry_backoff`` seconds (default 0.1).
        options: :class:`~polymodal.store.base.StoreConfig` options (``metric=``, ``ef_search=`` ...).

    Raises:
        BackendError: the server cannot be reached (the message names the URI without its
            password) or refuses the operation.
        ConfigError: no collection of that name and no schema to create one; bad options.
    """

    capabilities = Capabilities(filter=True, text=True, hybrid=False, nested=True)
    backend = "pgvector"

    def __init__(
        self,
        uri: str,
        doc_type: type[T] | None = None,
        *,
        collection: str | None = None,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        wait_timeout: float = 60.0,
        retries: int = 3,
        retry_backoff: float = 0.1,
        **options: Any,
    ) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise OptionalDependencyError.for_package("psycopg", "postgres", "The PostgreSQL store") from None
        target = parse_uri(uri, collection)
        self.uri = target.display
        self.names = ddl.Names(target.collection)
        self._pool = Pool(
            target,
            size=pool_size,
            connect_timeout=connect_timeout,
            wait_timeout=wait_timeout,
            retries=retries,
            backoff=retry_backoff,
        )
        try:
            meta = self._pool.run(lambda c: ddl.load_meta(c, self.names), write=False, what="open")
            if meta is None:
                if doc_type is None:
                    raise ConfigError(
                        f"no polymodal collection {target.collection!r} at {self.uri}; pass schema=MyDoc to create it"
                    )
                config = StoreConfig.from_options(options)
                new_type: type[T] = doc_type
                ddl.check_new(new_type, config)
                meta = self._pool.run(
                    lambda c: ddl.create(c, self.names, new_type, config), write=True, what="create collection"
                )
            found, config = ddl.from_meta(meta, doc_type, options, self.uri)
            super().__init__(cast("type[T]", found), config)
            self._fields: dict[str, int] = {str(k): int(v) for k, v in meta["fields"].items()}
            self._paths = {fid: path for path, fid in self._fields.items()}
            self._text_config = str(meta.get("text_config", ddl.TEXT_CONFIG))
            if not _CONFIG_NAME.match(self._text_config):
                raise ConfigError(f"bad text search configuration {self._text_config!r} in {self.uri}")
            version = self._pool.run(ddl.vector_extension, write=False, what="open")
        except BaseException:
            self._pool.close()
            raise
        self._iterative = version >= (0, 8, 0)
        self._stats: dict[str, tuple[float, int, bool]] = {}  # table -> (when, vectors, HNSW index exists)
        self._dims: dict[str, int] = {p: vf.dim for p, vf in self.vector_fields.items() if vf.dim is not None}

    # -- writes --------------------------------------------------------------------------------
    def _add(self, docs: DocList[T]) -> None:
        flats = [flatten(d, self.text_fields) for d in docs]
        ids = [d.id for d in docs]
        bodies = [codec.body_json(f.body) for f in flats]
        for doc, body in zip(docs, bodies, strict=True):
            if _NUL.search(body):
                raise SchemaError(
                    f"document {doc.id!r} has a NUL character (\\x00) in a text value, which PostgreSQL cannot store"
                )
        vectors = codec.vector_rows(flats, self.vector_fields, self._fields)
        texts = [(i, p, ".".join(map(str, pos)), t) for i, f in enumerate(flats) for p, pos, t in f.texts]
        n = self.names

        def write(conn: Conn) -> None:
            codec.adapt(conn)
            ddl.lock(conn, n)
            conn.execute(f"DELETE FROM {n.docs} WHERE id = ANY(%s)", [ids])
            rows = conn.execute(
                f"INSERT INTO {n.docs} (id, body) SELECT * FROM unnest(%s::text[], %s::jsonb[]) RETURNING rid, id",
                [ids, bodies],
            ).fetchall()
            rid_of = {doc_id: rid for rid, doc_id in rows}
            rids = [rid_of[i] for i in ids]
            for fid, items in vectors.items():
                # a big load into a small table: building the index once, at the next ANN search
                # (see _ensure_index), beats inserting each vector into it; later adds append
                # to the unindexed table until then
                if len(items) >= _BULK and search.candidates(conn, n.vectors(fid), 2 * len(items)) <= 2 * len(items):
                    ddl.drop_hnsw(conn, n, fid)
                codec.copy_vectors(conn, n.vectors(fid), [(rids[i], pos, vec, raw) for i, pos, vec, raw in items])
            with conn.cursor() as cur:
                if texts:
                    with cur.copy(f"COPY {n.texts} (rid, path, pos, body) FROM STDIN") as copy:
                        for i, path, pos, text in texts:
                            copy.write_row((rids[i], path, pos, text))

        self._pool.run(write, write=True, what="upsert")
        self._stats.clear()

    def _delete(self, ids: list[str]) -> int:
        def delete(conn: Conn) -> int:
            ddl.lock(conn, self.names)
            return conn.execute(f"DELETE FROM {self.names.docs} WHERE id = ANY(%s)", [ids]).rowcount

        return int(self._pool.run(delete, write=True, what="delete"))

    def _field_dim(self, path: str) -> int | None:
        if path not in self._dims:
            found = super()._field_dim(path)
            if found is None:
                return None
            self._dims[path] = found
        return self._dims[path]

    def _set_field_dim(self, path: str, dim: int) -> None:
        """Fix an unsized field's dimension once and create its table, under the collection's
        lock, so two clients adding first vectors of different sizes cannot both win."""
        vf = self.vector_fields[path]

        def fix(conn: Conn) -> None:
            ddl.lock(conn, self.names)
            row = conn.execute(f"SELECT value FROM {self.names.settings} WHERE key = %s", [f"dim:{path}"]).fetchone()
            if row is not None and int(row[0]) != dim:
                raise SchemaError(f"{path}: expected dimension {row[0]} (the store's), got {dim}", field=path)
            ddl.create_vector_table(conn, self.names, self._fields[path], dim, vf.metric, self.config)
            ddl.put_setting(conn, self.names, f"dim:{path}", dim)

        self._pool.run(fix, write=True, what="fix vector dimension")
        self._dims[path] = dim

    # -- reads ---------------------------------------------------------------------------------
    def _load(self, conn: Conn, rids: Sequence[int]) -> dict[int, T]:
        """Documents by rid, with their vectors put back."""
        self._learn_dims(conn)
        tables = {path: fid for path, fid in self._fields.items() if path in self._dims}
        return codec.load_docs(conn, self.names, self.doc_type, self.vector_fields, tables, rids)

    def _learn_dims(self, conn: Conn) -> None:
        """Dimensions of unsized fields fixed since we last looked (maybe by another client)."""
        unknown = [f"dim:{p}" for p in self._fields if p not in self._dims]
        if unknown:
            for key, value in conn.execute(
                f"SELECT key, value FROM {self.names.settings} WHERE key = ANY(%s)", [unknown]
            ).fetchall():
                self._dims[key[4:]] = int(value)

    def _get(self, ids: list[str]) -> list[T | None]:
        def get(conn: Conn) -> dict[str, T]:
            rows = conn.execute(f"SELECT rid, id FROM {self.names.docs} WHERE id = ANY(%s)", [ids]).fetchall()
            docs = self._load(conn, [r for r, _ in rows])
            return {doc_id: docs[rid] for rid, doc_id in rows if rid in docs}

        found = self._pool.run(get, write=False, what="get")
        return [found.get(i) for i in ids]

    def _count(self, where: flt.Filter | None) -> int:
        sql, params = to_sql(where, self.doc_type)
        row = self._pool.run(
            lambda c: c.execute(f"SELECT count(*) FROM {self.names.docs} d WHERE {sql}", params).fetchone(),
            write=False,
            what="count",
        )
        return int(row[0]) if row else 0

    def _iter(self, batch_size: int) -> Iterator[list[T]]:
        return self._pages(batch_size, ("true", []))

    def _pages(self, batch_size: int, where: tuple[str, list[Any]]) -> Iterator[list[T]]:
        """Matching documents in rid order, one read transaction per page (bounded memory)."""
        sql, params = where
        last = 0

        def page(conn: Conn) -> tuple[list[int], dict[int, T]]:
            rows = conn.execute(
                f"SELECT d.rid FROM {self.names.docs} d WHERE d.rid > %s AND {sql} ORDER BY d.rid LIMIT %s",
                [last, *params, batch_size],
            ).fetchall()
            rids = [int(r) for (r,) in rows]
            return rids, self._load(conn, rids)

        while True:
            rids, docs = self._pool.run(page, write=False, what="iterate")
            if not rids:
                return
            last = rids[-1]
            yield [docs[r] for r in rids if r in docs]

    def _scan(self, fields: list[str], where: flt.Filter | None) -> Iterator[dict[str, Any]]:
        """Plain top-level fields read from the JSON body, without loading documents."""
        specs = schema_of(self.doc_type)
        sql, params = to_sql(where, self.doc_type)
        if not all(f == "id" or specs[f].kind in ("scalar", "url") for f in fields):
            for batch in self._pages(1000, (sql, params)):
                for doc in batch:
                    yield {f: getattr(doc, f) for f in fields}
            return
        kinds = {f: specs[f].scalar for f in fields}
        last = 0
        while True:
            page = partial(codec.scan_page, names=self.names, fields=fields, where=(sql, params), after=last)
            rows = self._pool.run(page, write=False, what="scan")
            if not rows:
                return
            last = rows[-1][0]
            for row in rows:
                yield {f: codec.plain(kinds.get(f), v) for f, v in zip(fields, row[1:], strict=True)}

    # -- search --------------------------------------------------------------------------------
    def _vector_search(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[Hit]]:
        dim = self._dim_of(field)
        if dim is None:  # an unsized field that has no vector yet
            return [[] for _ in queries]
        fid = self._fields[field.path]
        table = self.names.vectors(fid)
        filt = to_sql(where, self.doc_type)
        use_exact = self._plan(fid, dim, aggregate, exact)
        if not use_exact and self._one_statement(field, table):
            found = self._ann_docs(field, fid, queries, limit, filt)
            if found is not None:
                return found

        def run(conn: Conn) -> tuple[list[list[search.Row]], dict[int, T]]:
            ranked = self._ranked(conn, field, queries, limit, filt, aggregate, use_exact)
            return ranked, self._load(conn, sorted({r for rows in ranked for r, _, _ in rows}))

        ranked, docs = self._pool.run(run, write=False, what="vector search", pipeline=True)
        return [ranked_hits(((rid, score, pos) for rid, pos, score in rows), docs, field) for rows in ranked]

    def _vector_search_ids(
        self,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        where: flt.Filter | None,
        aggregate: Aggregate,
        exact: bool | None,
    ) -> list[list[tuple[str, float]]]:
        """:meth:`_vector_search`'s ranking with the ids alone: no body or vector is read."""
        dim = self._dim_of(field)
        if dim is None:
            return [[] for _ in queries]
        fid = self._fields[field.path]
        table = self.names.vectors(fid)
        op = ddl.OPERATOR[field.metric]
        filt = to_sql(where, self.doc_type)
        use_exact = self._plan(fid, dim, aggregate, exact)
        if not use_exact and self._one_statement(field, table):
            ef = min(1000, max(self.config.ef_search, limit))
            sql, params = search.ann_ids_sql(table, self.names.docs, op, queries[0], limit, filt)

            def one(conn: Conn) -> list[list[tuple[Any, ...]]]:
                codec.adapt(conn)
                search.ann_session(conn, ef, self._iterative_for(filt))
                out = []
                for q in queries:
                    params[0] = params[-1] = q
                    out.append(conn.execute(sql, params, binary=True).fetchall())
                return out

            found = self._pool.read_one(one, what="vector search")
            if all(len(rows) >= limit for rows in found):
                return [[(str(i), float(s)) for i, s in rows] for rows in found]

        def run(conn: Conn) -> tuple[list[list[search.Row]], dict[int, str]]:
            ranked = self._ranked(conn, field, queries, limit, filt, aggregate, use_exact)
            need = sorted({r for rows in ranked for r, _, _ in rows})
            found = conn.execute(f"SELECT rid, id FROM {self.names.docs} WHERE rid = ANY(%s)", [need]).fetchall()
            return ranked, {int(r): str(i) for r, i in found}

        ranked, id_of = self._pool.run(run, write=False, what="vector search", pipeline=True)
        return [[(id_of[rid], score) for rid, _, score in rows if rid in id_of] for rows in ranked]

    def _ranked(
        self,
        conn: Conn,
        field: VectorField,
        queries: np.ndarray,
        limit: int,
        filt: tuple[str, list[Any]],
        aggregate: Aggregate,
        use_exact: bool,
    ) -> list[list[search.Row]]:
        """Each query's top documents as ``(rid, position, score)``: ANN, or exact when asked
        or when ANN found fewer than ``limit`` (inside the caller's transaction)."""
        table = self.names.vectors(self._fields[field.path])
        op = ddl.OPERATOR[field.metric]
        codec.adapt(conn)
        if not use_exact:
            self._ann_settings(conn, limit, field.nested, filt)
        ranked = []
        for q in queries:
            rows = None if use_exact else search.ann_top(conn, table, self.names.docs, op, q, limit, filt, field.nested)
            if rows is None:
                if not use_exact:
                    search.index_only(conn, False)
                rows = search.exact(
                    conn, table, self.names.docs, op, q, limit, filt, nested=field.nested, aggregate=aggregate
                )
                if not use_exact:
                    search.index_only(conn, True)
            ranked.append(rows)
        return ranked

    def _one_statement(self, field: VectorField, table: str) -> bool:
        """Whether an ANN search can be the one-statement kind: a field with one vector per
        document, dimensions all known, and a table big enough that the planner uses the HNSW
        index without ``enable_seqscan = off`` (smaller ones take the transaction path)."""
        cached = self._stats.get(table)
        return (
            not field.nested
            and all(p in self._dims for p in self._fields)
            and cached is not None
            and cached[1] >= _ONE_STATEMENT
        )

    def _ann_docs(
        self, field: VectorField, fid: int, queries: np.ndarray, limit: int, filt: tuple[str, list[Any]]
    ) -> list[list[Hit]] | None:
        """ANN over a field with one vector per document, the documents in the same statement:
        one round trip per query, outside a transaction (one statement sees one snapshot), with
        the search options set for the session (only when they change). The planner picks the
        HNSW index here on its own (``enable_seqscan`` is not turned off: only a tiny table,
        searched with ``exact=False``, may be scanned instead, which gives exact results;
        ``_one_statement`` keeps small tables off this path).
        None when a query found fewer than ``limit`` rows (the caller then searches exactly)."""
        others = [(p, f) for p, f in self._fields.items() if f != fid]
        tables = [self.names.vectors(f) for _, f in others]
        op = ddl.OPERATOR[field.metric]
        ef = min(1000, max(self.config.ef_search, limit))
        sql, params = search.ann_docs_sql(self.names.vectors(fid), self.names.docs, op, queries[0], limit, filt, tables)

        def run(conn: Conn) -> list[list[tuple[Any, ...]]]:
            codec.adapt(conn)
            search.ann_session(conn, ef, self._iterative_for(filt))
            out = []
            for q in queries:
                params[-1] = q
                out.append(conn.execute(sql, params, binary=True).fetchall())
            return out

        results = self._pool.read_one(run, what="vector search")
        if any(len(rows) < limit for rows in results):
            return None
        out = []
        for q, found in zip(queries, results, strict=True):
            vecs = np.frombuffer(b"".join(r[2] for r in found), dtype="<f4").reshape(len(found), -1).copy()
            scores = search.client_scores(vecs, q, field.metric).tolist()
            order = sorted(range(len(found)), key=lambda i: (-scores[i], found[i][0]))
            rows = [found[i] for i in order]
            bodies = []
            for i, (_rid, body, _raw, *extra) in zip(order, rows, strict=True):
                set_at(body, field.path, field.nesting, (), vecs[i])
                for k, (path, _) in enumerate(others):
                    positions, raws = extra[2 * k], extra[2 * k + 1]
                    for pos, vec in zip(positions or (), raws or (), strict=True):
                        at = tuple(int(x) for x in pos.split(".")) if pos else ()
                        nesting = self.vector_fields[path].nesting
                        set_at(body, path, nesting, at, np.frombuffer(vec, dtype="<f4").copy())
                bodies.append(body)
            docs = self.doc_type.from_dicts(bodies)
            out.append(
                [
                    Hit(id=doc.id, score=scores[i], doc=doc, match=None, field=field.path)
                    for i, doc in zip(order, docs, strict=True)
                ]
            )
        return out

    def _plan(self, fid: int, dim: int, aggregate: str, exact: bool | None) -> bool:
        """Whether to search exactly. For ANN, the field's HNSW index is built first when a bulk
        load dropped it. The row count and index state come from a cache refreshed every
        ``_STATS_TTL`` seconds (and after each add here): a stale entry only picks the slower
        plan, since ANN gives way to exact whenever it finds fewer than ``limit`` rows."""
        if aggregate == "mean" or dim > ddl.HNSW_MAX_DIM:
            return True  # the mean over all sub-documents has no index; wide fields have none
        if exact:
            return True
        table = self.names.vectors(fid)
        cap = self.config.exact_threshold // dim
        now = time.monotonic()
        cached = self._stats.get(table)
        if cached is None or now - cached[0] > _STATS_TTL:
            index = f'{self.names.schema}."v{fid}_hnsw"'
            n, has_index = self._pool.run(
                lambda c: search.stats(c, table, index, cap), write=False, what="plan vector search"
            )
            cached = (now, n, has_index)
            self._stats[table] = cached
        if exact is None and cached[1] <= cap:
            return True
        if not cached[2]:
            self._ensure_index(fid)
        return False

    def _ensure_index(self, fid: int) -> None:
        """Build a field's HNSW index (once, under the collection's lock: a concurrent builder
        makes this a no-op)."""
        metric = self.vector_fields[self._paths[fid]].metric

        def build(conn: Conn) -> None:
            ddl.lock(conn, self.names)
            ddl.create_hnsw(conn, self.names, fid, metric, self.config)

        self._pool.run(build, write=True, what="build the HNSW index")
        self._stats.pop(self.names.vectors(fid), None)

    def _iterative_for(self, filt: tuple[str, list[Any]]) -> bool | None:
        """pgvector's iterative scan for this search: on with a filter, off without (it costs
        time for nothing then), None where pgvector has none (before 0.8)."""
        return (filt[0] != "true") if self._iterative else None

    def _ann_settings(self, conn: Conn, limit: int, nested: bool, filt: tuple[str, list[Any]]) -> None:
        """pgvector's search options for this transaction."""
        ef = min(1000, max(self.config.ef_search, limit * (4 if nested else 1)))
        search.ann_settings(conn, ef, self._iterative_for(filt))

    def explain(
        self,
        query: Any,
        *,
        field: str | None = None,
        limit: int = 10,
        where: dict[str, Any] | None = None,
        exact: bool | None = None,
    ) -> str:
        """PostgreSQL's plan for :meth:`search` with these arguments (ANN searches show
        ``Index Scan using v<N>_hnsw``), to check that the HNSW index serves a query."""
        self._check_open()
        vf, matrix = self._query_matrix([query], field)
        dim = self._dim_of(vf)
        if dim is None:
            raise ConfigError(f"{vf.path!r} has no vectors yet, so no plan")
        fid = self._fields[vf.path]
        table = self.names.vectors(fid)
        op = ddl.OPERATOR[vf.metric]
        filt = to_sql(self._filter(where), self.doc_type)
        q = matrix[0]
        use_exact = self._plan(fid, dim, "max", exact)

        if not use_exact and self._one_statement(vf, table):  # what search runs: see _ann_docs
            others = [self.names.vectors(f) for f in self._fields.values() if f != fid]
            ef = min(1000, max(self.config.ef_search, limit))

            def one(conn: Conn) -> str:
                codec.adapt(conn)
                search.ann_session(conn, ef, self._iterative_for(filt))
                sql, params = search.ann_docs_sql(table, self.names.docs, op, q, limit, filt, others)
                return "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, params).fetchall())

            return str(self._pool.read_one(one, what="explain"))

        def run(conn: Conn) -> str:
            codec.adapt(conn)
            if not use_exact:
                self._ann_settings(conn, limit, vf.nested, filt)
            if use_exact:
                sql, params = search.exact_sql(
                    table, self.names.docs, op, q, limit, filt, nested=vf.nested, aggregate="max"
                )
            else:
                sql, params = search.ann_sql(table, self.names.docs, op, q, limit * (4 if vf.nested else 1), filt)
            return "\n".join(str(r[0]) for r in conn.execute("EXPLAIN " + sql, params).fetchall())

        return str(self._pool.run(run, write=False, what="explain"))

    def _text_search(self, text: str, field: str | None, limit: int, where: flt.Filter | None, mode: str) -> list[Hit]:
        query = search.tsquery(text, mode)
        filt = to_sql(where, self.doc_type)

        def run(conn: Conn) -> tuple[list[tuple[int, str, str, float, str]], dict[int, T]]:
            rows = search.text_rows(
                conn, self.names.texts, self.names.docs, self._text_config, query, limit, field, filt
            )
            return rows, self._load(conn, [r[0] for r in rows])

        rows, docs = self._pool.run(run, write=False, what="text search")
        hits = []
        for rid, path, pos, score, snippet in rows:
            doc = docs.get(rid)
            if doc is None:
                continue
            nesting = self.nesting_of(path)
            match = match_at(doc, nesting, tuple(int(p) for p in pos.split("."))) if nesting else None
            hits.append(Hit(id=doc.id, score=score, doc=doc, match=match, field=path, snippet=snippet))
        return hits

    def _sample_vectors(self, field: VectorField, n: int, seed: int) -> np.ndarray:
        """Stored vectors chosen at random (reproducibly for a seed), as scored."""
        dim = self._dim_of(field)
        if dim is None:
            return np.zeros((0, 0), np.float32)
        table = self.names.vectors(self._fields[field.path])

        def run(conn: Conn) -> list[tuple[bytes]]:
            conn.execute("SELECT setseed(%s)", [((seed % 2000) - 1000) / 1000.0])
            return conn.execute(f"SELECT raw FROM {table} ORDER BY random() LIMIT %s", [n]).fetchall()

        rows = self._pool.run(run, write=False, what="sample vectors")
        if not rows:
            return np.zeros((0, dim), np.float32)
        arr = np.frombuffer(b"".join(r[0] for r in rows), dtype="<f4").reshape(len(rows), dim).astype(np.float32)
        if field.metric == "cosine":
            norms = np.linalg.norm(arr.astype(np.float64), axis=1, keepdims=True)
            arr = (arr / np.where(norms == 0, 1, norms)).astype(np.float32)
        return arr

    # -- settings and lifecycle ----------------------------------------------------------------
    def _get_setting(self, key: str) -> Any:
        row = self._pool.run(
            lambda c: c.execute(f"SELECT value FROM {self.names.settings} WHERE key = %s", [key]).fetchone(),
            write=False,
            what="get setting",
        )
        return None if row is None else row[0]

    def _set_setting(self, key: str, value: Any) -> None:
        self._pool.run(lambda c: ddl.put_setting(c, self.names, key, value), write=True, what="set setting")

    def _close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"<PgVectorStore {self.doc_type.__name__} at {self.uri}>"
