"""Audio and video decoding with PyAV (FFmpeg): mono float32 audio, RGB frames with timestamps."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.media.source import media_error
from polymodal.media.types import AudioData, VideoData

__all__ = ["MAX_DECODED_BYTES", "decode_audio", "decode_video", "iter_video_frames", "probe"]

#: ``decode_video`` refuses to hold more decoded pixels than this without an explicit limit.
MAX_DECODED_BYTES = 2 << 30


def _av(extra: str) -> Any:
    try:
        import av
    except ImportError:
        purpose = "Audio decoding" if extra == "audio" else "Video decoding"
        raise OptionalDependencyError.for_package("av", extra, purpose) from None
    return av


def _name(data: bytes | Path, uri: str) -> str:
    return uri or (str(data) if isinstance(data, Path) else "<bytes>")


def _reason(exc: BaseException) -> str:
    """FFmpeg's own words without PyAV's ``[Errno ...]`` prefix and file name (the URI leads the message)."""
    return str(getattr(exc, "strerror", None) or exc)


def _open(data: bytes | Path, uri: str, extra: str) -> Any:
    av = _av(extra)
    # "file:" keeps FFmpeg from reading protocol syntax into a local name ("subfile,,...:x", "concat:a|b").
    source = "file:" + str(data) if isinstance(data, Path) else io.BytesIO(data)
    try:
        return av.open(source, mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise media_error(_name(data, uri), f"cannot open media: {_reason(exc)}") from exc


def _stream(container: Any, kind: str, data: bytes | Path, uri: str) -> Any:
    """The first ``kind`` stream, checked to have a decoder (a corrupt or exotic codec has none)."""
    streams = getattr(container.streams, kind)
    if not streams:
        raise media_error(_name(data, uri), f"no {kind} stream")
    stream = streams[0]
    if stream.codec_context is None:
        hint = "; pass audio=False to skip the audio track" if kind == "audio" else ""
        raise media_error(_name(data, uri), f"no decoder for the {kind} stream's codec{hint}")
    return stream


def probe(data: bytes | Path, *, uri: str = "") -> dict[str, Any]:
    """Duration, stream kinds, size and frame rate, without decoding frames.

    A stream whose codec FFmpeg cannot decode is reported with ``"codec": None``.
    """
    with _open(data, uri, "video") as container:
        out: dict[str, Any] = {"duration": _duration(container), "video": None, "audio": None}
        if container.streams.video:
            v = container.streams.video[0]
            ctx = v.codec_context
            out["video"] = {
                "width": ctx.width if ctx else 0,
                "height": ctx.height if ctx else 0,
                "fps": float(v.average_rate or v.guessed_rate or 0),
                "codec": ctx.name if ctx else None,
            }
        if container.streams.audio:
            a = container.streams.audio[0]
            ctx = a.codec_context
            out["audio"] = {
                "sample_rate": ctx.sample_rate if ctx else 0,
                "channels": ctx.layout.nb_channels if ctx else 0,
                "codec": ctx.name if ctx else None,
            }
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

    Channels are mixed down by their mean, so the result stays in [-1, 1]. (FFmpeg's own
    downmix adds stereo channels at -3 dB each, which can reach 1.41 and changes loudness.)

    Raises:
        ConfigError: ``sample_rate`` is not a positive integer.
        MediaError: no audio stream, or FFmpeg cannot decode the data.
    """
    _check_rate("sample_rate", sample_rate)
    av = _av("audio")
    with _open(data, uri, "audio") as container:
        stream = _stream(container, "audio", data, uri)
        rate = int(sample_rate or stream.codec_context.sample_rate or 16000)
        # Planar float at the target rate, channel layout unchanged: the mixdown happens below.
        resampler = av.AudioResampler(format="fltp", layout=None, rate=rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                frame.pts = None  # let the resampler keep its own clock (avoids gaps on odd pts)
                chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().mean(axis=0) for f in resampler.resample(None))
        except (av.error.FFmpegError, ValueError) as exc:
            raise media_error(_name(data, uri), f"cannot decode audio: {_reason(exc)}") from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return AudioData(samples=samples, sample_rate=rate)


def _check_rate(name: str, rate: int | None) -> None:
    if rate is not None and (not isinstance(rate, (int, np.integer)) or rate <= 0):
        raise ConfigError(f"{name} must be a positive integer, got {rate!r}")


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
        fps: keep at most this many frames per second: the first frame at or after each
            multiple of ``1/fps`` from ``start`` (None keeps every decoded frame).
        keyframes: decode only keyframes (fast: the decoder skips the others).
        start, end: time window in seconds.
        size: ``(width, height)`` to scale frames to.

    Raises:
        ConfigError: ``fps`` or ``size`` is not positive.
        MediaError: no video stream, or FFmpeg cannot decode the data.
    """
    _check_video_options(fps, size)
    av = _av("video")
    with _open(data, uri, "video") as container:
        stream = _stream(container, "video", data, uri)
        stream.thread_type = "AUTO"
        if keyframes:
            stream.codec_context.skip_frame = "NONKEY"
        try:
            if start > 0 and stream.time_base is not None:
                container.seek(int(start / stream.time_base), stream=stream, backward=True)
            step = 1.0 / fps if fps else 0.0
            next_t = start
            kw = {"width": size[0], "height": size[1]} if size else {}
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
                yield t, frame.to_ndarray(format="rgb24", **kw)
        except (av.error.FFmpegError, ValueError) as exc:
            raise media_error(_name(data, uri), f"cannot decode video: {_reason(exc)}") from exc


def _check_video_options(fps: float | None, size: tuple[int, int] | None) -> None:
    if fps is not None and not fps > 0:
        raise ConfigError(f"fps must be positive, got {fps!r}")
    if size is not None and (len(size) != 2 or min(size) <= 0):
        raise ConfigError(f"size must be (width, height) in positive pixels, got {size!r}")


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

    Args:
        fps, keyframes, size: as for :func:`iter_video_frames`.
        max_frames: stop after this many frames.
        audio: also decode the first audio stream (mono float32, see :func:`decode_audio`).
        audio_rate: resample the audio track to this rate.

    Raises:
        ConfigError: a non-positive ``fps``, ``size`` or ``audio_rate``.
        MediaError: undecodable data, no video stream, or more than ``MAX_DECODED_BYTES`` of
            frames without ``fps``/``max_frames``/``size`` to bound them.
    """
    _check_video_options(fps, size)
    _check_rate("audio_rate", audio_rate)  # before decoding frames, not after
    info = probe(data, uri=uri)
    if info["video"] is None:
        raise media_error(_name(data, uri), "no video stream")
    est_fps = fps or info["video"]["fps"] or 30.0
    w, h = size or (info["video"]["width"], info["video"]["height"])
    est = int(info["duration"] * est_fps + 1) * w * h * 3
    if max_frames is None and est > MAX_DECODED_BYTES:
        raise media_error(
            _name(data, uri),
            f"decoding every frame would take about {est / 2**30:.1f} GiB; pass fps=, max_frames= or size=",
        )
    times: list[float] = []
    frames: list[np.ndarray] = []
    if max_frames is None or max_frames > 0:
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
