"""Translate a parsed filter into SQLite SQL over the JSON ``body`` column.

Top-level scalar fields use ``json_extract(body, '$.f')``, which the expression indexes created
for them serve; paths through nested documents or list fields use ``json_each`` so that "any
element matches" (the semantics of :mod:`polymodal.store.filters`). Every comparison is
guarded by the JSON type of the value, so ``{"year": {"$gt": 5}}`` never matches a string and
``True`` never equals ``1``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import TypeAdapter

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError
from polymodal.store import filters as flt

__all__ = ["indexed_fields", "to_sql"]

_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_DT = TypeAdapter(datetime)
_DATE = TypeAdapter(date)


def indexed_fields(doc_type: type[Doc]) -> list[str]:
    """Top-level scalar (and URL) fields: each gets an expression index."""
    return [s.name for s in schema_of(doc_type).fields if s.kind in ("scalar", "url") and s.name != "id"]


def _json_path(parts: list[str]) -> str:
    for p in parts:
        if '"' in p or "\\" in p:
            raise ConfigError(f"filter path component {p!r} may not contain quotes or backslashes")
    return "$" + "".join(f'."{p}"' for p in parts)


def _typed(value: Any) -> tuple[str, Any]:
    """(JSON type guard, SQL parameter) for a filter operand."""
    if isinstance(value, bool):
        return ("IN ('true')" if value else "IN ('false')"), None
    if isinstance(value, (int, float)):
        return "IN ('integer', 'real')", value
    if isinstance(value, datetime):
        return "= 'text'", _DT.dump_python(value, mode="json")
    if isinstance(value, date):
        return "= 'text'", _DATE.dump_python(value, mode="json")
    return "= 'text'", value


class _Builder:
    def __init__(self, doc_type: type[Doc], column: str) -> None:
        self.doc_type = doc_type
        self.column = column
        self.params: list[Any] = []
        self.indexed = set(indexed_fields(doc_type))

    def build(self, f: flt.Filter) -> str:
        if isinstance(f, flt.And):
            return "(" + " AND ".join(self.build(i) for i in f.items) + ")"
        if isinstance(f, flt.Or):
            return "(" + " OR ".join(self.build(i) for i in f.items) + ")"
        if isinstance(f, flt.Not):
            return f"(NOT {self.build(f.item)})"
        return self.cond(f)

    # "some non-null value at path satisfies pred" -------------------------------------------
    def exists(self, path: str, pred: str | None, params: list[Any]) -> str:
        """SQL true when a non-null value at ``path`` satisfies ``pred`` (over ``v.type``/``v.value``)."""
        head, *rest = path.split(".")
        if not rest and head in self.indexed:
            expr = f"json_extract({self.column}, {_q(_json_path([head]))})"
            typ = f"json_type({self.column}, {_q(_json_path([head]))})"
            cond = f"{typ} IS NOT NULL AND {typ} != 'null'"
            if pred is not None:
                cond += " AND " + pred.replace("v.type", typ).replace("v.value", expr)
            self.params.extend(params)
            return f"({cond})"
        sources, last = self._sources(path)
        leaf = f"json_each({last[0]}, {_q(_json_path(last[1]))}) v" if last[1] else f"json_each({last[0]}) v"
        where = ["v.type != 'null'", "typeof(v.key) != 'text'"]  # list elements or the value itself
        if pred is not None:
            where.append(pred)
        self.params.extend(params)
        # every piece is built here from schema paths and placeholders; values go in params
        return f"EXISTS (SELECT 1 FROM {', '.join([*sources, leaf])} WHERE {' AND '.join(where)})"

    def _sources(self, path: str) -> tuple[list[str], tuple[str, list[str]]]:
        """json_each sources for the nested-document lists along ``path``, and the leaf base."""
        parts = path.split(".")
        sources: list[str] = []
        base = self.column
        pending: list[str] = []
        cls: type[Doc] | None = self.doc_type
        for i, part in enumerate(parts):
            spec = schema_of(cls).by_name.get(part) if cls is not None else None
            pending.append(part)
            if spec is not None and spec.kind == "docs" and i < len(parts) - 1:
                alias = f"j{len(sources)}"
                sources.append(f"json_each({base}, {_q(_json_path(pending))}) {alias}")
                base, pending = f"{alias}.value", []
                cls = spec.doc_type
            elif spec is not None and spec.kind == "doc":
                cls = spec.doc_type
            else:
                cls = None
        return sources, (base, pending)

    def cond(self, c: flt.Cond) -> str:
        op, value = c.op, c.value
        if op == "$exists":
            found = self.exists(c.path, None, [])
            return found if value else f"(NOT {found})"
        if op in ("$eq", "$ne"):
            if value is None:
                found = self.exists(c.path, None, [])
                return f"(NOT {found})" if op == "$eq" else found
            found = self._eq(c.path, [value])
            return found if op == "$eq" else f"(NOT {found})"
        if op in ("$in", "$nin"):
            values = [v for v in value if v is not None]
            parts = [self._eq(c.path, values)] if values else []
            if None in value:
                parts.append(f"(NOT {self.exists(c.path, None, [])})")
            found = "(" + " OR ".join(parts) + ")" if parts else "(0)"
            return found if op == "$in" else f"(NOT {found})"
        guard, param = _typed(value)
        if param is None:  # booleans have no order
            return "(0)"
        return self.exists(c.path, f"v.type {guard} AND v.value {_OPS[op]} ?", [param])

    def _eq(self, path: str, values: list[Any]) -> str:
        preds, params = [], []
        for v in values:
            guard, param = _typed(v)
            if param is None:
                preds.append(f"v.type {guard}")
            else:
                preds.append(f"(v.type {guard} AND v.value = ?)")
                params.append(param)
        return self.exists(path, "(" + " OR ".join(preds) + ")", params)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def to_sql(f: flt.Filter | None, doc_type: type[Doc], column: str = "body") -> tuple[str, list[Any]]:
    """``(sql_condition, params)`` for a parsed filter (``"1"`` when there is none)."""
    if f is None:
        return "1", []
    builder = _Builder(doc_type, column)
    return builder.build(f), builder.params
