"""Translate a parsed filter into a Milvus boolean expression over the ``fbody`` JSON field.

``fbody`` is a document's body as filters see it (:func:`filter_body`): no null values, no empty
lists, no vectors, tensors, bytes or nested document lists. Without nulls, "has a value" is
``exists``, which a Milvus server and Milvus Lite read alike.

Exact where the schema says what a path holds (a ``str``/``int``/``float``/``bool``/``datetime``/
``date`` field, a list of such values, a ``dict[str, ...]`` of them): type brackets are then
decided here, once (``{"year": "2000"}`` on an int field is no condition at all but "nothing"),
and each comparison is written so that it holds exactly for the stored JSON (floats keep
``"NaN"``/``"Infinity"`` as text, ints beyond 64 bits are decimal text). Negations are pushed
down to the conditions (De Morgan), so the expression never applies ``not`` to a comparison
that Milvus evaluates to "unknown" for a missing key.

Elsewhere (paths into nested document lists, untyped dict values, comparisons over list
elements, timezone-aware datetimes) the expression is a *superset* of the filter and
:attr:`Translation.exact` is False: the store then checks candidates in Python with
:func:`polymodal.store.filters.matches`.

>>> import polymodal as pm
>>> class Note(pm.Doc):
...     year: int = 0
...     tags: list[str] = []
>>> t = translate(flt.parse({"year": {"$gt": 2000}, "tags": "x"}), Note)
>>> t.expr, t.exact
('((fbody["year"] > 2000 or fbody["year"] >= "0") and json_contains(fbody["tags"], "x"))', True)
>>> translate(flt.parse({"year": "2000"}), Note).never
True
"""

from __future__ import annotations

import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.store import filters as flt

__all__ = ["Translation", "filter_body", "literal", "quote", "translate"]

E = str | bool  # an expression, or a constant: True (every row) / False (no row)
Kind = Literal["int", "float", "str", "bool", "datetime", "date", "object", "list", "untyped"]
_SCALAR_KINDS: dict[Any, Kind] = {str: "str", int: "int", float: "float", bool: "bool"}
_NEG = {"$gt": "<=", "$gte": "<", "$lt": ">=", "$lte": ">"}
_POS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_AWARE = '({r} like "%Z" or {r} like "%+__:__" or {r} like "%-__:__")'


@dataclass(frozen=True, slots=True)
class Translation:
    """``expr``: the Milvus expression (None: every row); ``exact``: whether it is the filter
    itself rather than a superset; ``never``: no row can match (skip the query)."""

    expr: str | None
    exact: bool
    never: bool = False


@dataclass(frozen=True, slots=True)
class _Leaf:
    kind: Kind
    elem: Kind | None = None  # for lists: the element kind


def translate(where: flt.Filter | None, doc_type: type[Doc], column: str = "fbody") -> Translation:
    """The Milvus expression for a parsed filter (see the module docstring)."""
    if where is None:
        return Translation(None, True)
    expr, exact = _tr(where, False, doc_type, column)
    if expr is False:
        return Translation(None, True, never=True)
    return Translation(None if expr is True else expr, exact)


def quote(text: str) -> str:
    """A Milvus string literal."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + out.replace("\t", "\\t") + '"'


def literal(value: Any) -> str:
    """A Milvus literal for a str, bool, int, float, date or (naive) datetime value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime, date)):
        return quote(value.isoformat())
    return quote(str(value))


def filter_body(doc_type: type[Doc], body: Mapping[str, Any]) -> dict[str, Any]:
    """What filters read of a document body: nulls and empty lists dropped (so "has a value" is
    ``exists``), and no vectors, tensors, bytes or nested document lists (never filtered
    natively; conditions on them are checked in Python)."""
    out: dict[str, Any] = {}
    for spec in schema_of(doc_type).fields:
        value = body.get(spec.name)
        if value is None or spec.kind in ("docs", "vector", "tensor", "bytes"):
            continue
        if spec.kind == "doc" and spec.doc_type is not None and isinstance(value, Mapping):
            out[spec.name] = filter_body(spec.doc_type, value)
        else:
            pruned = _prune(value)
            if pruned is not None:
                out[spec.name] = pruned
    return out


def _prune(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: p for k, v in value.items() if (p := _prune(v)) is not None}
    if isinstance(value, list) and not value:
        return None
    return value


