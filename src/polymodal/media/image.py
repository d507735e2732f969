"""Image decoding with Pillow: any format Pillow reads becomes an HxWx3 uint8 RGB array."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from polymodal.errors import MediaError, OptionalDependencyError

__all__ = ["decode_image", "encode_image"]


def _pil() -> object:
    try:
        from PIL import Image
    except ImportError:
        raise OptionalDependencyError.for_package("Pillow", "image", "Image decoding") from None
    return Image


def decode_image(data: bytes | Path, *, uri: str = "") -> np.ndarray:
    """Decode an image to RGB (EXIF orientation applied, alpha composited over white).

    Raises:
        MediaError: the data is not an image Pillow can read, is truncated, or is a
            decompression bomb.
    """
    Image = _pil()
    from PIL import ImageOps, UnidentifiedImageError

    source = data if isinstance(data, Path) else io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # type: ignore[attr-defined]
            with Image.open(source) as img:  # type: ignore[attr-defined]
                img.load()
                img = ImageOps.exif_transpose(img) or img
                if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                    rgba = img.convert("RGBA")
                    canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # type: ignore[attr-defined]
                    img = Image.alpha_composite(canvas, rgba)  # type: ignore[attr-defined]
                rgb = img.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise MediaError("not a recognised image format", uri=uri or str(data)[:80]) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:  # type: ignore[attr-defined]
        raise MediaError(f"cannot decode image: {exc}", uri=uri or str(data)[:80]) from exc


def encode_image(pixels: np.ndarray, *, format: str = "PNG", quality: int = 90) -> bytes:
    """Encode an HxWx3 (or HxW) uint8 array as PNG/JPEG/WebP bytes."""
    Image = _pil()
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(pixels))  # type: ignore[attr-defined]
    img.save(buf, format=format, **({"quality": quality} if format.upper() in ("JPEG", "WEBP") else {}))
    return buf.getvalue()
