"""Turning files into ``MediaItem`` documents: decode, translate, embed.

Work is done in two passes per batch of files: first each file is decoded and translated
(labels, OCR, transcript) into a draft that lists what it needs embedded; then all texts,
images and audio clips of the batch are embedded together, which keeps model calls large.
A file that cannot be read never stops the batch: it becomes a :class:`Failure` with the
reason, and the rest is indexed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.doc.doclist import DocList
from polymodal.embed import load as load_embedder
from polymodal.embed.base import Embedder
from polymodal.errors import MediaError, PolymodalError
from polymodal.library.profile import Profile
from polymodal.library.schema import MediaItem, MediaSegment
from polymodal.translate import load as load_translator
from polymodal.translate.base import Translation, Translator

__all__ = ["EXTENSIONS", "Builder", "Failure", "modality_of"]

EXTENSIONS: dict[str, str] = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg"), "video"),
    **dict.fromkeys((".wav", ".mp3", ".m4a", ".ogg", ".opus", ".flac", ".aac", ".wma"), "audio"),
    **dict.fromkeys((".txt", ".md", ".markdown", ".rst", ".text"), "text"),
    **dict.fromkeys((".obj", ".ply", ".stl", ".glb", ".gltf", ".off"), "mesh"),
}


def modality_of(path: Path) -> str | None:
    """The modality a file is indexed as, by extension (None: not a supported file)."""
    return EXTENSIONS.get(path.suffix.lower())


@dataclass(frozen=True, slots=True)
class Failure:
    path: str
    reason: str


@dataclass
class _Draft:
    """A document being built, with what still needs embedding."""

    item: MediaItem
    texts: list[tuple[Any, str]] = field(default_factory=list)  # (owner doc, text) -> text_vec
    images: list[tuple[Any, np.ndarray]] = field(default_factory=list)  # (owner, pixels) -> image_vec
    image_groups: list[tuple[Any, list[np.ndarray]]] = field(default_factory=list)  # mean of views
    audio: list[tuple[Any, np.ndarray]] = field(default_factory=list)  # (owner, 48k samples) -> audio_vec


class Builder:
    """Builds documents for files with the models of one profile (loaded on first use)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._embedders: dict[str, Embedder] = {}
        self._translators: dict[str, Translator] = {}

    # -- models --------------------------------------------------------------------------------
    def embedder(self, role: str) -> Embedder | None:
        cfg = getattr(self.profile, role)
        if cfg is None:
            return None
        if role not in self._embedders:
            self._embedders[role] = load_embedder(cfg)
        return self._embedders[role]

    def translator(self, role: str) -> Translator | None:
        cfg = getattr(self.profile, role)
        if cfg is None:
            return None
        if role not in self._translators:
            self._translators[role] = load_translator(cfg)
        return self._translators[role]

    def _translate(self, role: str, item: Any) -> Translation | None:
        tr = self.translator(role)
        return tr.translate_one(item) if tr is not None else None

    # -- public --------------------------------------------------------------------------------
    def build(
        self, paths: Sequence[Path], *, progress: Callable[[int], None] | None = None
    ) -> tuple[list[MediaItem], list[Failure]]:
        """Documents for ``paths`` (and the files that failed, with reasons)."""
        drafts: list[_Draft] = []
        failures: list[Failure] = []
        for path in paths:
            try:
                drafts.append(self._draft(path))
            except (PolymodalError, OSError, ValueError, RuntimeError) as exc:
                failures.append(Failure(str(path), _reason(exc, str(path))))
            if progress is not None:
                progress(1)
        self._embed(drafts)
        return [d.item for d in drafts], failures

    # -- drafts per modality -------------------------------------------------------------------
    def _draft(self, path: Path) -> _Draft:
        modality = modality_of(path)
        if modality is None:
            raise MediaError(f"{path}: unsupported file type {path.suffix!r}", uri=str(path))
        stat = path.stat()
        item = MediaItem(
            id=item_id(path), uri=str(path), modality=modality, name=path.name, size=stat.st_size, mtime=stat.st_mtime
        )
        draft = _Draft(item)
        getattr(self, f"_draft_{modality}")(path, draft)
        return draft

    def _draft_image(self, path: Path, draft: _Draft) -> None:
        from polymodal.media.image import decode_image

        pixels = _fit(decode_image(path, uri=str(path)), self.profile.frame_size * 2)
        item = draft.item
        labels, ocr = self._translate("labels", pixels), self._translate("ocr", pixels)
        item.labels = labels.text if labels else ""
        item.ocr = ocr.text if ocr else ""
        item.text = _join(item.labels, item.ocr)
        if item.text:
            draft.texts.append((item, item.text))
        draft.images.append((item, pixels))

    def _draft_video(self, path: Path, draft: _Draft) -> None:
        from polymodal.media.av_io import decode_audio, probe
        from polymodal.media.sampling import sample_frames

        info = probe(path, uri=str(path))
        if info["video"] is None:
            raise MediaError(f"{path}: no video stream", uri=str(path))
        duration = float(info["duration"] or 0.0)
        size = _frame_size(info["video"]["width"], info["video"]["height"], self.profile.frame_size)
        frames = list(
            sample_frames(
                path, uri=str(path), mode=self.profile.video_sampling, every=self.profile.video_every, size=size
            )
        )
        if not frames:
            raise MediaError(f"{path}: no decodable frames", uri=str(path))
        audio = None
        if info["audio"] is not None:
            try:
                audio = decode_audio(path, uri=str(path), sample_rate=16000)
            except MediaError:
                audio = None  # a broken audio track does not lose the pictures
        transcript = self._translate("asr", audio) if audio is not None and len(audio.samples) else None
        item = draft.item
        item.duration = duration or frames[-1][0] + self.profile.video_every
        segments = []
        for k, (t, frame) in enumerate(frames):
            end = frames[k + 1][0] if k + 1 < len(frames) else max(item.duration, t + 1e-3)
            labels, ocr = self._translate("labels", frame), self._translate("ocr", frame)
            seg = MediaSegment(
                start=round(t, 3),
                end=round(end, 3),
                frame_time=round(t, 3),
                labels=labels.text if labels else "",
                ocr=ocr.text if ocr else "",
                transcript=transcript.between(t, end) if transcript else "",
            )
            seg.text = _join(seg.transcript, seg.ocr, seg.labels)
            segments.append(seg)
            if seg.text:
                draft.texts.append((seg, seg.text))
            draft.images.append((seg, frame))
            if audio is not None and self.profile.audio is not None:
                draft.audio.append((seg, audio.slice(t, end).samples))
        item.segments = DocList[MediaSegment]._wrap(segments)
        item.text = transcript.text if transcript else ""

    def _draft_audio(self, path: Path, draft: _Draft) -> None:
        from polymodal.media.av_io import decode_audio

        audio = decode_audio(path, uri=str(path), sample_rate=16000)
        if not len(audio.samples):
            raise MediaError(f"{path}: no audio samples", uri=str(path))
        transcript = self._translate("asr", audio)
        item = draft.item
        item.duration = audio.duration
        item.text = transcript.text if transcript else ""
        window = self.profile.audio_window
        segments = []
        t = 0.0
        while t < audio.duration:
            end = min(t + window, audio.duration)
            seg = MediaSegment(
                start=round(t, 3), end=round(end, 3), transcript=transcript.between(t, end) if transcript else ""
            )
            seg.text = seg.transcript
            segments.append(seg)
            if seg.text:
                draft.texts.append((seg, seg.text))
            if self.profile.audio is not None:
                draft.audio.append((seg, audio.slice(t, end).samples))
            t = end
        item.segments = DocList[MediaSegment]._wrap(segments)

    def _draft_text(self, path: Path, draft: _Draft) -> None:
        from polymodal.media.passages import split_passages
        from polymodal.media.text import decode_text

        text = decode_text(path.read_bytes(), uri=str(path))
        passages = split_passages(text, max_chars=self.profile.passage_chars)
        if not passages:
            raise MediaError(f"{path}: the file has no text", uri=str(path))
        item = draft.item
        first = passages[0].text.splitlines()[0].lstrip("# ").strip()
        item.text = first[:200]
        segments = [MediaSegment(text=p.text) for p in passages]
        item.segments = DocList[MediaSegment]._wrap(segments)
        draft.texts.extend((seg, seg.text) for seg in segments)

    def _draft_mesh(self, path: Path, draft: _Draft) -> None:
        from polymodal.media.mesh import decode_mesh
        from polymodal.media.render import render_views

        mesh = decode_mesh(path, uri=str(path))
        views = render_views(mesh, size=224, views=3)
        item = draft.item
        labels = self._translate("labels", views[0])
        item.labels = labels.text if labels else ""
        item.text = _join(f"3D model {path.stem.replace('_', ' ')}", item.labels)
        draft.texts.append((item, item.text))
        draft.image_groups.append((item, views))

    # -- embedding -----------------------------------------------------------------------------
    def _embed(self, drafts: list[_Draft]) -> None:
        texts = [t for d in drafts for t in d.texts]
        if texts and (emb := self.embedder("text")) is not None:
            for (owner, _), vec in zip(texts, emb.embed([t for _, t in texts]), strict=True):
                owner.text_vec = vec
        images = [x for d in drafts for x in d.images]
        groups = [g for d in drafts for g in d.image_groups]
        if (images or groups) and (emb := self.embedder("image")) is not None:
            flat = [p for _, p in images] + [v for _, views in groups for v in views]
            vecs = emb.embed(flat)
            for (owner, _), vec in zip(images, vecs[: len(images)], strict=True):
                owner.image_vec = vec
            start = len(images)
            for owner, views in groups:
                mean = vecs[start : start + len(views)].mean(axis=0)
                owner.image_vec = mean / (np.linalg.norm(mean) or 1.0)
                start += len(views)
        clips = [c for d in drafts for c in d.audio if len(c[1])]
        if clips and (emb := self.embedder("audio")) is not None:
            from polymodal.media.types import AudioData

            vecs = emb.embed([AudioData(samples, 16000) for _, samples in clips])
            for (owner, _), vec in zip(clips, vecs, strict=True):
                owner.audio_vec = vec


def item_id(path: Path) -> str:
    """A stable id for a file: its absolute path, hashed (re-indexing replaces, never duplicates)."""
    import hashlib

    return hashlib.blake2b(os.fsencode(path.resolve()), digest_size=12).hexdigest()


def _join(*parts: str) -> str:
    return " | ".join(p.strip() for p in parts if p and p.strip())


def _frame_size(width: int, height: int, longest: int) -> tuple[int, int] | None:
    if not width or not height or max(width, height) <= longest:
        return None
    scale = longest / max(width, height)
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _fit(pixels: np.ndarray, longest: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    if max(h, w) <= longest:
        return pixels
    from PIL import Image

    scale = longest / max(h, w)
    img = Image.fromarray(pixels).resize((max(1, int(w * scale)), max(1, int(h * scale))), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _reason(exc: BaseException, path: str) -> str:
    """The first line of an error, without the path it starts with (the report shows the path)."""
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    if text.startswith(path + ": "):
        text = text[len(path) + 2 :]
    return text[:300]
