"""JSON decode through simdjson (vectors straight into arrays): the same documents and the same
errors as the orjson path, which it falls back to for every input it does not take.

The reference for every case is the orjson path itself: ``orjson.loads`` and the per-document
or column-wise validation that ``from_json`` used before the simdjson path existed.
"""

import base64
import math
import threading
import warnings

import numpy as np
import orjson
import pytest

import polymodal as pm
from polymodal.io import _simdjson
from polymodal.io import json as json_io


class Flat(pm.Doc):
    title: str
    year: int = 0
    rating: float | None = None
    embedding: pm.Vector[4]
    extra: pm.Vector[2] | None = None


class Seg(pm.Doc):
    text: str
    embedding: pm.Vector[3]


class Video(pm.Doc):
    title: str
    embedding: pm.Vector[3]
    segments: pm.DocList[Seg] | None = None


def _flat(n: int = 5) -> pm.DocList[Flat]:
    return pm.DocList[Flat](
        [
            Flat(
                id=f"d{i}",
                title=f"t{i} ☃",
                year=i,
                rating=i / 3 if i % 2 else None,
                embedding=[i, -0.1, 1.5e15, 1e-45],
                extra=[1, 2] if i % 3 else None,
            )
            for i in range(n)
        ]
    )


def _rows(n: int = 5) -> list[dict]:
    return orjson.loads(_flat(n).to_json())


def _reference(data: bytes | str, doc_type: type[pm.Doc] = Flat) -> list[pm.Doc]:
    """What ``from_json`` gave before: orjson, then column-wise or per-document validation."""
    parsed = json_io._parse(data)
    items = [parsed] if isinstance(parsed, dict) else parsed
    return json_io._validate_all(items, doc_type)


