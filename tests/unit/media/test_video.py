"""Video decoding: RGB frames with presentation timestamps, sampling, scaling and the audio track.

The test videos show one solid colour per second (``spec.SECOND_COLOURS``) at 10 fps for 4 s,
with a keyframe at every second, so the colour of a frame tells which second it came from.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from polymodal import ConfigError, MediaError, OptionalDependencyError, VideoBytes, VideoData, VideoUrl
from polymodal.media import av_io
from polymodal.media.av_io import iter_video_frames, probe

CONTAINERS = ["mp4", "webm", "mkv"]  # H.264+AAC, VP8+Opus, MPEG-4 part 2


def assert_colour(frame: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Every pixel within YUV 4:2:0 rounding of ``colour``."""
    diff = np.abs(frame.astype(int) - np.asarray(colour)).max()
    assert diff < 16, f"frame colour {tuple(frame[frame.shape[0] // 2, frame.shape[1] // 2])} != {colour}"


@pytest.mark.parametrize("name", CONTAINERS)
def test_every_frame_with_timestamps(videos, spec, name):
    video = VideoUrl(videos[name]).load()
    assert isinstance(video, VideoData)
    w, h = spec.VIDEO_SIZE
    n = spec.VIDEO_SECONDS * spec.VIDEO_FPS
    assert video.frames.shape == (n, h, w, 3)
    assert video.frames.dtype == np.uint8
    assert len(video) == n
    assert video.timestamps.dtype == np.float64
    np.testing.assert_allclose(video.timestamps, np.arange(n) / spec.VIDEO_FPS, atol=1e-3)
    assert video.fps == pytest.approx(spec.VIDEO_FPS)
    assert video.duration == pytest.approx(spec.VIDEO_SECONDS, abs=0.02)
    for t, frame in zip(video.timestamps, video.frames, strict=True):
        assert_colour(frame, spec.colour_at(t))


def test_frame_at_two_and_a_half_seconds_shows_second_two(videos, spec):
    video = VideoUrl(videos["mp4"]).load()
    index = int(np.argmin(np.abs(video.timestamps - 2.5)))
    assert video.timestamps[index] == pytest.approx(2.5)
    assert_colour(video.frames[index], spec.SECOND_COLOURS[2])


@pytest.mark.parametrize("name", CONTAINERS)
def test_fps_1_gives_one_frame_per_second(videos, spec, name):
    video = VideoUrl(videos[name]).load(fps=1)
    np.testing.assert_allclose(video.timestamps, np.arange(spec.VIDEO_SECONDS), atol=1e-3)
    for frame, colour in zip(video.frames, spec.SECOND_COLOURS, strict=True):
        assert_colour(frame, colour)


def test_fps_2_samples_every_half_second(videos):
    video = VideoUrl(videos["mp4"]).load(fps=2)
    np.testing.assert_allclose(video.timestamps, np.arange(8) / 2, atol=1e-3)


def test_fps_not_dividing_the_native_rate_stays_on_the_grid(videos, spec):
    """fps=3 on a 10 fps video: the first frame at or after each multiple of 1/3 s."""
    video = VideoUrl(videos["mp4"]).load(fps=3)
    grid = np.arange(3 * spec.VIDEO_SECONDS) / 3
    assert len(video) == len(grid)
    assert np.all(video.timestamps >= grid - 1e-6)
    assert np.all(video.timestamps - grid < 1 / spec.VIDEO_FPS + 1e-6)


def test_fps_above_the_native_rate_keeps_every_frame_once(videos, spec):
    video = VideoUrl(videos["mp4"]).load(fps=30)
    assert len(video) == spec.VIDEO_SECONDS * spec.VIDEO_FPS
    assert np.all(np.diff(video.timestamps) > 0)


@pytest.mark.parametrize("name", CONTAINERS)
def test_keyframes_mode_decodes_only_keyframes(videos, spec, name):
    video = VideoUrl(videos[name]).load(keyframes=True)
    np.testing.assert_allclose(video.timestamps, np.arange(spec.VIDEO_SECONDS), atol=1e-3)
    for frame, colour in zip(video.frames, spec.SECOND_COLOURS, strict=True):
        assert_colour(frame, colour)


def test_size_scales_frames(videos, spec):
    video = VideoUrl(videos["mp4"]).load(fps=1, size=(32, 24))
    assert video.frames.shape == (spec.VIDEO_SECONDS, 24, 32, 3)
    for frame, colour in zip(video.frames, spec.SECOND_COLOURS, strict=True):
        assert_colour(frame, colour)


def test_max_frames_stops_early(videos):
    video = VideoUrl(videos["mp4"]).load(max_frames=5)
    assert len(video) == 5
    np.testing.assert_allclose(video.timestamps, np.arange(5) / 10, atol=1e-3)


def test_max_frames_zero_gives_an_empty_but_well_shaped_result(videos, spec):
    video = VideoUrl(videos["mp4"]).load(max_frames=0, audio=False)
    w, h = spec.VIDEO_SIZE
    assert video.frames.shape == (0, h, w, 3)
    assert video.timestamps.shape == (0,)


