"""Translate a parsed filter into SQLite SQL over the JSON ``body`` column.

Top-level scalar fields use ``json_extract(body, '$.f')``, which the expression indexes created
for them serve; paths through nested documents or list fields use ``json_each`` so that "any
element matches" (the semantics of :mod:`polymodal.store.filters`). Every comparison is
guarded by the JSON type of the value, so ``{"year": {"$gt": 5}}`` never matches a string and
``True`` never equals ``1``.
"""

from __future__ import annotations

import json
import math
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


# The type guard a comparison carries (see _typed) that is always true for a declared field of
# this type: pydantic stores an ``int`` field as a JSON integer (True becomes 1) and a ``str``
# field as text. Floats are left out: non-finite floats are not stored as JSON numbers.
_FIXED_JSON_TYPE: dict[Any, str] = {int: "v.type IN ('integer', 'real')", str: "v.type = 'text'"}

_AWARE = "(v.value GLOB '*Z' OR v.value GLOB '*[+-][0-9][0-9]:[0-9][0-9]')"


def _typed(value: Any) -> tuple[str, Any]:
    """(JSON type guard, SQL parameter) for a filter operand. Datetimes and dates are stored as
    ISO text: the guard keeps dates with dates, and naive with naive (aware with aware) datetimes."""
    if isinstance(value, bool):
        return ("IN ('true')" if value else "IN ('false')"), None
    if isinstance(value, (int, float)):
        return _NUMBER, value
    if isinstance(value, datetime):
        aware = _AWARE if value.tzinfo is not None else f"NOT {_AWARE}"
        return f"= 'text' AND v.value GLOB '*T*' AND {aware}", _DT.dump_python(value, mode="json")
    if isinstance(value, date):
        return "= 'text' AND v.value GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'", _DATE.dump_python(
            value, mode="json"
        )
    return "= 'text'", value


_NUMBER = "IN ('integer', 'real')"
_INF_TEXT = {True: "Infinity", False: "-Infinity"}


def _nonfinite_sql(op: str, values: list[Any]) -> str:
    """`` OR ...`` matching the stored texts of the infinities that satisfy ``x op value`` (JSON
    has no infinity, so the store writes ``"Infinity"``/``"-Infinity"``; NaN compares with nothing)."""
    compare = {"$gt": float.__gt__, "$gte": float.__ge__, "$lt": float.__lt__, "$lte": float.__le__}[op]
    texts = [_INF_TEXT[sign] for sign in (True, False) if compare(math.inf if sign else -math.inf, float(values[0]))]
    return f" OR (v.type = 'text' AND v.value IN ({', '.join(_q(t) for t in texts)}))" if texts else ""


def _kind_matches(declared: Any, value: Any) -> bool:
    """False when a declared date/datetime field meets a non-date operand, or the reverse: such
    values never compare (a date field is not its ISO text)."""
    is_dt_field = isinstance(declared, type) and issubclass(declared, date)
    is_dt_value = isinstance(value, date)
    return declared is None or is_dt_field == is_dt_value


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
        """SQL true when a non-null value at ``path`` satisfies ``pred`` (over ``v.type``/``v.value``);
        without ``pred``, when the path holds a value at all (an object counts, an empty list not)."""
        head, *rest = path.split(".")
        if not rest and head in self.indexed:
            expr = f"json_extract({self.column}, {_q(_json_path([head]))})"
            typ = f"json_type({self.column}, {_q(_json_path([head]))})"
            self.params.extend(params)
            known = _FIXED_JSON_TYPE.get(self.leaf_type(head))
            if pred is not None and known is not None and known in pred:
                # A declared int (str) field only ever holds JSON integers (text) or null, so the
                # type guard is always true: the condition reduces to the indexed expression
                # (no JSON parse of the body per row). IS NOT NULL keeps it false, not NULL, on a
                # missing value, so that NOT (...) of it ($ne, $nin) still matches that document.
                return f"({expr} IS NOT NULL AND " + pred.replace(known, "1").replace("v.value", expr) + ")"
            cond = f"{typ} IS NOT NULL AND {typ} != 'null'"
            if pred is not None:
                cond += " AND " + pred.replace("v.type", typ).replace("v.value", expr)
            return f"({cond})"
        sources, (base, rest_path) = self._sources(path)
        target = f"{base}, {_q(_json_path(rest_path))}" if rest_path else base
        where = ["v.type != 'null'", "typeof(v.key) != 'text'"]  # list elements or the value itself
        if pred is not None:
            where.append(pred)
        self.params.extend(params)
        # every piece is built here from schema paths and placeholders; values go in params
        elements = f"EXISTS (SELECT 1 FROM json_each({target}) v WHERE {' AND '.join(where)})"
        leaf = elements if pred is not None else f"(json_type({target}) = 'object' OR {elements})"
        if not sources:
            return f"({leaf})"
        return f"EXISTS (SELECT 1 FROM {', '.join(sources)} WHERE {leaf})"

    def leaf_type(self, path: str) -> Any:
        """The declared Python type at the end of ``path`` (None when the path enters a plain
        dict/list field, whose contents have no declared type)."""
        import typing

        cls: type[Doc] | None = self.doc_type
        parts = path.split(".")
        for i, part in enumerate(parts):
            spec = schema_of(cls).by_name.get(part) if cls is not None else None
            if spec is None:
                return None
            if spec.kind in ("docs", "doc"):
                cls = spec.doc_type
                continue
            if i != len(parts) - 1:
                return None
            ann = spec.annotation
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            return args[0] if len(args) == 1 and typing.get_origin(ann) is not None else ann
        return None

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
        declared = self.leaf_type(c.path)
        if param is None or not _kind_matches(declared, value):  # booleans have no order
            return "(0)"
        pred = f"v.type {guard} AND v.value {_OPS[op]} ?"
        if guard == _NUMBER and declared is not int:
            pred = f"(({pred}){_nonfinite_sql(op, [value])})"
        return self.exists(c.path, pred, [param])

    def _eq(self, path: str, values: list[Any]) -> str:
        preds, params = [], []
        declared = self.leaf_type(path)
        values = [v for v in values if _kind_matches(declared, v)]
        if not values:
            return "(0)"
        groups: dict[str, list[Any]] = {}
        for v in values:
            guard, param = _typed(v)
            if param is None:
                preds.append(f"v.type {guard}")
            else:
                groups.setdefault(guard, []).append(param)
        infinite = [v for v in values if isinstance(v, float) and math.isinf(v)] if declared is not int else []
        if infinite:  # stored as the text "Infinity" / "-Infinity" (JSON has no infinity)
            preds.append(f"(v.type = 'text' AND v.value IN ({', '.join(_q(_INF_TEXT[v > 0]) for v in infinite)}))")
        for guard, group in groups.items():
            if len(group) <= 4:
                preds.extend(f"(v.type {guard} AND v.value = ?)" for _ in group)
                params.extend(group)
            else:  # one bound JSON array: any number of values without growing the SQL
                preds.append(f"(v.type {guard} AND v.value IN (SELECT value FROM json_each(?)))")
                params.append(json.dumps(group))
        return self.exists(path, "(" + " OR ".join(preds) + ")", params)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def to_sql(f: flt.Filter | None, doc_type: type[Doc], column: str = "body") -> tuple[str, list[Any]]:
    """``(sql_condition, params)`` for a parsed filter (``"1"`` when there is none)."""
    if f is None:
        return "1", []
    builder = _Builder(doc_type, column)
    return builder.build(f), builder.params