def _outcome(fn, *args):
    """The documents as plain values (arrays as dtype, shape and bytes), or the error's class,
    message, index and field."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's float32 overflow warnings
        try:
            return [_plain(d.model_dump()) for d in fn(*args)]
        except pm.PolymodalError as exc:
            return (type(exc), str(exc), getattr(exc, "index", None), getattr(exc, "field", None))


def _plain(value):
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _same_as_reference(data: bytes | str, doc_type: type[pm.Doc] = Flat):
    got = _outcome(lambda: pm.DocList[doc_type].from_json(data))
    assert got == _outcome(_reference, data, doc_type)
    return got


def _fast(data: bytes | str, doc_type: type[pm.Doc] = Flat) -> list[pm.Doc] | None:
    return json_io._loads_columns(data, doc_type)


# -- the fast path is taken, and exact ----------------------------------------------------------
def test_plain_output_of_to_json_takes_the_simdjson_path(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _flat()

    def no_orjson(data):
        raise AssertionError("the orjson path was used")

    monkeypatch.setattr(json_io, "_parse", no_orjson)
    back = pm.DocList[Flat].from_json(docs.to_json())
    assert back == docs
    assert back[0].embedding.dtype == np.float32
    assert back[0].embedding.base is back[4].embedding.base is not None  # views of one column
    assert pm.DocList[Flat].from_json(docs.to_json().decode()) == docs  # str input too
    assert pm.DocList[Flat].from_json(b" \n\t" + docs.to_json()) == docs  # leading blanks


def test_float32_values_come_back_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    special = np.array(
        [
            -0.0,
            0.0,
            np.finfo(np.float32).max,
            -np.finfo(np.float32).max,
            np.finfo(np.float32).tiny,  # smallest normal
            1e-45,  # smallest subnormal
            0.1,
            16777217,  # 2**24 + 1, not a float32: rounds
            34915672,  # written 34915670.0 in float32's shortest form
            -3.4028235e38,
        ],
        np.float32,
    )
    values = np.concatenate([special, rng.standard_normal(4000).astype(np.float32)])
    values = np.concatenate([values, values.view(np.uint32)[::-1].astype(np.float32)])  # wide exponents
    values = values[np.isfinite(values)][: len(values) // 4 * 4].reshape(-1, 4)
    docs = pm.DocList[Flat]([Flat(title="x", embedding=v) for v in values])
    data = docs.to_json()
    fast = _fast(data)
    assert fast is not None
    got = np.stack([d.embedding for d in fast])
    assert got.tobytes() == values.tobytes()
    assert np.signbit(got[0, 0]) and not np.signbit(got[0, 1])  # -0.0 stays negative, 0.0 positive
    _same_as_reference(data)


@pytest.mark.parametrize(
    "vector",
    [
        b"[1,2,3,4]",  # ints (numpy makes an int64 array of them)
        b"[-0,0,-0.0,0.0]",  # the int -0 is 0; -0.0 keeps its sign
        b"[9007199254740992,1,2,3]",  # 2**53: exact in float64
        b"[1e-400,-1e-400,5e-324,1]",  # underflow to (signed) zero, a float64 subnormal
        b"[16777217,16777219,33554435,3.5]",  # ints that float32 rounds
        b"[3.40282356e38,1,2,3]",  # rounds to float32's max, finite (float64 beyond 2**53: numpy converts)
        b"[1E2,2.5e+1,-3.0E-1,0.1000000000000000055511151231257827]",
        b"[ 1 , 2 ,\n3,\t4 ]",
    ],
)
def test_numbers_in_vectors_convert_as_the_orjson_path_converts_them(vector: bytes) -> None:
    items = _rows()
    items[1]["embedding"] = "MARK"
    data = orjson.dumps(items).replace(b'"MARK"', vector)
    assert _fast(data) is not None
    _same_as_reference(data)


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("[draft] a [note]", True),  # brackets in strings
        (r"\u005b escaped \u005B", True),  # brackets spelled as escapes
        # an escaped backslash before u005b: counted as a possible "[" escape, so the bracket
        # count cannot rule out a nested vector and the orjson path decides (same result)
        (r"\\u005b not an escape", False),
        (r"quote \" and ☃ \ud83d\ude00 \u0000", True),
    ],
)
def test_strings_with_brackets_and_escapes(text: str, fast: bool) -> None:
    data = b'[{"id":"a","title":"%s","year":1,"rating":null,"embedding":[1,2,3,4],"extra":null},' % text.encode()
    data += b'{"id":"b","title":"[","year":2,"rating":0.5,"embedding":[5,6,7,8],"extra":[1,2]}]'
    assert (_fast(data) is not None) is fast
    _same_as_reference(data)


def test_optional_vector_column_with_nulls_keeps_both_columns_right() -> None:
    docs = _flat(7)
    assert [d.extra is None for d in docs].count(True) >= 2
    data = docs.to_json()
    assert _fast(data) == list(docs)


# -- inputs the simdjson path hands to orjson: same documents, same errors ----------------------
@pytest.mark.parametrize(
    ("index", "change", "field", "words"),
    [
        (3, {"embedding": [1, 2, 3]}, "embedding", ["(4,)", "(3,)"]),
        (2, {"embedding": [[1, 2, 3, 4]]}, "embedding", ["(4,)", "(1, 4)"]),
        (1, {"embedding": [[1], 2, 3, 4]}, "embedding", []),  # nested, as many numbers as elements
        (1, {"embedding": [[1, 2], [], 3, 4]}, "embedding", []),
        (4, {"embedding": ["1", "2", "3", "4"]}, "embedding", ["numeric"]),
        (1, {"embedding": [1, None, 3, 4]}, "embedding", []),
        (3, {"embedding": [1, 1e300, 3, 4]}, "embedding", ["finite"]),  # finite float64, inf as float32
        (0, {"embedding": [1, 3.5e38, 3, 4]}, "embedding", ["finite"]),
        (2, {"embedding": None}, "embedding", []),
        (2, {"embedding": {"a": 1}}, "embedding", []),
        (2, {"year": "many"}, "year", ["many"]),
        (0, {"title": 5}, "title", []),
        (0, {"title": ["a"]}, "title", []),
        (4, {"extra": [1, 2, 3]}, "extra", ["(2,)", "(3,)"]),
        (4, {"extra": [[1, 2]]}, "extra", []),
    ],
)
def test_bad_value_names_the_document_and_field(index: int, change: dict, field: str, words: list[str]) -> None:
    items = _rows()
    items[index].update(change)
    data = orjson.dumps(items)
    kind, message, got_index, got_field = _same_as_reference(data)
    assert kind is pm.SchemaError
    assert f"document {index}" in message
    assert (got_index, got_field) == (index, field)
    for word in words:
        assert word in message


def test_nested_vector_hidden_among_brackets_in_strings_is_still_refused() -> None:
    """``[[1], 2, 3, 4]`` flattens to four numbers; a ``[`` in a title must not hide it."""
    items = _rows()
    items[0]["title"] = "[x]"
    items[3]["embedding"] = [[1], 2, 3, 4]
    kind, _, index, field = _same_as_reference(orjson.dumps(items))
    assert (kind, index, field) == (pm.SchemaError, 3, "embedding")
    escaped = orjson.dumps(items).replace(b'"[x]"', b'"\\u005bx]"')
    assert _same_as_reference(escaped)[2:] == (3, "embedding")


@pytest.mark.parametrize(
    "value",
    [
        2**53 + 1,
        # just above a float32 midpoint: straight to float32 it rounds up; through float64 it
        # lands on the midpoint and rounds to even (down), so such ints must not take the buffer
        2**60 + 2**36 + 1,
        -(2**60 + 2**36 + 1),
        2**63,  # uint64
        2**64,  # beyond 64 bits: simdjson refuses, orjson reads a float
        -(2**63) - 1,
        10**30,
        -(2**53) - 1,
    ],
)
def test_big_integers_in_vectors_give_what_orjson_gives(value: int) -> None:
    items = _rows()
    for i, item in enumerate(items):  # all ints: numpy converts the column as int64 (or uint64)
        item["embedding"] = [i, 1, 2, 3]
    items[2]["embedding"] = [value, 1, 2, 3]
    data = json_dumps(items)
    if not -(2**63) <= value < 2**64:
        assert _fast(data) is None  # simdjson refuses it; orjson reads it as a float
    docs = _same_as_reference(data)
    if -(2**63) <= value < 2**64:
        assert docs[2]["embedding"][2][:4] == np.array([value]).astype(np.float32).tobytes()


def json_dumps(items: list[dict]) -> bytes:
    """The standard library's JSON, which (unlike orjson) writes ints beyond 64 bits."""
    import json

    return json.dumps(items).encode()


def test_big_integer_in_a_scalar_field() -> None:
    items = _rows()
    items[1]["year"] = 2**70
    data = json_dumps(items)
    assert _fast(data) is None  # simdjson refuses it; orjson reads it as a float
    kind, _, index, field = _same_as_reference(data)
    assert (kind, index, field) == (pm.SchemaError, 1, "year")
    items[1]["year"] = str(2**70)  # how to_json writes one
    assert _same_as_reference(orjson.dumps(items))[1]["year"] == 2**70


def test_duplicate_keys_keep_the_last_value_as_orjson_does() -> None:
    data = (
        _flat(3)
        .to_json()
        .replace(b'"year":1,', b'"year":1,"year":7,')
        .replace(b'"embedding":[2.0', b'"embedding":[9,9,9,9],"embedding":[2.0')
    )
    assert _fast(data) is None
    docs = _same_as_reference(data)
    assert docs[1]["year"] == 7
    assert docs[2]["embedding"][2] == np.array([2, -0.1, 1.5e15, 1e-45], np.float32).tobytes()


def test_missing_and_unknown_fields() -> None:
    items = _rows()
    del items[1]["year"]
    assert _fast(orjson.dumps(items)) is None
    assert _same_as_reference(orjson.dumps(items))[1]["year"] == 0
    items = _rows()
    items[2]["colour"] = "red"
    kind, _, index, field = _same_as_reference(orjson.dumps(items))
    assert (kind, index, field) == (pm.SchemaError, 2, "colour")
    items = _rows()
    items[2]["colour"] = "red"
    del items[2]["year"]  # as many keys as fields, one of them unknown
    assert _same_as_reference(orjson.dumps(items))[2:] == (2, "colour")


def test_non_finite_vector_as_base64_is_refused_naming_the_document() -> None:
    items = _rows()
    raw = np.array([1, np.nan, 2, 3], "<f4").tobytes()
    items[3]["embedding"] = {"dtype": "<f4", "shape": [4], "b64": base64.b64encode(raw).decode()}
    kind, message, index, field = _same_as_reference(orjson.dumps(items))
    assert (kind, index, field) == (pm.SchemaError, 3, "embedding")
    assert "finite" in message


# -- invalid JSON --------------------------------------------------------------------------------
def test_every_truncation_is_a_format_error_with_orjsons_message() -> None:
    data = _flat(2).to_json()
    for cut in range(len(data)):
        with pytest.raises(pm.FormatError, match="invalid JSON") as info:
            pm.DocList[Flat].from_json(data[:cut])
        with pytest.raises(pm.FormatError) as ref:
            _reference(data[:cut])
        assert str(info.value) == str(ref.value)


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + _flat(2).to_json(),  # simdjson skips a byte order mark; orjson refuses it
        _flat(2).to_json().replace(b"t0", b"\xed\xa0\x80"),  # UTF-8 of a lone surrogate
        _flat(2).to_json().replace(b"t0", b"\\ud800"),  # an escaped lone surrogate
        _flat(2).to_json().replace(b"t0", b"\xff"),
        _flat(2).to_json().replace(b"t0", b"\x01"),  # unescaped control character
        _flat(2).to_json().replace(b"1.0", b"01.0", 1),
        _flat(2).to_json().replace(b"1.0", b"1e400", 1),
        _flat(2).to_json() + b" x",
        _flat(2).to_json()[:-1] + b",]",
        b"[" * 1100 + b"]" * 1100,
    ],
)
def test_invalid_json_gives_orjsons_error(data: bytes) -> None:
    with pytest.raises(pm.FormatError, match="invalid JSON") as info:
        pm.DocList[Flat].from_json(data)
    with pytest.raises(pm.FormatError) as ref:
        _reference(data)
    assert str(info.value) == str(ref.value)


