"""JSON decode column by column: the same documents and the same errors as document by document.

``from_json`` validates a batch through ``DocVec.from_columns`` (one array per vector field) when
the schema and the batch allow it, and falls back to per-document validation on anything else.
These tests pin that both paths agree and that errors still name the document and field.
"""

import base64
import math
import warnings

import numpy as np
import orjson
import pytest
from pydantic import field_validator

import polymodal as pm
from polymodal.io import json as json_io


class Flat(pm.Doc):
    title: str
    year: int = 0
    rating: float | None = None
    flag: bool = False
    embedding: pm.Vector[3]
    extra: pm.Vector[2] | None = None


def _flat(n: int = 5) -> pm.DocList[Flat]:
    return pm.DocList[Flat](
        [
            Flat(
                id=f"d{i}",
                title=f"t{i} ☃",
                year=i,
                rating=i / 3 if i % 2 else None,
                flag=bool(i % 2),
                embedding=[i, -0.1, 3.0e38],
                extra=[1, 2] if i % 3 else None,
            )
            for i in range(n)
        ]
    )


def _rows(n: int = 5) -> list[dict]:
    return orjson.loads(_flat(n).to_json())


def _one_by_one(items: list[dict]) -> list[pm.Doc]:
    return [Flat.model_validate(dict(item)) for item in items]


def test_batch_is_decoded_column_wise_into_one_array() -> None:
    docs = _flat()
    back = pm.DocList[Flat].from_json(docs.to_json())
    assert back == docs
    assert back[0].embedding.dtype == np.float32
    assert back[0].embedding.base is back[4].embedding.base is not None  # views of one column
    assert json_io._validate_columns(_rows(), Flat) is not None


def test_column_wise_equals_one_by_one() -> None:
    items = _rows(7)
    items[2]["embedding"] = [1, 2, 3]  # ints
    items[3]["embedding"] = [True, 0.5, False]  # bools are numbers to numpy
    items[4]["rating"] = "NaN"  # how to_json writes a NaN float
    items[5]["year"] = str(2**70)  # how to_json writes an int beyond 64 bits
    fast = json_io._validate_columns([dict(i) for i in items], Flat)
    assert fast is not None
    assert list(fast) == _one_by_one(items)
    assert math.isnan(fast[4].rating)
    assert fast[5].year == 2**70


def test_docs_of_a_batch_are_independent_documents() -> None:
    back = pm.DocList[Flat].from_json(_flat().to_json())
    back[1].title = "changed"
    back[1].embedding = [0, 0, 0]
    assert back[0].title == "t0 ☃"
    assert back[0].embedding[0] == 0
    assert back[1].model_fields_set == set(Flat.model_fields)
    with pytest.raises(pm.SchemaError):
        back[2].year = "many"  # assignment is still validated


