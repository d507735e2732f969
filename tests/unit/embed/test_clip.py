"""CLIP embedder on a tiny random checkpoint, loaded by path (and by hub name from the local cache)
through ``polymodal.embed.load`` as a user would; outputs are checked against the raw model."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from polymodal.embed import EmbedderConfig, check_same_space, load
from polymodal.errors import ConfigError, OptionalDependencyError, SchemaError

pytest.importorskip("transformers")

TEXTS = ["the cat", "a photo of a dog", "the dog", "ph ph ph", "cat cat cat cat"]


@pytest.fixture(scope="module")
def text_emb(tiny_clip: Path) -> Any:
    return load(family="clip", model=str(tiny_clip), modality="text")


@pytest.fixture(scope="module")
def image_emb(tiny_clip: Path) -> Any:
    return load(family="clip", model=str(tiny_clip), modality="image")


@pytest.fixture(scope="module")
def raw(tiny_clip: Path) -> Any:
    """The checkpoint loaded with transformers alone, as a user of the raw library would."""
    from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

    return (
        CLIPModel.from_pretrained(tiny_clip).eval(),
        AutoTokenizer.from_pretrained(tiny_clip),
        CLIPImageProcessorPil.from_pretrained(tiny_clip),
    )


def _unit(x: Any) -> np.ndarray:
    feats = x if hasattr(x, "shape") else x.pooler_output
    arr = feats.detach().numpy().astype(np.float64)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


def test_text_vectors_are_unit_float32_rows(text_emb: Any) -> None:
    out = text_emb.embed(TEXTS)
    assert out.shape == (len(TEXTS), 16) == (len(TEXTS), text_emb.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert text_emb.modality == "text"
    assert text_emb.normalized


def test_image_vectors_are_unit_float32_rows(image_emb: Any, images: list[np.ndarray]) -> None:
    out = image_emb.embed(images)
    assert out.shape == (len(images), image_emb.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_text_matches_raw_model(text_emb: Any, raw: Any) -> None:
    """Not a fake: the vectors are what CLIPModel.get_text_features gives on the same tokens."""
    import torch

    model, tokenizer, _ = raw
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = _unit(model.get_text_features(**enc))
    np.testing.assert_allclose(text_emb.embed(TEXTS), expected, atol=1e-5)


def test_image_matches_raw_model(image_emb: Any, raw: Any, images: list[np.ndarray]) -> None:
    import torch

    model, _, processor = raw
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        expected = _unit(model.get_image_features(pixel_values=pixels))
    np.testing.assert_allclose(image_emb.embed(images), expected, atol=1e-5)


def test_text_and_image_share_space_and_model(text_emb: Any, image_emb: Any, tiny_clip: Path) -> None:
    assert text_emb.space == image_emb.space
    assert text_emb.model is image_emb.model
    assert text_emb.dim == image_emb.dim
    # a separately built embedder (not from load's cache) still reuses the loaded weights
    other = load(family="clip", model=str(tiny_clip), modality="image", options={"batch_size": 3}, cache=False)
    assert other is not image_emb
    assert other.model is text_emb.model


def test_deterministic(text_emb: Any, image_emb: Any, images: list[np.ndarray]) -> None:
    assert np.array_equal(text_emb.embed(TEXTS), text_emb.embed(TEXTS))
    assert np.array_equal(image_emb.embed(images), image_emb.embed(images))


def test_batches_equal_one_by_one(tiny_clip: Path, images: list[np.ndarray]) -> None:
    for modality, inputs in (("text", TEXTS), ("image", images)):
        batched = load(family="clip", model=str(tiny_clip), modality=modality, options={"batch_size": 3})
        whole = batched.embed(inputs)
        singles = np.stack([batched.embed_one(x) for x in inputs])
        np.testing.assert_allclose(whole, singles, atol=1e-5)


def test_different_inputs_give_different_vectors(text_emb: Any, image_emb: Any, images: list[np.ndarray]) -> None:
    for out in (text_emb.embed(TEXTS), image_emb.embed(images)):
        sims = out @ out.T
        off_diagonal = sims[~np.eye(len(out), dtype=bool)]
        assert off_diagonal.max() < 0.9999


def test_image_input_kinds(image_emb: Any, images: list[np.ndarray], tmp_path: Path) -> None:
    """Arrays, paths, bytes and PIL images of one picture embed to the same vector."""
    from PIL import Image

    img = images[0]
    pil = Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    path = tmp_path / "img.png"
    path.write_bytes(buf.getvalue())
    out = image_emb.embed([img, pil, buf.getvalue(), path, str(path)])
    np.testing.assert_allclose(out, np.repeat(out[:1], len(out), axis=0), atol=1e-6)
    gray = image_emb.embed_one(img[..., 0])
    assert gray.shape == (image_emb.dim,)


def test_long_text_is_truncated_not_an_error(text_emb: Any) -> None:
    """Texts beyond the model's context (16 positions here, 77 for OpenAI CLIP) are cut, keeping the end token."""
    prefix = "the cat " * 50
    a, b = text_emb.embed([prefix + "dog", prefix + "photo"])
    np.testing.assert_allclose(a, b, atol=1e-6)  # the differing tail was cut off
    assert not np.allclose(a, text_emb.embed_one("the cat dog"), atol=1e-4)


