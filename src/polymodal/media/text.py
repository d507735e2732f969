"""Text decoding: UTF-8 (with or without BOM) by default, strict so that binary is caught."""

from __future__ import annotations

from polymodal.errors import MediaError

__all__ = ["decode_text"]


def decode_text(data: bytes, *, uri: str = "", encoding: str = "utf-8") -> str:
    """Decode bytes to str; a byte order mark is removed.

    Raises:
        MediaError: the bytes are not valid in ``encoding`` (names the offset), or contain NUL
            bytes (a binary file given as text).
    """
    if b"\x00" in data[:8192] and not encoding.lower().startswith("utf-16"):
        raise MediaError("not a text file (contains NUL bytes)", uri=uri)
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        raise MediaError(
            f"not valid {encoding} text at byte {exc.start}: pass encoding=... if the file uses another one",
            uri=uri,
        ) from None
    except LookupError:
        raise MediaError(f"unknown text encoding {encoding!r}", uri=uri) from None
