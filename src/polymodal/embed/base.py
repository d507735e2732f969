"""The Embedder contract: a batch of inputs in, a float32 ``(n, dim)`` array out.

Every embedder carries an :class:`EmbedderConfig` (family, model name or path, options) that
is saved with a store, so a reopened store rebuilds the same embedder for queries; and a
``space`` string naming the vector space its outputs live in, so text and image embedders of
one CLIP model share a space and a query embedded by another model is refused clearly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from polymodal.errors import ConfigError, SchemaError

__all__ = ["Embedder", "EmbedderConfig", "Modality", "check_same_space", "resolve_device"]

Modality = Literal["text", "image", "audio"]


class EmbedderConfig(BaseModel):
    """How to rebuild an embedder: saved with stores, compared before queries."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    family: str = Field(description="Registered family name, such as 'sentence-transformers' or 'clip'.")
    model: str = Field(description="Hub name or local path of the checkpoint.")
    modality: Modality = Field(description="What the embedder takes: text, image or audio.")
    options: dict[str, Any] = Field(default_factory=dict, description="Family options (batch_size, device ...).")

    def key(self) -> str:
        """A short identity used in messages and caches."""
        return f"{self.family}:{self.model}:{self.modality}"


def resolve_device(device: str | None) -> str:
    """``"auto"`` (or None) means CUDA when torch sees a GPU, else CPU.

    Raises:
        ConfigError: an unknown device, or CUDA asked for where torch sees no GPU.
    """
    try:
        import torch
    except ImportError:
        return "cpu" if device in (None, "auto", "cpu") else str(device)
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(str(device))
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but torch sees no CUDA GPU; use device='cpu' or 'auto'")
    return str(device)


class Embedder(ABC):
    """Base class: batching, input checks and progress; families implement ``_embed_batch``."""

    family: ClassVar[str] = ""

    def __init__(self, config: EmbedderConfig) -> None:
        self.config = config
        try:
            self.batch_size = int(config.options.get("batch_size", 32))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"batch_size must be an integer, got {config.options.get('batch_size')!r}") from exc
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {self.batch_size}")

    @property
    def modality(self) -> Modality:
        return self.config.modality

    @property
    @abstractmethod
    def dim(self) -> int:
        """Output dimension."""

    @property
    def space(self) -> str:
        """Vectors from embedders with the same space can be compared (one model, any modality)."""
        return f"{self.config.family}:{self.config.model}"

    @property
    def normalized(self) -> bool:
        """Whether outputs have unit length (then cosine equals inner product)."""
        return True

    def embed(self, batch: Sequence[Any], *, progress: bool | str = False) -> np.ndarray:
        """Embed a batch; returns float32 ``(len(batch), dim)``.

        Raises:
            SchemaError: an input of the wrong kind for this embedder's modality.
        """
        items = list(batch)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        from polymodal.doc.apply import progress_bar

        out = np.empty((len(items), self.dim), np.float32)
        order = self._batch_order(items)
        with progress_bar(len(items), progress, unit=self.modality) as bar:
            for start in range(0, len(items), self.batch_size):
                where: slice | np.ndarray = slice(start, start + self.batch_size)
                if order is not None:
                    where = order[start : start + self.batch_size]
                    chunk = [items[i] for i in where]
                else:
                    chunk = items[where]
                vecs = np.asarray(self._embed_batch(chunk), dtype=np.float32)
                if vecs.shape != (len(chunk), self.dim):
                    raise SchemaError(
                        f"{self.config.key()} returned shape {vecs.shape}, expected {(len(chunk), self.dim)}"
                    )
                out[where] = vecs
                bar.update(len(chunk))
        return out

    def _batch_order(self, items: list[Any]) -> np.ndarray | None:
        """The order to embed ``items`` in (outputs keep the input order), or None for as given.

        Texts go longest first, so each chunk holds texts of similar length and pads little: a
        chunk costs as much as its longest text. On mixed-length sentences this halves MiniLM's
        time against chunks in input order (sentence-transformers' ``encode`` sorts the same way).
        """
        if self.modality != "text" or len(items) <= self.batch_size or not all(isinstance(x, str) for x in items):
            return None
        return np.argsort([-len(x) for x in items], kind="stable")

    def embed_one(self, item: Any) -> np.ndarray:
        """Embed a single input (a thin helper over :meth:`embed`)."""
        out: np.ndarray = self.embed([item])[0]
        return out

    @abstractmethod
    def _embed_batch(self, items: list[Any]) -> np.ndarray: ...

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.model} {self.modality} dim={self.dim}>"


