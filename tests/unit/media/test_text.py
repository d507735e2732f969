"""Text decoding: strict UTF-8 by default (BOM removed), other encodings on request, binary refused."""

from __future__ import annotations

import pytest

from polymodal import MediaError, TextBytes, TextUrl
from polymodal.media.text import decode_text


def test_utf8(texts, spec):
    assert TextUrl(texts["utf8"]).load() == spec.TEXT


def test_utf8_bom_is_removed(texts, spec):
    text = TextUrl(texts["utf8_bom"]).load()
    assert text == spec.TEXT
    assert not text.startswith("\ufeff")


def test_utf16_with_bom_is_detected(texts, spec):
    """A UTF-16 BOM is unambiguous: the default encoding follows it rather than calling it binary."""
    assert TextUrl(texts["utf16"]).load() == spec.TEXT
    assert TextUrl(texts["utf16"]).load(encoding="utf-16") == spec.TEXT


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-16-be"])
def test_wide_encodings_are_not_mistaken_for_binary(spec, encoding):
    """UTF-16/32 text is full of NUL bytes; with the encoding named, it must still decode."""
    raw = spec.TEXT.encode(encoding)
    assert decode_text(raw, encoding=encoding).lstrip("\ufeff") == spec.TEXT


def test_latin1_is_not_valid_utf8(texts):
    with pytest.raises(MediaError, match="not valid utf-8 text at byte 3") as info:
        TextUrl(texts["latin1"]).load()
    assert info.value.uri == str(texts["latin1"])
    assert str(texts["latin1"]) in str(info.value)
    assert "encoding=" in str(info.value)  # says how to fix it


@pytest.mark.parametrize("encoding", ["latin-1", "ISO-8859-1", "cp1252"])
def test_latin1_with_its_encoding(texts, spec, encoding):
    assert TextUrl(texts["latin1"]).load(encoding=encoding) == spec.LATIN1_TEXT


@pytest.mark.parametrize("encoding", ["UTF-8", "utf8", "utf_8", "U8"])
def test_utf8_spellings_all_strip_the_bom(texts, spec, encoding):
    assert TextUrl(texts["utf8_bom"]).load(encoding=encoding) == spec.TEXT


def test_empty_file_is_empty_text(texts):
    assert TextUrl(texts["empty"]).load() == ""


def test_binary_file_is_refused(corrupt):
    with pytest.raises(MediaError, match="NUL") as info:
        TextUrl(corrupt["binary.txt"]).load()
    assert info.value.uri == str(corrupt["binary.txt"])


def test_unknown_encoding(texts):
    with pytest.raises(MediaError, match="unknown text encoding"):
        TextUrl(texts["utf8"]).load(encoding="no-such-codec")


def test_text_bytes(spec):
    assert TextBytes(spec.TEXT.encode()).load() == spec.TEXT
    with pytest.raises(MediaError, match="TextBytes"):
        TextBytes(b"caf\xe9 au lait").load()


def test_directory_is_a_media_error(tmp_path):
    with pytest.raises(MediaError, match="not a regular file") as info:
        TextUrl(tmp_path).load()
    assert info.value.uri == str(tmp_path)
