"""The binary format: exact round trips, and clear errors (never wrong data) for bad input."""

import contextlib
import io
import struct
import sys
import zlib
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import polymodal as pm
import polymodal.io as pmio
from polymodal.io import binary


class Segment(pm.Doc):
    start: float
    embedding: pm.Vector[3] | None = None


class Clip(pm.Doc):
    title: str
    embedding: pm.Vector[4]
    pixels: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    meta: dict[str, int] = pydantic.Field(default_factory=dict)
    segments: pm.DocList[Segment] | None = None
    cover: Segment | None = None


class ClipWithoutMeta(pm.Doc):
    title: str
    embedding: pm.Vector[4]
    pixels: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    segments: pm.DocList[Segment] | None = None
    cover: Segment | None = None


class ClipWithRating(Clip):
    rating: int


def _clips(n: int = 3) -> pm.DocList[Clip]:
    """``n`` clips (the same ones on every call): vectors, images of two sizes or None, big ints,
    unicode, nested segments (some empty, some None) and an optional sub-document."""
    return pm.DocList[Clip](
        Clip(
            id=f"clip-{i}",
            title=f"clip {i} ✓",
            embedding=np.arange(4) + i,
            pixels=np.full((2, 2, 3), i, np.uint8) if i % 2 else None,
            meta={"big": 2**70 + i, "neg": -(2**64)},
            segments=None if i == 1 else [Segment(id=f"{i}.{s}", start=s / 2, embedding=[s, i, 1]) for s in range(i)],
            cover=Segment(id=f"cover-{i}", start=-i) if i != 1 else None,
        )
        for i in range(n)
    )


CODECS = [None, "zlib", "zstd", "lz4"]


def _require(codec: str | None) -> None:
    module = {"zstd": "zstandard", "lz4": "lz4"}.get(codec or "")
    if module:
        pytest.importorskip(module)


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_with_each_codec(codec: str | None) -> None:
    _require(codec)
    docs = _clips()
    data = docs.to_bytes(compression=codec)
    assert pm.DocList[Clip].from_bytes(data) == docs
    assert pm.DocList[Clip].from_bytes(bytearray(data)) == docs
    assert pm.DocList[Clip].from_bytes(memoryview(data)) == docs


@pytest.mark.parametrize("codec", ["zlib", "zstd", "lz4"])
def test_compression_shrinks_redundant_data(codec: str) -> None:
    _require(codec)

    class Big(pm.Doc):
        tensor: pm.NdArray[np.float32, 256]

    docs = pm.DocList[Big]([Big(tensor=np.zeros(256, np.float32)) for _ in range(64)])
    plain, packed = docs.to_bytes(), docs.to_bytes(compression=codec)
    assert len(packed) < len(plain) // 4
    assert pm.DocList[Big].from_bytes(packed) == docs


def test_reading_zstd_without_the_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("zstandard")
    data = _clips().to_bytes(compression="zstd")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(pm.OptionalDependencyError, match=r"polymodal\[compress\]"):
        pm.DocList[Clip].from_bytes(data)


def test_compression_name_is_case_insensitive() -> None:
    docs = _clips()
    assert pm.DocList[Clip].from_bytes(docs.to_bytes(compression="ZLIB")) == docs


@pytest.mark.parametrize("name", ["brotli", "gzip", ""])
def test_unknown_compression_is_a_config_error(name: str, tmp_path: Any) -> None:
    if name == "":  # empty means "no compression", like None
        assert pm.DocList[Clip].from_bytes(_clips().to_bytes(compression=name)) == _clips()
        return
    with pytest.raises(pm.ConfigError, match=name):
        _clips().to_bytes(compression=name)
    with pytest.raises(pm.ConfigError, match=name):
        binary.BinaryWriter(io.BytesIO(), Clip, compression=name)
    with pytest.raises(pm.ConfigError, match=name):
        pmio.write(tmp_path / "x.pmd", _clips(), Clip, compression=name)


def test_empty_doclist_roundtrips_and_keeps_its_schema() -> None:
    data = pm.DocList[Clip]().to_bytes()
    assert pm.DocList[Clip].from_bytes(data) == pm.DocList[Clip]()
    header = binary.read_header(data)
    assert [f["name"] for f in header["schema"]["fields"]] == list(Clip.model_fields)
    assert header["fingerprint"] == pm.doc.schema_of(Clip).fingerprint


