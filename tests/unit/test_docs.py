"""The examples in README.md and docs/*.md run as written.

Every ```python block of a page is executed, in order, in one fresh namespace per page, inside
a temporary working directory, so the pages can build on their own earlier blocks (define a
schema once, use it below) and nothing leaks between pages. A block whose first line is
``# doc: skip`` is not run (for the rare example that needs something a test machine lacks,
such as real CLIP weights); use it sparingly.

When a block fails, the traceback points at the Markdown file and line of the failing
statement: fix the page (or the code it documents), then run
``python -m pytest tests/unit/test_docs.py -q``.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK = "# doc: skip"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def pages() -> list[Path]:
    """README.md first, then the docs pages in name order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(first line number, code)`` of every ```python block, in order."""
    blocks = []
    for m in _FENCE.finditer(text):
        line = text.count("\n", 0, m.start(1)) + 1
        blocks.append((line, m.group(1)))
    return blocks


def test_fence_parser_finds_blocks_and_lines() -> None:
    text = "intro\n```python\nx = 1\n```\ntext\n```bash\nls\n```\n```python\ny = x + 1\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (10, "y = x + 1\n")]


def test_every_docs_page_has_a_runnable_example() -> None:
    """Each page (benchmarks aside) shows at least one example that runs."""
    for page in (ROOT / "docs").glob("*.md"):
        if page.name == "benchmarks.md":
            continue
        runnable = [c for _, c in python_blocks(page.read_text("utf-8")) if not c.startswith(SKIP_MARK)]
        assert runnable, f"{page.relative_to(ROOT)} has no runnable ```python example"


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # A real module (registered in sys.modules), so functions and classes an example defines can
    # be pickled by reference, as they are from a user's script (process pools, stores).
    name = "polymodal_docs_" + re.sub(r"\W", "_", page.stem)
    module = types.ModuleType(name)
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, name, module)
    text = page.read_text("utf-8")
    for line, code in python_blocks(text):
        if code.startswith(SKIP_MARK):
            continue
        # Pad with blank lines so that tracebacks show the page's own line numbers.
        compiled = compile("\n" * (line - 1) + code, str(page), "exec")
        exec(compiled, module.__dict__)  # running the documentation is the point
