"""The filter language: Mongo-style conditions on document fields, checked once, run anywhere.

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or`` (and ``$not``). A bare value
means ``$eq``; several keys in one mapping are and-ed. Paths are dotted: ``"meta.author"`` goes
into a dict field, ``"segments.start"`` into every sub-document of a nested list.

Semantics (the in-memory backend implements them directly; other backends translate them and
the contract tests check they agree):

* A field holding a list matches ``$eq``/``$in``/comparisons when *any* element does, and
  ``$ne``/``$nin`` when *no* element does (as in MongoDB). Paths traverse lists of nested
  documents (``segments.start``) and lists at the end of a path (``tags``), not lists in the
  middle of a plain dict/list field.
* ``None`` (or a missing path) never satisfies a comparison; ``{"f": None}`` matches null or
  missing, ``{"f": {"$exists": True}}`` matches a non-null value.
* Numbers compare with numbers, strings with strings, booleans only equal booleans (and have
  no order); a value of another type simply does not match (no error, no coercion). Datetimes
  compare with datetimes of the same kind (both naive or both timezone-aware), dates with dates.
* Vector, tensor and bytes fields cannot be filtered (the store rejects such paths).

>>> f = parse({"year": {"$gte": 2020}, "tags": {"$in": ["cat", "dog"]}}, fields={"year", "tags"})
>>> matches(f, {"year": 2021, "tags": ["dog"]}), matches(f, {"year": 2019, "tags": ["dog"]})
(True, False)
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from polymodal.errors import ConfigError, SchemaError

__all__ = ["And", "Cond", "Filter", "Not", "Or", "OPERATORS", "matches", "parse"]

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or", "$not")
OPERATORS = COMPARISONS + LOGICAL


@dataclass(frozen=True, slots=True)
class Cond:
    """``path op value``."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Filter


Filter = Cond | And | Or | Not


def parse(where: Mapping[str, Any] | None, *, fields: Collection[str] | None = None) -> Filter | None:
    """Validate a filter mapping and return its tree (None for no filter).

    Args:
        fields: the top-level field names that may start a path; None accepts any.

    Raises:
        ConfigError: unknown operator or malformed filter (says what is expected).
        SchemaError: a path starts with a field the schema does not have (lists the fields).
    """
    if where is None or (isinstance(where, Mapping) and not where):
        return None
    return _parse(where, fields)


def _parse(where: Any, fields: Collection[str] | None) -> Filter:
    if not isinstance(where, Mapping):
        raise ConfigError(f"a filter must be a mapping like {{'field': value}}, got {type(where).__name__}")
    items: list[Filter] = []
    for key, value in where.items():
        if not isinstance(key, str):
            raise ConfigError(f"filter keys must be strings, got {key!r}")
        if key.startswith("$"):
            items.append(_logical(key, value, fields))
        else:
            _check_path(key, fields)
            items.extend(_field_conditions(key, value))
    return items[0] if len(items) == 1 else And(tuple(items))


def _logical(op: str, value: Any, fields: Collection[str] | None) -> Filter:
    if op == "$not":
        return Not(_parse(value, fields))
    if op not in ("$and", "$or"):
        raise ConfigError(f"unknown filter operator {op!r} at top level; use one of {', '.join(LOGICAL)} here")
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{op} takes a non-empty list of filters")
    if any(isinstance(v, Mapping) and not v for v in value):
        raise ConfigError(f"{op} takes non-empty filters; an empty one {{}} would match everything")
    parts = tuple(_parse(v, fields) for v in value)
    return And(parts) if op == "$and" else Or(parts)


def _field_conditions(path: str, value: Any) -> list[Filter]:
    if isinstance(value, Mapping) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        out: list[Filter] = []
        for op, operand in value.items():
            if op == "$not":
                inner = _field_conditions(path, operand)
                out.append(Not(inner[0] if len(inner) == 1 else And(tuple(inner))))
                continue
            if op not in COMPARISONS:
                raise ConfigError(f"unknown filter operator {op!r} for field {path!r}; known: {', '.join(OPERATORS)}")
            out.append(Cond(path, op, _operand(op, operand, path)))
        return out
    return [Cond(path, "$eq", _operand("$eq", value, path))]


