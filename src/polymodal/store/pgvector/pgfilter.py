"""Translate a parsed filter into PostgreSQL over the JSONB ``body`` column, with the exact
semantics of :mod:`polymodal.store.filters`.

* Paths fan out over lists of nested documents (``segments.start``) and over a list at the end
  of a path (``tags``), with ``jsonb_array_elements``; a condition holds when *any* non-null
  value satisfies it, ``$ne``/``$nin`` when none does. Lists in the middle of plain dict/list
  fields are not traversed (``->`` on an array gives NULL).
* Every comparison is guarded by the JSON type of the value, casts sit inside ``CASE`` so they
  never see a value of the wrong type, and every condition is two-valued (``EXISTS`` or
  ``COALESCE(..., false)``), so ``NOT`` never meets a NULL.
* Where the schema declares the field's type, operands of another type never match (``"2000"``
  against an int field, a date against a datetime field); floats stored as ``"NaN"`` never
  compare, ``"Infinity"`` compares as infinity, and ints past 64 bits (stored as text) compare
  as numbers. Strings compare by code point (``COLLATE "C"``), numbers as exact decimals,
  declared datetimes as ``timestamp``/``timestamptz`` (naive only with naive, aware with aware).
* Equality on declared fields becomes JSONB containment (``body @> '{"tags": ["x"]}'``), which
  the GIN index on ``body`` serves.

Known difference: inside plain ``dict``/``Any`` fields, where no type is declared, datetimes
and dates are compared as their ISO text (exact for dates and for datetimes with the same UTC
offset) and integers past 64 bits (stored as text) do not compare as numbers.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter

from polymodal.doc.base import Doc
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import ConfigError
from polymodal.store import filters as flt

__all__ = ["to_sql"]

_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_ISO = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?"
_NAIVE = f"'^{_ISO}$'"
_AWARE = f"'^{_ISO}(Z|[+-][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}})?)$'"
_DATE = "'^[0-9]{4}-[0-9]{2}-[0-9]{2}$'"
_DT = TypeAdapter(datetime)
_PLAIN_KINDS = ("str", "int", "float", "bool")
_CONTAIN_MAX = 16  # longer $in lists become one array parameter instead of one @> test each
_SCALAR_TYPES: dict[Any, str] = {
    bool: "bool",
    int: "int",
    float: "float",
    str: "str",
    datetime: "datetime",
    date: "date",
}


@dataclass
class _Path:
    sources: list[str]  # FROM items fanning out over nested-document lists
    leaf: str  # jsonb expression of the value at the end of the path
    fan: bool  # the leaf may be a list whose elements are the values
    kind: str | None  # declared type of the values (None: undeclared, any JSON)
    contain: list[tuple[str, str]] | None = field(default=None)  # steps for a containment test, when exact


def _lit(key: str) -> str:
    """A JSON key as an SQL string literal (E'' quoting is independent of server settings)."""
    if "\x00" in key:
        raise ConfigError("filter paths may not contain NUL characters")
    return "E'" + key.replace("\\", "\\\\").replace("'", "''").replace("%", "%%") + "'"


def _declared(spec: FieldSpec) -> tuple[str | None, bool]:
    """(declared value kind, whether the field is a list of such values)."""
    if spec.kind == "scalar":
        return spec.scalar, False
    if spec.kind == "url":
        return "str", False
    if spec.kind != "other":
        return None, False
    ann = _strip_optional(spec.annotation)
    if ann in _SCALAR_TYPES:
        return _SCALAR_TYPES[ann], False
    origin = typing.get_origin(ann)
    args = [a for a in typing.get_args(ann) if a is not Ellipsis]
    if origin in (list, tuple, set, frozenset) and len(set(args)) == 1 and args[0] in _SCALAR_TYPES:
        return _SCALAR_TYPES[args[0]], True
    return None, False


def _list_of_docs(spec: FieldSpec) -> type[Doc] | None:
    """The element class of a plain ``list[SomeDoc]`` field (traversed like a DocList)."""
    if spec.kind == "docs":
        return spec.doc_type
    if spec.kind != "other":
        return None
    ann = _strip_optional(spec.annotation)
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (list, tuple) and args and isinstance(args[0], type) and issubclass(args[0], Doc):
        return args[0]
    return None


def _strip_optional(ann: Any) -> Any:
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return ann


def _accepts(kind: str | None, value: Any) -> bool:
    """Whether an operand can ever equal/compare with values of a declared kind."""
    if kind is None:
        return True
    if isinstance(value, bool):
        return kind == "bool"
    if isinstance(value, (int, float)):
        return kind in ("int", "float")
    if isinstance(value, datetime):
        return kind == "datetime"
    if isinstance(value, date):
        return kind == "date"
    return kind == "str"


def _json_exact(kind: str | None, value: Any) -> bool:
    """Whether JSONB equality with ``value`` is exactly the reference equality for this kind."""
    if kind not in _PLAIN_KINDS or not _accepts(kind, value):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**53) < value < 2**53 or (kind == "int" and -(2**63) <= value < 2**63)
    return True


def _numtext(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value) if isinstance(value, float) else str(int(value))


class _Builder:
    def __init__(self, doc_type: type[Doc], column: str, id_column: str | None) -> None:
        self.doc_type = doc_type
        self.column = column
        self.id_column = id_column
        self.params: list[Any] = []
        self._n = 0

    def build(self, f: flt.Filter) -> str:
        if isinstance(f, flt.And):
            return "(" + " AND ".join(self.build(i) for i in f.items) + ")"
        if isinstance(f, flt.Or):
            return "(" + " OR ".join(self.build(i) for i in f.items) + ")"
        if isinstance(f, flt.Not):
            return f"(NOT {self.build(f.item)})"
        return self.cond(f)

    # -- paths ---------------------------------------------------------------------------------
    def _alias(self) -> str:
        self._n += 1
        return f"_j{self._n}"

    def walk(self, path: str) -> _Path:
        parts = path.split(".")
        cls: type[Doc] | None = self.doc_type
        expr = self.column
        sources: list[str] = []
        contain: list[tuple[str, str]] | None = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            spec = schema_of(cls).by_name.get(part) if cls is not None else None
            expr = f"{expr}->{_lit(part)}"
            if spec is None:  # inside a plain dict field: no declared types below
                cls, contain = None, None
                continue
            element = _list_of_docs(spec)
            if element is not None and not last:
                alias = self._alias()
                sources.append(
                    f"jsonb_array_elements(CASE WHEN jsonb_typeof({expr}) = 'array' THEN {expr} "
                    f"ELSE '[]'::jsonb END) AS {alias}(value)"
                )
                expr, cls = f"{alias}.value", element
                if contain is not None:
                    contain = [*contain, ("list", part)] if spec.kind == "docs" else None
                continue
            if spec.kind == "doc" and not last:
                cls = spec.doc_type
                if contain is not None:
                    contain.append(("object", part))
                continue
            if not last:
                cls, contain = None, None
                continue
            kind, is_list = _declared(spec)
            exact_steps = [*contain, ("list" if is_list else "value", part)] if contain is not None else None
            return _Path(sources, expr, spec.kind not in ("scalar", "url"), kind, exact_steps)
        return _Path(sources, expr, True, None, None)

    def exists(self, p: _Path, pred: Callable[[str], str | None] | None) -> str:
        """True when a non-null value at the path satisfies ``pred`` (or, without one, exists:
        an object counts, an empty list does not). Never NULL."""
        sources = list(p.sources)
        x = p.leaf
        if p.fan:
            alias = self._alias()
            sources.append(
                f"jsonb_array_elements(CASE jsonb_typeof({x}) WHEN 'array' THEN {x} "
                f"ELSE jsonb_build_array({x}) END) AS {alias}(value)"
            )
            x = f"{alias}.value"
        conds = [f"jsonb_typeof({x}) <> 'null'"]
        if pred is not None:
            test = pred(x)
            if test is None:
                return "false"
            conds.append(f"({test})")
        if not sources:
            return f"COALESCE({' AND '.join(conds)}, false)"
        return f"EXISTS (SELECT 1 FROM {', '.join(sources)} WHERE {' AND '.join(conds)})"

    # -- conditions ----------------------------------------------------------------------------
    def cond(self, c: flt.Cond) -> str:
        op, value = c.op, c.value
        if op == "$exists":
            found = self.exists(self.walk(c.path), None)
            return found if value else f"(NOT {found})"
        if op in ("$eq", "$ne"):
            if value is None:
                found = self.exists(self.walk(c.path), None)
                return f"(NOT {found})" if op == "$eq" else found
            found = self.equal(c.path, [value])
            return found if op == "$eq" else f"(NOT {found})"
        if op in ("$in", "$nin"):
            values = [v for v in value if v is not None]
            parts = [self.equal(c.path, values)] if values else []
            if None in value:
                parts.append(f"(NOT {self.exists(self.walk(c.path), None)})")
            found = "(" + " OR ".join(parts) + ")" if parts else "false"
            return found if op == "$in" else f"(NOT {found})"
        p = self.walk(c.path)
        if isinstance(value, bool) or not _accepts(p.kind, value):  # booleans have no order
            return "false"
        return self.exists(p, lambda x: self.compare(x, _OPS[op], value, p.kind))

    def equal(self, path: str, values: list[Any]) -> str:
        """Some value at ``path`` equals one of ``values`` (non-null operands)."""
        p = self.walk(path)
        values = [v for v in values if _accepts(p.kind, v) and not (isinstance(v, float) and math.isnan(v))]
        if not values:
            return "false"
        if path == "id" and self.id_column is not None and all(isinstance(v, str) for v in values):
            self.params.append(values)
            return f"({self.id_column} = ANY(%s))"
        parts: list[str] = []
        rest = values
        if p.contain is not None and len(values) <= _CONTAIN_MAX:
            steps = p.contain
            exact = [v for v in values if _json_exact(p.kind, v)]
            rest = [v for v in values if not _json_exact(p.kind, v)]
            for v in exact:
                self.params.append(orjson.dumps(_containment(steps, v)).decode())
                parts.append(f"({self.column} @> %s::jsonb)")
        if rest:
            parts.append(self.exists(p, lambda x: self.equal_pred(x, rest, p.kind)))
        return "(" + " OR ".join(parts) + ")"

    def equal_pred(self, x: str, values: list[Any], kind: str | None) -> str | None:
        preds: list[str] = []
        strings = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for b in sorted({v for v in values if isinstance(v, bool)}):
            preds.append(f"{x} = '{'true' if b else 'false'}'::jsonb")
        if strings:
            self.params.append(strings)
            preds.append(f"CASE WHEN jsonb_typeof({x}) = 'string' THEN {x} #>> '{{}}' END = ANY(%s::text[])")
        if numbers:
            self.params.append([_numtext(v) for v in numbers])
            preds.append(f"{self.numeric(x, kind)} = ANY(%s::numeric[])")
        for v in values:
            if isinstance(v, date):
                test = self.compare(x, "=", v, kind)
                if test is not None:
                    preds.append(test)
        return " OR ".join(f"({t})" for t in preds) if preds else None

    def numeric(self, x: str, kind: str | None) -> str:
        """The value as ``numeric`` when it is a number (or NULL); declared floats stored as
        ``"Infinity"`` and declared ints past 64 bits stored as text count as numbers."""
        text = f"({x} #>> '{{}}')"
        special = ""
        if kind == "float":
            special = f" WHEN 'string' THEN CASE WHEN {text} IN ('Infinity', '-Infinity') THEN {text}::numeric END"
        elif kind == "int":
            special = f" WHEN 'string' THEN CASE WHEN {text} ~ '^-?[0-9]+$' THEN {text}::numeric END"
        return f"(CASE jsonb_typeof({x}) WHEN 'number' THEN ({x})::numeric{special} END)"

    def compare(self, x: str, sqlop: str, value: Any, kind: str | None) -> str | None:
        """``value_at_x sqlop value`` for one operand, type-guarded; None when never true."""
        text = f"({x} #>> '{{}}')"
        if isinstance(value, bool):
            return f"{x} = '{'true' if value else 'false'}'::jsonb" if sqlop == "=" else None
        if isinstance(value, (int, float)):
            if isinstance(value, float) and math.isnan(value):
                return None
            self.params.append(_numtext(value))
            return f"{self.numeric(x, kind)} {sqlop} %s::numeric"
        if isinstance(value, datetime):
            aware = value.tzinfo is not None
            regex = _AWARE if aware else _NAIVE
            if kind == "datetime":  # values written by pydantic: always valid, cast and compare as times
                typ = "timestamptz" if aware else "timestamp"
                self.params.append(value)
                guard = f"jsonb_typeof({x}) = 'string' AND {text} ~ {regex}"
                return f"CASE WHEN {guard} THEN {text}::{typ} END {sqlop} %s::{typ}"
            self.params.append(_DT.dump_python(value, mode="json"))
            return self.text_compare(x, sqlop, regex)
        if isinstance(value, date):  # YYYY-MM-DD text orders as the dates do
            self.params.append(value.isoformat())
            return self.text_compare(x, sqlop, _DATE)
        self.params.append(value)
        return self.text_compare(x, sqlop, None)

    @staticmethod
    def text_compare(x: str, sqlop: str, regex: str | None) -> str:
        """String values (matching ``regex``) against the last parameter, by code point."""
        text = f"({x} #>> '{{}}')"
        guard = f"jsonb_typeof({x}) = 'string'" + (f" AND {text} ~ {regex}" if regex else "")
        return f'CASE WHEN {guard} THEN {text} END COLLATE "C" {sqlop} %s'


def _containment(steps: list[tuple[str, str]], value: Any) -> Any:
    """The JSON document that ``body @>`` tests: ``{"segments": [{"tags": [value]}]}``."""
    node: Any = value
    for how, key in reversed(steps):
        node = {key: [node]} if how == "list" else {key: node}
    return node


def to_sql(
    f: flt.Filter | None, doc_type: type[Doc], column: str = "d.body", id_column: str | None = "d.id"
) -> tuple[str, list[Any]]:
    """``(sql_condition, params)`` for a parsed filter (``"true"`` when there is none); the
    condition reads the JSONB ``column`` (and ``id_column`` for ids), values go in params."""
    if f is None:
        return "true", []
    builder = _Builder(doc_type, column, id_column)
    return builder.build(f), builder.params