def test_max_length_option(tiny_clip: Path) -> None:
    short = load(family="clip", model=str(tiny_clip), modality="text", options={"max_length": 4})
    a, b = short.embed(["the cat dog", "the cat photo"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ConfigError, match="max_length"):
        load(family="clip", model=str(tiny_clip), modality="text", options={"max_length": 1})


def test_progress_bar(text_emb: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = text_emb.embed(TEXTS * 3, progress="clip")
    assert out.shape == (15, text_emb.dim)
    assert "clip" in capsys.readouterr().err


def test_empty_batch(image_emb: Any) -> None:
    assert image_emb.embed([]).shape == (0, image_emb.dim)


def test_wrong_input_types(text_emb: Any, image_emb: Any) -> None:
    with pytest.raises(SchemaError, match="give strings"):
        text_emb.embed(["ok", 3])
    with pytest.raises(SchemaError, match="image"):
        image_emb.embed([42])
    with pytest.raises(SchemaError, match="shape"):
        image_emb.embed([np.zeros((4, 4, 5), np.uint8)])
    assert image_emb.embed([np.zeros((32, 32, 4), np.uint8)]).shape[0] == 1  # RGBA: alpha dropped


def test_unsupported_modality(tiny_clip: Path) -> None:
    with pytest.raises(ConfigError, match="text and image"):
        load(family="clip", model=str(tiny_clip), modality="audio")


def test_bad_locations(tmp_path: Path, tiny_clap: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(family="clip", model=str(tmp_path / "missing" / "clip"), modality="text")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="does not hold a loadable CLIP checkpoint"):
        load(family="clip", model=str(empty), modality="text")
    with pytest.raises(ConfigError, match="'clap' checkpoint, not CLIP"):
        load(family="clip", model=str(tiny_clap), modality="text")


def test_bad_options(tiny_clip: Path) -> None:
    with pytest.raises(ConfigError, match="unknown CLIP option"):
        load(family="clip", model=str(tiny_clip), modality="text", options={"batchsize": 4})
    with pytest.raises(ConfigError, match="batch_size"):
        load(family="clip", model=str(tiny_clip), modality="text", options={"batch_size": 0})
    with pytest.raises(ConfigError, match="device"):
        load(family="clip", model=str(tiny_clip), modality="text", options={"device": "gpu0"})


def test_cuda_without_gpu_is_a_config_error(tiny_clip: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        load(family="clip", model=str(tiny_clip), modality="text", options={"device": "cuda"})


def test_explicit_cpu_fp32(tiny_clip: Path) -> None:
    import torch

    emb = load(family="clip", model=str(tiny_clip), modality="image", options={"device": "cpu", "fp16": False})
    assert emb.device == "cpu"
    assert next(emb.model.parameters()).dtype == torch.float32


def test_fp16_runs_a_half_copy_and_returns_float32(text_emb: Any, image_emb: Any, images: list[np.ndarray]) -> None:
    """fp16 (the default on CUDA) is honoured on any device: a separate half-precision copy, float32 out."""
    import torch

    for emb, inputs in ((text_emb, TEXTS), (image_emb, images)):
        half = load(family="clip", model=emb.config.model, modality=emb.modality, options={"fp16": True})
        assert half.model is not emb.model
        assert next(half.model.parameters()).dtype == torch.float16
        out = half.embed(inputs)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, emb.embed(inputs), atol=5e-3)


def test_query_from_another_model_is_refused(text_emb: Any, image_emb: Any, tiny_clap: Path) -> None:
    stored = image_emb.config.model_dump()
    check_same_space(text_emb, stored, "image_vec")  # same checkpoint, other modality: fine
    other = EmbedderConfig(family="clap", model=str(tiny_clap), modality="text")
    with pytest.raises(ConfigError, match="image_vec"):
        check_same_space(other, stored, "image_vec")
    with pytest.raises(ConfigError):
        check_same_space(
            EmbedderConfig(family="clip", model="openai/clip-vit-base-patch32", modality="text"), stored, "image_vec"
        )


def test_config_records_the_checkpoint(text_emb: Any, tiny_clip: Path) -> None:
    cfg = text_emb.config
    assert (cfg.family, cfg.model, cfg.modality) == ("clip", str(tiny_clip.resolve()), "text")
    rebuilt = load(cfg.model_dump())
    assert rebuilt is text_emb


def test_hub_name_loads_from_local_cache(tiny_clip: Path, hf_cache: Any, text_emb: Any) -> None:
    """A hub name already in the Hugging Face cache loads without the network (which is unreachable here)."""
    hf_cache(tiny_clip, "polymodal-test/tiny-clip")
    emb = load(family="clip", model="polymodal-test/tiny-clip", modality="text")
    assert emb.config.model == "polymodal-test/tiny-clip"
    assert emb.space == "clip:polymodal-test/tiny-clip"
    np.testing.assert_allclose(emb.embed(TEXTS), text_emb.embed(TEXTS), atol=1e-6)


def test_hub_name_offline_mode(tiny_clip: Path, hf_cache: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hf_cache(tiny_clip, "polymodal-test/tiny-clip-offline")
    emb = load(family="clip", model="polymodal-test/tiny-clip-offline", modality="image")
    assert emb.dim == 16
    with pytest.raises(ConfigError, match="hub is unreachable"):
        load(family="clip", model="polymodal-test/not-in-cache", modality="image")


def test_missing_transformers_names_the_extra(tiny_clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(OptionalDependencyError, match=r"polymodal\[models\]") as info:
        load(family="clip", model=str(tiny_clip), modality="text", cache=False)
    assert info.value.extra == "models"
    assert info.value.package == "transformers"
