"""The Milvus collections of one store and the calls the store makes on them.

Every call goes through :meth:`Connection.call` (retries, errors naming the URI). Results that
may outgrow one Milvus result window (16,384 rows) are read with a query iterator.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from polymodal.store.base import StoreConfig
from polymodal.store.milvus import schema as ms
from polymodal.store.milvus.client import Connection
from polymodal.store.milvus.expr import quote

__all__ = ["CHUNK", "WINDOW", "Collections", "in_chunks"]

WINDOW = 16384  # the most rows one Milvus query or search returns (maxQueryResultWindow, max topk)
CHUNK = 1000  # values per "x in [...]" expression


class Collections:
    """``c`` (documents), ``c__meta`` (schema, options, settings), ``c__text`` (BM25 rows),
    ``c__v<i>`` (one per vector field) and ``c__parts`` (bodies too long for one JSON value),
    for the collection name ``c``."""

    def __init__(self, conn: Connection, name: str) -> None:
        self.conn = conn
        self.client = conn.client
        self.main, self.meta, self.text, self.parts = name, f"{name}__meta", f"{name}__text", f"{name}__parts"
        self.names: set[str] = set(self.call("list collections", self.client.list_collections))
        conn.on_unloaded(self.load_all)

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.conn.call(what, fn, *args, **kwargs)

    def vectors(self, index: int) -> str:
        return f"{self.main}__v{index}"

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self, name: str, schema: Any, index: Any) -> None:
        if name in self.names:
            return
        self.call(f"create {name}", self.client.create_collection, name, schema=schema, consistency_level="Strong")
        # an empty collection's index is built at once: no need for pymilvus's half-second polls
        self.call(f"index {name}", self.client.create_index, name, index, sync=False)
        self.load(name)
        self.names.add(name)

    def create_vectors(self, name: str, dim: int, metric: str, config: StoreConfig) -> None:
        self.create(name, ms.vector_schema(self.client, dim), ms.vector_index(self.client, metric, config))

    def load(self, name: str) -> None:
        self.call(f"load {name}", self.client.load_collection, name)

    def load_all(self) -> None:
        """Load every collection of the store (after opening, or when a restarted server lost them)."""
        self.names = set(self.call("list collections", self.client.list_collections))
        for name in sorted(self.names):
            if name == self.main or name.startswith(f"{self.main}__"):
                self.load(name)

    def has(self, name: str) -> bool:
        """Whether a collection exists (made by another process since, too: then it is loaded)."""
        if name not in self.names and self.call("find collection", self.client.has_collection, name):
            self.load(name)
            self.names.add(name)
        return name in self.names

    # -- reads ---------------------------------------------------------------------------------
    def rows(self, name: str, expr: str | None, fields: list[str]) -> list[dict[str, Any]]:
        """Every row matching ``expr`` (one query when they fit in one result window)."""
        limit = WINDOW
        found = self.call(
            f"query {name}", self.client.query, name, filter=expr or "", output_fields=fields, limit=limit
        )
        if len(found) < limit:
            return list(found)
        return [r for batch in self.iterate(name, expr, fields) for r in batch]

    def iterate(
        self, name: str | None, expr: str | None, fields: list[str], batch_size: int = 1000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every row matching ``expr``, ``batch_size`` at a time."""
        if name is None:
            return
        it = self.call(
            f"read {name}",
            self.client.query_iterator,
            name,
            batch_size=batch_size,
            filter=expr or "",
            output_fields=fields,
        )
        try:
            while True:
                batch = self.conn.call_once(f"read {name}", it.next)
                if not batch:
                    return
                yield list(batch)
        finally:
            it.close()

    def count(self, name: str, expr: str | None) -> int:
        found = self.call("count", self.client.query, name, filter=expr or "", output_fields=["count(*)"])
        return int(found[0]["count(*)"])

    def search(
        self,
        name: str,
        data: list[Any],
        limit: int,
        expr: str | None,
        params: dict[str, Any],
        *,
        anns_field: str = "vec",
        output: Sequence[str] = (),
    ) -> list[list[tuple[float, dict[str, Any]]]]:
        """(distance, entity) per hit per query; one hit per ``parent`` (the best one)."""
        found = self.call(
            f"search {name}",
            self.client.search,
            name,
            data=data,
            anns_field=anns_field,
            limit=limit,
            filter=expr or "",
            output_fields=["parent", "pos", *output],
            search_params=params,
            group_by_field="parent",
        )
        return [[(float(h["distance"]), h["entity"]) for h in hits] for hits in found]

    def meta_value(self, key: str) -> Any:
        found = self.rows(self.meta, f"key == {quote(key)}", ["value"])
        return found[0]["value"]["v"] if found else None

    # -- writes --------------------------------------------------------------------------------
    def upsert(self, name: str, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), 500):
            self.call(f"upsert into {name}", self.client.upsert, name, rows[start : start + 500])

    def delete_ids(self, name: str, key: str, ids: Sequence[str]) -> None:
        """Delete rows by primary key (an expression of our own: pymilvus's ``ids=`` does not
        escape quotes or backslashes in string keys)."""
        for expr in in_chunks(key, ids):
            self.delete_where(name, expr)

    def delete_where(self, name: str, expr: str) -> None:
        self.call(f"delete from {name}", self.client.delete, name, filter=expr)

    def put_meta(self, values: Mapping[str, Any]) -> None:
        self.upsert(self.meta, [{"key": k, "value": {"v": v}, "_pad": ms.PAD} for k, v in values.items()])


def in_chunks(column: str, values: Sequence[str]) -> Iterator[str]:
    """``column in [...]`` expressions over ``values``, ``CHUNK`` at a time."""
    for start in range(0, len(values), CHUNK):
        yield f"{column} in [{', '.join(quote(v) for v in values[start : start + CHUNK])}]"
