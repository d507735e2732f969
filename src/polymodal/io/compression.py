"""Compression codecs of the binary format: zlib always; zstd and lz4 with the ``compress`` extra.

Codec ids are part of the format (stored in each frame); a codec's package is imported when it
is first used, and a missing one names the extra to install.
"""

from __future__ import annotations

import zlib
from typing import Any

from polymodal.errors import ConfigError, FormatError, OptionalDependencyError

__all__ = ["CODECS", "codec_id", "codec_name", "compress", "decompress"]

CODECS = {None: 0, "none": 0, "zlib": 1, "zstd": 2, "lz4": 3}
_CODEC_NAMES = {0: "none", 1: "zlib", 2: "zstd", 3: "lz4"}


def codec_id(compression: str | None) -> int:
    """The codec id for a compression name; its package is imported now, so a missing one is
    reported before anything is written."""
    try:
        codec = CODECS[compression.lower() if compression else None]
    except KeyError:
        raise ConfigError(f"unknown compression {compression!r}; use one of none, zlib, zstd, lz4") from None
    if codec == 2:
        _zstd()
    elif codec == 3:
        _lz4()
    return codec


def compress(codec: int, data: bytes) -> bytes:
    """``data`` compressed with ``codec`` (zlib at level 1 and zstd at 3: speed over ratio)."""
    if codec == 1:
        return zlib.compress(data, 1)
    if codec == 2:
        return _zstd().ZstdCompressor(level=3).compress(data)  # type: ignore[no-any-return]
    if codec == 3:
        return _lz4().compress(data)  # type: ignore[no-any-return]
    return data


def decompress(codec: int, data: memoryview, raw_len: int) -> memoryview:
    """Decompress a frame body into at most ``raw_len`` bytes (the size the frame announces),
    so corrupt or hostile data cannot expand without bound."""
    if codec == 0:
        return data
    if codec not in _CODEC_NAMES:
        raise FormatError(f"corrupt data: unknown compression codec id {codec}")
    errors: tuple[type[Exception], ...] = (zlib.error, RuntimeError, ValueError)
    try:
        if codec == 1:
            z = zlib.decompressobj()
            out = z.decompress(data, raw_len)
            complete = z.eof and not z.unconsumed_tail
        elif codec == 2:
            zstandard = _zstd()
            errors += (zstandard.ZstdError,)
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=raw_len)
            complete = True
        else:
            lz4 = _lz4().LZ4FrameDecompressor()
            out = lz4.decompress(data, max_length=raw_len)
            complete = lz4.eof
    except errors as exc:
        raise FormatError(f"corrupt data: cannot decompress frame ({codec_name(codec)}): {exc}") from None
    if not complete or len(out) != raw_len:
        raise FormatError(f"corrupt data: frame decompresses to other than the {raw_len} bytes announced")
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


def codec_name(codec: int) -> str:
    """The name of a codec id, for messages ("unknown" for an id no version defines)."""
    return _CODEC_NAMES.get(codec, "unknown")
