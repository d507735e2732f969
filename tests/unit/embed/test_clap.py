"""CLAP embedder on tiny random checkpoints (unfused and fused), loaded by path through
``polymodal.embed.load`` as a user would; outputs are checked against the raw model."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polymodal.embed import EmbedderConfig, check_same_space, load
from polymodal.errors import ConfigError, OptionalDependencyError, SchemaError

pytest.importorskip("transformers")

TEXTS = ["a dog barks", "cat", "the sound of rain", "dog dog dog"]


@pytest.fixture(scope="module")
def text_emb(tiny_clap: Path) -> Any:
    return load(family="clap", model=str(tiny_clap), modality="text")


@pytest.fixture(scope="module")
def audio_emb(tiny_clap: Path) -> Any:
    return load(family="clap", model=str(tiny_clap), modality="audio")


@pytest.fixture(scope="module")
def fused_emb(tiny_clap_fused: Path) -> Any:
    return load(family="clap", model=str(tiny_clap_fused), modality="audio", options={"batch_size": 2})


@functools.cache
def _raw(path: Path) -> Any:
    """The checkpoint loaded with transformers alone, as a user of the raw library would."""
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

    return (
        ClapModel.from_pretrained(path).eval(),
        AutoTokenizer.from_pretrained(path),
        ClapFeatureExtractor.from_pretrained(path),
    )


def _unit(x: Any) -> np.ndarray:
    feats = x if hasattr(x, "shape") else x.pooler_output
    arr = feats.detach().numpy().astype(np.float64)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def _raw_audio(path: Path, clip: np.ndarray) -> np.ndarray:
    """One clip through the raw feature extractor and model, with NumPy's generator seeded at 0."""
    import torch

    model, _, extractor = _raw(path)
    np.random.seed(0)
    inputs = extractor(clip, sampling_rate=extractor.sampling_rate, return_tensors="pt")
    with torch.inference_mode():
        return _unit(model.get_audio_features(**inputs))[0]