def test_ints_beyond_64_bits_in_containers_roundtrip() -> None:
    docs = pm.DocList[Clip]([Clip(title="x", embedding=np.ones(4), meta={"a": 2**200, "b": -(2**64) - 1})])
    assert pm.DocList[Clip].from_bytes(docs.to_bytes())[0].meta == {"a": 2**200, "b": -(2**64) - 1}


def test_big_endian_arrays_are_written_little_endian() -> None:
    class T(pm.Doc):
        x: pm.NdArray[np.float32, 3]

    docs = pm.DocList[T]([T(x=np.array([1, 2, 3], ">f4"))])
    out = pm.DocList[T].from_bytes(docs.to_bytes())
    assert out[0].x.dtype == np.dtype("<f4")
    assert out[0].x.tolist() == [1.0, 2.0, 3.0]


# -- DocVec, column-wise ---------------------------------------------------------------------------
def test_docvec_is_written_from_its_columns() -> None:
    docs = _clips(5)
    vec = pm.DocVec[Clip](docs)
    data = binary.dumps(vec, Clip)
    assert data == docs.to_bytes()  # the same frame, whichever way the documents are held
    # the stacked column travels as its raw little-endian buffer: a memory copy, no per-float work
    assert np.ascontiguousarray(vec.embedding, "<f4").tobytes() in data
    (back,) = binary.iter_vecs(data, Clip)
    assert isinstance(back.embedding, np.ndarray)
    assert back.embedding.shape == (5, 4)
    assert back.to_list() == docs


def test_vectors_read_from_a_writable_buffer_are_views_into_it() -> None:
    buf = bytearray(binary.dumps(pm.DocVec[Clip](_clips(4)), Clip))
    (vec,) = binary.iter_vecs(buf, Clip)
    assert np.shares_memory(vec.embedding, np.frombuffer(buf, np.uint8))
    (copied,) = binary.iter_vecs(bytes(buf), Clip)  # read-only input: arrays are copies, writable
    assert copied.embedding.flags.writeable


def test_writer_streams_docvecs_and_doclists() -> None:
    out = io.BytesIO()
    with binary.BinaryWriter(out, Clip, compression="zlib") as writer:
        writer.write(pm.DocVec[Clip](_clips(2)))
        writer.write(_clips(3))
        writer.write([])  # nothing to write: no frame
    batches = list(binary.iter_batches(out.getvalue(), Clip))
    assert [len(b) for b in batches] == [2, 3]
    assert [d for b in batches for d in b] == list(_clips(2)) + list(_clips(3))


def test_writing_documents_of_another_schema_is_a_schema_error() -> None:
    other = pm.DocList[ClipWithoutMeta]([ClipWithoutMeta(title="x", embedding=np.ones(4))])
    with pytest.raises(pm.SchemaError, match="Clip"):
        binary.dumps(other, Clip)
    with pytest.raises(pm.SchemaError, match="Clip"):
        binary.dumps(pm.DocVec[ClipWithoutMeta](other), Clip)


# -- schema mismatches -----------------------------------------------------------------------------
def test_decoding_into_a_schema_missing_a_field_names_it() -> None:
    with pytest.raises(pm.SchemaError, match="'meta'") as info:
        pm.DocList[ClipWithoutMeta].from_bytes(_clips().to_bytes())
    assert info.value.field == "meta"
    assert not isinstance(info.value, pm.FormatError)  # the data is fine; the schema differs


def test_decoding_into_a_schema_with_a_new_required_field_names_it() -> None:
    for n in (3, 0):
        with pytest.raises(pm.SchemaError, match="rating") as info:
            pm.DocList[ClipWithRating].from_bytes(_clips(n).to_bytes())
        assert info.value.field == "rating"


def test_decoding_into_a_schema_with_a_new_optional_field_fills_the_default() -> None:
    data = pm.DocList[ClipWithoutMeta]([ClipWithoutMeta(title="x", embedding=np.ones(4))]).to_bytes()
    (doc,) = pm.DocList[Clip].from_bytes(data)
    assert doc.title == "x"
    assert doc.meta == {}


def test_wrong_tensor_shape_in_the_data_names_field_expected_and_actual() -> None:
    class Wide(pm.Doc):
        title: str
        embedding: pm.Vector[5]

    data = pm.DocList[Wide]([Wide(title="x", embedding=np.ones(5))]).to_bytes()

    class Narrow(pm.Doc):
        title: str
        embedding: pm.Vector[4]

    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Narrow].from_bytes(data)
    message = str(info.value)
    assert info.value.field == "embedding"
    assert "(4,)" in message
    assert "(5,)" in message


