"""Typed documents: ``Doc``, ``DocList``, ``DocVec`` and the field types."""

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.doc.docvec import DocVec
from polymodal.doc.schema import DocSchema, FieldSpec, schema_of
from polymodal.doc.tensor import NdArray, TensorSpec, Vector
from polymodal.doc.url import (
    AudioBytes,
    AudioUrl,
    ImageBytes,
    ImageUrl,
    MediaBytes,
    MediaUrl,
    Mesh3DBytes,
    Mesh3DUrl,
    TextBytes,
    TextUrl,
    VideoBytes,
    VideoUrl,
)

__all__ = [
    "AudioBytes",
    "AudioUrl",
    "Doc",
    "DocList",
    "DocSchema",
    "DocVec",
    "FieldSpec",
    "ImageBytes",
    "ImageUrl",
    "MediaBytes",
    "MediaUrl",
    "Mesh3DBytes",
    "Mesh3DUrl",
    "NdArray",
    "TensorSpec",
    "TextBytes",
    "TextUrl",
    "Vector",
    "VideoBytes",
    "VideoUrl",
    "schema_of",
]
