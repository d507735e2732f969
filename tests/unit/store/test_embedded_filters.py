"""Embedded-store filter SQL agrees with the reference evaluation: declared int/str fields are
answered from their expression index alone (missing values included), and the infinities, stored
as text because JSON has none, still compare as numbers."""

from __future__ import annotations

import pytest

import polymodal as pm
from polymodal.store import filters as flt
from polymodal.store.embedded.sqlfilter import to_sql


class Item(pm.Doc):
    n: int | None = None
    s: str | None = None
    x: float | None = None
    v: pm.Vector[2] | None = None


def _items() -> list[Item]:
    ns = [None, 0, 1, 7, -3, 7, None, 2**40]
    ss = [None, "a", "", "b", "7", None, "zz", "a"]
    xs = [None, 1.5, float("inf"), 7.0, None, -2.0, float("nan"), float("-inf")]
    return [
        Item(id=f"i{k}", n=n, s=s, x=x, v=[1.0, float(k)]) for k, (n, s, x) in enumerate(zip(ns, ss, xs, strict=True))
    ]


WHERES = [
    {"n": 7},
    {"n": 7.0},
    {"n": {"$ne": 7}},
    {"n": {"$gt": 0}},
    {"n": {"$lte": 1}},
    {"n": {"$not": {"$gt": 0}}},
    {"n": {"$in": [0, 1, 2, 3, 4, 5, 6, 7]}},
    {"n": {"$nin": [0, 1, 2, 3, 4, 5, 6, 7]}},
    {"n": {"$nin": [7]}},
    {"n": "7"},
    {"n": {"$lt": "a"}},  # a string never orders against an int field
    {"n": True},
    {"n": None},
    {"s": "a"},
    {"s": {"$ne": "a"}},
    {"s": {"$gte": "b"}},
    {"s": {"$lt": "b"}},
    {"s": 7},
    {"s": {"$nin": ["a", "b"]}},
    {"x": {"$gt": 1.0}},
    {"x": {"$lt": 1.0}},
    {"x": {"$ne": 7}},
    {"x": float("inf")},
    {"x": {"$gte": float("inf")}},
    {"x": {"$lte": float("-inf")}},
    {"x": {"$in": [float("-inf"), float("inf"), 7.0]}},
    {"x": {"$nin": [float("inf")]}},
]


@pytest.mark.parametrize("where", WHERES, ids=str)
def test_declared_fields_filter_like_the_reference(tmp_path, where):
    items = _items()
    with pm.open(tmp_path / "s", schema=Item) as store:
        store.add(items)
        parsed = flt.parse(where)
        want = {i.id for i in items if flt.matches(parsed, i)}
        assert store.count(where) == len(want)
        got = {h.id for h in store.search([1.0, 0.0], field="v", limit=100, where=where)}
        assert got == want


def test_int_and_str_comparisons_skip_the_json_type_guard():
    sql, params = to_sql(flt.parse({"n": {"$gt": 3}}), Item)
    assert "json_type" not in sql and params == [3]
    sql, _ = to_sql(flt.parse({"s": "a"}), Item)
    assert "json_type" not in sql
    # floats keep the guard (non-finite floats are not JSON numbers), as do mismatched operands
    assert "json_type" in to_sql(flt.parse({"x": {"$gt": 3}}), Item)[0]
    assert "json_type" in to_sql(flt.parse({"n": "3"}), Item)[0]
