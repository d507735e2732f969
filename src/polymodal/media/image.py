"""Image decoding with Pillow: any format Pillow reads becomes an HxWx3 uint8 RGB array."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import OptionalDependencyError
from polymodal.media.source import media_error

__all__ = ["decode_image", "encode_image"]

#: Pillow modes holding more than 8 bits per pixel (16-bit PNG/TIFF greyscale). Pillow's own
#: ``convert("RGB")`` clips them at 255, which turns almost every 16-bit image white.
_WIDE_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise OptionalDependencyError.for_package("Pillow", "image", "Image decoding") from None
    return Image


def decode_image(data: bytes | Path, *, uri: str = "") -> np.ndarray:
    """Decode an image to RGB (EXIF orientation applied, alpha composited over white).

    16-bit greyscale is scaled to 8 bits (not clipped). Images larger than Pillow's
    ``Image.MAX_IMAGE_PIXELS`` are refused before their pixels are decoded.

    Raises:
        MediaError: the data is not an image Pillow can read, is truncated, or is a
            decompression bomb; the message starts with the URI.
    """
    pil = _pil()
    from PIL import ImageOps, UnidentifiedImageError

    name = uri or (str(data) if isinstance(data, Path) else "<bytes>")
    source = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the pixel limit; refuse those too.
            warnings.simplefilter("error", pil.DecompressionBombWarning)
            with pil.open(source) as img:
                img.load()
                img = ImageOps.exif_transpose(img) or img
                return _to_rgb(img, pil)
    except UnidentifiedImageError:
        raise media_error(name, "not a recognised image format") from None
    except (pil.DecompressionBombError, pil.DecompressionBombWarning) as exc:
        raise media_error(name, f"refusing a possible decompression bomb: {exc}") from None
    # Truncated or corrupt files surface as any of these, depending on the format plugin.
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error) as exc:
        raise media_error(name, f"cannot decode image: {exc}") from exc


def _to_rgb(img: Any, pil: Any) -> np.ndarray:
    """HxWx3 uint8 from any Pillow mode: alpha over white, wide greyscale scaled down."""
    if img.mode in _WIDE_MODES:
        grey = (np.clip(np.asarray(img, dtype=np.int64), 0, 65535) // 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    # "transparency" marks a palette entry or one colour (PNG tRNS) as see-through in P, L and RGB.
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        canvas = pil.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = pil.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def encode_image(pixels: np.ndarray, *, format: str = "PNG", quality: int = 90) -> bytes:
    """Encode an HxWx3 (or HxW) uint8 array as PNG/JPEG/WebP bytes."""
    pil = _pil()
    buf = io.BytesIO()
    img = pil.fromarray(np.ascontiguousarray(pixels))
    img.save(buf, format=format, **({"quality": quality} if format.upper() in ("JPEG", "WEBP") else {}))
    return buf.getvalue()
