"""Translator families by name, loaded lazily."""

from __future__ import annotations

import importlib
from typing import Any

from polymodal.errors import ConfigError
from polymodal.translate.base import Translator, TranslatorConfig

__all__ = ["FAMILIES", "load"]

FAMILIES: dict[str, str] = {
    "imagenet-labels": "polymodal.translate.labels:ImageNetLabeler",
    "rapidocr": "polymodal.translate.ocr:RapidOcr",
    "pocketsphinx": "polymodal.translate.asr:PocketSphinx",
}

_CACHE: dict[str, Translator] = {}


def load(config: TranslatorConfig | dict[str, Any] | None = None, /, **kwargs: Any) -> Translator:
    """Build (or reuse) a translator from a config or keyword arguments.

    Raises:
        ConfigError: unknown family (lists the known ones).
        OptionalDependencyError: its package is missing (names the extra).
    """
    cfg = TranslatorConfig.model_validate(config if config is not None else kwargs)
    key = cfg.model_dump_json()
    if key in _CACHE:
        return _CACHE[key]
    target = FAMILIES.get(cfg.family)
    if target is None:
        raise ConfigError(f"unknown translator family {cfg.family!r}; known: {', '.join(sorted(FAMILIES))}")
    module_name, _, cls_name = target.partition(":")
    translator: Translator = getattr(importlib.import_module(module_name), cls_name)(cfg)
    _CACHE[key] = translator
    return translator
