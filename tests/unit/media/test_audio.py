"""Audio decoding: mono float32 samples at the file's (or a requested) rate, as AudioData."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from polymodal import AudioBytes, AudioData, AudioUrl, ConfigError, MediaError, OptionalDependencyError
from polymodal.media.av_io import decode_audio


def test_wav_decodes_to_mono_float32(audio, spec):
    data = AudioUrl(audio["wav_stereo"]).load()
    assert isinstance(data, AudioData)
    assert data.samples.dtype == np.float32
    assert data.samples.ndim == 1
    assert data.sample_rate == spec.WAV_RATE
    assert len(data.samples) == int(spec.WAV_SECONDS * spec.WAV_RATE)
    assert data.duration == pytest.approx(spec.WAV_SECONDS)


def test_stereo_is_mixed_down_to_the_channel_mean(audio, spec):
    """Left 0.6, right 0.2 in phase: mono is their mean (0.4), matching the sine sample by sample."""
    data = AudioUrl(audio["wav_stereo"]).load()
    expected = spec.sine(spec.WAV_SECONDS, spec.WAV_RATE, (spec.WAV_LEFT_AMP + spec.WAV_RIGHT_AMP) / 2)
    np.testing.assert_allclose(data.samples, expected, atol=2e-4)  # 16-bit quantisation


def test_opposite_channels_cancel_in_the_mixdown(audio):
    data = AudioUrl(audio["wav_opposite"]).load()
    assert np.abs(data.samples).max() < 1e-3


def test_samples_stay_within_unit_range(audio):
    for name in ("wav_stereo", "wav_mono16k"):
        samples = AudioUrl(audio[name]).load().samples
        assert np.abs(samples).max() <= 1.0


@pytest.mark.parametrize(("name", "rate"), [("wav_stereo", 16_000), ("wav_stereo", 8_000), ("wav_mono16k", 48_000)])
def test_resampling_keeps_duration_and_pitch(audio, spec, name, rate):
    original = AudioUrl(audio[name]).load()
    data = AudioUrl(audio[name]).load(sample_rate=rate)
    assert data.sample_rate == rate
    assert data.samples.dtype == np.float32
    assert len(data.samples) == pytest.approx(original.duration * rate, rel=0.01)
    assert spec.dominant_frequency(data.samples, rate) == pytest.approx(spec.AUDIO_FREQ, abs=5)


def test_mono_file_at_its_own_rate_is_unchanged(audio, spec):
    data = AudioUrl(audio["wav_mono16k"]).load()
    assert data.sample_rate == 16_000
    np.testing.assert_allclose(data.samples, spec.sine(1.0, 16_000, 0.5), atol=1e-4)


@pytest.mark.parametrize(("name", "rate"), [("mp3", 44_100), ("opus", 48_000), ("m4a", 44_100), ("flac", 22_050)])
def test_compressed_formats_decode(audio, spec, name, rate):
    """MP3 (LAME), Ogg/Opus, AAC in M4A and FLAC, all written by PyAV's bundled encoders."""
    data = AudioUrl(audio[name]).load()
    assert data.sample_rate == rate
    assert data.samples.dtype == np.float32
    # Codecs pad to whole frames (AAC: 1024 samples), so allow a frame or two of slack.
    assert data.duration == pytest.approx(1.0, abs=0.06)
    assert spec.dominant_frequency(data.samples, rate) == pytest.approx(spec.AUDIO_FREQ, abs=5)
    middle = data.samples[rate // 4 : rate * 3 // 4]  # away from codec edge effects
    assert 0.4 < np.abs(middle).max() < 0.6


def test_compressed_audio_resamples(audio, spec):
    data = AudioUrl(audio["opus"]).load(sample_rate=16_000)
    assert data.sample_rate == 16_000
    assert data.duration == pytest.approx(1.0, abs=0.06)
    assert spec.dominant_frequency(data.samples, 16_000) == pytest.approx(spec.AUDIO_FREQ, abs=5)


def test_audio_track_of_a_video_file(videos, spec):
    data = AudioUrl(videos["mp4"]).load()
    assert data.sample_rate == 44_100
    assert data.duration == pytest.approx(spec.VIDEO_SECONDS, abs=0.06)
    assert spec.dominant_frequency(data.samples, data.sample_rate) == pytest.approx(spec.AUDIO_FREQ, abs=5)


def test_audio_bytes_decode_like_the_file(audio):
    from_file = AudioUrl(audio["m4a"]).load()
    from_bytes = AudioBytes(audio["m4a"].read_bytes()).load()
    np.testing.assert_array_equal(from_file.samples, from_bytes.samples)
    assert from_file.sample_rate == from_bytes.sample_rate


def test_slice_is_a_view_of_the_right_length(audio):
    data = AudioUrl(audio["wav_stereo"]).load()
    part = data.slice(0.5, 1.25)
    assert len(part.samples) == int(0.75 * data.sample_rate)
    assert part.sample_rate == data.sample_rate
    assert np.shares_memory(part.samples, data.samples)
    np.testing.assert_array_equal(part.samples, data.samples[22_050:55_125])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["random.mp3", "empty.wav", "random.ogg", "random.mp4", "binary.txt"])
def test_corrupt_audio_gives_media_error_naming_the_file(corrupt, name):
    path = corrupt[name]
    with pytest.raises(MediaError) as info:
        AudioUrl(path).load()
    assert info.value.uri == str(path)
    assert str(path) in str(info.value)


def test_file_without_audio_stream(videos):
    with pytest.raises(MediaError, match="no audio stream") as info:
        AudioUrl(videos["mp4_silent"]).load()
    assert info.value.uri == str(videos["mp4_silent"])


def test_unknown_codec_gives_media_error_not_attribute_error(audio, tmp_path):
    """A WAV whose format tag names no codec FFmpeg knows: the stream has no decoder."""
    raw = bytearray(audio["wav_mono16k"].read_bytes())
    raw[20:22] = b"\x34\x12"  # WAVE format tag 0x1234
    path = tmp_path / "unknown_codec.wav"
    path.write_bytes(bytes(raw))
    with pytest.raises(MediaError, match="no decoder"):
        AudioUrl(path).load()


@pytest.mark.parametrize("rate", [0, -16_000, 16_000.5])
def test_invalid_sample_rate_is_a_config_error(audio, rate):
    with pytest.raises(ConfigError, match="sample_rate"):
        AudioUrl(audio["wav_mono16k"]).load(sample_rate=rate)


def test_missing_av_names_the_audio_extra(audio, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(OptionalDependencyError) as info:
        AudioUrl(audio["wav_stereo"]).load()
    assert info.value.extra == "audio"
    assert "pip install 'polymodal[audio]'" in str(info.value)


def test_decode_audio_without_uri_names_bytes():
    with pytest.raises(MediaError) as info:
        decode_audio(b"not audio at all" * 10)
    assert info.value.uri == "<bytes>"