def test_audio_track_comes_with_the_frames(videos, spec):
    video = VideoUrl(videos["mp4"]).load(fps=1)
    assert video.audio is not None
    assert video.audio.sample_rate == 44_100
    assert video.audio.samples.dtype == np.float32
    assert video.audio.duration == pytest.approx(spec.VIDEO_SECONDS, abs=0.06)
    rate = video.audio.sample_rate
    assert spec.dominant_frequency(video.audio.samples, rate) == pytest.approx(spec.AUDIO_FREQ, abs=5)


def test_audio_track_resampled_with_audio_rate(videos, spec):
    video = VideoUrl(videos["webm"]).load(fps=1, audio_rate=16_000)
    assert video.audio is not None
    assert video.audio.sample_rate == 16_000
    assert video.audio.duration == pytest.approx(spec.VIDEO_SECONDS, abs=0.06)


def test_audio_false_and_silent_video_give_no_audio(videos):
    assert VideoUrl(videos["mp4"]).load(fps=1, audio=False).audio is None
    assert VideoUrl(videos["mp4_silent"]).load(fps=1).audio is None


def test_video_bytes_decode_like_the_file(videos):
    from_file = VideoUrl(videos["mp4"]).load(fps=1)
    from_bytes = VideoBytes(videos["mp4"].read_bytes()).load(fps=1)
    np.testing.assert_array_equal(from_file.frames, from_bytes.frames)
    np.testing.assert_array_equal(from_file.timestamps, from_bytes.timestamps)


def test_iter_frames_in_a_time_window(videos, spec):
    """start/end seek into the file and keep [start, end)."""
    pairs = list(iter_video_frames(videos["mp4"], start=2.5, end=3.0))
    times = [t for t, _ in pairs]
    np.testing.assert_allclose(times, [2.5, 2.6, 2.7, 2.8, 2.9], atol=1e-3)
    for _, frame in pairs:
        assert_colour(frame, spec.SECOND_COLOURS[2])


def test_iter_frames_fps_grid_starts_at_start(videos):
    times = [t for t, _ in iter_video_frames(videos["mp4"], start=1.5, fps=1)]
    np.testing.assert_allclose(times, [1.5, 2.5, 3.5], atol=1e-3)


def test_probe_reports_streams(videos, spec):
    info = probe(videos["mp4"])
    assert info["duration"] == pytest.approx(spec.VIDEO_SECONDS, abs=0.02)
    assert (info["video"]["width"], info["video"]["height"]) == spec.VIDEO_SIZE
    assert info["video"]["fps"] == pytest.approx(spec.VIDEO_FPS)
    assert info["audio"]["sample_rate"] == 44_100
    assert info["audio"]["channels"] == 1
    assert probe(videos["mp4_silent"])["audio"] is None


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["truncated.mp4", "random.mp4", "empty.mp4", "binary.txt"])
def test_corrupt_video_gives_media_error_naming_the_file(corrupt, name):
    path = corrupt[name]
    with pytest.raises(MediaError) as info:
        VideoUrl(path).load()
    assert info.value.uri == str(path)
    assert str(path) in str(info.value)


def test_audio_file_has_no_video_stream(audio):
    with pytest.raises(MediaError, match="no video stream"):
        VideoUrl(audio["wav_stereo"]).load()


def test_unknown_video_codec_gives_media_error(videos, tmp_path):
    """An MP4 whose sample entry names an unknown codec ('zzzz' for 'avc1'): no decoder."""
    path = tmp_path / "unknown_codec.mp4"
    path.write_bytes(videos["mp4_silent"].read_bytes().replace(b"avc1", b"zzzz"))
    with pytest.raises(MediaError, match="no decoder") as info:
        VideoUrl(path).load()
    assert info.value.uri == str(path)


def test_memory_guard_refuses_unbounded_decoding(videos, monkeypatch):
    monkeypatch.setattr(av_io, "MAX_DECODED_BYTES", 10_000)
    with pytest.raises(MediaError, match="fps=, max_frames= or size="):
        VideoUrl(videos["mp4"]).load()
    assert len(VideoUrl(videos["mp4"]).load(max_frames=2)) == 2  # an explicit bound is honoured


@pytest.mark.parametrize("options", [{"fps": 0}, {"fps": -1}, {"size": (0, 24)}, {"audio_rate": 0}])
def test_invalid_options_are_config_errors(videos, options):
    with pytest.raises(ConfigError):
        VideoUrl(videos["mp4"]).load(**options)


def test_missing_av_names_the_video_extra(videos, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(OptionalDependencyError) as info:
        VideoUrl(videos["mp4"]).load()
    assert info.value.extra == "video"
    assert "pip install 'polymodal[video]'" in str(info.value)


def test_local_names_are_never_read_as_ffmpeg_protocol_syntax(videos, tmp_path, monkeypatch):
    """FFmpeg reads "subfile,,start,0,end,10,,:x" as a byte range of x; a local file of that
    name must be opened as itself (as must names with spaces and non-ASCII letters)."""
    monkeypatch.chdir(tmp_path)
    for name in ("subfile,,start,0,end,10,,:colours.mp4", "with space é.mp4"):
        (tmp_path / name).write_bytes(videos["mp4_silent"].read_bytes())
        assert len(VideoUrl(name).load(fps=1)) == 4
    (tmp_path / "colours.mp4").write_bytes(b"")  # what the protocol reading would open instead
    assert len(VideoUrl((tmp_path / "with space é.mp4").as_uri()).load(fps=1)) == 4
