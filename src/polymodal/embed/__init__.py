"""Embedders: real models turning text, images and audio into vectors (and translators that
turn one modality into another). Nothing heavy is imported until a model is loaded."""

from polymodal.embed.base import Embedder, EmbedderConfig, check_same_space
from polymodal.embed.registry import FAMILIES, load

__all__ = ["FAMILIES", "Embedder", "EmbedderConfig", "check_same_space", "load"]
