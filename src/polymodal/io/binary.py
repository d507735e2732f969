"""polymodal's binary format: versioned, checksummed, optionally compressed, streamable.

Layout (all integers little-endian)::

    file    = header frame* end
    header  = MAGIC(8) version(u16) flags(u16) length(u32) msgpack{schema, fingerprint, writer} crc32(u32)
    frame   = "PMFR" kind(u8)=1 codec(u8) 0(u16) meta_len(u32) stored_len(u64) raw_len(u64) crc32(u32)
              body: codec(meta msgpack + padding + 64-byte aligned tensor buffers)
    end     = "PMFR" kind(u8)=0 0 0 0 total_docs(u64) 0 crc32(u32)

Each crc32 covers its whole record, fixed fields included (a frame's crc32 covers the fields
before it and the body after it), so a flipped size or codec byte is reported as corruption
instead of misreading the data.

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
from polymodal.doc.doclist import DocList
from polymodal.doc.docvec import DocVec
from polymodal.doc.schema import schema_of
from polymodal.errors import FormatError, SchemaError
from polymodal.io.columns import ALIGN, Buffers, as_vec, decode_vec, encode_vec
from polymodal.io.compression import codec_id, compress, decompress

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "BinaryWriter",
    "dumps",
    "iter_batches",
    "iter_vecs",
    "loads",
    "read",
    "read_header",
    "write",
]

MAGIC = b"PMDL\r\n\x1a\n"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sHHI")
_FRAME_FIELDS = struct.Struct("<4sBBHIQQ")  # a frame header, before its crc32
_FRAME_MAGIC = b"PMFR"
#: What the readers accept: a path, a binary stream, or the bytes themselves.
Source = str | Path | BinaryIO | bytes | bytearray | memoryview


def _header_bytes(doc_type: type[Doc]) -> bytes:
    from polymodal import __version__

    schema = schema_of(doc_type)
    body: bytes = msgpack.packb(
        {"schema": schema.to_dict(), "fingerprint": schema.fingerprint, "writer": f"polymodal {__version__}"}
    )
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, 0, len(body))
    return head + body + struct.pack("<I", zlib.crc32(body, zlib.crc32(head)))


def _frame_parts(vec: DocVec[Any], codec: int) -> list[Any]:
    bufs = Buffers()
    meta = msgpack.packb(encode_vec(vec, bufs), default=_pack_big_int)
    pad = b"\x00" * (-len(meta) % ALIGN)
    body_parts: list[Any] = [meta, pad, *bufs.parts]
    raw_len = len(meta) + len(pad) + bufs.size
    if codec:
        stored: list[Any] = [compress(codec, b"".join(body_parts))]
    else:
        stored = body_parts
    stored_len = sum(len(p) if not isinstance(p, memoryview) else p.nbytes for p in stored)
    fields = _FRAME_FIELDS.pack(_FRAME_MAGIC, 1, codec, 0, len(meta), stored_len, raw_len)
    crc = zlib.crc32(fields)
    for part in stored:
        crc = zlib.crc32(part, crc)
    return [fields, struct.pack("<I", crc), *stored]


_EXT_BIG_INT = 1


def _pack_big_int(obj: Any) -> msgpack.ExtType:
    """msgpack holds 64-bit ints only; a bigger int (in a ``dict[str, int]`` field, say) travels
    as its decimal text in an extension type, so it comes back as the same int."""
    if isinstance(obj, int):
        return msgpack.ExtType(_EXT_BIG_INT, str(obj).encode("ascii"))
    raise TypeError(f"cannot serialize {type(obj).__name__} in the binary format")


def _unpack_ext(code: int, data: bytes) -> Any:
    if code != _EXT_BIG_INT:
        raise ValueError(f"unknown msgpack extension type {code}")
    return int(data.decode("ascii"))


def _end_frame(total: int) -> bytes:
    fields = _FRAME_FIELDS.pack(_FRAME_MAGIC, 0, 0, 0, 0, total, 0)
    return fields + struct.pack("<I", zlib.crc32(fields))


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
        self._codec = codec_id(compression)  # before opening: a bad option creates no file
        self._own = isinstance(target, (str, Path))
        self._fh: IO[bytes] = open(target, "wb") if isinstance(target, (str, Path)) else target  # noqa: SIM115
        self._doc_type = doc_type
        self._total = 0
        self._closed = False
        self._fh.write(_header_bytes(doc_type))

    def write(self, docs: Iterable[Doc] | DocVec[Any]) -> None:
        """Append one batch (a DocList, a DocVec or any iterable of documents) as one frame."""
        vec = as_vec(docs, self._doc_type)
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
        if exc[0] is not None:  # never seal data whose writing failed: readers must see it as cut
            self._closed = True
            if self._own:
                self._fh.close()
            return
        self.close()


def dumps(docs: Iterable[Doc] | DocVec[Any], doc_type: type[Doc], *, compression: str | None = None) -> bytes:
    """Serialize documents to one bytes object (one frame)."""
    vec = as_vec(docs, doc_type)
    parts: list[Any] = [_header_bytes(doc_type)]
    total = len(vec)
    if total:
        parts.extend(_frame_parts(vec, codec_id(compression)))
    parts.append(_end_frame(total))
    return b"".join(parts)


def write(
    path: str | Path,
    docs: Iterable[Doc],
    doc_type: type[Doc],
    *,
    batch_size: int = 4096,
    compression: str | None = None,
) -> int:
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

    _CHUNK = 1 << 24

    def __init__(self, source: BinaryIO | memoryview) -> None:
        self._mv = source if isinstance(source, memoryview) else None
        self._fh = None if isinstance(source, memoryview) else source
        self._pos = 0
        self._left = self._stream_left()

    def _stream_left(self) -> int | None:
        """Bytes left in a seekable stream (None when it cannot tell)."""
        if self._fh is None:
            return None
        try:
            pos = self._fh.tell()
            end = self._fh.seek(0, io.SEEK_END)
            self._fh.seek(pos)
        except (AttributeError, OSError, ValueError):
            return None
        return end - pos

    def take(self, n: int, what: str) -> memoryview:
        if self._mv is not None:
            chunk = self._mv[self._pos : self._pos + n]
            self._pos += n
        else:
            chunk = self._read(n)
        if len(chunk) != n:
            raise FormatError(f"truncated data: expected {n} bytes of {what}, got {len(chunk)}")
        return chunk

    def _read(self, n: int) -> memoryview:
        """Read ``n`` bytes into one writable buffer. A size read from corrupt data may be huge,
        so memory is committed up front only for what the stream is known to hold."""
        assert self._fh is not None
        readinto = getattr(self._fh, "readinto", None)
        if readinto is not None and self._left is not None and n <= self._left:
            buf = bytearray(n)
            got = 0
            while got < n:
                k = readinto(memoryview(buf)[got:])
                if not k:
                    break
                got += k
            self._left -= got
            return memoryview(buf)[:got]
        out = bytearray()
        while len(out) < n:
            part = self._fh.read(min(n - len(out), self._CHUNK))
            if not part:
                break
            out += part
        self._left = None if self._left is None else max(0, self._left - len(out))
        return memoryview(out)

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
    if version > FORMAT_VERSION:  # checked before the crc: a newer version may lay it out differently
        raise FormatError(
            f"data written with binary format version {version}; this polymodal reads up to version "
            f"{FORMAT_VERSION}: upgrade polymodal (pip install -U polymodal)",
            version=version,
        )
    if version < 1:
        raise FormatError(f"corrupt header: format version {version}", version=version)
    body = reader.take(length, "header")
    (crc,) = struct.unpack("<I", reader.take(4, "header checksum"))
    if zlib.crc32(body, zlib.crc32(head)) != crc:
        raise FormatError("corrupt header (checksum mismatch)")
    try:
        header = msgpack.unpackb(body)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise FormatError(f"corrupt header: {exc}") from None
    if not isinstance(header, dict):
        raise FormatError(f"corrupt header: a {type(header).__name__}, not a map")
    return header


def _check_fields(header: dict[str, Any], doc_type: type[Doc]) -> None:
    """Compare the stored schema's field names with ``doc_type`` before any batch, so that a
    mismatch is reported the same way for an empty file as for a full one."""
    try:
        stored = {f["name"] for f in header["schema"]["fields"]}
    except (KeyError, TypeError) as exc:
        raise FormatError(f"corrupt header: no schema fields ({exc!r})") from None
    fields = doc_type.model_fields
    unknown = sorted(stored - set(fields))
    if unknown:
        raise SchemaError(
            f"the data has field(s) {unknown} that {doc_type.__name__} does not declare; "
            "decode into the schema it was written with",
            field=unknown[0],
        )
    missing = sorted(name for name, info in fields.items() if name not in stored and info.is_required())
    if missing:
        raise SchemaError(
            f"{doc_type.__name__} requires field(s) {missing} that the data does not have", field=missing[0]
        )


def _iter_frames(reader: _Reader, doc_type: type[Doc]) -> Iterator[DocVec[Any]]:
    _check_fields(_read_header(reader), doc_type)
    seen = 0
    while True:
        fields = reader.take(_FRAME_FIELDS.size, "frame header")
        (crc,) = struct.unpack("<I", reader.take(4, "frame header"))
        magic, kind, codec, _r, meta_len, stored_len, raw_len = _FRAME_FIELDS.unpack(fields)
        if magic != _FRAME_MAGIC:
            raise FormatError("corrupt data: bad frame marker")
        if kind == 0:
            if crc != zlib.crc32(fields):
                raise FormatError("corrupt data: end marker checksum mismatch")
            if stored_len != seen:
                raise FormatError(f"corrupt data: end marker announces {stored_len} documents, {seen} were read")
            if not reader.at_end():  # e.g. two files concatenated: do not drop the second silently
                raise FormatError("corrupt data: unexpected bytes after the end marker")
            return
        if kind != 1:
            raise FormatError(f"corrupt data: unknown frame kind {kind}")
        stored = reader.take(stored_len, "frame body")
        if zlib.crc32(stored, zlib.crc32(fields)) != crc:
            raise FormatError("corrupt data: frame checksum mismatch")
        if meta_len > raw_len:
            raise FormatError("corrupt data: frame sizes do not match")
        body = decompress(codec, stored, raw_len)
        if len(body) != raw_len:
            raise FormatError("corrupt data: frame sizes do not match")
        try:
            meta = msgpack.unpackb(body[:meta_len], strict_map_key=False, ext_hook=_unpack_ext)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise FormatError(f"corrupt frame: {exc}") from None
        start = meta_len + (-meta_len % ALIGN)
        buf = body[start:]
        vec = decode_vec(meta, buf, doc_type, copy=buf.readonly)
        seen += len(vec)
        yield vec


def iter_batches(source: Source, doc_type: type[Doc]) -> Iterator[DocList[Any]]:
    """Yield the documents of a file, stream or buffer one stored batch at a time.

    Raises:
        FormatError: bad magic, newer version, truncation or corruption (after yielding the
            intact batches before it).
        SchemaError: the data does not fit ``doc_type``.
    """
    for vec in iter_vecs(source, doc_type):
        yield vec.to_list()


def iter_vecs(source: Source, doc_type: type[Doc]) -> Iterator[DocVec[Any]]:
    """Like :func:`iter_batches`, yielding column-wise ``DocVec`` batches (no row objects)."""
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            yield from _iter_frames(_Reader(fh), doc_type)
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield from _iter_frames(_Reader(memoryview(source).cast("B")), doc_type)  # byte offsets, whatever the format
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
