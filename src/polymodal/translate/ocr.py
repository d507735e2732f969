"""Image (or video frame) -> text with RapidOCR: PP-OCR detection and recognition in ONNX.

The models ship inside the ``rapidocr-onnxruntime`` wheel, so OCR works offline. Detected
boxes are put in reading order (rows top to bottom, boxes in a row left to right); each box
is one span with its recognition score, each row one line of ``text``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polymodal.embed.base import to_rgb_array
from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.translate.base import TextSpan, Translation, Translator, TranslatorConfig

__all__ = ["RapidOcr", "reading_order"]


def _onnx_cuda(device: str | None) -> bool:
    """Whether to ask onnxruntime for CUDA: "auto" uses it when the CUDA provider is installed."""
    if device in (None, "auto"):
        import onnxruntime  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if str(device) == "cpu":
        return False
    if str(device).startswith("cuda"):
        return True
    raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def reading_order(boxes: list[tuple[np.ndarray, str, float]]) -> list[list[tuple[np.ndarray, str, float]]]:
    """Group ``(corners, text, score)`` boxes into rows (top to bottom), each row left to right.

    A box joins a row when its vertical centre lies within the row's vertical extent, so
    text of different sizes on one baseline stays one line.
    """
    rows: list[tuple[float, float, list[tuple[np.ndarray, str, float]]]] = []
    for box in sorted(boxes, key=lambda b: float(b[0][:, 1].min())):
        top, bottom = float(box[0][:, 1].min()), float(box[0][:, 1].max())
        centre = (top + bottom) / 2
        for i, (row_top, row_bottom, members) in enumerate(rows):
            if row_top <= centre <= row_bottom:
                members.append(box)
                rows[i] = (min(row_top, top), max(row_bottom, bottom), members)
                break
        else:
            rows.append((top, bottom, [box]))
    return [sorted(members, key=lambda b: float(b[0][:, 0].min())) for _, _, members in rows]


class RapidOcr(Translator):
    """Text in images and video frames, line by line; an image without text gives ``""``.

    Options: ``min_score`` (0.5: recognitions below it are dropped), ``det_max_side`` (960:
    larger images are shrunk for text *detection* only; raise it for fine print in big scans),
    ``device`` ("auto", "cpu", "cuda": CUDA needs ``onnxruntime-gpu``), ``threads``
    (onnxruntime intra-op threads, default all cores), ``batch_size`` (16).
    ``model``: "default" (the packaged PP-OCR models) or the path of a RapidOCR
    ``config.yaml`` naming other models.
    """

    family = "rapidocr"
    source = "image"

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__(config)
        try:
            from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped,import-not-found,unused-ignore]
        except ImportError as exc:
            if exc.name in ("rapidocr_onnxruntime", "onnxruntime"):
                raise OptionalDependencyError.for_package("rapidocr-onnxruntime", "models", "OCR") from None
            # Installed, but a native library is missing (OpenCV wants libGL and glib on Linux).
            raise OptionalDependencyError(
                f"OCR cannot import rapidocr-onnxruntime: {exc}. On Debian/Ubuntu OpenCV needs "
                "'apt-get install libgl1 libglib2.0-0'",
                package="rapidocr-onnxruntime",
                extra="models",
            ) from exc
        opts = config.options
        self.min_score = float(opts.get("min_score", 0.5))
        cuda = _onnx_cuda(opts.get("device"))
        # PaddleOCR's own detection default (longest side at most 960 px). RapidOCR's wheel instead
        # upscales the *shortest* side to 736 px, which makes small images (video frames, crops)
        # 10-50x slower to read and was no more accurate in our tests. Recognition always reads
        # crops of the full-resolution image.
        max_side = int(opts.get("det_max_side", 960))
        if max_side < 32:
            raise ConfigError(f"det_max_side must be at least 32 pixels, got {max_side}")
        kwargs: dict[str, Any] = {
            "text_score": self.min_score,
            "det_use_cuda": cuda,
            "cls_use_cuda": cuda,
            "rec_use_cuda": cuda,
            "det_limit_type": "max",
            "det_limit_side_len": max_side,
        }
        if "threads" in opts:
            kwargs["intra_op_num_threads"] = int(opts["threads"])
        config_path: str | None = None
        if config.model != "default":
            if not Path(config.model).is_file():
                raise ConfigError(f"RapidOCR model {config.model!r} is neither 'default' nor a config.yaml file")
            config_path = config.model
        self._engine = RapidOCR(config_path=config_path, **kwargs)

    def _translate_batch(self, items: list[Any]) -> list[Translation]:
        return [self._read(to_rgb_array(item)) for item in items]

    def _read(self, rgb: np.ndarray) -> Translation:
        # RapidOCR takes arrays as OpenCV's BGR.
        result, _ = self._engine(np.ascontiguousarray(rgb[..., ::-1]))
        if not result:
            return Translation(text="")
        boxes = [
            (np.asarray(corners, np.float32), str(text).strip(), float(score))
            for corners, text, score in result
            if str(text).strip() and float(score) >= self.min_score
        ]
        lines: list[str] = []
        spans: list[TextSpan] = []
        for row in reading_order(boxes):
            lines.append(" ".join(text for _, text, _ in row))
            spans.extend(TextSpan(text, score=score) for _, text, score in row)
        return Translation(text="\n".join(lines), spans=tuple(spans))
