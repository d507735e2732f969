"""Real media for the translator tests: photos shipped in scikit-image, scikit-learn and
matplotlib, text rendered with the DejaVu Sans font that ships in matplotlib's wheel (no system
font), and a word error rate helper for speech tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """Real photos with known content: a tabby cat, an espresso, a rocket on its pad, a daisy,
    a Navy officer in uniform (Grace Hopper)."""
    skdata = pytest.importorskip("skimage.data")
    image = pytest.importorskip("PIL.Image")
    cbook = pytest.importorskip("matplotlib.cbook")
    out = {"cat": skdata.chelsea(), "coffee": skdata.coffee(), "rocket": skdata.rocket()}
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        out["hopper"] = np.asarray(image.open(f).convert("RGB"))
    datasets = pytest.importorskip("sklearn.datasets")
    out["flower"] = datasets.load_sample_images().images[1]
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """One intra-op thread while these tests run: on a shared 2-core machine (or under
    pytest-xdist) torch's thread pool oversubscribes the cores and one forward pass took 4.5 s
    instead of 0.12 s. The previous setting is restored afterwards."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def font_path() -> Path:
    """DejaVu Sans from matplotlib's own data (the same file on every machine with matplotlib)."""
    matplotlib = pytest.importorskip("matplotlib")
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if not path.is_file():
        pytest.skip(f"matplotlib ships no {path.name}")
    return path


def render_lines(
    font_path: Path,
    lines: list[str],
    *,
    size: int = 32,
    width: int = 720,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Black text lines on a plain background, as an HxWx3 uint8 array."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_path), size)
    img = Image.new("RGB", (width, 40 + len(lines) * size * 2), background)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((24, 24 + i * size * 2), line, fill=(0, 0, 0), font=font)
    return np.asarray(img)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance divided by the number of reference words."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1] / max(1, len(ref))


@pytest.fixture(scope="session")
def render_text(font_path: Path):
    """``render_text(["line one", "line two"], size=32)`` -> image array (see :func:`render_lines`)."""

    def render(lines: list[str], **kwargs: object) -> np.ndarray:
        return render_lines(font_path, lines, **kwargs)  # type: ignore[arg-type]

    return render


@pytest.fixture(scope="session")
def wer():
    """The :func:`word_error_rate` function."""
    return word_error_rate