# -- the translation ---------------------------------------------------------------------------
def _tr(f: flt.Filter, neg: bool, doc_type: type[Doc], column: str) -> tuple[E, bool]:
    if isinstance(f, flt.Not):
        return _tr(f.item, not neg, doc_type, column)
    if isinstance(f, (flt.And, flt.Or)):
        parts = [_tr(i, neg, doc_type, column) for i in f.items]
        conj = isinstance(f, flt.And) != neg
        exprs = [e for e, _ in parts]
        return (_and(exprs) if conj else _or(exprs)), all(x for _, x in parts)
    leaf = _leaf(doc_type, f.path)
    if leaf.kind == "untyped":
        return True, False
    ref = column + "".join(f"[{quote(p)}]" for p in f.path.split("."))
    op, value = f.op, f.value
    if op == "$exists":
        return _has(ref, neg if value else not neg), True
    if op in ("$ne", "$nin"):
        op, neg = ("$eq" if op == "$ne" else "$in"), not neg
    if op in ("$eq", "$in"):
        values = (value,) if op == "$eq" else value
        parts = [_eq(leaf, ref, v, neg) for v in values]
        exprs = [e for e, _ in parts]
        return (_and(exprs) if neg else _or(exprs)), all(x for _, x in parts)
    return _cmp(leaf, ref, op, value, neg)


def _has(ref: str, neg: bool) -> str:
    return f"(not exists {ref})" if neg else f"exists {ref}"


def _eq(leaf: _Leaf, ref: str, value: Any, neg: bool) -> tuple[E, bool]:
    """``path == value`` (any element, for lists), or its negation."""
    if value is None:
        return _has(ref, not neg), True
    kind = leaf.elem if leaf.kind == "list" else leaf.kind
    fits = _fits(kind, value, ordered=False)
    if fits == "yes" and kind in ("int", "float"):
        value, fits = _as_stored(kind, value)
    if fits != "yes":
        return (True, False) if fits == "inexact" else (neg, True)
    lit = literal(value)
    if leaf.kind == "list":
        return (f"(not json_contains({ref}, {lit}))" if neg else f"json_contains({ref}, {lit})"), True
    if not neg:
        return f"{ref} == {lit}", True
    if kind == "bool":
        return f"((not exists {ref}) or {ref} == {literal(not value)})", True
    text_special = f" or {ref} >= {quote('')}" if kind in ("int", "float") else ""  # NaN, inf, huge ints
    return f"((not exists {ref}) or {ref} < {lit} or {ref} > {lit}{text_special})", True


def _cmp(leaf: _Leaf, ref: str, op: str, value: Any, neg: bool) -> tuple[E, bool]:
    """``path <op> value`` for an ordering operator (any element, for lists), or its negation."""
    if leaf.kind == "list":
        fits = _fits(leaf.elem, value, ordered=True)
        if fits == "no":
            return neg, True
        return (True if neg else f"exists {ref}"), False  # Milvus has no "some element > x"
    fits = _fits(leaf.kind, value, ordered=True)
    if fits == "yes" and leaf.kind == "int" and isinstance(value, float) and not value.is_integer():
        op, value = ("$gte", math.ceil(value)) if op in ("$gt", "$gte") else ("$lte", math.floor(value))
        fits = _fits("int", value, ordered=True)
    if fits == "yes" and leaf.kind in ("int", "float"):
        value, fits = _as_stored(leaf.kind, value)
    if fits == "no":
        return neg, True
    if fits == "inexact":
        return (True if neg else f"exists {ref}"), False
    lit = literal(value)
    up = op in ("$gt", "$gte")
    if not neg:
        base = f"{ref} {_POS[op]} {lit}"
        if leaf.kind == "int":  # ints beyond 64 bits are stored as decimal text
            return f"({base} or {ref} {'>=' if up else '<'} {quote('0')})", True
        if leaf.kind == "float":
            return f"({base} or {ref} == {quote('Infinity' if up else '-Infinity')})", True
        if leaf.kind == "datetime":
            return f"({base} and not {_AWARE.format(r=ref)})", True
        return base, True
    parts = [f"(not exists {ref})", f"{ref} {_NEG[op]} {lit}"]
    if leaf.kind == "int":
        parts.append(f"{ref} {'<' if up else '>='} {quote('0')}")
    elif leaf.kind == "float":
        parts += [f"{ref} == {quote('NaN')}", f"{ref} == {quote('-Infinity' if up else 'Infinity')}"]
    elif leaf.kind == "datetime":
        parts.append(_AWARE.format(r=ref))
    return "(" + " or ".join(parts) + ")", True


