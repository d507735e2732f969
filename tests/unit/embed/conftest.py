"""Tiny, randomly initialised CLIP and CLAP checkpoints, built from configs at session start.

Each is a real transformers model (2-layer towers, 16-d projections) with a real tokenizer
(a byte-level BPE vocabulary written here, so nothing is downloaded) and a real image
processor or feature extractor, written with ``save_pretrained`` into a temporary directory.
Tests load them through ``polymodal.embed.load(...)`` exactly as a user loads a hub checkpoint,
so every code path except the download is the one real models take.

Sizes are picked for speed, not realism: 32x32 images, 1-second clips at 8 kHz (3150 Hz with
64 mel bins for the fused CLAP variant, whose feature extractor hard-codes 64 bins).
Fixtures are session-scoped (under xdist each worker builds its own copy; about a second).
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CLIP_IMAGE_SIZE = 32
CLAP_RATE = 8000
CLAP_FUSED_RATE = 3150


def _byte_vocab(specials_first: list[str]) -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {tok: i for i, tok in enumerate(specials_first)}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    return vocab


def _clip_tokenizer() -> Any:
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = _byte_vocab([])
    for ch in list(bytes_to_unicode().values()):
        vocab[ch + "</w>"] = len(vocab)
    merges = [("t", "h"), ("th", "e</w>"), ("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("p", "h")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def _roberta_tokenizer() -> Any:
    from transformers import RobertaTokenizer

    vocab = _byte_vocab(["<s>", "<pad>", "</s>", "<unk>"])
    merges = [("Ġ", "d"), ("o", "g"), ("Ġd", "og"), ("c", "a"), ("Ġ", "ca")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=32)


def build_tiny_clip(path: Path) -> Path:
    """A random CLIP (text and vision towers of 2 layers, 32-d, 16-d projection) saved in ``path``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    tokenizer = _clip_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": CLIP_IMAGE_SIZE,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(path)
    size = CLIP_IMAGE_SIZE
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def build_tiny_clap(path: Path, *, fused: bool = False) -> Path:
    """A random CLAP (2-layer RoBERTa text tower, 2-stage HTSAT audio tower, 16-d projection) saved in ``path``.

    The unfused variant crops long clips at random ("rand_trunc", as laion/clap-htsat-unfused);
    the fused one stacks random crops ("fusion", as laion/clap-htsat-fused).
    """
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    tokenizer = _roberta_tokenizer()
    audio: dict[str, Any] = {
        "spec_size": 64,
        "window_size": 4,
        "patch_size": 4,
        "patch_stride": [4, 4],
        "depths": [1, 1],
        "num_attention_heads": [2, 2],
        "patch_embeds_hidden_size": 8,
        "hidden_size": 16,
    }
    if fused:
        audio |= {"num_mel_bins": 64, "enable_fusion": True, "fusion_type": "aff_2d"}
        extractor = ClapFeatureExtractor(
            feature_size=64,
            sampling_rate=CLAP_FUSED_RATE,
            hop_length=50,
            max_length_s=1,
            fft_window_size=512,
            frequency_max=CLAP_FUSED_RATE // 2,
            truncation="fusion",
            padding="repeatpad",
        )
    else:
        audio |= {"num_mel_bins": 16, "enable_fusion": False}
        extractor = ClapFeatureExtractor(
            feature_size=16,
            sampling_rate=CLAP_RATE,
            hop_length=80,
            max_length_s=1,
            fft_window_size=256,
            frequency_max=CLAP_RATE // 2,
            truncation="rand_trunc",
            padding="repeatpad",
        )
    config = ClapConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 34,
            "projection_dim": 16,
        },
        audio_config=audio,
        projection_dim=16,
    )
    torch.manual_seed(1)
    ClapModel(config).eval().save_pretrained(path)
    ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return build_tiny_clap(tmp_path_factory.mktemp("tiny-clap"))


@pytest.fixture(scope="session")
def tiny_clap_fused(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return build_tiny_clap(tmp_path_factory.mktemp("tiny-clap-fused"), fused=True)


@pytest.fixture(scope="session")
def images() -> list[np.ndarray]:
    """Four different RGB images of different sizes (not square, so cropping matters)."""
    rng = np.random.default_rng(7)
    shapes = [(40, 56), (32, 32), (64, 48), (37, 90)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.fixture(scope="session")
def clips() -> list[np.ndarray]:
    """Mono float32 clips at ``CLAP_RATE``: a sine, noise, a chirp, and one longer than the 1 s window."""
    rng = np.random.default_rng(3)
    t = np.arange(CLAP_RATE // 2) / CLAP_RATE
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    noise = 0.3 * rng.standard_normal(CLAP_RATE)
    chirp = 0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    long = 0.3 * rng.standard_normal(int(CLAP_RATE * 2.5))
    return [x.astype(np.float32) for x in (sine, noise, chirp, long)]


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def _hf_cache_copy(checkpoint: Path, cache: Path, repo_id: str) -> None:
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(checkpoint, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.fixture(scope="session")
def wav_bytes() -> Any:
    """``wav_bytes(samples, rate)``: 16-bit mono WAV bytes."""
    return _wav_bytes


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``hf_cache(checkpoint, repo_id)``: put a checkpoint into a fresh Hugging Face cache (laid out as
    a download leaves it) that transformers reads for the rest of the test."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    def put(checkpoint: Path, repo_id: str) -> None:
        _hf_cache_copy(checkpoint, cache, repo_id)

    return put
