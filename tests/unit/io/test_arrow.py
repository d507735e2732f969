"""Arrow, Parquet and pandas: column types, exact round trips, and clear errors."""

import math
from pathlib import Path

import numpy as np
import pydantic
import pytest

import polymodal as pm
from polymodal import io as pio
from polymodal.io import arrow

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")


class Segment(pm.Doc):
    start: float
    embedding: pm.Vector[2]


class Video(pm.Doc):
    title: str
    views: int = 0
    embedding: pm.Vector[3] | None = None
    frames: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    raw: pm.NdArray | None = None
    url: pm.VideoUrl | None = None
    thumb: pm.ImageBytes | None = None
    tags: list[str] = pydantic.Field(default_factory=list)
    segments: pm.DocList[Segment] | None = None
    cover: Segment | None = None


def _videos() -> pm.DocList[Video]:
    return pm.DocList[Video](
        [
            Video(
                id="v0",
                title="naïve ☃",
                views=2**63 - 1,
                embedding=[1, 2, 3],
                frames=np.ones((2, 2, 3), np.uint8),
                raw=np.array([[np.nan, 1]], np.float16),
                url="clips/a b.mp4",
                thumb=b"\x00\xff",
                tags=["a"],
                segments=[Segment(id="s0", start=0.5, embedding=[1, 2])],
                cover=Segment(id="c0", start=1, embedding=[0, 0]),
            ),
            Video(id="v1", title="", views=-(2**63), segments=[], tags=[]),
            Video(
                id="v2",
                title="none",
                raw=np.zeros((0, 3), np.int64),
                frames=np.zeros((2, 2, 3), np.uint8),
                segments=None,
                embedding=[0, -1, math.pi],
            ),
        ]
    )


# -- layout ------------------------------------------------------------------------------------------
def test_column_types_are_what_analytics_tools_expect() -> None:
    table = _videos().to_arrow()
    types = {f.name: f.type for f in table.schema}
    assert types["embedding"] == pa.list_(pa.float32(), 3)
    assert types["views"] == pa.int64()
    assert types["url"] == pa.string()
    assert types["thumb"] == pa.binary()
    assert pa.types.is_struct(types["raw"])
    assert {types["raw"].field(i).name for i in range(types["raw"].num_fields)} == {"dtype", "shape", "data"}
    assert pa.types.is_list(types["segments"])
    assert types["segments"].value_type.field("embedding").type == pa.list_(pa.float32(), 2)
    assert pa.types.is_struct(types["cover"])
    assert table.num_rows == 3
    assert b"polymodal.schema" in table.schema.metadata
    assert table.column("embedding").null_count == 1


# -- round trips -------------------------------------------------------------------------------------
def test_arrow_roundtrip_is_exact() -> None:
    docs = _videos()
    assert pm.DocList[Video].from_arrow(docs.to_arrow()) == docs


def test_parquet_roundtrip_is_exact(tmp_path: Path) -> None:
    docs = _videos()
    docs.to_parquet(tmp_path / "v.parquet")
    assert pm.DocList[Video].from_parquet(tmp_path / "v.parquet") == docs


def test_pandas_roundtrip_is_exact() -> None:
    docs = _videos()
    assert pm.DocList[Video].from_pandas(docs.to_pandas()) == docs


def test_empty_doclist_roundtrips(tmp_path: Path) -> None:
    empty = pm.DocList[Video]()
    assert pm.DocList[Video].from_arrow(empty.to_arrow()) == empty
    empty.to_parquet(tmp_path / "e.parquet")
    assert pm.DocList[Video].from_parquet(tmp_path / "e.parquet") == empty
    assert pm.DocList[Video].from_pandas(empty.to_pandas()) == empty
    assert list(empty.to_pandas().columns) == list(Video.model_fields)


def test_nested_documents_that_are_all_absent_roundtrip() -> None:
    """A batch whose nested lists are all empty or None (a child column of zero rows, with a
    vector field) and whose optional sub-documents are all None."""
    docs = pm.DocList[Video]([Video(id="a", title="a", segments=[]), Video(id="b", title="b")])
    assert pm.DocList[Video].from_arrow(docs.to_arrow()) == docs


def test_tensors_of_one_shape_are_read_as_one_stacked_column() -> None:
    docs = pm.DocList[Video]([Video(title=str(i), frames=np.full((1, 2, 3), i, np.uint8)) for i in range(4)])
    table = docs.to_arrow()
    column = arrow._read_column(pm.doc.schema_of(Video)["frames"], table.column("frames").combine_chunks(), 4, Video)
    assert isinstance(column, np.ndarray)
    assert column.shape == (4, 1, 2, 3)


def test_docvec_to_arrow_uses_its_columns() -> None:
    docs = _videos()
    assert pm.DocList[Video].from_arrow(arrow.to_table(pm.DocVec[Video](docs), Video)) == docs


# -- schema mismatches and foreign tables --------------------------------------------------------------
def test_a_column_the_schema_lacks_is_named() -> None:
    table = _videos().to_arrow().append_column("colour", pa.array(["r", "g", "b"]))
    with pytest.raises(pm.SchemaError, match="colour") as info:
        pm.DocList[Video].from_arrow(table)
    assert info.value.field == "colour"


def test_a_missing_required_column_is_named() -> None:
    table = _videos().to_arrow().drop_columns(["title"])
    with pytest.raises(pm.SchemaError, match="title") as info:
        pm.DocList[Video].from_arrow(table)
    assert info.value.field == "title"


