"""Filters on Qdrant: typed payload facts, and the translation of filters into native conditions.

The JSON body cannot say what :mod:`polymodal.store.filters` needs (a datetime and its ISO text
look alike, ``2000`` must equal ``2000.0`` but never ``True``, naive and aware datetimes never
compare, a path fans out through nested documents but not through plain lists in the middle). So
each point also carries its filterable values, enumerated from the Python document exactly as
``filters._resolve`` walks it:

* ``_f``, a keyword list of *facts*: ``["e", path]`` for each path holding a non-null value, and
  one ``[type, path, value]`` per scalar value (``"n"`` numbers in canonical text, so 2000 and
  2000.0 are one fact; ``"s"`` strings, ``"h"`` a hash of long ones; ``"b"`` booleans; ``"dn"``,
  ``"da"``, ``"d"`` naive datetimes, aware ones in UTC, dates);
* ``_r``, an array of ``{"p": path, "n" | "dn" | "da" | "d": value}`` objects for order
  comparisons, tested with a nested condition so path and value come from one element.

Then ``$eq``/``$in`` are MatchValue/MatchAny on facts, ``$exists`` and null tests are the ``"e"``
fact, ``$ne``/``$nin``/``$not`` are ``must_not``, ``$and``/``$or`` are ``must``/``should``, and
``$gt``... are a nested Range (or DatetimeRange) over ``_r``. A type mismatch (``{"year": "2000"}``,
an order on booleans) simply finds no fact, as the reference finds no comparable value. Only what
Qdrant cannot order, strings and bounds that are infinite or beyond 2**53, is left out: the
translation is then a superset (``exact=False``) and the store checks candidates in Python.
Numeric ranges compare as 64-bit floats (Qdrant's rule), so integers beyond 2**53 stored in a
document may compare inexactly; equality is always exact.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import orjson

from polymodal.store import filters as flt

__all__ = ["FACTS", "RANGES", "Translation", "facts_of", "translate", "value_fact"]

FACTS = "_f"
RANGES = "_r"
_LONG = 64  # strings longer than this are facts by their hash
_EXACT = 2**53
_BOUNDS = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


@dataclass(frozen=True, slots=True)
class Translation:
    """A native filter (None: no condition), whether it is exact, and whether nothing can match."""

    filter: Any | None
    exact: bool
    empty: bool = False


# -- facts ----------------------------------------------------------------------------------------
def _fact(*parts: str) -> str:
    return orjson.dumps(parts).decode()


def _utc(v: datetime) -> str:
    return v.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def value_fact(path: str, v: Any) -> str | None:
    """The equality fact of one value at ``path`` (None: it equals no filter operand)."""
    if isinstance(v, bool):
        return _fact("b", path, "1" if v else "0")
    if isinstance(v, int):
        return _fact("n", path, str(int(v)))
    if isinstance(v, float):
        if v != v:
            return None
        if math.isinf(v):
            return _fact("n", path, "inf" if v > 0 else "-inf")
        return _fact("n", path, str(int(v)) if v.is_integer() else repr(float(v)))
    if isinstance(v, str):
        s = str.__str__(v)
        if len(s) <= _LONG and _encodable(s):
            return _fact("s", path, s)
        return _fact("h", path, hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest())
    if isinstance(v, datetime):
        if v.tzinfo is None:
            return _fact("dn", path, v.isoformat(timespec="microseconds"))
        return _fact("da", path, _utc(v)) if v.utcoffset() is not None else None
    if isinstance(v, date):
        return _fact("d", path, v.isoformat())
    return None


def _encodable(s: str) -> bool:
    """False for strings with lone surrogates, which JSON cannot carry (their hash can)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _range_entry(path: str, v: Any) -> dict[str, Any] | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        if -(2**63) <= v < 2**63:
            return {"p": path, "n": int(v)}
        try:
            return {"p": path, "n": float(v)}
        except OverflowError:
            return None
    if isinstance(v, float):
        return {"p": path, "n": float(v)} if math.isfinite(v) else None
    if isinstance(v, datetime):
        if v.tzinfo is None:
            return {"p": path, "dn": v.isoformat(timespec="microseconds") + "+00:00"}
        return {"p": path, "da": _utc(v) + "+00:00"} if v.utcoffset() is not None else None
    if isinstance(v, date):
        return {"p": path, "d": v.toordinal()}
    return None


def _is_model(obj: Any) -> bool:
    return hasattr(type(obj), "model_fields")


