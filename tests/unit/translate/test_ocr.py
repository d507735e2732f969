"""RapidOCR on text rendered with a TrueType font from matplotlib's wheel, and on real photos."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("rapidocr_onnxruntime")

from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.translate import TextSpan, Translation, TranslatorConfig, load
from polymodal.translate.ocr import RapidOcr, reading_order

LINES = ["Polymodal reads text", "Invoice 2024 total 58.30", "Search images by their words"]


def _squash(text: str) -> str:
    """Case and spacing aside (the PP-OCR recogniser sometimes drops spaces between words)."""
    return "".join(text.split()).lower()


@pytest.fixture(scope="module")
def ocr() -> RapidOcr:
    engine = load(family="rapidocr", options={"device": "cpu"})
    assert isinstance(engine, RapidOcr)
    return engine


@pytest.fixture(scope="module")
def document(render_text) -> np.ndarray:
    return render_text(LINES)


@pytest.fixture(scope="module")
def read(ocr, document) -> Translation:
    return ocr.translate_one(document)


def test_reads_rendered_lines_in_order(read):
    lines = read.text.split("\n")
    assert [_squash(line) for line in lines] == [_squash(line) for line in LINES], read.text
    assert read.text.startswith("Polymodal reads text")


def test_spans_carry_scores(read):
    assert read.spans
    assert all(isinstance(s, TextSpan) and 0.5 <= s.score <= 1.0 for s in read.spans)
    assert _squash("".join(s.text for s in read.spans)) == _squash("".join(LINES))


def test_an_image_without_text_gives_empty_text(ocr, photos):
    blank = np.full((120, 320, 3), 255, np.uint8)
    assert ocr.translate([blank, photos["cat"]]) == [Translation(text=""), Translation(text="")]


def test_paths_and_pil_images_read_the_same(ocr, render_text, tmp_path):
    from PIL import Image

    img = render_text(["Hello polymodal"], width=420)
    path = tmp_path / "hello.png"
    Image.fromarray(img).save(path)
    texts = [t.text for t in ocr.translate([path, Image.fromarray(img)])]
    assert [_squash(t) for t in texts] == ["hellopolymodal"] * 2


def test_text_on_a_video_frame_sized_photo(ocr, photos, render_text):
    """A caption burnt into the bottom of a photo, as in a video frame."""
    frame = photos["coffee"].copy()
    caption = render_text(["Fresh espresso"], width=frame.shape[1], size=40)
    frame[-caption.shape[0] :] = caption
    assert "freshespresso" in _squash(ocr.translate_one(frame).text)


def test_reading_order_groups_rows_left_to_right():
    def box(x: float, y: float, w: float = 80, h: float = 20) -> np.ndarray:
        return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)

    boxes = [
        (box(300, 52), "right2", 0.9),
        (box(10, 10), "left1", 0.9),
        (box(10, 50), "left2", 0.9),
        (box(300, 8, h=26), "right1", 0.9),
        (box(10, 120), "last", 0.9),
    ]
    rows = reading_order(boxes)
    assert [[text for _, text, _ in row] for row in rows] == [["left1", "right1"], ["left2", "right2"], ["last"]]


def test_bad_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"config\.yaml"):
        load(family="rapidocr", model=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="device"):
        load(family="rapidocr", options={"device": "tpu"})
    with pytest.raises(ConfigError, match="det_max_side"):
        load(family="rapidocr", options={"det_max_side": 4})


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[models\]"):
        RapidOcr(TranslatorConfig(family="rapidocr"))
