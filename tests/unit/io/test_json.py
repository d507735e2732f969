"""JSON and JSON Lines: exact round trips, standard JSON output, and clear errors."""

import json
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

import polymodal as pm
from polymodal.io import json as json_io


class Part(pm.Doc):
    text: str
    score: float = 0.0


class Item(pm.Doc):
    title: str
    count: int = 0
    embedding: pm.Vector[3] | None = None
    pixels: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    raw: pm.NdArray | None = None
    image: pm.ImageBytes | None = None
    parts: pm.DocList[Part] | None = None


def _items() -> pm.DocList[Item]:
    return pm.DocList[Item](
        [
            Item(
                id="a",
                title="naïve ☃ \U0001f600 \x00",
                count=2**100,
                embedding=[1, 2.5, -3],
                pixels=np.zeros((0, 2, 3), np.uint8),
                raw=np.array([np.nan, np.inf, -np.inf, 1], np.float16),
                image=b"\x89PNG\x00\xff",
                parts=[Part(id="p", text="x", score=math.nan)],
            ),
            Item(
                id="b",
                title="",
                count=-(2**63),
                raw=np.arange(6, dtype=np.uint64).reshape(2, 3) * 2**61,
                pixels=np.full((1, 2, 3), 255, np.uint8),
                parts=[],
            ),
            Item(id="c", title="c", raw=np.zeros((3, 0), np.int8), parts=None),
        ]
    )


def _no_constant(name: str) -> None:
    raise AssertionError(f"non-standard JSON constant {name}")


def test_roundtrip_is_exact() -> None:
    docs = _items()
    assert pm.DocList[Item].from_json(docs.to_json()) == docs
    assert pm.DocList[Item].from_json(docs.to_json().decode()) == docs  # str input too


def test_output_is_standard_json() -> None:
    """NaN and infinity (which JSON cannot spell) never appear as bare tokens."""
    parsed = json.loads(_items().to_json(), parse_constant=_no_constant)
    assert parsed[0]["title"] == "naïve ☃ \U0001f600 \x00"
    assert parsed[0]["parts"][0]["score"] == "NaN"


def test_fixed_dtype_tensor_with_a_zero_size_dimension_keeps_its_shape() -> None:
    doc = Item(title="t", pixels=np.zeros((0, 4, 3), np.uint8))
    (back,) = pm.DocList[Item].from_json(pm.DocList[Item]([doc]).to_json())
    assert back.pixels.shape == (0, 4, 3)
    assert back.pixels.dtype == np.uint8


def test_tensor_dtype_survives_when_the_schema_does_not_fix_it() -> None:
    for dtype in ("bool", "int8", "uint64", "float16", "float64"):
        doc = Item(title="t", raw=np.ones((2, 1), dtype))
        (back,) = pm.DocList[Item].from_json(pm.DocList[Item]([doc]).to_json())
        assert back.raw.dtype == np.dtype(dtype)
        assert back.raw.shape == (2, 1)


def test_empty_list() -> None:
    assert pm.DocList[Item]().to_json() == b"[]"
    assert pm.DocList[Item].from_json(b"[]") == pm.DocList[Item]()


def test_a_single_object_is_one_document() -> None:
    assert [d.title for d in pm.DocList[Item].from_json(b'{"title": "one"}')] == ["one"]


@pytest.mark.parametrize("data", [b"", b"[", b'[{"title": "x"}', b"{'title': 'x'}", b"\xff\xfe", b"[1,]", b"NaN x"])
def test_invalid_json_is_a_format_error(data: bytes) -> None:
    with pytest.raises(pm.FormatError, match="invalid JSON"):
        pm.DocList[Item].from_json(data)


@pytest.mark.parametrize("data", [b"3", b'"text"', b"null", b"[1]", b'[{"title": "x"}, []]'])
def test_json_that_is_not_documents_is_a_format_error(data: bytes) -> None:
    with pytest.raises(pm.FormatError):
        pm.DocList[Item].from_json(data)


def test_wrong_type_names_the_document_index_and_field() -> None:
    data = b'[{"title": "ok"}, {"title": "ok", "count": "many"}]'
    with pytest.raises(pm.SchemaError, match="document 1") as info:
        pm.DocList[Item].from_json(data)
    assert not isinstance(info.value, pm.FormatError)
    assert info.value.index == 1
    assert info.value.field == "count"
    assert "many" in str(info.value)


def test_wrong_nested_type_names_the_path() -> None:
    data = b'[{"title": "ok", "parts": [{"text": "a"}, {"text": 5}]}]'
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Item].from_json(data)
    assert info.value.index == 0
    assert info.value.field == "parts.1.text"