def test_a_missing_optional_column_gets_its_default() -> None:
    table = _videos().to_arrow().drop_columns(["tags", "raw"])
    out = pm.DocList[Video].from_arrow(table)
    assert [d.tags for d in out] == [[], [], []]
    assert [d.raw for d in out] == [None, None, None]


def test_wrong_vector_size_names_field_expected_and_actual() -> None:
    table = pa.table({"title": ["x"], "embedding": pa.array([[1.0, 2.0]], pa.list_(pa.float32(), 2))})
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Video].from_arrow(table)
    assert info.value.field == "embedding"
    assert "(3,)" in str(info.value)
    assert "(2,)" in str(info.value)


def test_wrong_tensor_dtype_names_field_expected_and_actual() -> None:
    frames = [{"dtype": "<f4", "shape": [1, 1, 3], "data": np.zeros(3, np.float32).tobytes()}]
    table = pa.table({"title": ["x"], "frames": pa.array(frames, arrow._tensor_struct(pa))})
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Video].from_arrow(table)
    assert info.value.field == "frames"
    assert "uint8" in str(info.value)
    assert "float32" in str(info.value)


@pytest.mark.parametrize(
    "frames",
    [
        {"dtype": "not a dtype", "shape": [1], "data": b"\x00"},
        {"dtype": "|u1", "shape": [2, 2, 3], "data": b"\x00"},  # too few bytes for the shape
        {"dtype": "|O", "shape": [1], "data": b"\x00" * 8},
    ],
)
def test_corrupt_tensor_cells_are_format_errors(frames: dict[str, object]) -> None:
    table = pa.table({"title": ["x"], "frames": pa.array([frames], arrow._tensor_struct(pa))})
    with pytest.raises(pm.FormatError, match="frames"):
        pm.DocList[Video].from_arrow(table)


def test_a_table_of_the_wrong_layout_is_a_clear_error() -> None:
    table = pa.table({"title": ["x"], "segments": pa.array([5])})  # ints where documents belong
    with pytest.raises(pm.SchemaError, match="segments"):
        pm.DocList[Video].from_arrow(table)


# -- Parquet files: corrupt, truncated, streamed ------------------------------------------------------
def test_not_a_parquet_file_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 but not really")
    with pytest.raises(pm.FormatError, match="Parquet"):
        pm.DocList[Video].from_parquet(path)


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pm.DocList[Video].from_parquet(tmp_path / "nope.parquet")


def test_truncation_at_every_cut_point_is_a_format_error(tmp_path: Path) -> None:
    docs = _videos()[:2]
    docs.to_parquet(tmp_path / "v.parquet")
    data = (tmp_path / "v.parquet").read_bytes()
    cut_path = tmp_path / "cut.parquet"
    for cut in range(0, len(data), 3):
        cut_path.write_bytes(data[:cut])
        with pytest.raises(pm.FormatError):
            pm.DocList[Video].from_parquet(cut_path)


def test_flipped_bytes_never_give_wrong_documents(tmp_path: Path) -> None:
    """Pages carry checksums and the row count is checked, so a flipped byte is an error or
    (in metadata that reading does not use) harmless; never other documents, never a crash."""
    docs = _videos()[:2]
    docs.to_parquet(tmp_path / "v.parquet")
    data = (tmp_path / "v.parquet").read_bytes()
    bad_path = tmp_path / "bad.parquet"
    for pos in range(0, len(data), 5):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        bad_path.write_bytes(bytes(bad))
        try:
            out = pm.DocList[Video].from_parquet(bad_path)
        except pm.SchemaError:  # FormatError, or a corrupt column name or type
            continue
        assert out == docs, f"byte {pos} flipped gave other documents"


def test_streaming_write_casts_later_batches_to_the_first_schema(tmp_path: Path) -> None:
    docs = pm.DocList[Video]([Video(id=str(i), title="t", views=2**70 if i == 0 else i) for i in range(5)])
    path = tmp_path / "s.parquet"
    assert pio.write(path, docs, Video, batch_size=2) == 5
    assert pq.ParquetFile(path).schema_arrow.field("views").type == pa.string()  # set by the first batch
    assert [d for b in pio.iter_read(path, Video) for d in b] == list(docs)


def test_streaming_write_of_a_big_int_after_int64_batches_names_the_field(tmp_path: Path) -> None:
    docs = pm.DocList[Video]([Video(id=str(i), title="t", views=2**70 if i == 4 else i) for i in range(5)])
    path = tmp_path / "s.parquet"
    with pytest.raises(pm.SchemaError, match="views") as info:
        pio.write(path, docs, Video, batch_size=2)
    assert info.value.field == "views"
    assert not path.exists()  # no file that silently holds fewer documents


# -- pandas -----------------------------------------------------------------------------------------------
def test_to_pandas_keeps_values_as_they_are() -> None:
    frame = _videos().to_pandas()
    assert list(frame.columns) == list(Video.model_fields)
    assert len(frame) == 3
    assert isinstance(frame["frames"][0], np.ndarray)
    assert frame["embedding"][1] is None  # not NaN
    assert frame["segments"][0] == [{"id": "s0", "start": 0.5, "embedding": frame["segments"][0][0]["embedding"]}]
    assert frame["segments"][2] is None
    assert frame["views"][0] == 2**63 - 1


def test_from_pandas_with_a_wrong_value_names_the_field() -> None:
    frame = _videos().to_pandas()
    frame["views"] = frame["views"].astype(object)
    frame.loc[1, "views"] = "many"
    with pytest.raises(pm.SchemaError, match="views"):
        pm.DocList[Video].from_pandas(frame)
