"""Embedder families by name, loaded lazily (``family -> "module:Class"``)."""

from __future__ import annotations

import importlib
from typing import Any

from polymodal.embed.base import Embedder, EmbedderConfig
from polymodal.embed.hub import canonical_name
from polymodal.errors import ConfigError

__all__ = ["FAMILIES", "load"]

FAMILIES: dict[str, str] = {
    "sentence-transformers": "polymodal.embed.text:SentenceTransformerEmbedder",
    "clip": "polymodal.embed.clip:ClipEmbedder",
    "clap": "polymodal.embed.clap:ClapEmbedder",
    "efficientnet": "polymodal.embed.image:EfficientNetEmbedder",
}

_CACHE: dict[str, Embedder] = {}


def load(config: EmbedderConfig | dict[str, Any] | None = None, /, *, cache: bool = True, **kwargs: Any) -> Embedder:
    """Build an embedder from a config (as saved in a store) or keyword arguments.

    >>> # load(family="sentence-transformers", model="all-MiniLM-L6-v2", modality="text")

    Loaded models are cached per config, so a text and an image embedder of one CLIP
    checkpoint, or repeated loads, share the weights.

    Raises:
        ConfigError: unknown family (lists the known ones) or an unloadable model.
        OptionalDependencyError: the family's package is not installed (names the extra).
    """
    cfg = EmbedderConfig.model_validate(config if config is not None else kwargs)
    cfg = cfg.model_copy(update={"model": canonical_name(cfg.model)})
    key = cfg.model_dump_json()
    if cache and key in _CACHE:
        return _CACHE[key]
    target = FAMILIES.get(cfg.family)
    if target is None:
        raise ConfigError(f"unknown embedder family {cfg.family!r}; known: {', '.join(sorted(FAMILIES))}")
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    embedder: Embedder = cls(cfg)
    if cache:
        _CACHE[key] = embedder
    return embedder