def _operand(op: str, value: Any, path: str) -> Any:
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise ConfigError(f"{op} for field {path!r} takes a list of values, got {type(value).__name__}")
        return tuple(_scalar(v, op, path) for v in value)
    if op == "$exists":
        if not isinstance(value, bool):
            raise ConfigError(f"$exists for field {path!r} takes true or false")
        return value
    if value is None and op not in ("$eq", "$ne"):
        raise ConfigError(f"{op} for field {path!r} cannot compare with null")
    return _scalar(value, op, path)


def _scalar(value: Any, op: str, path: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise ConfigError(f"{op} for field {path!r}: integers in filters must fit in 64 bits, got {value}")
    if value is None or isinstance(value, (str, int, float, bool, datetime, date)):
        return value
    raise ConfigError(f"{op} for field {path!r}: filter values must be str, number, bool, date or null, got {value!r}")


def _check_path(path: str, fields: Collection[str] | None) -> None:
    head = path.split(".", 1)[0]
    if not head:
        raise ConfigError(f"empty field name in filter path {path!r}")
    if fields is not None and head not in fields:
        raise SchemaError(f"unknown field {head!r} in filter; fields: {', '.join(sorted(fields))}", field=head)


def fields_of(f: Filter | None) -> set[str]:
    """Every path a filter reads."""
    if f is None:
        return set()
    if isinstance(f, Cond):
        return {f.path}
    if isinstance(f, Not):
        return fields_of(f.item)
    return set().union(*(fields_of(i) for i in f.items))


# -- reference evaluation ---------------------------------------------------------------------
_MISSING = object()


def _resolve(obj: Any, parts: list[str]) -> list[Any]:
    """All values at a dotted path; lists of documents and a list at the end fan out."""
    if not parts:
        return list(obj) if isinstance(obj, (list, tuple, set, frozenset)) else [obj]
    if isinstance(obj, (list, tuple)):
        if not all(hasattr(type(item), "model_fields") for item in obj):
            return []  # a plain list in the middle of a path: not traversed (see module doc)
        return [v for item in obj for v in _resolve(item, parts)]
    if isinstance(obj, Mapping):
        child = obj.get(parts[0], _MISSING)
    else:
        child = getattr(obj, parts[0], _MISSING) if hasattr(obj, "__dict__") else _MISSING
    if child is _MISSING or child is None:
        return []
    return _resolve(child, parts[1:])


def _comparable(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return True
    if isinstance(a, datetime) and isinstance(b, datetime):
        return (a.tzinfo is None) == (b.tzinfo is None)
    if isinstance(a, date) and isinstance(b, date):
        return not isinstance(a, datetime) and not isinstance(b, datetime)
    return type(a) is type(b) or (isinstance(a, str) and isinstance(b, str))


def _eq(a: Any, b: Any) -> bool:
    return _comparable(a, b) and a == b


def _cmp(op: str, a: Any, b: Any) -> bool:
    if not _comparable(a, b) or isinstance(a, bool):  # booleans are equal or not, never ordered
        return False
    if op == "$gt":
        return bool(a > b)
    if op == "$gte":
        return bool(a >= b)
    if op == "$lt":
        return bool(a < b)
    return bool(a <= b)


def matches(f: Filter | None, doc: Any) -> bool:
    """Evaluate a parsed filter against a document (or a plain mapping)."""
    if f is None:
        return True
    if isinstance(f, And):
        return all(matches(i, doc) for i in f.items)
    if isinstance(f, Or):
        return any(matches(i, doc) for i in f.items)
    if isinstance(f, Not):
        return not matches(f.item, doc)
    values = [v for v in _resolve(doc, f.path.split(".")) if v is not None]
    op, operand = f.op, f.value
    if op == "$exists":
        return bool(values) is bool(operand)
    if op == "$eq":
        return not values if operand is None else any(_eq(v, operand) for v in values)
    if op == "$ne":
        return bool(values) if operand is None else not any(_eq(v, operand) for v in values)
    if op == "$in":
        return any(_eq(v, o) for v in values for o in operand if o is not None) or (None in operand and not values)
    if op == "$nin":
        hit = any(_eq(v, o) for v in values for o in operand if o is not None) or (None in operand and not values)
        return not hit
    return any(_cmp(op, v, operand) for v in values)


def iter_conditions(f: Filter | None) -> Iterable[Cond]:
    if f is None:
        return
    if isinstance(f, Cond):
        yield f
    elif isinstance(f, Not):
        yield from iter_conditions(f.item)
    else:
        for item in f.items:
            yield from iter_conditions(item)
