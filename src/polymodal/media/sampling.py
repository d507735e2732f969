"""Choosing which video frames to look at: fixed rate, keyframes, or scene changes.

Each sampler yields ``(timestamp, frame)`` pairs while decoding, so a long video is never held
in memory. Scene-change sampling compares consecutive small colour thumbnails and keeps a frame
when the picture changes by more than ``threshold`` (mean absolute difference in [0, 1]),
with at most ``max_gap`` seconds between kept frames so long static shots are still covered.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from polymodal.errors import ConfigError
from polymodal.media.av_io import iter_video_frames

__all__ = ["Sampling", "sample_frames"]

Sampling = Literal["fixed", "keyframes", "scenes"]


def _thumb(frame: np.ndarray, size: int = 32) -> np.ndarray:
    h, w = frame.shape[:2]
    ys = np.linspace(0, h - 1, size).astype(int)
    xs = np.linspace(0, w - 1, size).astype(int)
    return np.asarray(frame[ys][:, xs], dtype=np.float32) / 255.0  # colour kept: red -> blue is a cut


def sample_frames(
    data: bytes | Path,
    *,
    uri: str = "",
    mode: Sampling = "fixed",
    every: float = 2.0,
    threshold: float = 0.12,
    max_gap: float = 10.0,
    size: tuple[int, int] | None = None,
    max_frames: int | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield sampled ``(timestamp_seconds, rgb_frame)`` pairs.

    Args:
        mode: ``"fixed"`` one frame every ``every`` seconds; ``"keyframes"`` the encoder's
            keyframes (fastest: other frames are not decoded); ``"scenes"`` the first frame
            and every frame that differs from the last kept one by more than ``threshold``,
            checking ``1/every``... at most 4 frames per second, and at least every ``max_gap`` s.
        size: ``(width, height)`` to scale frames to (decoding is cheaper when smaller).
    """
    if every <= 0:
        raise ConfigError(f"every must be positive, got {every}")
    if mode == "fixed":
        frames = iter_video_frames(data, uri=uri, fps=1.0 / every, size=size)
    elif mode == "keyframes":
        frames = iter_video_frames(data, uri=uri, keyframes=True, size=size)
    elif mode == "scenes":
        frames = _scenes(data, uri, threshold=threshold, max_gap=max_gap, size=size)
    else:
        raise ConfigError(f"unknown sampling mode {mode!r}; use 'fixed', 'keyframes' or 'scenes'")
    for count, (t, frame) in enumerate(frames, 1):
        yield t, frame
        if max_frames is not None and count >= max_frames:
            return


def _scenes(
    data: bytes | Path, uri: str, *, threshold: float, max_gap: float, size: tuple[int, int] | None
) -> Iterator[tuple[float, np.ndarray]]:
    last: np.ndarray | None = None
    last_t = -np.inf
    for t, frame in iter_video_frames(data, uri=uri, fps=4.0, size=size):
        thumb = _thumb(frame)
        if last is None or float(np.abs(thumb - last).mean()) > threshold or t - last_t >= max_gap:
            yield t, frame
            last, last_t = thumb, t
