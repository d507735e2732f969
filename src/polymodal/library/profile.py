"""Profiles: which models turn each modality into vectors and text.

* ``offline``: models that ship inside Python packages, so it works on any machine with no
  network: MiniLM for text; EfficientNet-lite0 image features (image -> image search) and
  ImageNet labels; RapidOCR; pocketsphinx speech-to-text. Images, video frames and speech
  become searchable by words through labels, OCR and transcripts embedded by MiniLM.
* ``clip``: CLIP (text <-> image) and CLAP (text <-> audio) when their weights are available
  (a local path, the Hugging Face cache, or the hub), plus MiniLM and the translators for
  transcripts and on-screen text.

The profile used is recorded in the store; the default is the best available one, and the
reason for the choice is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from polymodal.embed.base import EmbedderConfig
from polymodal.errors import ConfigError
from polymodal.media.sampling import Sampling
from polymodal.translate.base import TranslatorConfig

__all__ = ["Profile", "ProfileChoice", "choose_profile", "clip_profile", "offline_profile"]

MINILM = EmbedderConfig(family="sentence-transformers", model="sentence-transformers/all-MiniLM-L6-v2", modality="text")
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_CLAP = "laion/clap-htsat-unfused"


class Profile(BaseModel):
    """Models and media options for indexing and for embedding queries the same way later."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    text: EmbedderConfig = Field(description="Embeds every text: passages, transcripts, OCR, labels.")
    image: EmbedderConfig | None = Field(None, description="Embeds images, frames and mesh views.")
    image_text: EmbedderConfig | None = Field(None, description="Text encoder of the image space (CLIP).")
    audio: EmbedderConfig | None = Field(None, description="Embeds audio windows (CLAP).")
    audio_text: EmbedderConfig | None = Field(None, description="Text encoder of the audio space (CLAP).")
    labels: TranslatorConfig | None = TranslatorConfig(family="imagenet-labels")
    ocr: TranslatorConfig | None = TranslatorConfig(family="rapidocr")
    asr: TranslatorConfig | None = TranslatorConfig(family="pocketsphinx")
    video_sampling: Sampling = "fixed"
    video_every: float = Field(2.0, gt=0, description="Seconds between sampled frames (one segment each).")
    audio_window: float = Field(10.0, gt=0, description="Seconds per audio segment.")
    passage_chars: int = Field(800, ge=100)
    frame_size: int = Field(320, ge=32, description="Longest side frames are decoded at.")


def offline_profile(**overrides: object) -> Profile:
    """The profile that needs nothing beyond packages from PyPI."""
    base = Profile(
        name="offline",
        text=MINILM,
        image=EmbedderConfig(family="efficientnet", model="efficientnet-lite0", modality="image"),
    )
    return base.model_copy(update=overrides)


def clip_profile(clip_model: str = DEFAULT_CLIP, clap_model: str | None = DEFAULT_CLAP, **overrides: object) -> Profile:
    """CLIP for images and video frames, CLAP for audio (when given), MiniLM for texts."""
    base = Profile(
        name="clip",
        text=MINILM,
        image=EmbedderConfig(family="clip", model=clip_model, modality="image"),
        image_text=EmbedderConfig(family="clip", model=clip_model, modality="text"),
        audio=EmbedderConfig(family="clap", model=clap_model, modality="audio") if clap_model else None,
        audio_text=EmbedderConfig(family="clap", model=clap_model, modality="text") if clap_model else None,
        labels=None,
    )
    return base.model_copy(update=overrides)


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    profile: Profile
    reason: str


def _available(model: str, config_cls: str) -> bool:
    """True when a checkpoint's config loads without the network (a path or the local cache)."""
    if os.path.isdir(model):
        return os.path.exists(os.path.join(model, "config.json"))
    try:
        import transformers

        getattr(transformers, config_cls).from_pretrained(model, local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return False
    return True


def choose_profile(name: str | None = None) -> ProfileChoice:
    """The profile to use: ``name`` if given ("offline" or "clip"), else CLIP when its weights
    are available (``POLYMODAL_CLIP_MODEL``/``POLYMODAL_CLAP_MODEL`` or the default checkpoints
    in the local cache), else offline.

    Raises:
        ConfigError: an unknown name, or "clip" asked for but no CLIP weights found.
    """
    clip = os.environ.get("POLYMODAL_CLIP_MODEL", DEFAULT_CLIP)
    clap = os.environ.get("POLYMODAL_CLAP_MODEL", DEFAULT_CLAP)
    if name not in (None, "auto", "offline", "clip"):
        raise ConfigError(f"unknown profile {name!r}; use 'offline', 'clip' or 'auto'")
    if name == "offline":
        return ProfileChoice(offline_profile(), "offline profile (asked for)")
    has_clip = _available(clip, "CLIPConfig")
    if name == "clip" and not has_clip:
        raise ConfigError(
            f"no CLIP weights found for {clip!r} (the model hub is unreachable and it is not cached); "
            "set POLYMODAL_CLIP_MODEL to a local checkpoint directory, or use --profile offline"
        )
    if has_clip:
        has_clap = _available(clap, "ClapConfig")
        reason = f"clip profile: CLIP {clip}" + (
            f", CLAP {clap}" if has_clap else " (no CLAP weights: audio by transcript)"
        )
        return ProfileChoice(clip_profile(clip, clap if has_clap else None), reason)
    return ProfileChoice(
        offline_profile(),
        f"offline profile: no CLIP weights for {clip} here "
        "(set POLYMODAL_CLIP_MODEL to a local checkpoint to use CLIP)",
    )