def check_same_space(
    query: Embedder | EmbedderConfig | dict[str, Any], stored: dict[str, Any] | None, field: str
) -> None:
    """Refuse to compare a query embedding with vectors made by another model.

    Raises:
        ConfigError: names both models and how to fix it.
    """
    if stored is None:
        return
    if isinstance(query, Embedder):
        cfg = query.config
    elif isinstance(query, EmbedderConfig):
        cfg = query
    else:
        cfg = EmbedderConfig.model_validate(query)
    stored_cfg = EmbedderConfig.model_validate(stored)
    if (cfg.family, cfg.model) != (stored_cfg.family, stored_cfg.model):
        raise ConfigError(
            f"field {field!r} holds vectors from {stored_cfg.family}:{stored_cfg.model}, but the query would be "
            f"embedded by {cfg.family}:{cfg.model}; use the store's embedder (polymodal.embed.load(...)) "
            "or re-index with the new model"
        )


def to_rgb_array(item: Any) -> np.ndarray:
    """An image input (array, path, URL field, bytes, PIL image) as HxWx3 uint8."""
    from polymodal.doc.url import ImageBytes, MediaUrl

    if isinstance(item, np.ndarray):
        if item.ndim == 3 and item.shape[2] == 3 and item.dtype == np.uint8:
            return item
        if item.ndim == 3 and item.shape[2] == 4 and item.dtype == np.uint8:
            return np.ascontiguousarray(item[..., :3])
        if item.ndim == 2:
            return np.repeat(item.astype(np.uint8)[..., None], 3, axis=2)
        raise SchemaError(f"expected an HxWx3 uint8 image array, got shape {item.shape} and dtype {item.dtype}")
    if isinstance(item, (bytes, ImageBytes)):
        from polymodal.media.image import decode_image

        return decode_image(bytes(item))
    if isinstance(item, (MediaUrl, str)) or hasattr(item, "__fspath__"):
        from polymodal.doc.url import ImageUrl

        return ImageUrl(str(item)).load()
    if type(item).__module__.startswith("PIL"):
        return np.asarray(item.convert("RGB"), dtype=np.uint8)
    raise SchemaError(f"cannot use {type(item).__name__} as an image; give an array, a path or bytes")


def to_audio(item: Any, sample_rate: int) -> np.ndarray:
    """An audio input (AudioData, path, URL field, bytes, or samples already at ``sample_rate``)
    as mono float32 at ``sample_rate``."""
    from polymodal.doc.url import AudioBytes, MediaUrl
    from polymodal.media.types import AudioData

    if isinstance(item, AudioData):
        if item.sample_rate == sample_rate:
            return item.samples.astype(np.float32, copy=False)
        return _resample(item.samples, item.sample_rate, sample_rate)
    if isinstance(item, np.ndarray):
        if item.ndim != 1:
            raise SchemaError(f"expected mono samples (1-D), got shape {item.shape}")
        if np.issubdtype(item.dtype, np.integer):  # PCM integers: scale to [-1, 1]
            return (item / float(np.iinfo(item.dtype).max)).astype(np.float32)
        return item.astype(np.float32, copy=False)
    from polymodal.media.av_io import decode_audio

    if isinstance(item, (bytes, AudioBytes)):
        return decode_audio(bytes(item), sample_rate=sample_rate).samples
    if isinstance(item, (str, MediaUrl)) or hasattr(item, "__fspath__"):
        from polymodal.doc.url import AudioUrl

        return AudioUrl(str(item)).load(sample_rate=sample_rate).samples
    raise SchemaError(f"cannot use {type(item).__name__} as audio; give AudioData, samples, a path or bytes")


def _resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear-interpolation resampling (decoders resample properly; this is for raw arrays)."""
    if src == dst or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    n = round(len(samples) * dst / src)
    x_old = np.arange(len(samples)) / src
    x_new = np.arange(n) / dst
    return np.asarray(np.interp(x_new, x_old, samples), dtype=np.float32)
