"""Media reference fields (``ImageUrl`` ...) and their in-memory counterparts (``ImageBytes`` ...).

A URL field is a ``str`` (a local path, ``file://``, ``http(s)://`` or ``data:``) that decodes
lazily with ``.load()``; a bytes field holds the encoded file itself. Decoding lives in
:mod:`polymodal.media`, imported only when ``.load()`` is called, so ``import polymodal``
stays light. Remote URLs are fetched only with ``load(allow_remote=True)``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path, PurePath
from typing import Any, ClassVar

import numpy as np
from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from polymodal.errors import ConfigError, UnsupportedOperation
from polymodal.media import types as media_types

__all__ = [
    "AudioBytes",
    "AudioUrl",
    "ImageBytes",
    "ImageUrl",
    "MediaBytes",
    "MediaUrl",
    "Mesh3DBytes",
    "Mesh3DUrl",
    "TextBytes",
    "TextUrl",
    "VideoBytes",
    "VideoUrl",
]


def _decode(modality: str, data: bytes | Path, uri: str, options: dict[str, Any]) -> Any:
    if modality == "image":
        from polymodal.media.image import decode_image

        return decode_image(data, uri=uri, **options)
    if modality == "audio":
        from polymodal.media.av_io import decode_audio

        return decode_audio(data, uri=uri, **options)
    if modality == "video":
        from polymodal.media.av_io import decode_video

        return decode_video(data, uri=uri, **options)
    if modality == "mesh":
        from polymodal.media.mesh import decode_mesh

        return decode_mesh(data, uri=uri, **options)
    if modality == "text":
        from polymodal.media.text import decode_text

        if isinstance(data, Path):
            path = data
            try:
                data = path.read_bytes()
            except OSError as exc:  # unreadable (permissions, a directory): name the URI like decoders do
                from polymodal.media.source import media_error

                raise media_error(uri, f"cannot read {path}: {exc.strerror or exc}") from exc
        return decode_text(data, uri=uri, **options)
    raise UnsupportedOperation(  # a bare MediaUrl/MediaBytes: the modality picks the decoder
        f"no decoder for modality {modality!r}: use ImageUrl, AudioUrl, VideoUrl, TextUrl or Mesh3DUrl",
        capability="load",
    )


class MediaUrl(str):
    """A reference to a media file; subclasses fix the modality and what ``load`` returns."""

    modality: ClassVar[str] = ""

    def __new__(cls, value: str | PurePath) -> MediaUrl:
        from polymodal.media.source import validate_uri

        return super().__new__(cls, validate_uri(str(value)))

    @property
    def is_remote(self) -> bool:
        """True for http(s) URLs, which are fetched only when the caller allows it."""
        from polymodal.media.source import is_remote

        return is_remote(self)

    @property
    def path(self) -> Path | None:
        """The local filesystem path, or None for data: and remote URLs."""
        from polymodal.media.source import local_path

        return local_path(self)

    def read_bytes(self, *, allow_remote: bool = False, max_bytes: int | None = None) -> bytes:
        """The encoded bytes.

        Args:
            allow_remote: fetch http(s) URLs; without it they are refused before any network access.
            max_bytes: largest download accepted (default ``DEFAULT_MAX_BYTES``, 1 GiB).

        Raises:
            MediaError: missing or unreadable file, refused, failed or oversized download.
        """
        from polymodal.media.source import DEFAULT_MAX_BYTES, read_bytes

        limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
        return read_bytes(self, allow_remote=allow_remote, max_bytes=limit)

    def load(self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any) -> Any:
        """Decode the media. Local files are decoded in place (video seeks without reading it
        all); other options go to the decoder (``fps=``, ``sample_rate=`` ...).

        Args:
            allow_remote: fetch http(s) URLs (never done implicitly).
            max_bytes: largest download accepted for a remote URL.

        Raises:
            MediaError: the media is missing, refused, unreadable or undecodable (names the URI).
            OptionalDependencyError: the decoder's package is not installed (names the extra).
        """
        path = self.path
        if path is None:
            data: bytes | Path = self.read_bytes(allow_remote=allow_remote, max_bytes=max_bytes)
        elif path.is_file():
            data = path
        else:
            from polymodal.media.source import media_error

            problem = "not a regular file" if path.exists() else "file not found"
            raise media_error(str(self), f"{problem}: {path}")
        return _decode(self.modality, data, str(self), options)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> MediaUrl:
            if isinstance(value, cls):
                return value
            if not isinstance(value, (str, PurePath)):
                raise PydanticCustomError(
                    "media_url", "expected a path or URL string, got {actual}", {"actual": type(value).__name__}
                )
            try:
                return cls(value)
            except ConfigError as exc:
                raise PydanticCustomError("media_url", "{reason}", {"reason": str(exc)}) from None

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )


class ImageUrl(MediaUrl):
    """An image file; ``load()`` returns an HxWx3 uint8 RGB array."""

    modality = "image"

    def load(self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any) -> np.ndarray:
        result: np.ndarray = super().load(allow_remote=allow_remote, max_bytes=max_bytes, **options)
        return result


class AudioUrl(MediaUrl):
    """An audio file; ``load(sample_rate=None)`` returns mono float32 :class:`AudioData`."""

    modality = "audio"

    def load(
        self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any
    ) -> media_types.AudioData:
        result: media_types.AudioData = super().load(allow_remote=allow_remote, max_bytes=max_bytes, **options)
        return result


class VideoUrl(MediaUrl):
    """A video file; ``load(fps=None, max_frames=None, ...)`` returns :class:`VideoData`."""

    modality = "video"

    def load(
        self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any
    ) -> media_types.VideoData:
        result: media_types.VideoData = super().load(allow_remote=allow_remote, max_bytes=max_bytes, **options)
        return result


class TextUrl(MediaUrl):
    """A text file; ``load(encoding="utf-8")`` returns its text."""

    modality = "text"

    def load(self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any) -> str:
        result: str = super().load(allow_remote=allow_remote, max_bytes=max_bytes, **options)
        return result


class Mesh3DUrl(MediaUrl):
    """A 3D mesh (OBJ, PLY, STL, GLB ...); ``load()`` returns :class:`MeshData`."""

    modality = "mesh"

    def load(self, *, allow_remote: bool = False, max_bytes: int | None = None, **options: Any) -> media_types.MeshData:
        result: media_types.MeshData = super().load(allow_remote=allow_remote, max_bytes=max_bytes, **options)
        return result


class MediaBytes(bytes):
    """Encoded media held in memory; JSON carries it as base64."""

    modality: ClassVar[str] = ""

    def load(self, **options: Any) -> Any:
        """Decode the bytes (same results as the URL counterpart's ``load``)."""
        return _decode(self.modality, bytes(self), f"<{type(self).__name__}>", options)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def validate(value: Any) -> MediaBytes:
            if isinstance(value, cls):
                return value
            if isinstance(value, (bytes, bytearray, memoryview)):
                return cls(value)
            if isinstance(value, str):  # base64, as written by JSON serialization
                try:
                    return cls(base64.b64decode(value, validate=True))
                except (binascii.Error, ValueError):
                    raise PydanticCustomError("media_bytes", "string is not valid base64", {}) from None
            raise PydanticCustomError(
                "media_bytes", "expected bytes or base64 text, got {actual}", {"actual": type(value).__name__}
            )

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: base64.b64encode(v).decode("ascii"), when_used="json"
            ),
        )


class ImageBytes(MediaBytes):
    """An encoded image (PNG, JPEG ...); ``load()`` returns HxWx3 uint8."""

    modality = "image"


class AudioBytes(MediaBytes):
    """An encoded audio file; ``load()`` returns :class:`AudioData`."""

    modality = "audio"


class VideoBytes(MediaBytes):
    """An encoded video file; ``load()`` returns :class:`VideoData`."""

    modality = "video"


class TextBytes(MediaBytes):
    """Encoded text; ``load()`` returns str."""

    modality = "text"


class Mesh3DBytes(MediaBytes):
    """An encoded mesh; ``load(file_type="obj")`` returns :class:`MeshData`."""

    modality = "mesh"
