"""Image decoding: every readable format becomes an HxWx3 uint8 RGB array; bad files give MediaError."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from polymodal import ImageBytes, ImageUrl, MediaError, OptionalDependencyError
from polymodal.media.image import decode_image, encode_image

RED, GREEN, WHITE = (255, 0, 0), (0, 255, 0), (255, 255, 255)


def test_png_decodes_exactly(images, gradient):
    pixels = ImageUrl(images["png"]).load()
    assert pixels.dtype == np.uint8
    assert pixels.shape == (30, 40, 3)
    np.testing.assert_array_equal(pixels, gradient)


@pytest.mark.parametrize("name", ["jpeg", "webp"])
def test_lossy_formats_decode_close_to_the_original(images, gradient, name):
    pixels = ImageUrl(images[name]).load()
    assert pixels.shape == (30, 40, 3)
    assert pixels.dtype == np.uint8
    assert np.abs(pixels.astype(int) - gradient).mean() < 4


def test_decoded_array_is_writable_and_owns_its_memory(images):
    pixels = ImageUrl(images["png"]).load()
    assert pixels.flags.writeable
    assert pixels.flags.c_contiguous
    pixels[0, 0] = 1  # must not raise (a read-only view of Pillow's buffer would)


def test_rgba_is_composited_over_white(images):
    pixels = ImageUrl(images["rgba"]).load()
    assert pixels.shape == (30, 40, 3)
    assert tuple(pixels[10, 5]) == RED  # opaque half
    assert tuple(pixels[10, 35]) == WHITE  # transparent half: white, not the hidden blue


def test_palette_transparency_is_composited_over_white(images):
    pixels = ImageUrl(images["palette"]).load()
    assert tuple(pixels[10, 5]) == GREEN
    assert tuple(pixels[10, 35]) == WHITE


def test_grayscale_becomes_three_equal_channels(images):
    pixels = ImageUrl(images["gray"]).load()
    assert pixels.shape == (30, 40, 3)
    assert np.all(pixels == 77)


def test_16_bit_grayscale_is_scaled_not_clipped(images):
    """Pillow's convert("RGB") clips 16-bit values at 255 (all white); they must be scaled."""
    pixels = ImageUrl(images["gray16"]).load()
    assert pixels.dtype == np.uint8
    assert np.all(pixels[:15] == 16384 // 257)  # a quarter of full scale stays dark grey
    assert np.all(pixels[15:] == 255)


def test_exif_orientation_is_applied(images):
    """Stored 40x30 with orientation 6 (rotate 90° clockwise): displayed 30 wide, 40 high, and
    the stored top-left red quadrant ends up top-right."""
    pixels = ImageUrl(images["exif_rotated"]).load()
    assert pixels.shape == (40, 30, 3)
    assert np.abs(pixels[5, 25].astype(int) - RED).max() < 40
    assert np.abs(pixels[5, 5].astype(int)).max() < 40  # top-left is black


def test_animated_gif_gives_its_first_frame(images):
    pixels = ImageUrl(images["gif"]).load()
    assert pixels.shape == (30, 40, 3)
    assert tuple(pixels[0, 0]) == RED


def test_image_bytes_decode_like_the_file(images, gradient):
    raw = images["png"].read_bytes()
    np.testing.assert_array_equal(ImageBytes(raw).load(), gradient)
    np.testing.assert_array_equal(decode_image(raw), gradient)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_encode_image_round_trips(gradient, fmt):
    decoded = decode_image(encode_image(gradient, format=fmt, quality=95))
    assert decoded.shape == gradient.shape
    assert np.abs(decoded.astype(int) - gradient).mean() < (0.01 if fmt == "PNG" else 4)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name",
    ["random.png", "empty.png", "header_garbage.png", "truncated.png", "truncated.jpg", "truncated.webp", "text.jpg"],
)
def test_corrupt_image_gives_media_error_naming_the_file(corrupt, name):
    path = corrupt[name]
    with pytest.raises(MediaError) as info:
        ImageUrl(path).load()
    assert info.value.uri == str(path)
    assert str(path) in str(info.value)


def test_corrupt_image_bytes_give_media_error():
    with pytest.raises(MediaError, match="ImageBytes"):
        ImageBytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).load()


def test_missing_image_gives_media_error(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(MediaError, match="not found") as info:
        ImageUrl(path).load()
    assert info.value.uri == str(path)


def test_decompression_bomb_header_is_refused(images):
    """A 60-byte PNG claiming 20000x20000 pixels is refused before any pixel is decoded."""
    with pytest.raises(MediaError, match="decompression bomb") as info:
        ImageUrl(images["bomb"]).load()
    assert info.value.uri == str(images["bomb"])


@pytest.mark.parametrize("limit", [1000, 500], ids=["warning-range", "error-range"])
def test_pillow_pixel_limit_is_enforced(images, monkeypatch, limit):
    """Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; both ranges must be refused."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)  # the 40x30 test image has 1200 pixels
    with pytest.raises(MediaError, match="decompression bomb"):
        ImageUrl(images["png"]).load()


def test_missing_pillow_names_the_extra(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(OptionalDependencyError) as info:
        ImageUrl(images["png"]).load()
    assert isinstance(info.value, ImportError)
    assert info.value.extra == "image"
    assert "pip install 'polymodal[image]'" in str(info.value)


def test_image_decoder_accepts_a_path_object(images, gradient):
    np.testing.assert_array_equal(decode_image(Path(images["png"])), gradient)
