"""Decoded media values: what ``.load()`` returns for audio, video and meshes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AudioData", "MeshData", "VideoData"]


@dataclass(frozen=True, slots=True, eq=False)
class AudioData:
    """Mono float32 samples in [-1, 1] and their sample rate."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0

    def slice(self, start: float, end: float) -> AudioData:
        """The samples between ``start`` and ``end`` seconds (a view, no copy)."""
        lo = max(0, round(start * self.sample_rate))
        hi = max(lo, round(end * self.sample_rate))
        return AudioData(self.samples[lo:hi], self.sample_rate)


@dataclass(frozen=True, slots=True, eq=False)
class VideoData:
    """Decoded frames (n, h, w, 3) uint8 with presentation timestamps in seconds, and audio."""

    frames: np.ndarray
    timestamps: np.ndarray
    audio: AudioData | None
    fps: float
    duration: float

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True, slots=True, eq=False)
class MeshData:
    """Triangle mesh: vertices (n, 3) float32 and faces (m, 3) int64 (empty for point clouds)."""

    vertices: np.ndarray
    faces: np.ndarray