def test_text_vectors_are_unit_float32_rows(text_emb: Any) -> None:
    out = text_emb.embed(TEXTS)
    assert out.shape == (len(TEXTS), 16) == (len(TEXTS), text_emb.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_audio_vectors_are_unit_float32_rows(audio_emb: Any, clips: list[np.ndarray]) -> None:
    out = audio_emb.embed(clips)
    assert out.shape == (len(clips), audio_emb.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert audio_emb.sample_rate == 8000


def test_text_matches_raw_model(text_emb: Any, tiny_clap: Path) -> None:
    """Not a fake: the vectors are what ClapModel.get_text_features gives on the same tokens."""
    import torch

    model, tokenizer, _ = _raw(tiny_clap)
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = _unit(model.get_text_features(**enc))
    np.testing.assert_allclose(text_emb.embed(TEXTS), expected, atol=1e-5)


@pytest.mark.parametrize("which", [0, 3], ids=["short", "longer-than-window"])
def test_audio_matches_raw_model(audio_emb: Any, tiny_clap: Path, clips: list[np.ndarray], which: int) -> None:
    np.testing.assert_allclose(audio_emb.embed_one(clips[which]), _raw_audio(tiny_clap, clips[which]), atol=1e-5)


@pytest.mark.parametrize("which", [0, 3], ids=["short", "longer-than-window"])
def test_fused_audio_matches_raw_model(fused_emb: Any, tiny_clap_fused: Path, which: int) -> None:
    rng = np.random.default_rng(which)
    clip = (0.3 * rng.standard_normal(int(fused_emb.sample_rate * (0.6 + which)))).astype(np.float32)
    np.testing.assert_allclose(fused_emb.embed_one(clip), _raw_audio(tiny_clap_fused, clip), atol=1e-5)


def test_text_and_audio_share_space_and_model(text_emb: Any, audio_emb: Any) -> None:
    assert text_emb.space == audio_emb.space
    assert text_emb.model is audio_emb.model
    assert text_emb.dim == audio_emb.dim


def test_deterministic_even_for_random_crops(audio_emb: Any, fused_emb: Any, clips: list[np.ndarray]) -> None:
    """Long clips are cropped at random by the feature extractor; polymodal seeds it per clip and
    leaves the caller's NumPy generator as it was."""
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for emb in (audio_emb, fused_emb):
        first = emb.embed(clips[2:])
        np.random.rand(5)
        assert np.array_equal(first, emb.embed(clips[2:]))
    np.random.seed(123)
    assert np.array_equal(np.random.get_state()[1], before)


def test_batches_equal_one_by_one(tiny_clap: Path, fused_emb: Any, clips: list[np.ndarray]) -> None:
    for modality, inputs in (("text", TEXTS), ("audio", clips[1:])):
        emb = load(family="clap", model=str(tiny_clap), modality=modality, options={"batch_size": 2})
        singles = np.stack([emb.embed_one(x) for x in inputs])
        np.testing.assert_allclose(emb.embed(inputs), singles, atol=1e-5)
    # the fused model treats short and long clips differently, and transformers' extractor marks a
    # random clip of an all-short batch as long: the result must not depend on the batch around a clip
    rate = fused_emb.sample_rate
    rng = np.random.default_rng(5)
    mixed = [(0.3 * rng.standard_normal(int(rate * s))).astype(np.float32) for s in (0.5, 0.8, 2.0)]
    singles = np.stack([fused_emb.embed_one(x) for x in mixed])
    np.testing.assert_allclose(fused_emb.embed(mixed), singles, atol=1e-5)


def test_different_inputs_give_different_vectors(text_emb: Any, audio_emb: Any, clips: list[np.ndarray]) -> None:
    for out in (text_emb.embed(TEXTS), audio_emb.embed(clips)):
        sims = out @ out.T
        assert sims[~np.eye(len(out), dtype=bool)].max() < 0.9999


def test_audio_input_kinds(audio_emb: Any, clips: list[np.ndarray], wav_bytes: Any, tmp_path: Path) -> None:
    """Samples, AudioData, WAV bytes and WAV files of one clip embed (nearly) alike; other rates are resampled."""
    from polymodal.media.types import AudioData

    clip = clips[2]
    rate = audio_emb.sample_rate
    data = wav_bytes(clip, rate)
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    out = audio_emb.embed([clip, AudioData(clip, rate), data, path, str(path)])
    np.testing.assert_allclose(out[1], out[0], atol=1e-6)
    assert (out[2:] @ out[0]).min() > 0.99  # 16-bit quantisation only
    t = np.arange(int(rate * 1.5 / 2)) / (rate * 1.5)
    up = AudioData((0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)).astype(np.float32), int(rate * 1.5))
    assert audio_emb.embed_one(up) @ out[0] > 0.95


def test_fp16_returns_float32(audio_emb: Any, clips: list[np.ndarray]) -> None:
    import torch

    half = load(family="clap", model=audio_emb.config.model, modality="audio", options={"fp16": True})
    assert next(half.model.parameters()).dtype == torch.float16
    out = half.embed(clips)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, audio_emb.embed(clips), atol=5e-3)


def test_long_text_is_truncated_not_an_error(text_emb: Any) -> None:
    prefix = "dog " * 60
    a, b = text_emb.embed([prefix + "cat", prefix + "rain"])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_wrong_inputs(text_emb: Any, audio_emb: Any) -> None:
    with pytest.raises(SchemaError, match="give strings"):
        text_emb.embed([b"bytes"])
    with pytest.raises(SchemaError, match="audio"):
        audio_emb.embed([42])
    with pytest.raises(SchemaError, match="mono"):
        audio_emb.embed([np.zeros((2, 100), np.float32)])
    with pytest.raises(SchemaError, match="no samples"):
        audio_emb.embed([np.zeros(0, np.float32)])


def test_unsupported_modality(tiny_clap: Path) -> None:
    with pytest.raises(ConfigError, match="text and audio"):
        load(family="clap", model=str(tiny_clap), modality="image")


def test_bad_locations(tmp_path: Path, tiny_clip: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(family="clap", model=str(tmp_path / "nowhere"), modality="audio")
    with pytest.raises(ConfigError, match="'clip' checkpoint, not CLAP"):
        load(family="clap", model=str(tiny_clip), modality="audio")


def test_query_from_another_model_is_refused(audio_emb: Any, text_emb: Any, tiny_clip: Path) -> None:
    stored = audio_emb.config.model_dump()
    check_same_space(text_emb, stored, "sound")
    with pytest.raises(ConfigError, match="sound"):
        check_same_space(EmbedderConfig(family="clip", model=str(tiny_clip), modality="text"), stored, "sound")


def test_missing_transformers_names_the_extra(tiny_clap: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[models\]") as info:
        load(family="clap", model=str(tiny_clap), modality="audio", cache=False)
    assert info.value.extra == "models"
