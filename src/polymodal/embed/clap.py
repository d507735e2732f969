"""CLAP: text and audio in one vector space, with transformers' ``ClapModel``.

Works with CLAP checkpoints in the Hugging Face format (``laion/clap-htsat-unfused``,
``laion/clap-htsat-fused``, ``laion/larger_clap_general``, a local ``save_pretrained``
directory). The text and the audio embedder of one checkpoint share one loaded model and one
``space``, so a text query searches audio vectors.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from polymodal.embed.base import to_audio
from polymodal.embed.clip import HFDualEncoder, _Checkpoint, from_pretrained, unit_rows
from polymodal.errors import SchemaError

__all__ = ["ClapEmbedder"]

# The feature extractor draws from NumPy's global generator (random crops of clips longer than
# the model's window, and which clip of a batch takes the "longer" path); a fixed seed per clip
# makes every embedding reproducible and independent of the batch it came in.
_RNG_LOCK = threading.Lock()
_SEED = 0


class ClapEmbedder(HFDualEncoder):
    """A CLAP checkpoint (hub name or local path) embedding text or audio; outputs are L2-normalised.

    Audio is anything :func:`~polymodal.embed.base.to_audio` accepts (``AudioData``, paths,
    ``AudioUrl`` fields, bytes, mono samples already at the model's rate, 48 kHz for LAION's
    checkpoints); it is decoded and resampled to the feature extractor's rate. Clips longer
    than the model's window (10 s) are cropped the way the checkpoint's feature extractor does,
    with a fixed seed. Texts longer than the model's context are truncated.

    Options: see :class:`~polymodal.embed.clip.HFDualEncoder`.
    """

    family = "clap"
    label = "CLAP"
    model_type = "clap"
    other_modality = "audio"

    def _model_class(self, transformers: Any) -> Any:
        return transformers.ClapModel

    def _load_parts(self, transformers: Any, location: str) -> dict[str, Any]:
        tokenizer = from_pretrained(transformers.AutoTokenizer.from_pretrained, location)
        feature_extractor = from_pretrained(transformers.ClapFeatureExtractor.from_pretrained, location)
        return {"tokenizer": tokenizer, "feature_extractor": feature_extractor}

    def _text_limit(self, shared: _Checkpoint) -> int:
        # RoBERTa-style positions start after the padding index, so two of them are never used.
        text_config = shared.model.config.text_config
        model_limit = int(text_config.max_position_embeddings) - int(text_config.pad_token_id or 0) - 1
        tokenizer_limit = int(getattr(shared.parts["tokenizer"], "model_max_length", 0) or 0)
        return min(tokenizer_limit, model_limit) if tokenizer_limit > 0 else model_limit

    @property
    def sample_rate(self) -> int:
        """The rate audio is resampled to before feature extraction."""
        return int(self._shared.parts["feature_extractor"].sampling_rate)

    def _embed_other(self, items: list[Any]) -> np.ndarray:
        import torch

        features, longer = [], []
        for i, item in enumerate(items):
            wave = to_audio(item, sample_rate=self.sample_rate)
            if wave.size == 0:
                raise SchemaError(f"audio input {i} of the batch has no samples")
            feats = self._features(wave)
            features.append(feats["input_features"])
            longer.append(feats["is_longer"])
        input_features = torch.from_numpy(np.concatenate(features)).to(self.device, self._shared.dtype)
        is_longer = torch.from_numpy(np.concatenate(longer)).to(self.device)
        with torch.inference_mode():
            out = self._shared.model.get_audio_features(input_features=input_features, is_longer=is_longer)
        return unit_rows(out)

    def _features(self, wave: np.ndarray) -> Any:
        """Log-mel features of one clip, as the checkpoint's extractor computes them (seeded)."""
        extractor = self._shared.parts["feature_extractor"]
        with _RNG_LOCK:
            state = np.random.get_state()
            np.random.seed(_SEED)
            try:
                return extractor(wave, sampling_rate=self.sample_rate, return_tensors="np")
            finally:
                np.random.set_state(state)