def test_str_with_a_lone_surrogate_gives_orjsons_error() -> None:
    data = _flat(2).to_json().decode().replace("t0", "\ud800")
    with pytest.raises(pm.FormatError, match="invalid JSON"):
        pm.DocList[Flat].from_json(data)


def test_not_an_array_of_objects() -> None:
    items: list = _rows()
    items[2] = [1, 2]
    kind, message, _, _ = _same_as_reference(orjson.dumps(items))
    assert kind is pm.FormatError
    assert "document 2" in message
    single = orjson.dumps(_rows(1)[0])
    assert _fast(single) is None  # one object: one document, per-document rules
    assert len(pm.DocList[Flat].from_json(single)) == 1
    assert pm.DocList[Flat].from_json(memoryview(_flat().to_json())) == _flat()  # orjson reads it


# -- nested documents ----------------------------------------------------------------------------
def test_nested_vectors_in_sub_documents_roundtrip_and_name_the_path() -> None:
    videos = pm.DocList[Video](
        [
            Video(title=f"v{i}", embedding=[i, 0.1, -0.0], segments=[Seg(text="s", embedding=[1, 2, i])] * i)
            for i in range(3)
        ]
    )
    assert _fast(videos.to_json(), Video) is None  # nested documents: per-document validation
    back = pm.DocList[Video].from_json(videos.to_json())
    assert back == videos
    assert np.signbit(back[1].embedding[2])
    items = orjson.loads(videos.to_json())
    items[2]["segments"][1]["embedding"] = [1, 1e300, 3]
    kind, _, index, field = _same_as_reference(orjson.dumps(items), Video)
    assert (kind, index, field) == (pm.SchemaError, 2, "segments.1.embedding")


