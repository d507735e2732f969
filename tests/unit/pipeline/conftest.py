"""Pipeline test setup: registers support.py as ``pipeline_support`` (tests run with
``--import-mode=importlib``, so sibling modules are not importable by name) and provides
text files to index."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

if "pipeline_support" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("pipeline_support", Path(__file__).with_name("support.py"))
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["pipeline_support"] = _module
    _spec.loader.exec_module(_module)


@pytest.fixture
def texts(tmp_path: Path) -> dict[str, Path]:
    """Four short text files on distinct topics."""
    content = {
        "cats": "Cats purr, chase mice and sleep in the sun all afternoon.",
        "finance": "The stock market fell sharply after the central bank raised interest rates.",
        "volcano": "The volcano erupted, sending lava and ash high above the island.",
        "football": "The striker scored twice and the team won the championship final.",
    }
    folder = tmp_path / "docs"
    folder.mkdir()
    out = {}
    for name, text in content.items():
        path = folder / f"{name}.txt"
        path.write_text(text + "\n", encoding="utf-8")
        out[name] = path
    return out