def test_wrong_tensor_dtype_in_the_data_names_field_expected_and_actual() -> None:
    class Floats(pm.Doc):
        pixels: pm.NdArray[np.float32, 2]

    class Bytes(pm.Doc):
        pixels: pm.NdArray[np.uint8, 2]

    data = pm.DocList[Floats]([Floats(pixels=[0.5, 1])]).to_bytes()
    with pytest.raises(pm.SchemaError) as info:
        pm.DocList[Bytes].from_bytes(data)
    assert info.value.field == "pixels"
    assert "uint8" in str(info.value)
    assert "float32" in str(info.value)


# -- corrupt, truncated and foreign data -----------------------------------------------------------
def _drain(batches: Any, into: list[Any]) -> None:
    """Collect the documents of each batch until the reader raises."""
    for batch in batches:
        into.extend(batch)


def _all_cuts_fail(data: bytes, docs: pm.DocList[Any], doc_type: type[pm.Doc]) -> None:
    for cut in range(len(data)):
        part = data[:cut]
        with pytest.raises(pm.FormatError):
            pm.DocList[doc_type].from_bytes(part)
        # streaming yields the intact batches, then raises: a prefix, never silently fewer docs
        got: list[Any] = []
        with pytest.raises(pm.FormatError):
            _drain(binary.iter_batches(io.BytesIO(part), doc_type), got)
        assert got == list(docs[: len(got)])


@pytest.mark.parametrize("codec", [None, "zlib"])
def test_truncation_at_every_cut_point_is_a_format_error(codec: str | None) -> None:
    docs = _clips(2)
    data = docs.to_bytes(compression=codec)
    _all_cuts_fail(data, docs, Clip)


def test_truncation_of_a_multi_frame_stream_yields_a_prefix_then_fails() -> None:
    out = io.BytesIO()
    with binary.BinaryWriter(out, Clip) as writer:
        for doc in _clips(3):
            writer.write([doc])
    _all_cuts_fail(out.getvalue(), _clips(3), Clip)


def test_truncation_message_says_what_is_missing() -> None:
    data = _clips().to_bytes()
    with pytest.raises(pm.FormatError, match="truncated"):
        pm.DocList[Clip].from_bytes(data[:-1])


@pytest.mark.parametrize("codec", [None, "zlib"])
def test_every_single_byte_flip_is_detected(codec: str | None) -> None:
    """Every byte of the format is covered by a checksum (or is the magic or the version), so
    any flipped byte is a FormatError, never wrong documents."""
    data = _clips(2).to_bytes(compression=codec)
    for pos in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[pos] ^= mask
            with pytest.raises(pm.FormatError):
                pm.DocList[Clip].from_bytes(bytes(bad))


def test_flipped_size_fields_in_a_stream_do_not_allocate_the_announced_size() -> None:
    data = _clips(2).to_bytes()
    frame_at = data.index(b"PMFR")
    bad = bytearray(data)
    bad[frame_at + 12 + 7] = 0x7F  # stored_len: ~2**62 bytes
    with pytest.raises(pm.FormatError, match="truncated"):
        list(binary.iter_batches(io.BytesIO(bytes(bad)), Clip))
    with pytest.raises(pm.FormatError, match="truncated"):
        list(binary.iter_batches(_Unseekable(bytes(bad)), Clip))


