"""The documents a media library stores: one ``MediaItem`` per file, with segments.

A video's segments are time windows with a sampled frame, its OCR text, labels and the
transcript of that window; an audio file's segments are transcript windows; a text file's
segments are passages. Every level can carry three vectors (text, image, audio); which ones
are filled, and by which model, depends on the profile recorded in the store.
"""

from __future__ import annotations

import polymodal as pm

__all__ = ["MODALITIES", "MediaItem", "MediaSegment", "TEXT_FIELDS"]

MODALITIES = ("image", "video", "audio", "text", "mesh")
TEXT_FIELDS = ("name", "text", "segments.text")


class MediaSegment(pm.Doc):
    """A moment of a video or audio file (``start``/``end`` seconds) or a passage of a text."""

    start: float | None = None
    end: float | None = None
    text: str = ""
    transcript: str = ""
    ocr: str = ""
    labels: str = ""
    frame_time: float | None = None
    text_vec: pm.Vector | None = None
    image_vec: pm.Vector | None = None
    audio_vec: pm.Vector | None = None


class MediaItem(pm.Doc):
    """One indexed file."""

    uri: str
    modality: str
    name: str
    size: int = 0
    mtime: float = 0.0
    duration: float | None = None
    text: str = ""
    labels: str = ""
    ocr: str = ""
    text_vec: pm.Vector | None = None
    image_vec: pm.Vector | None = None
    audio_vec: pm.Vector | None = None
    segments: pm.DocList[MediaSegment] | None = None