def test_wrong_tensor_shape_names_field_expected_and_actual() -> None:
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Item].from_json(b'[{"title": "x", "embedding": [1, 2]}]')
    assert info.value.field == "embedding"
    assert "(3,)" in str(info.value)
    assert "(2,)" in str(info.value)


def test_wrong_tensor_dtype_names_field_expected_and_actual() -> None:
    data = orjson.dumps([{"title": "x", "pixels": {"dtype": "<f4", "shape": [1, 1, 3], "data": [0.5, 1, 2]}}])
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Item].from_json(data)
    assert info.value.field == "pixels"
    assert "uint8" in str(info.value)
    assert "float32" in str(info.value)


def test_unknown_field_is_named() -> None:
    with pytest.raises(pm.SchemaError, match="colour") as info:
        pm.DocList[Item].from_json(b'[{"title": "x", "colour": "red"}]')
    assert info.value.field == "colour"


def test_corrupt_base64_tensor_is_a_format_error_naming_the_field() -> None:
    data = orjson.dumps([{"title": "x", "raw": {"dtype": "<f4", "shape": [2], "b64": "!!not base64!!"}}])
    with pytest.raises(pm.FormatError) as info:
        pm.DocList[Item].from_json(data)
    assert info.value.field == "raw"


def test_base64_tensor_with_the_wrong_size_is_a_format_error() -> None:
    data = orjson.dumps([{"title": "x", "raw": {"dtype": "<f4", "shape": [3], "b64": "AAAAAA=="}}])
    with pytest.raises(pm.FormatError):
        pm.DocList[Item].from_json(data)


def test_ints_beyond_64_bits_in_the_wire_format_are_text() -> None:
    parsed = orjson.loads(pm.DocList[Item]([Item(title="x", count=2**64)]).to_json())
    assert parsed[0]["count"] == str(2**64)


# -- JSON Lines ----------------------------------------------------------------------------------
def test_jsonl_roundtrip_in_batches(tmp_path: Path) -> None:
    docs = _items()
    path = tmp_path / "items.jsonl"
    assert json_io.write_jsonl(path, docs) == 3
    assert path.read_bytes().count(b"\n") == 3
    batches = list(json_io.iter_jsonl(path, Item, batch_size=2))
    assert [len(b) for b in batches] == [2, 1]
    assert [d for b in batches for d in b] == list(docs)


def test_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'\n{"title": "a"}\n   \n{"title": "b"}\n\n')
    assert [d.title for b in json_io.iter_jsonl(path, Item) for d in b] == ["a", "b"]


def test_jsonl_invalid_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"title": "a"}\n{"title": \n')
    with pytest.raises(pm.FormatError, match=r"items\.jsonl:2: invalid JSON"):
        list(json_io.iter_jsonl(path, Item))


def test_jsonl_cut_mid_line_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl"
    json_io.write_jsonl(path, _items())
    data = path.read_bytes()
    for cut in range(1, len(data)):
        if b"\n" in data[cut - 1 : cut + 1]:
            continue  # a cut at a line end is a shorter, valid JSONL file: the format cannot tell
        path.write_bytes(data[:cut])
        with pytest.raises(pm.FormatError):
            list(json_io.iter_jsonl(path, Item))


def test_jsonl_wrong_type_names_the_index_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"title": "a"}\n{"title": "b"}\n{"title": "c"}\n{"title": 4.5}\n')
    with pytest.raises(pm.SchemaError, match="document 3") as info:
        list(json_io.iter_jsonl(path, Item, batch_size=2))
    assert info.value.index == 3
    assert info.value.field == "title"


def test_jsonl_a_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"title": "a"}\n[1, 2]\n')
    with pytest.raises(pm.FormatError, match="document 1"):
        list(json_io.iter_jsonl(path, Item))


def test_jsonl_writer_removes_a_partial_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"

    def produce():
        yield from _items()
        raise RuntimeError("the producer crashed")

    with pytest.raises(RuntimeError):
        json_io.write_jsonl(path, produce())
    assert not path.exists()


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_fixed_narrow_float_tensors_roundtrip_exactly(dtype: type) -> None:
    """orjson writes float32 in its shortest float32 form (float32(0.1) becomes 0.1), which a
    fixed-dtype field would refuse as not exactly representable: such tensors keep their dtype."""

    class Narrow(pm.Doc):
        values: pm.NdArray[dtype, 3]

    value = np.array([0.1, 3, -6.1e-5], dtype)  # 0.1 is not exactly a float16 or float32
    (back,) = pm.DocList[Narrow].from_json(pm.DocList[Narrow]([Narrow(values=value)]).to_json())
    assert back.values.dtype == dtype
    assert back.values.tobytes() == value.tobytes()