# -- the parser ----------------------------------------------------------------------------------
def test_a_parser_left_holding_proxies_is_replaced() -> None:
    with _simdjson._parser(10) as parser:
        held = parser.parse(b"[[1, 2]]")[0]  # a live proxy into the kept parser
    assert _fast(_flat().to_json()) == list(_flat())
    assert held.as_list() == [1, 2]


def test_large_inputs_use_a_parser_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_simdjson, "_KEEP_PARSER_MAX_BYTES", 10)
    kept = list(_simdjson._kept)
    assert _fast(_flat().to_json()) == list(_flat())
    assert _simdjson._kept == kept


def test_threads_decode_at_once() -> None:
    data = [_flat(n).to_json() for n in range(2, 10)]
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        results[i] = all(pm.DocList[Flat].from_json(d) == _flat(n + 2) for n, d in enumerate(data) for _ in range(5))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == dict.fromkeys(range(4), True)


# -- encode --------------------------------------------------------------------------------------
def _per_document(docs: pm.DocList) -> bytes:
    return json_io.dumps_json([json_io.doc_to_jsonable(d) for d in docs])


def test_batch_encode_writes_the_same_text_as_per_document() -> None:
    docs = _flat(7)
    assert docs.to_json() == _per_document(docs)
    docs[2].rating = math.nan
    docs[3].rating = math.inf
    assert docs.to_json() == _per_document(docs)


