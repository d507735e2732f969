"""Audio and video decoding with PyAV (FFmpeg): mono float32 audio, RGB frames with timestamps."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import MediaError, OptionalDependencyError
from polymodal.media.types import AudioData, VideoData

__all__ = ["decode_audio", "decode_video", "iter_video_frames", "probe"]

#: ``decode_video`` refuses to hold more decoded pixels than this without an explicit limit.
MAX_DECODED_BYTES = 2 << 30


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise OptionalDependencyError.for_package("av", "video", "Audio and video decoding") from None
    return av


def _open(data: bytes | Path, uri: str) -> Any:
    av = _av()
    try:
        return av.open(str(data) if isinstance(data, Path) else io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise MediaError(f"cannot open media: {exc}", uri=uri or str(data)[:80]) from exc


def probe(data: bytes | Path, *, uri: str = "") -> dict[str, Any]:
    """Duration, stream kinds, size and frame rate, without decoding frames."""
    with _open(data, uri) as container:
        out: dict[str, Any] = {"duration": _duration(container), "video": None, "audio": None}
        if container.streams.video:
            v = container.streams.video[0]
            out["video"] = {"width": v.codec_context.width, "height": v.codec_context.height,
                            "fps": float(v.average_rate or v.guessed_rate or 0), "codec": v.codec_context.name}
        if container.streams.audio:
            a = container.streams.audio[0]
            out["audio"] = {"sample_rate": a.codec_context.sample_rate, "channels": a.codec_context.channels,
                            "codec": a.codec_context.name}
        return out


def _duration(container: Any) -> float:
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    for s in container.streams:
        if s.duration is not None and s.time_base is not None:
            return float(s.duration * s.time_base)
    return 0.0


def decode_audio(data: bytes | Path, *, uri: str = "", sample_rate: int | None = None) -> AudioData:
    """Decode the first audio stream to mono float32, resampled to ``sample_rate`` if given.

    Raises:
        MediaError: no audio stream, or FFmpeg cannot decode the data.
    """
    av = _av()
    with _open(data, uri) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream", uri=uri or str(data)[:80])
        stream = container.streams.audio[0]
        rate = int(sample_rate or stream.codec_context.sample_rate or 16000)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep its own clock (avoids gaps on odd pts)
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot decode audio: {exc}", uri=uri or str(data)[:80]) from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return AudioData(samples=samples, sample_rate=rate)


def iter_video_frames(
    data: bytes | Path,
    *,
    uri: str = "",
    fps: float | None = None,
    keyframes: bool = False,
    start: float = 0.0,
    end: float | None = None,
    size: tuple[int, int] | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(timestamp_seconds, rgb_frame)`` pairs.

    Args:
        fps: keep at most this many frames per second (None keeps every decoded frame).
        keyframes: decode only keyframes (fast: the decoder skips the others).
        start, end: time window in seconds.
        size: ``(width, height)`` to scale frames to.
    """
    av = _av()
    with _open(data, uri) as container:
        if not container.streams.video:
            raise MediaError("no video stream", uri=uri or str(data)[:80])
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if keyframes:
            stream.codec_context.skip_frame = "NONKEY"
        if start > 0 and stream.time_base is not None:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        step = 1.0 / fps if fps else 0.0
        next_t = start
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else next_t
                if t < start - 1e-6:
                    continue
                if end is not None and t >= end:
                    break
                if step:
                    if t + 1e-6 < next_t:
                        continue
                    next_t += step * (1 + int((t - next_t) // step))  # stay on the sampling grid
                kw = {"width": size[0], "height": size[1]} if size else {}
                yield t, frame.to_ndarray(format="rgb24", **kw)
        except av.error.FFmpegError as exc:
            raise MediaError(f"cannot decode video: {exc}", uri=uri or str(data)[:80]) from exc


def decode_video(
    data: bytes | Path,
    *,
    uri: str = "",
    fps: float | None = None,
    keyframes: bool = False,
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
    audio: bool = True,
    audio_rate: int | None = None,
) -> VideoData:
    """Decode frames (optionally sampled) with their timestamps, plus the audio track.

    Raises:
        MediaError: undecodable data, no video stream, or more than ``MAX_DECODED_BYTES`` of
            frames without ``fps``/``max_frames``/``size`` to bound them.
    """
    info = probe(data, uri=uri)
    if info["video"] is None:
        raise MediaError("no video stream", uri=uri or str(data)[:80])
    est_fps = fps or info["video"]["fps"] or 30.0
    w, h = size or (info["video"]["width"], info["video"]["height"])
    est = int(info["duration"] * est_fps + 1) * w * h * 3
    if max_frames is None and est > MAX_DECODED_BYTES:
        raise MediaError(
            f"decoding every frame would take about {est / 2**30:.1f} GiB; pass fps=, max_frames= or size=",
            uri=uri or str(data)[:80],
        )
    times: list[float] = []
    frames: list[np.ndarray] = []
    for t, frame in iter_video_frames(data, uri=uri, fps=fps, keyframes=keyframes, size=size):
        times.append(t)
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    stacked = np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)
    track = None
    if audio and info["audio"] is not None:
        track = decode_audio(data, uri=uri, sample_rate=audio_rate)
    return VideoData(
        frames=stacked,
        timestamps=np.asarray(times, dtype=np.float64),
        audio=track,
        fps=float(info["video"]["fps"] or 0.0),
        duration=float(info["duration"]),
    )
