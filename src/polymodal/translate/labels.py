"""Image -> ImageNet labels: a short caption of class names, so text search reaches photos.

Uses the classifier head of the same EfficientNet the image embedder uses (one network in
memory for both). Class names ship with polymodal (``data/imagenet_classes.tsv``, from timm,
Apache-2.0) and are readable: "tabby cat", not "n02123045".
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from polymodal.embed.image import DEFAULT_MODEL, load_efficientnet, preprocess
from polymodal.errors import ConfigError
from polymodal.translate.base import TextSpan, Translation, Translator, TranslatorConfig

__all__ = ["ImageNetLabeler", "imagenet_classes"]


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, str], ...]:
    """The 1000 ImageNet-1k classes in model output order, as ``(wordnet_id, readable name)``."""
    text = resources.files("polymodal.translate").joinpath("data/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return tuple((row[0], row[1]) for row in rows)


class ImageNetLabeler(Translator):
    """The top ImageNet classes of each image, as a caption and scored spans.

    ``translate([img])[0]`` gives ``Translation(text="tiger cat, Egyptian cat, tabby cat",
    spans=(TextSpan("tiger cat", score=0.38), ...))``, best first.

    Options: ``top_k`` (5), ``min_prob`` (0.01; classes below it are left out, so an image
    the model is unsure about gets a short or empty caption), ``device``, ``batch_size`` (16),
    ``arch`` (for a local ``.pth``). ``model``: "default" (packaged EfficientNet-lite0) or a
    ``.pth`` path.
    """

    family = "imagenet-labels"
    source = "image"

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__(config)
        opts = config.options
        self.top_k = int(opts.get("top_k", 5))
        self.min_prob = float(opts.get("min_prob", 0.01))
        if self.top_k <= 0:
            raise ConfigError(f"top_k must be positive, got {self.top_k}")
        if not 0.0 <= self.min_prob <= 1.0:
            raise ConfigError(f"min_prob must lie in [0, 1], got {self.min_prob}")
        model = DEFAULT_MODEL if config.model == "default" else config.model
        self._model = load_efficientnet(model, device=opts.get("device"), arch=opts.get("arch"))
        self._names = [name for _, name in imagenet_classes()]
        classes = int(self._model.net._fc.out_features)
        if classes != len(self._names):
            raise ConfigError(f"model {model!r} has {classes} classes, not the {len(self._names)} ImageNet-1k ones")

    def _translate_batch(self, items: list[Any]) -> list[Translation]:
        _, logits = self._model.forward(preprocess(items, self._model.image_size))
        probs = logits.float().softmax(dim=1)
        top = probs.topk(min(self.top_k, probs.shape[1]), dim=1)
        out: list[Translation] = []
        for values, indices in zip(top.values.cpu().tolist(), top.indices.cpu().tolist(), strict=True):
            spans = tuple(
                TextSpan(self._names[i], score=float(p))
                for p, i in zip(values, indices, strict=True)
                if p >= self.min_prob
            )
            out.append(Translation(text=", ".join(s.text for s in spans), spans=spans))
        return out