def facts_of(doc: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The ``_f`` facts and ``_r`` range entries of a document (see the module docstring)."""
    facts: dict[str, None] = {}
    ranges: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(path: str, v: Any) -> None:
        if v is None or isinstance(v, (bytes, np.ndarray)):  # vectors, tensors, bytes: never filtered
            return
        facts[_fact("e", path)] = None
        f = value_fact(path, v)
        if f is not None:
            facts[f] = None
        r = _range_entry(path, v)
        if r is not None:
            ranges.setdefault(tuple(r.items()), r)

    def walk(obj: Any, path: str) -> None:
        if isinstance(obj, (list, tuple, set, frozenset)):
            for v in obj:
                add(path, v)
        else:
            add(path, obj)
        if isinstance(obj, (list, tuple)):
            if all(_is_model(item) for item in obj):  # lists of documents fan out; plain lists stop
                for item in obj:
                    children(item, path)
        elif isinstance(obj, Mapping):
            for key, child in obj.items():
                if isinstance(key, str) and "." not in key and child is not None:
                    walk(child, f"{path}.{key}")
        elif hasattr(obj, "__dict__") and not isinstance(obj, (str, type)):
            children(obj, path)

    def children(obj: Any, prefix: str) -> None:
        for name, child in vars(obj).items():
            if child is not None:
                walk(child, f"{prefix}.{name}" if prefix else name)

    children(doc, "")
    return list(facts), list(ranges.values())


# -- translation ----------------------------------------------------------------------------------
class _Const:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


TRUE = _Const("TRUE")
FALSE = _Const("FALSE")
_Node = tuple[Any, bool]  # (a Qdrant condition, TRUE or FALSE; whether it is exact)


def translate(f: flt.Filter | None) -> Translation:
    """A native Qdrant filter for a parsed filter (a superset when ``exact`` is False)."""
    if f is None:
        return Translation(None, True)
    from qdrant_client import models

    node, exact = _Translator(models).node(f)
    if node is FALSE:
        return Translation(None, True, empty=True)
    if node is TRUE:
        return Translation(None, exact)
    return Translation(node if isinstance(node, models.Filter) else models.Filter(must=[node]), exact)


class _Translator:
    def __init__(self, models: Any) -> None:
        self.m = models

    def node(self, f: flt.Filter) -> _Node:
        m = self.m
        if isinstance(f, flt.Not):
            inner, exact = self.node(f.item)
            if not exact:
                return TRUE, False
            return self.negate(inner), True
        if isinstance(f, flt.And):
            parts = [self.node(i) for i in f.items]
            if any(n is FALSE for n, _ in parts):
                return FALSE, True
            conds = [n for n, _ in parts if n is not TRUE]
            exact = all(e for _, e in parts)
            if not conds:
                return TRUE, exact
            return (conds[0] if len(conds) == 1 else m.Filter(must=conds)), exact
        if isinstance(f, flt.Or):
            parts = [self.node(i) for i in f.items]
            if any(n is TRUE for n, _ in parts):
                return TRUE, all(e for n, e in parts if n is TRUE)
            conds = [(n, e) for n, e in parts if n is not FALSE]
            return self.any_of([n for n, _ in conds]), all(e for _, e in conds)
        return self.cond(f)

    def negate(self, node: Any) -> Any:
        if node is TRUE:
            return FALSE
        if node is FALSE:
            return TRUE
        return self.m.Filter(must_not=[node])

    def any_of(self, conds: list[Any]) -> Any:
        if not conds:
            return FALSE
        return conds[0] if len(conds) == 1 else self.m.Filter(should=conds)

    def fact(self, fact: str) -> Any:
        return self.m.FieldCondition(key=FACTS, match=self.m.MatchValue(value=fact))

    def cond(self, c: flt.Cond) -> _Node:
        m, op, v, path = self.m, c.op, c.value, c.path
        exists = self.fact(_fact("e", path))
        if op == "$exists":
            return (exists if v else self.negate(exists)), True
        if op in ("$eq", "$ne"):
            if v is None:
                hit = self.negate(exists)
            else:
                fact = value_fact(path, v)
                hit = FALSE if fact is None else self.fact(fact)
            return (hit if op == "$eq" else self.negate(hit)), True
        if op in ("$in", "$nin"):
            facts = sorted({f for o in v if o is not None and (f := value_fact(path, o)) is not None})
            parts = []
            if facts:
                parts.append(m.FieldCondition(key=FACTS, match=m.MatchAny(any=facts)))
            if None in v:
                parts.append(self.negate(exists))
            hit = self.any_of(parts)
            return (hit if op == "$in" else self.negate(hit)), True
        return self.compare(path, _BOUNDS[op], v)

    def compare(self, path: str, bound: str, v: Any) -> _Node:
        m = self.m
        if isinstance(v, bool):
            return FALSE, True  # booleans have no order
        if isinstance(v, (int, float)):
            if v != v:
                return FALSE, True
            if math.isinf(v) or (isinstance(v, int) and abs(v) > _EXACT):
                return TRUE, False
            in_range = self.nested(path, m.FieldCondition(key="n", range=m.Range(**{bound: v})))
            infinite = _fact("n", path, "inf" if bound in ("gt", "gte") else "-inf")
            return m.Filter(should=[in_range, self.fact(infinite)]), True
        if isinstance(v, datetime):
            if v.tzinfo is not None and v.utcoffset() is None:
                return TRUE, False
            key = "dn" if v.tzinfo is None else "da"
            at = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
            return self.nested(path, m.FieldCondition(key=key, range=m.DatetimeRange(**{bound: at}))), True
        if isinstance(v, date):
            return self.nested(path, m.FieldCondition(key="d", range=m.Range(**{bound: v.toordinal()}))), True
        return TRUE, False  # strings: Qdrant has no order on text, the store checks them

    def nested(self, path: str, cond: Any) -> Any:
        m = self.m
        inner = m.Filter(must=[m.FieldCondition(key="p", match=m.MatchValue(value=path)), cond])
        return m.NestedCondition(nested=m.Nested(key=RANGES, filter=inner))
