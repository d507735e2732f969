"""``polymodal.io.write`` / ``iter_read``: batches, any iterable, empty input, and failures
that never leave a file silently holding fewer documents."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import polymodal as pm
from polymodal import io as pio

pytest.importorskip("pyarrow")

SUFFIXES = [".pmd", ".jsonl", ".parquet"]


class Chunk(pm.Doc):
    start: float
    embedding: pm.Vector[2]


class Page(pm.Doc):
    text: str
    number: int
    embedding: pm.Vector[4]
    chunks: pm.DocList[Chunk] | None = None


class Other(pm.Doc):
    text: str


def _pages(n: int) -> list[Page]:
    return [
        Page(
            id=f"p{i}",
            text=f"page {i} ✓",
            number=i,
            embedding=np.full(4, i),
            chunks=None if i % 3 == 0 else [Chunk(id=f"{i}.{j}", start=j, embedding=[i, j]) for j in range(i % 3)],
        )
        for i in range(n)
    ]


def _generate(n: int) -> Iterator[Page]:
    yield from _pages(n)


def _drain(batches: Iterator[pm.DocList[Any]], into: list[Any]) -> None:
    """Collect the documents of each batch until the reader raises."""
    for batch in batches:
        into.extend(batch)


def _read(path: Path, **options: Any) -> list[pm.DocList[Any]]:
    return list(pio.iter_read(path, Page, **options))


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_stream_larger_than_one_batch_roundtrips_in_order(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pages{suffix}"
    assert pio.write(path, _generate(10), Page, batch_size=3) == 10
    batches = _read(path, batch_size=4)
    assert all(isinstance(b, pm.DocList[Page]) for b in batches)
    assert len(batches) >= 3
    assert all(0 < len(b) <= 4 for b in batches)
    assert [d for b in batches for d in b] == _pages(10)


def test_binary_files_are_read_in_the_batches_they_were_written_in(tmp_path: Path) -> None:
    path = tmp_path / "pages.pmd"
    pio.write(path, _generate(10), Page, batch_size=3)
    assert [len(b) for b in _read(path)] == [3, 3, 3, 1]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_input_writes_a_readable_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    assert pio.write(path, iter(()), Page) == 0
    assert path.exists()
    assert [d for b in _read(path) for d in b] == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_dicts_are_validated_into_the_schema(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pages{suffix}"
    pio.write(path, [{"id": "d", "text": "t", "number": 1, "embedding": [1, 2, 3, 4]}], Page)
    ((doc,),) = _read(path)
    assert doc == Page(id="d", text="t", number=1, embedding=[1, 2, 3, 4])


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_docvec_can_be_streamed(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pages{suffix}"
    assert pio.write(path, pm.DocVec[Page](_pages(5)), Page, batch_size=2) == 5
    assert [d for b in _read(path) for d in b] == _pages(5)


@pytest.mark.parametrize("suffix", [".pmd", ".parquet"])
def test_compression_options_pass_through(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pages{suffix}"
    codec = "zlib" if suffix == ".pmd" else "gzip"
    pio.write(path, _generate(7), Page, batch_size=3, compression=codec)
    assert [d for b in _read(path) for d in b] == _pages(7)


@pytest.mark.parametrize(("suffix", "codec"), [(".pmd", "brotli"), (".parquet", "zlib"), (".jsonl", "zlib")])
def test_unknown_compression_is_a_config_error_and_writes_nothing(tmp_path: Path, suffix: str, codec: str) -> None:
    path = tmp_path / f"pages{suffix}"
    with pytest.raises(pm.ConfigError, match=codec):
        pio.write(path, _generate(3), Page, compression=codec)
    assert not path.exists()


def test_unknown_suffix_or_format_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(pm.ConfigError, match=r"\.csv"):
        pio.write(tmp_path / "pages.csv", _generate(1), Page)
    with pytest.raises(pm.ConfigError, match="csv"):
        pio.write(tmp_path / "pages.x", _generate(1), Page, format="csv")
    with pytest.raises(pm.ConfigError, match=r"\.csv"):
        list(pio.iter_read(tmp_path / "pages.csv", Page))
    with pytest.raises(pm.ConfigError, match="batch_size"):
        pio.write(tmp_path / "pages.pmd", _generate(1), Page, batch_size=0)


def test_format_option_overrides_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "pages.data"
    pio.write(path, _generate(3), Page, format="jsonl")
    assert path.read_bytes().count(b"\n") == 3
    assert [d for b in pio.iter_read(path, Page, format="jsonl") for d in b] == _pages(3)


def test_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "PAGES.PMD"
    pio.write(path, _generate(2), Page)
    assert [d for b in _read(path) for d in b] == _pages(2)


def _with_stray(n: int) -> Iterator[Any]:
    yield from _pages(n)
    yield Other(text="stray")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_stray_document_fails_the_write_and_leaves_no_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"pages{suffix}"
    with pytest.raises(pm.SchemaError, match="Other") as info:
        pio.write(path, _with_stray(5), Page, batch_size=2)
    assert info.value.actual == "Other"
    assert not path.exists()


def test_a_stray_document_leaves_a_binary_file_that_reads_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "pages.pmd"
    with pytest.raises(pm.SchemaError, match="Other"):
        pio.write(path, _with_stray(5), Page, batch_size=2)
    got: list[Page] = []
    with pytest.raises(pm.FormatError, match="truncated"):
        _drain(pio.iter_read(path, Page), got)
    assert got == _pages(4)  # the two sealed frames before the failure are still readable


def test_a_subclass_instance_is_refused_rather_than_cut_down(tmp_path: Path) -> None:
    class Annotated(Page):
        note: str = ""

    with pytest.raises(pm.SchemaError):
        pio.write(tmp_path / "pages.pmd", [Annotated(text="t", number=1, embedding=np.zeros(4), note="lost?")], Page)


def test_a_binary_file_cut_anywhere_yields_a_prefix_then_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "pages.pmd"
    pio.write(path, _generate(6), Page, batch_size=2)
    data = path.read_bytes()
    cut_path = tmp_path / "cut.pmd"
    for cut in range(len(data)):
        cut_path.write_bytes(data[:cut])
        got: list[Page] = []
        with pytest.raises(pm.FormatError):
            _drain(pio.iter_read(cut_path, Page), got)
        assert got == _pages(len(got))
        assert len(got) in (0, 2, 4, 6)  # whole frames only (6: the end marker is cut)


def test_reading_into_another_schema_fails_before_any_batch(tmp_path: Path) -> None:
    path = tmp_path / "pages.pmd"
    pio.write(path, _generate(6), Page, batch_size=2)
    reader = pio.iter_read(path, Other)
    with pytest.raises(pm.SchemaError, match="number"):
        next(reader)


def test_jsonl_and_parquet_read_batches_are_bounded(tmp_path: Path) -> None:
    for suffix in (".jsonl", ".parquet"):
        path = tmp_path / f"pages{suffix}"
        pio.write(path, _generate(9), Page, batch_size=9)
        assert [len(b) for b in _read(path, batch_size=4)] == [4, 4, 1]
