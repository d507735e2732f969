"""CLIP: text and images in one vector space, with transformers' ``CLIPModel``.

Works with any CLIP checkpoint in the Hugging Face format (``openai/clip-vit-base-patch32``,
the LAION OpenCLIP ViTs, a local directory written by ``save_pretrained``). The text and the
image embedder of one checkpoint share one loaded model and one ``space``, so a text query
searches image vectors.

This module also holds the machinery CLAP reuses (:class:`HFDualEncoder`): options, device and
dtype, local-first loading with clear errors, the shared-model cache and text embedding.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from polymodal.embed.base import Embedder, EmbedderConfig, resolve_device, to_rgb_array
from polymodal.embed.hub import quiet_hf, resolve_model
from polymodal.errors import ConfigError, OptionalDependencyError, SchemaError

__all__ = ["ClipEmbedder", "HFDualEncoder"]

_OPTIONS = ("batch_size", "device", "fp16", "max_length")


@dataclass(eq=False)
class _Checkpoint:
    """One loaded checkpoint, shared by the embedders of every modality on one device and dtype."""

    model: Any
    device: str
    dtype: Any
    parts: dict[str, Any] = field(default_factory=dict)


# Weak values: a checkpoint lives as long as some embedder uses it, and is freed after.
_SHARED: weakref.WeakValueDictionary[tuple[str, ...], _Checkpoint] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


class HFDualEncoder(Embedder):
    """Base of the two-tower transformers families (CLIP, CLAP): text plus one other modality.

    Options: ``device`` ("auto", "cpu", "cuda", "cuda:1"), ``batch_size`` (32), ``fp16``
    (default: on for CUDA), ``max_length`` (text tokens; never more than the model can take).
    """

    label: ClassVar[str] = ""  # "CLIP", used in messages
    model_type: ClassVar[str] = ""  # config.model_type the checkpoint must have
    other_modality: ClassVar[str] = ""  # "image" or "audio"

    def __init__(self, config: EmbedderConfig) -> None:
        super().__init__(config)
        if config.modality not in ("text", self.other_modality):
            raise ConfigError(
                f"{self.label} embeds text and {self.other_modality}, not {config.modality}; "
                f"set modality='text' or modality={self.other_modality!r}"
            )
        unknown = sorted(set(config.options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown {self.label} option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}")
        transformers = _require_transformers(self.label)
        import torch

        device = resolve_device(config.options.get("device"))
        fp16 = bool(config.options.get("fp16", device.startswith("cuda")))
        dtype = torch.float16 if fp16 else torch.float32
        location = resolve_model(config.model)
        key = (self.family, location, device, str(dtype))
        with _LOCK:
            shared = _SHARED.get(key)
            if shared is None:
                quiet_hf()
                shared = self._load(transformers, location, device, dtype)
                _SHARED[key] = shared
        self._shared = shared
        self._dim = int(shared.model.config.projection_dim)
        self._max_length = self._text_limit(shared)
        if "max_length" in config.options:
            self._max_length = min(self._max_length, int(config.options["max_length"]))
            if self._max_length < 3:
                raise ConfigError(f"max_length must be at least 3 tokens, got {config.options['max_length']}")

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self) -> Any:
        """The underlying transformers model (shared by the text and the other embedder)."""
        return self._shared.model

    @property
    def device(self) -> str:
        return self._shared.device

    def _load(self, transformers: Any, location: str, device: str, dtype: Any) -> _Checkpoint:
        """Load config, weights and pre-processing; every failure becomes a ConfigError that says what to do."""
        model_name = self.config.model
        _check_path(model_name, self.label)
        try:
            hf_config = from_pretrained(transformers.AutoConfig.from_pretrained, location)
            if hf_config.model_type != self.model_type:
                raise ConfigError(
                    f"{model_name!r} is a {hf_config.model_type!r} checkpoint, not {self.label}; "
                    f"give a {self.label} checkpoint or use the embedder family made for it"
                )
            model = from_pretrained(
                self._model_class(transformers).from_pretrained, location, config=hf_config, dtype=dtype
            )
            parts = self._load_parts(transformers, location)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise _load_error(self.label, model_name, exc) from exc
        model = model.to(device).eval()
        return _Checkpoint(model=model, device=device, dtype=dtype, parts=parts)

    def _model_class(self, transformers: Any) -> Any:
        raise NotImplementedError

    def _load_parts(self, transformers: Any, location: str) -> dict[str, Any]:
        """The tokenizer (key "tokenizer") and the other modality's pre-processor."""
        raise NotImplementedError

    def _text_limit(self, shared: _Checkpoint) -> int:
        """The most text tokens the model takes (specials included)."""
        tokenizer_limit = int(getattr(shared.parts["tokenizer"], "model_max_length", 0) or 0)
        model_limit = int(shared.model.config.text_config.max_position_embeddings)
        return min(tokenizer_limit, model_limit) if tokenizer_limit > 0 else model_limit

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        if self.modality == "text":
            return self._embed_texts(items)
        return self._embed_other(items)

    def _embed_texts(self, items: list[Any]) -> np.ndarray:
        bad = next((x for x in items if not isinstance(x, str)), None)
        if bad is not None:
            raise SchemaError(f"{self.label} text embedder got {type(bad).__name__}; give strings")
        import torch

        enc = self._shared.parts["tokenizer"](
            items, padding=True, truncation=True, max_length=self._max_length, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode():
            out = self._shared.model.get_text_features(**inputs)
        return unit_rows(out)

    def _embed_other(self, items: list[Any]) -> np.ndarray:
        raise NotImplementedError


class ClipEmbedder(HFDualEncoder):
    """A CLIP checkpoint (hub name or local path) embedding text or images; outputs are L2-normalised.

    Images are anything :func:`~polymodal.embed.base.to_rgb_array` accepts (arrays, paths,
    ``ImageUrl`` fields, bytes, PIL images); they are resized, centre-cropped and normalised as
    the checkpoint's own image processor says (its Pillow implementation, no torchvision).
    Texts longer than the model's context (77 tokens for OpenAI CLIP) are truncated.

    Options: see :class:`HFDualEncoder`.
    """

    family = "clip"
    label = "CLIP"
    model_type = "clip"
    other_modality = "image"

    def _model_class(self, transformers: Any) -> Any:
        return transformers.CLIPModel

    def _load_parts(self, transformers: Any, location: str) -> dict[str, Any]:
        tokenizer = from_pretrained(transformers.AutoTokenizer.from_pretrained, location)
        # transformers 5 names the Pillow implementation CLIPImageProcessorPil (CLIPImageProcessor wants
        # torchvision there); in transformers 4 CLIPImageProcessor is the Pillow one.
        image_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        image_processor = from_pretrained(image_cls.from_pretrained, location)
        return {"tokenizer": tokenizer, "image_processor": image_processor}

    def _embed_other(self, items: list[Any]) -> np.ndarray:
        import torch

        images = [to_rgb_array(x) for x in items]
        pixels = self._shared.parts["image_processor"](
            images=images, return_tensors="pt", input_data_format="channels_last"
        )["pixel_values"]
        with torch.inference_mode():
            out = self._shared.model.get_image_features(pixel_values=pixels.to(self.device, self._shared.dtype))
        return unit_rows(out)


def unit_rows(out: Any) -> np.ndarray:
    """Features from a ``get_*_features`` result (a tensor in transformers 4, an output with
    ``pooler_output`` in 5) as L2-normalised float32 rows on the CPU."""
    import torch

    feats = out if isinstance(out, torch.Tensor) else out.pooler_output
    feats = torch.nn.functional.normalize(feats.float(), dim=-1)
    return np.asarray(feats.cpu().numpy(), dtype=np.float32)


def from_pretrained(loader: Callable[..., Any], location: str, **kwargs: Any) -> Any:
    """Call a ``from_pretrained`` cache-first: a hub name already in the local Hugging Face cache
    loads without the network (and without its retries when the hub is unreachable)."""
    if Path(location).exists() or _hf_offline():
        return loader(location, **kwargs)
    try:
        return loader(location, local_files_only=True, **kwargs)
    except OSError:
        return loader(location, **kwargs)


def _hf_offline() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _require_transformers(label: str) -> Any:
    try:
        import torch  # noqa: F401
        import transformers
    except ImportError:
        raise OptionalDependencyError.for_package("transformers", "models", f"{label} embeddings") from None
    return transformers


def _check_path(model: str, label: str) -> None:
    """A name that can only be a path (hub names are 'name' or 'org/name') must exist."""
    looks_like_path = model.startswith(("/", "./", "../", "~")) or model.count("/") > 1 or "\\" in model
    if looks_like_path and not Path(model).expanduser().exists():
        raise ConfigError(
            f"{label} model directory {model!r} does not exist; give a directory written by save_pretrained "
            "(with config.json and the weights) or a hub name such as 'org/name'"
        )


def _load_error(label: str, model: str, exc: BaseException) -> ConfigError:
    if Path(model).expanduser().exists():
        hint = (
            f"the directory exists but does not hold a loadable {label} checkpoint (config.json, weights, "
            "tokenizer and processor files, as save_pretrained writes them)"
        )
    else:
        hint = (
            f"if the model hub is unreachable from here, download the checkpoint where it is reachable "
            f"(hf download {model} --local-dir DIR), copy DIR here and give model=DIR, or fill the local "
            "Hugging Face cache and set HF_HUB_OFFLINE=1"
        )
    return ConfigError(f"cannot load {label} model {model!r}: {exc}; {hint}")
