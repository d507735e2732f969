"""polymodal: one typed document for every modality; store, search and serve it.

The names below are the public API (a test keeps ``__all__`` and the imports in step).
Importing polymodal loads pydantic and numpy only: media decoders, models and store engines
are imported when first used.
"""

from __future__ import annotations

from polymodal.doc import (
    AudioBytes,
    AudioUrl,
    Doc,
    DocList,
    DocVec,
    ImageBytes,
    ImageUrl,
    Mesh3DBytes,
    Mesh3DUrl,
    NdArray,
    TextBytes,
    TextUrl,
    Vector,
    VideoBytes,
    VideoUrl,
)
from polymodal.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    DeadlineExceeded,
    FormatError,
    MediaError,
    NotFoundError,
    OptionalDependencyError,
    OverloadedError,
    PolymodalError,
    SchemaError,
    StepError,
    UnknownBackendError,
    UnsupportedOperation,
)
from polymodal.media.types import AudioData, MeshData, VideoData
from polymodal.store import Hit, Store
from polymodal.store.registry import open_store as open

__version__ = "0.1.0"

__all__ = [
    "AudioBytes",
    "AudioData",
    "AudioUrl",
    "AuthenticationError",
    "BackendError",
    "ConfigError",
    "DeadlineExceeded",
    "Doc",
    "DocList",
    "DocVec",
    "FormatError",
    "Hit",
    "ImageBytes",
    "ImageUrl",
    "MediaError",
    "Mesh3DBytes",
    "Mesh3DUrl",
    "MeshData",
    "NdArray",
    "NotFoundError",
    "OptionalDependencyError",
    "OverloadedError",
    "PolymodalError",
    "SchemaError",
    "Store",
    "StepError",
    "TextBytes",
    "TextUrl",
    "UnknownBackendError",
    "UnsupportedOperation",
    "Vector",
    "VideoBytes",
    "VideoData",
    "VideoUrl",
    "__version__",
    "open",
]