class _Unseekable(io.RawIOBase):
    """A pipe-like stream: read only."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        return self._data.readinto(buf)

    def seekable(self) -> bool:
        return False


def test_reading_from_an_unseekable_stream() -> None:
    docs = _clips()
    assert [d for b in binary.iter_batches(_Unseekable(docs.to_bytes()), Clip) for d in b] == list(docs)


@pytest.mark.parametrize("data", [b"", b"PMDL", b"hello world, this is not polymodal", b"PAR1" + bytes(40)])
def test_foreign_data_is_a_format_error(data: bytes) -> None:
    with pytest.raises(pm.FormatError):
        pm.DocList[Clip].from_bytes(data)


def test_bad_magic_says_so() -> None:
    data = bytearray(_clips().to_bytes())
    data[0:4] = b"XXXX"
    with pytest.raises(pm.FormatError, match="magic"):
        pm.DocList[Clip].from_bytes(bytes(data))


def _with_version(data: bytes, version: int) -> bytes:
    return data[:8] + struct.pack("<H", version) + data[10:]


def test_a_newer_format_version_asks_to_upgrade() -> None:
    data = _with_version(_clips().to_bytes(), binary.FORMAT_VERSION + 1)
    with pytest.raises(pm.FormatError, match="upgrade polymodal") as info:
        pm.DocList[Clip].from_bytes(data)
    assert info.value.version == binary.FORMAT_VERSION + 1
    assert str(binary.FORMAT_VERSION + 1) in str(info.value)


def test_version_zero_is_corrupt() -> None:
    with pytest.raises(pm.FormatError, match="version 0"):
        pm.DocList[Clip].from_bytes(_with_version(_clips().to_bytes(), 0))


def test_bytes_after_the_end_marker_are_an_error() -> None:
    data = _clips().to_bytes()
    with pytest.raises(pm.FormatError, match="after the end marker"):
        pm.DocList[Clip].from_bytes(data + data)  # two files glued together: do not drop the second
    with pytest.raises(pm.FormatError, match="after the end marker"):
        pm.DocList[Clip].from_bytes(data + b"\x00")


def test_an_unsealed_file_is_reported_as_truncated(tmp_path: Any) -> None:
    path = tmp_path / "crash.pmd"

    def crash() -> None:
        with binary.BinaryWriter(path, Clip) as writer:
            writer.write(_clips(2))
            raise RuntimeError("the producer crashed")

    with pytest.raises(RuntimeError):
        crash()
    got: list[Any] = []
    with pytest.raises(pm.FormatError, match="truncated"):
        _drain(binary.iter_batches(path, Clip), got)
    assert got == list(_clips(2))  # the intact batch is still readable


def _edit_meta(data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """Replace the column description of a one-frame, uncompressed file and recompute sizes and
    checksum, to reach the decoder with data no checksum catches (a bug, or a crafted file)."""
    (length,) = struct.unpack_from("<I", data, 12)
    at = 16 + length + 4
    magic, kind, codec, _r, meta_len, stored_len, _raw = struct.unpack_from("<4sBBHIQQ", data, at)
    assert (kind, codec) == (1, 0)
    body = data[at + 32 : at + 32 + stored_len]
    buffers = body[meta_len + (-meta_len % 64) :]
    meta = edit(body[:meta_len])
    new_body = meta + b"\x00" * (-len(meta) % 64) + buffers
    fields = struct.pack("<4sBBHIQQ", magic, 1, 0, 0, len(meta), len(new_body), len(new_body))
    crc = zlib.crc32(new_body, zlib.crc32(fields))
    return data[:at] + fields + struct.pack("<I", crc) + new_body + data[at + 32 + stored_len :]


def _edit_columns(data: bytes, edit: Callable[[dict[str, Any]], None]) -> bytes:
    def on_meta(raw: bytes) -> bytes:
        meta = msgpack.unpackb(raw, strict_map_key=False, ext_hook=binary._unpack_ext)
        edit(meta)
        return msgpack.packb(meta, default=binary._pack_big_int)

    return _edit_meta(data, on_meta)


def test_edit_helper_keeps_valid_data_valid() -> None:
    docs = _clips(3)
    assert pm.DocList[Clip].from_bytes(_edit_columns(docs.to_bytes(), lambda meta: None)) == docs


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
def test_checksum_valid_garbage_is_a_clear_error_never_a_crash(edits: list[tuple[int, int]]) -> None:
    def scramble(meta: bytes) -> bytes:
        out = bytearray(meta)
        for pos, value in edits:
            out[pos % len(out)] = value
        return bytes(out)

    bad = _edit_meta(_clips(3).to_bytes(), scramble)
    with contextlib.suppress(pm.SchemaError):  # a FormatError, or values that no longer fit the schema
        pm.DocList[Clip].from_bytes(bad)


def _drop_last(key: str, field: str) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        meta["c"][field][key] = meta["c"][field][key][:-1]

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_drop_last("v", "title"), "'title' has 2 rows, expected 3"),  # 2 titles for 3 documents
        (_drop_last("p", "cover"), "cover"),  # presence flags for 2 of 3 documents
        (lambda meta: meta["c"]["embedding"].update(s=[3, -1]), "negative dimension"),
        (lambda meta: meta["c"]["embedding"].update(b=[0, 10**9]), "out of range"),
        (lambda meta: meta["c"]["embedding"].update(d="|O"), "not allowed"),
        (lambda meta: meta["c"]["embedding"].update(k="?"), "unknown column encoding"),
        (lambda meta: meta["c"]["title"].pop("v"), "'title'"),
        (lambda meta: meta.update(n=-1), "corrupt batch"),
    ],
)
def test_checksum_valid_but_inconsistent_columns_are_format_errors(
    edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    with pytest.raises(pm.FormatError, match=match):
        pm.DocList[Clip].from_bytes(_edit_columns(_clips(3).to_bytes(), edit))
