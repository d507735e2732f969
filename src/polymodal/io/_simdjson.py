"""Columns of a JSON array of flat documents, parsed with simdjson: each vector becomes one row
of a float32 array straight from the parser's float64 values, with no Python float per element.

This is only a fast path. Whenever the input is anything but the plain shape ``to_json``
writes (an array of at least two objects, each holding exactly the expected fields, vectors as
flat arrays of numbers of one length, every other value a scalar), :func:`columns` returns None
and the caller parses with orjson as before, so that every error, and every input that
simdjson and orjson treat differently (ints beyond 64 bits, which orjson reads as floats; a
UTF-8 byte order mark, which simdjson skips), keeps its orjson behaviour.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np
import simdjson

__all__ = ["columns"]

#: What pysimdjson raises for input it refuses (its error handler maps simdjson's error codes
#: onto these; UnicodeError is a ValueError).
_PARSE_ERRORS = (ValueError, RuntimeError, TypeError, KeyError, IndexError, MemoryError, OSError)
#: Integers beyond this magnitude may round differently through float64 than straight to
#: float32 (as an all-int list does through numpy), so such vectors take the orjson path.
_EXACT_INT = float(2**53)
_BLOCK_BYTES = 1 << 20
#: Inputs up to this size reuse one parser: a fresh one costs page faults on about three times
#: the input size (as much as the parse itself); the kept parser holds that memory until the next
#: parse. Larger inputs use a parser of their own, freed at once.
_KEEP_PARSER_MAX_BYTES = 64 << 20

_lock = threading.Lock()
_kept: list[simdjson.Parser] = []


@contextmanager
def _parser(size: int) -> Iterator[simdjson.Parser]:
    """The kept parser when it is free and the input small enough, else a new one (threads
    never share a parser: one holding proxies from a parse cannot parse again)."""
    if size > _KEEP_PARSER_MAX_BYTES or not _lock.acquire(blocking=False):
        yield simdjson.Parser()
        return
    try:
        if not _kept:
            _kept.append(simdjson.Parser())
        yield _kept[0]
    finally:
        _lock.release()


def _parse(parser: simdjson.Parser, data: bytes) -> Any:
    try:
        return parser.parse(data)
    except RuntimeError as exc:
        if "re-use" not in str(exc):
            raise
    # proxies from an earlier parse are still alive (kept by a traceback): replace the parser
    _kept[:] = [simdjson.Parser()]
    return _kept[0].parse(data)


def columns(data: str | bytes, names: tuple[str, ...], vectors: frozenset[str]) -> dict[str, Any] | None:
    """``{field: column}`` for a JSON array of documents with exactly the fields ``names``, or
    None for "use the orjson path". Columns of the fields in ``vectors`` are ``(n, d)`` float32
    arrays when every value is a flat array of ``d`` numbers, else lists of the values orjson
    would give; other columns are lists of scalars."""
    if isinstance(data, str):
        try:
            data = data.encode()
        except UnicodeEncodeError:  # lone surrogates: orjson's error applies
            return None
    if type(data) is not bytes or data.startswith(b"\xef\xbb\xbf"):
        return None
    with _parser(len(data)) as parser:
        try:
            top = _parse(parser, data)
        except _PARSE_ERRORS:
            return None
        try:
            return _columns(top, data, names, vectors)
        except _PARSE_ERRORS:
            return None
        finally:
            del top  # the parser can parse again only once its proxies are gone


def _columns(top: Any, data: bytes, names: tuple[str, ...], vectors: frozenset[str]) -> dict[str, Any] | None:
    if type(top) is not simdjson.Array or len(top) < 2:
        return None
    docs: list[Any] = list(top)  # Objects, checked next (typed Any: they are indexed by bytes keys)
    # objects of ``len(names)`` keys holding every name: no other key, no duplicate (a missing
    # name is a KeyError below, which the caller turns into None)
    if set(map(type, docs)) != {simdjson.Object} or set(map(len, docs)) != {len(names)}:
        return None
    out: dict[str, Any] = {}
    arrays = 1  # the top-level array
    listed: list[Any] = []  # vector columns kept as Python lists
    scalars: list[list[Any]] = []
    for name in names:
        key = name.encode()  # bytes keys are looked up as they are (a str is encoded per call)
        col = [doc[key] for doc in docs]
        types = set(map(type, col))
        if name not in vectors:
            if not _CONTAINERS.isdisjoint(types):
                return None  # nested values: the per-document rules apply
            out[name] = col
            scalars.append(col)
            continue
        if simdjson.Object in types:
            return None  # tensor mappings (base64): the per-document rules apply
        arrays += list(map(type, col)).count(simdjson.Array) if types != {simdjson.Array} else len(col)
        stacked = _stack(col) if types == {simdjson.Array} else None
        if stacked is None:
            out[name] = [v.as_list() if type(v) is simdjson.Array else v for v in col]
            listed.append(out[name])
        else:
            out[name] = stacked
    if not _no_hidden_arrays(data, arrays, scalars, listed):
        return None
    return out


_CONTAINERS = frozenset({simdjson.Array, simdjson.Object})
_as_buffer = methodcaller("as_buffer", of_type="d")
_size = attrgetter("size")


def _stack(col: list[Any]) -> np.ndarray | None:
    """The arrays as one ``(n, d)`` float32 array when each holds ``d`` numbers (or nested
    arrays: the caller rules those out) and each number converts exactly as numpy converts the
    list orjson gives; else None.

    simdjson copies each array out as float64; blocks of rows are joined, checked and cast into
    the result while they are small enough to stay in cache."""
    d = len(col[0])
    if d == 0 or set(map(len, col)) != {d}:
        return None
    nbytes = 8 * d
    out = np.empty((len(col), d), dtype=np.float32)
    rows = max(1, _BLOCK_BYTES // nbytes)
    for start in range(0, len(col), rows):
        try:
            buffers = list(map(_as_buffer, col[start : start + rows]))  # refuses strings, bools, nulls, objects
        except (TypeError, ValueError):
            return None
        if set(map(_size, buffers)) != {nbytes}:  # nested arrays, another count of numbers
            return None
        with np.errstate(over="ignore"):  # beyond float32's range: infinity, refused below
            out[start : start + len(buffers)] = np.frombuffer(b"".join(buffers), np.float64).reshape(-1, d)
    # An int beyond 2**53 (exact in float64 only below) or a float beyond float32's range takes
    # the orjson path, which converts and refuses such values as it always has. Rounding is
    # monotonic, so |x| >= 2**53 gives a float32 >= 2**53 (a little below may too: harmless).
    if out.max() >= _EXACT_INT or out.min() <= -_EXACT_INT:
        return None
    return out


def _no_hidden_arrays(data: bytes, arrays: int, scalars: list[list[Any]], listed: list[list[Any]]) -> bool:
    """Whether no vector read as a buffer held a nested array. ``as_buffer`` flattens nested
    arrays, so ``[[1], 2, 3]`` would pass for three numbers; but every array is a ``[`` in the
    text. The text's ``[`` are the arrays seen (the top level, one per vector, lists inside the
    vectors kept as lists) plus those inside strings; a string's ``[`` is a ``[`` of its decoded
    value unless spelled ``\\u005b``. So if the count leaves none over, there is no other array."""
    extra = _count_brackets(data, arrays) - arrays - sum(_lists_in(v) for col in listed for v in col)
    if extra <= 0:
        return extra == 0
    strings = sum(_brackets_in(v) for col in scalars + listed for v in col)
    return extra - (strings - _escaped_brackets(data)) <= 0


def _escaped_brackets(data: bytes) -> int:
    """How many times ``\\u005b`` (either case) is in ``data``: at least the ``[`` that strings
    spell as escapes. Found from each backslash (memchr), as there are few of them."""
    n = seen = 0
    i = data.find(b"\\")
    while i >= 0:
        seen += 1
        if seen > 100_000:  # many escapes: two full scans cost less than this loop
            return data.count(b"\\u005b") + data.count(b"\\u005B")
        if data[i + 1 : i + 6] in (b"u005b", b"u005B"):
            n += 1
        i = data.find(b"\\", i + 1)
    return n


def _count_brackets(data: bytes, expected: int) -> int:
    """``data.count(b"[")``, three times as fast when there are about ``expected`` of them:
    ``find`` scans with memchr, ``count`` byte by byte."""
    n = 0
    i = data.find(b"[")
    while i >= 0:
        n += 1
        if n > expected + 64:
            return data.count(b"[")
        i = data.find(b"[", i + 1)
    return n


def _lists_in(value: Any) -> int:
    """Lists nested inside a vector value kept as a list (not the value itself, counted already)."""
    if type(value) is not list:
        return 0
    return sum(1 + _lists_in(v) for v in value if type(v) is list)


def _brackets_in(value: Any) -> int:
    if type(value) is str:
        return value.count("[")
    if type(value) is list:
        return sum(_brackets_in(v) for v in value if type(v) in (str, list))
    return 0