def _as_stored(kind: Kind | None, value: Any) -> tuple[Any, Literal["yes", "no", "inexact"]]:
    """A number as the JSON type a field stores (a Milvus server compares JSON ints with int
    literals and floats with float literals): 2.0 for a float field, 2 for an int field; a
    fraction never equals an int."""
    if kind == "float" and isinstance(value, int):
        return (float(value), "yes") if abs(value) <= 2**53 else (value, "inexact")
    if kind == "int" and isinstance(value, float):
        if not value.is_integer():
            return value, "no"
        value = int(value)
        return (value, "yes") if -(2**63) <= value < 2**63 else (value, "inexact")
    return value, "yes"


def _fits(kind: Kind | None, value: Any, *, ordered: bool) -> Literal["yes", "no", "inexact"]:
    """Whether a stored value of ``kind`` can equal (or be ordered against) ``value``: "no" decides
    the condition here; "inexact" leaves it to Python."""
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "no"
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            return "inexact"
        return "yes" if math.isfinite(value) else "inexact"
    if kind == "str":
        return "yes" if isinstance(value, str) else "no"
    if kind == "bool":
        return "yes" if isinstance(value, bool) and not ordered else "no"
    if kind == "datetime":
        if not isinstance(value, datetime):
            return "no"
        return "yes" if value.tzinfo is None else "inexact"
    if kind == "date":
        return "yes" if isinstance(value, date) and not isinstance(value, datetime) else "no"
    return "no"  # objects equal no scalar and have no order


def _leaf(doc_type: type[Doc], path: str) -> _Leaf:
    """What the schema says a dotted path holds."""
    cls: type[Doc] | None = doc_type
    parts = path.split(".")
    for i, part in enumerate(parts):
        spec = schema_of(cls).by_name.get(part) if cls is not None else None
        if spec is None:
            return _Leaf("untyped")
        last = i == len(parts) - 1
        if spec.kind == "doc":
            if last:
                return _Leaf("object")
            cls = spec.doc_type
            continue
        if spec.kind == "scalar" and last and spec.scalar in ("str", "int", "float", "bool"):
            return _Leaf(typing.cast(Kind, spec.scalar))
        if spec.kind == "url" and last:
            return _Leaf("str")
        if spec.kind == "other":
            return _other(_strip_optional(spec.annotation), parts[i + 1 :])
        return _Leaf("untyped")  # nested document lists, vectors, tensors, bytes
    return _Leaf("untyped")


def _other(ann: Any, rest: list[str]) -> _Leaf:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if rest:
        if origin in (dict, Mapping, typing.Mapping) and len(args) == 2 and args[0] is str:
            return _other(args[1], rest[1:])
        return _Leaf("untyped")
    if ann in (datetime,):
        return _Leaf("datetime")
    if ann in (date,):
        return _Leaf("date")
    if ann in (str, int, bool):  # floats inside plain fields may have become null (NaN): Python checks
        return _Leaf(_SCALAR_KINDS[ann])
    if ann is dict or origin in (dict, Mapping, typing.Mapping):
        return _Leaf("object")
    if origin in (list, tuple, set, frozenset):
        elems = [a for a in args if a is not Ellipsis]
        if len(elems) == 1 and (origin is not tuple or len(args) == 2) and elems[0] in (str, int, bool, float):
            return _Leaf("list", _SCALAR_KINDS[elems[0]])
    return _Leaf("untyped")


def _strip_optional(ann: Any) -> Any:
    args = typing.get_args(ann)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else Any
    return ann


def _and(parts: list[E]) -> E:
    if any(p is False for p in parts):
        return False
    real = [p for p in parts if isinstance(p, str)]
    if not real:
        return True
    return real[0] if len(real) == 1 else "(" + " and ".join(real) + ")"


def _or(parts: list[E]) -> E:
    if any(p is True for p in parts):
        return True
    real = [p for p in parts if isinstance(p, str)]
    if not real:
        return False
    return real[0] if len(real) == 1 else "(" + " or ".join(real) + ")"