@pytest.mark.parametrize(
    ("index", "change", "field", "words"),
    [
        (3, {"embedding": [1, 2]}, "embedding", ["(3,)", "(2,)"]),
        (2, {"embedding": [1, 2, 3, 4]}, "embedding", ["(3,)", "(4,)"]),
        (4, {"embedding": [[1, 2, 3]]}, "embedding", ["(3,)", "(1, 3)"]),
        (1, {"embedding": ["1", "2", "3"]}, "embedding", ["numeric"]),
        (1, {"embedding": [1, None, 3]}, "embedding", []),
        (3, {"embedding": [1, 1e300, 3]}, "embedding", ["finite"]),  # finite float64, inf as float32
        (2, {"embedding": None}, "embedding", []),
        (2, {"year": "many"}, "year", ["many"]),
        (0, {"title": 5}, "title", []),
        (4, {"extra": [1, 2, 3]}, "extra", ["(2,)", "(3,)"]),
    ],
)
def test_bad_value_in_a_batch_names_the_document_and_field(
    index: int, change: dict, field: str, words: list[str]
) -> None:
    items = _rows()
    items[index].update(change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warning for 1e300
        with pytest.raises(pm.SchemaError, match=f"document {index}") as info:
            pm.DocList[Flat].from_json(orjson.dumps(items))
    assert not isinstance(info.value, pm.FormatError)
    assert info.value.index == index
    assert info.value.field == field
    for word in words:
        assert word in str(info.value)


def test_non_finite_vector_as_base64_is_refused_naming_the_document() -> None:
    items = _rows()
    raw = np.array([1, np.nan, 2], "<f4").tobytes()
    items[3]["embedding"] = {"dtype": "<f4", "shape": [3], "b64": base64.b64encode(raw).decode()}
    with pytest.raises(pm.SchemaError, match="document 3") as info:
        pm.DocList[Flat].from_json(orjson.dumps(items))
    assert info.value.field == "embedding"
    assert "finite" in str(info.value)


def test_corrupt_base64_vector_in_a_batch_is_a_format_error() -> None:
    items = _rows()
    items[1]["embedding"] = {"dtype": "<f4", "shape": [3], "b64": "!!not base64!!"}
    with pytest.raises(pm.FormatError) as info:
        pm.DocList[Flat].from_json(orjson.dumps(items))
    assert info.value.field == "embedding"


def test_unknown_field_in_a_batch_is_named() -> None:
    items = _rows()
    items[2]["colour"] = "red"
    with pytest.raises(pm.SchemaError, match="document 2") as info:
        pm.DocList[Flat].from_json(orjson.dumps(items))
    assert info.value.field == "colour"


def test_missing_fields_fall_back_to_defaults_or_errors() -> None:
    items = _rows()
    for item in items:
        del item["year"], item["extra"], item["id"]
    back = pm.DocList[Flat].from_json(orjson.dumps(items))
    assert [d.year for d in back] == [0] * 5
    assert len({d.id for d in back}) == 5
    del items[3]["title"]
    with pytest.raises(pm.SchemaError, match="document 3") as info:
        pm.DocList[Flat].from_json(orjson.dumps(items))
    assert info.value.field == "title"


def test_a_batch_that_is_not_all_objects_is_a_format_error() -> None:
    items: list = _rows()
    items[2] = [1, 2]
    with pytest.raises(pm.FormatError, match="document 2"):
        pm.DocList[Flat].from_json(orjson.dumps(items))


def test_validators_of_the_class_still_run() -> None:
    class Shouty(pm.Doc):
        title: str
        embedding: pm.Vector[2]

        @field_validator("title")
        @classmethod
        def upper(cls, v: str) -> str:
            return v.upper()

    data = orjson.dumps([{"title": "a", "embedding": [1, 2]}, {"title": "b", "embedding": [3, 4]}])
    assert [d.title for d in pm.DocList[Shouty].from_json(data)] == ["A", "B"]
    assert json_io._columnar_fields(Shouty) is None


def test_post_init_hook_still_runs() -> None:
    class Hooked(pm.Doc):
        title: str
        embedding: pm.Vector[2]

        def model_post_init(self, context: object) -> None:
            object.__setattr__(self, "title", self.title + "!")

    data = orjson.dumps([{"title": "a", "embedding": [1, 2]}, {"title": "b", "embedding": [3, 4]}])
    assert [d.title for d in pm.DocList[Hooked].from_json(data)] == ["a!", "b!"]


def test_fixed_dtype_tensors_in_a_batch_roundtrip() -> None:
    class Pic(pm.Doc):
        pixels: pm.NdArray[np.uint8, 2, 2]
        raw: pm.NdArray | None = None

    docs = pm.DocList[Pic](
        [Pic(pixels=np.full((2, 2), i, np.uint8), raw=np.arange(i, dtype=np.int16)) for i in range(4)]
    )
    back = pm.DocList[Pic].from_json(docs.to_json())
    assert back == docs
    bad = orjson.loads(docs.to_json())
    bad[2]["pixels"] = [[1, 2], [3, 256]]  # does not fit uint8
    with pytest.raises(pm.SchemaError, match="document 2") as info:
        pm.DocList[Pic].from_json(orjson.dumps(bad))
    assert info.value.field == "pixels"


def test_jsonl_batches_decode_column_wise_with_the_same_errors(tmp_path) -> None:
    path = tmp_path / "flat.jsonl"
    json_io.write_jsonl(path, _flat(6))
    assert [d for b in json_io.iter_jsonl(path, Flat, batch_size=4) for d in b] == list(_flat(6))
    lines = path.read_bytes().splitlines()
    row = orjson.loads(lines[5])
    row["embedding"] = [1, 2]
    lines[5] = orjson.dumps(row)
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(pm.SchemaError, match="document 5") as info:
        list(json_io.iter_jsonl(path, Flat, batch_size=4))
    assert info.value.index == 5


def test_gc_is_enabled_again_after_a_decode_and_after_an_error() -> None:
    import gc

    assert gc.isenabled()
    pm.DocList[Flat].from_json(_flat().to_json())
    assert gc.isenabled()
    with pytest.raises(pm.FormatError):
        pm.DocList[Flat].from_json(b"[")
    assert gc.isenabled()


def test_from_columns_casts_vectors_before_the_finiteness_check() -> None:
    arr = np.ones((4, 3))
    arr[2, 1] = 1e300  # finite as float64, infinity as float32
    with pytest.raises(pm.SchemaError, match="row 2"):
        pm.DocVec[Flat].from_columns({"title": list("abcd"), "embedding": arr})
    vec = pm.DocVec[Flat].from_columns({"title": list("abcd"), "embedding": np.ones((4, 3))})
    assert vec.embedding.dtype == np.float32