def test_batch_encode_of_non_finite_vectors_and_odd_arrays() -> None:
    class Loose(pm.Doc):
        embedding: pm.Vector[3] | None = None
        free: pm.Vector | None = None

    docs = pm.DocList[Loose]([Loose(embedding=[1, 2, 3], free=[1, 2]), Loose(), Loose(free=[1, 2, 3, 4])])
    object.__setattr__(docs[1], "embedding", np.array([np.nan, 1, np.inf], np.float32))  # as a store might
    object.__setattr__(docs[0], "free", np.arange(4, dtype=np.float32)[::2])  # not contiguous
    object.__setattr__(docs[2], "embedding", np.array([1, 2, 3], ">f4"))  # big-endian
    text = docs.to_json()
    assert text == _per_document(docs)
    parsed = orjson.loads(text)
    assert parsed[1]["embedding"]["b64"]  # raw bytes: NaN and infinity survive
    assert parsed[0]["free"] == [0.0, 2.0]


def test_batch_encode_of_mixed_document_classes_is_per_document() -> None:
    class Sub(Flat):
        pass

    docs = pm.DocList[Flat]([*_flat(2), Sub(title="s", embedding=[1, 2, 3, 4])])
    assert docs.to_json() == _per_document(docs)


def test_schemas_with_other_tensors_skip_the_simdjson_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tensors other than vectors are nested lists or mappings, left to orjson without a
    second parse."""

    class Pic(pm.Doc):
        pixels: pm.NdArray[np.uint8, 2, 2]
        embedding: pm.Vector[2]

    docs = pm.DocList[Pic]([Pic(pixels=np.full((2, 2), i, np.uint8), embedding=[i, -0.0]) for i in range(3)])

    def no_simdjson(*args):
        raise AssertionError("simdjson parsed it")

    monkeypatch.setattr(_simdjson, "columns", no_simdjson)
    assert pm.DocList[Pic].from_json(docs.to_json()) == docs


def test_escape_count_is_the_same_either_way() -> None:
    """Counted from each backslash, or (past 100,000 backslashes) with ``bytes.count``."""
    data = b'["\\u005b", "\\\\u005B", "\\n", "\\u005c"]'
    assert _simdjson._escaped_brackets(data) == 2  # an escaped backslash before u005B counts too
    many = data * 30_000
    assert _simdjson._escaped_brackets(many) == 60_000
