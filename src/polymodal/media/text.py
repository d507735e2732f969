"""Text decoding: UTF-8 (with or without BOM) by default, strict so that binary is caught."""

from __future__ import annotations

import codecs

from polymodal.media.source import media_error

__all__ = ["decode_text"]

#: Byte order marks that identify a UTF-16/32 file even when the caller asked for UTF-8
#: (UTF-32-LE first: its BOM starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, *, uri: str = "", encoding: str = "utf-8") -> str:
    """Decode bytes to str; a byte order mark is removed.

    With the default ``encoding="utf-8"``, a UTF-16 or UTF-32 byte order mark switches to that
    encoding (a BOM is unambiguous, and Windows tools often write UTF-16 text).

    Raises:
        MediaError: the bytes are not valid in ``encoding`` (names the offset), contain NUL
            bytes (a binary file given as text), or ``encoding`` is unknown.
    """
    name = uri or "<bytes>"
    try:
        enc = codecs.lookup(encoding).name  # canonical: "UTF8", "utf_8" and "U8" all give "utf-8"
    except LookupError:
        raise media_error(name, f"unknown text encoding {encoding!r}") from None
    if enc == "utf-8":
        enc = next((bom_enc for bom, bom_enc in _BOMS if data.startswith(bom)), "utf-8-sig")
    # UTF-16/32 text is full of NUL bytes; in any other encoding a NUL means binary data.
    if b"\x00" in data[:8192] and not enc.startswith(("utf-16", "utf-32")):
        raise media_error(name, "not a text file (contains NUL bytes)")
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        raise media_error(
            name, f"not valid {encoding} text at byte {exc.start}: pass encoding=... if the file uses another one"
        ) from None
