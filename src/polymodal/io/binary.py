"""polymodal's binary format: versioned, checksummed, optionally compressed, streamable.

Layout (all integers little-endian)::

    file    = header frame* end
    header  = MAGIC(8) version(u16) flags(u16) length(u32) msgpack{schema, fingerprint, writer} crc32(u32)
    frame   = "PMFR" kind(u8)=1 codec(u8) 0(u16) meta_len(u32) stored_len(u64) raw_len(u64) crc32(u32)
              body: codec(meta msgpack + padding + 64-byte aligned tensor buffers)
    end     = "PMFR" kind(u8)=0 0 0 0 total_docs(u64) 0 crc32-of-header(u32)

Each frame is one batch of documents in the columnar layout of :mod:`polymodal.io.columns`, so
a file far larger than memory is written and read a batch at a time (:class:`BinaryWriter`,
:func:`iter_batches`). A missing end marker means a truncated file; the checksum catches
corruption; a newer version number gives a clear "upgrade polymodal" error.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import msgpack

from polymodal.doc.base import Doc
from polymodal.doc.docvec import DocVec, stack_rows
from polymodal.doc.doclist import DocList
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError, FormatError, OptionalDependencyError
from polymodal.io.columns import ALIGN, Buffers, decode_vec, encode_vec

__all__ = ["FORMAT_VERSION", "MAGIC", "BinaryWriter", "dumps", "iter_batches", "loads", "read", "write"]

MAGIC = b"PMDL\r\n\x1a\n"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sHHI")
_FRAME = struct.Struct("<4sBBHIQQI")
_FRAME_MAGIC = b"PMFR"
CODECS = {None: 0, "none": 0, "zlib": 1, "zstd": 2, "lz4": 3}
_CODEC_NAMES = {0: "none", 1: "zlib", 2: "zstd", 3: "lz4"}


def _codec_id(compression: str | None) -> int:
    try:
        return CODECS[compression.lower() if compression else None]
    except KeyError:
        raise ConfigError(f"unknown compression {compression!r}; use one of none, zlib, zstd, lz4") from None


def _compress(codec: int, data: bytes) -> bytes:
    if codec == 1:
        return zlib.compress(data, 1)
    if codec == 2:
        return _zstd().ZstdCompressor(level=3).compress(data)  # type: ignore[no-any-return]
    if codec == 3:
        return _lz4().compress(data)  # type: ignore[no-any-return]
    return data


def _decompress(codec: int, data: memoryview, raw_len: int) -> memoryview:
    try:
        if codec == 0:
            return data
        if codec == 1:
            out = zlib.decompress(data)
        elif codec == 2:
            out = _zstd().ZstdDecompressor().decompress(data, max_output_size=raw_len)
        elif codec == 3:
            out = _lz4().decompress(data)
        else:
            raise FormatError(f"unknown compression codec id {codec}")
    except (zlib.error, RuntimeError, ValueError) as exc:
        raise FormatError(f"cannot decompress frame: {exc}") from None
    return memoryview(bytearray(out))  # writable, so decoded arrays can be views


def _zstd() -> Any:
    try:
        import zstandard
    except ImportError:
        raise OptionalDependencyError.for_package("zstandard", "compress", "zstd compression") from None
    return zstandard


def _lz4() -> Any:
    try:
        import lz4.frame
    except ImportError:
        raise OptionalDependencyError.for_package("lz4", "compress", "lz4 compression") from None
    return lz4.frame


def _header_bytes(doc_type: type[Doc]) -> bytes:
    from polymodal import __version__

    schema = schema_of(doc_type)
    body = msgpack.packb(
        {"schema": schema.to_dict(), "fingerprint": schema.fingerprint, "writer": f"polymodal {__version__}"}
    )
    return _HEAD.pack(MAGIC, FORMAT_VERSION, 0, len(body)) + body + struct.pack("<I", zlib.crc32(body))


def _frame_parts(vec: DocVec[Any], codec: int) -> list[Any]:
    bufs = Buffers()
    meta = msgpack.packb(encode_vec(vec, bufs))
    pad = b"\x00" * (-len(meta) % ALIGN)
    body_parts: list[Any] = [meta, pad, *bufs.parts]
    raw_len = len(meta) + len(pad) + bufs.size
    if codec:
        stored: list[Any] = [_compress(codec, b"".join(body_parts))]
    else:
        stored = body_parts
    crc = 0
    for part in stored:
        crc = zlib.crc32(part, crc)
    stored_len = sum(len(p) if not isinstance(p, memoryview) else p.nbytes for p in stored)
    head = _FRAME.pack(_FRAME_MAGIC, 1, codec, 0, len(meta), stored_len, raw_len, crc)
    return [head, *stored]


def _end_frame(total: int) -> bytes:
    return _FRAME.pack(_FRAME_MAGIC, 0, 0, 0, 0, total, 0, zlib.crc32(struct.pack("<Q", total)))


class BinaryWriter:
    """Write documents batch by batch to a file or stream; ``close()`` seals it.

    >>> import io, polymodal as pm
    >>> class Note(pm.Doc):
    ...     text: str
    >>> buf = io.BytesIO()
    >>> with BinaryWriter(buf, Note) as w:
    ...     w.write([Note(text="a")]); w.write([Note(text="b")])
    >>> [d.text for batch in iter_batches(io.BytesIO(buf.getvalue()), Note) for d in batch]
    ['a', 'b']
    """

    def __init__(self, target: str | Path | BinaryIO, doc_type: type[Doc], *, compression: str | None = None) -> None:
        self._own = isinstance(target, (str, Path))
        self._fh: IO[bytes] = open(target, "wb") if isinstance(target, (str, Path)) else target  # noqa: SIM115
        self._doc_type = doc_type
        self._codec = _codec_id(compression)
        self._total = 0
        self._closed = False
        self._fh.write(_header_bytes(doc_type))

    def write(self, docs: Iterable[Doc] | DocVec[Any]) -> None:
        """Append one batch (a DocList, a DocVec or any iterable of documents) as one frame."""
        vec = docs if isinstance(docs, DocVec) else _as_vec(docs, self._doc_type)
        if not len(vec):
            return
        for part in _frame_parts(vec, self._codec):
            self._fh.write(part)
        self._total += len(vec)

    def close(self) -> None:
        """Write the end marker (without it a reader reports the file as truncated)."""
        if self._closed:
            return
        self._closed = True
        self._fh.write(_end_frame(self._total))
        self._fh.flush()
        if self._own:
            self._fh.close()

    def __enter__(self) -> BinaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self._own:  # do not seal a file whose writing failed
            self._fh.close()
            self._closed = True
            return
        self.close()


def _as_vec(docs: Iterable[Doc], doc_type: type[Doc]) -> DocVec[Any]:
    rows = docs if isinstance(docs, DocList) else DocList[doc_type](docs)  # type: ignore[valid-type]
    return stack_rows(rows, doc_type)


def dumps(docs: Iterable[Doc] | DocVec[Any], doc_type: type[Doc], *, compression: str | None = None) -> bytes:
    """Serialize documents to one bytes object (one frame)."""
    vec = docs if isinstance(docs, DocVec) else _as_vec(docs, doc_type)
    parts: list[Any] = [_header_bytes(doc_type)]
    total = len(vec)
    if total:
        parts.extend(_frame_parts(vec, _codec_id(compression)))
    parts.append(_end_frame(total))
    return b"".join(parts)


def write(path: str | Path, docs: Iterable[Doc], doc_type: type[Doc], *, batch_size: int = 4096,
          compression: str | None = None) -> int:
    """Stream any iterable of documents to a file, ``batch_size`` per frame; returns the count."""
    batch: list[Doc] = []
    with BinaryWriter(path, doc_type, compression=compression) as writer:
        for doc in docs:
            batch.append(doc)
            if len(batch) >= batch_size:
                writer.write(batch)
                batch = []
        writer.write(batch)
        return writer._total


# -- reading ---------------------------------------------------------------------------------
class _Reader:
    """Reads exact byte counts from a stream or a buffer, reporting truncation clearly."""

    def __init__(self, source: BinaryIO | memoryview) -> None:
        self._mv = source if isinstance(source, memoryview) else None
        self._fh = None if isinstance(source, memoryview) else source
        self._pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if self._mv is not None:
            chunk = self._mv[self._pos : self._pos + n]
            self._pos += n
        else:
            assert self._fh is not None
            chunk = memoryview(bytearray(self._fh.read(n)))
        if len(chunk) != n:
            raise FormatError(f"truncated data: expected {n} bytes of {what}, got {len(chunk)}")
        return chunk

    def at_end(self) -> bool:
        if self._mv is not None:
            return self._pos >= len(self._mv)
        assert self._fh is not None
        return self._fh.read(1) == b""


def _read_header(reader: _Reader) -> dict[str, Any]:
    head = reader.take(_HEAD.size, "header")
    magic, version, _flags, length = _HEAD.unpack(head)
    if magic != MAGIC:
        raise FormatError("not polymodal binary data (bad magic bytes)")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"data written with binary format version {version}; this polymodal reads up to version "
            f"{FORMAT_VERSION}: upgrade polymodal (pip install -U polymodal)",
            version=version,
        )
    body = reader.take(length, "header")
    (crc,) = struct.unpack("<I", reader.take(4, "header checksum"))
    if zlib.crc32(body) != crc:
        raise FormatError("corrupt header (checksum mismatch)")
    try:
        header: dict[str, Any] = msgpack.unpackb(body)
    except (ValueError, msgpack.UnpackException) as exc:
        raise FormatError(f"corrupt header: {exc}") from None
    return header


def _iter_frames(reader: _Reader, doc_type: type[Doc]) -> Iterator[DocVec[Any]]:
    _read_header(reader)
    seen = 0
    while True:
        magic, kind, codec, _r, meta_len, stored_len, raw_len, crc = _FRAME.unpack(reader.take(_FRAME.size, "frame"))
        if magic != _FRAME_MAGIC:
            raise FormatError("corrupt data: bad frame marker")
        if kind == 0:
            if stored_len != seen or crc != zlib.crc32(struct.pack("<Q", stored_len)):
                raise FormatError(f"corrupt end marker: {stored_len} documents announced, {seen} read")
            return
        if kind != 1:
            raise FormatError(f"corrupt data: unknown frame kind {kind}")
        stored = reader.take(stored_len, "frame body")
        if zlib.crc32(stored) != crc:
            raise FormatError("corrupt data: frame checksum mismatch")
        body = _decompress(codec, stored, raw_len)
        if len(body) != raw_len or meta_len > raw_len:
            raise FormatError("corrupt data: frame sizes do not match")
        try:
            meta = msgpack.unpackb(body[:meta_len], strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise FormatError(f"corrupt frame: {exc}") from None
        start = meta_len + (-meta_len % ALIGN)
        buf = body[start:]
        vec = decode_vec(meta, buf, doc_type, copy=buf.readonly)
        seen += len(vec)
        yield vec


def iter_batches(source: str | Path | BinaryIO | bytes | bytearray | memoryview, doc_type: type[Doc]) -> Iterator[DocList[Any]]:
    """Yield the documents of a file, stream or buffer one stored batch at a time.

    Raises:
        FormatError: bad magic, newer version, truncation or corruption (after yielding the
            intact batches before it).
        SchemaError: the data does not fit ``doc_type``.
    """
    for vec in iter_vecs(source, doc_type):
        yield vec.to_list()


def iter_vecs(source: str | Path | BinaryIO | bytes | bytearray | memoryview, doc_type: type[Doc]) -> Iterator[DocVec[Any]]:
    """Like :func:`iter_batches`, yielding column-wise ``DocVec`` batches (no row objects)."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            yield from _iter_frames(_Reader(io.BufferedReader(fh)), doc_type)  # type: ignore[arg-type]
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _iter_frames(_Reader(memoryview(source)), doc_type)
        return
    yield from _iter_frames(_Reader(source), doc_type)


def loads(data: bytes | bytearray | memoryview, doc_type: type[Doc]) -> list[Doc]:
    """Decode everything in ``data`` into a list of documents."""
    out: list[Doc] = []
    for batch in iter_batches(data, doc_type):
        out.extend(batch)
    return out


def read(path: str | Path, doc_type: type[Doc]) -> DocList[Any]:
    """Read a whole file written by :func:`write` or :class:`BinaryWriter`."""
    with open(path, "rb") as fh:
        data = bytearray(Path(path).stat().st_size)
        fh.readinto(data)  # a writable buffer: decoded tensors are views into it, not copies
    return DocList[doc_type]._wrap(loads(data, doc_type))  # type: ignore[valid-type]


def read_header(source: str | Path | bytes) -> dict[str, Any]:
    """The header of a file or buffer: its stored schema, fingerprint and writer version."""
    if isinstance(source, bytes):
        return _read_header(_Reader(memoryview(source)))
    with open(source, "rb") as fh:
        return _read_header(_Reader(fh))  # type: ignore[arg-type]


def codec_name(codec: int) -> str:
    return _CODEC_NAMES.get(codec, "unknown")
