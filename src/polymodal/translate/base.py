"""Translators turn one modality into text, so text search reaches images, video and audio.

Image -> ImageNet labels (a caption of class names), image or video frame -> OCR text,
speech -> transcript with times. Like embedders they are rebuilt from a saved config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from polymodal.embed.base import Modality

__all__ = ["TextSpan", "Translation", "Translator", "TranslatorConfig"]


class TranslatorConfig(BaseModel):
    """How to rebuild a translator (saved with stores)."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    family: str = Field(description="'imagenet-labels', 'rapidocr' or 'pocketsphinx'.")
    model: str = Field("default", description="Model name or path; 'default' uses the packaged one.")
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TextSpan:
    """A piece of output text, with its time span (speech) and confidence where known."""

    text: str
    start: float | None = None
    end: float | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Translation:
    """The text a translator produced for one input, and its parts."""

    text: str
    spans: tuple[TextSpan, ...] = ()

    def between(self, start: float, end: float) -> str:
        """The text of the spans that overlap ``[start, end)`` seconds (for segments)."""
        return " ".join(
            s.text for s in self.spans if s.start is not None and s.end is not None and s.start < end and s.end > start
        )


class Translator(ABC):
    """Base class; families implement ``_translate_batch``."""

    family: ClassVar[str] = ""
    source: ClassVar[Modality] = "image"

    def __init__(self, config: TranslatorConfig) -> None:
        self.config = config
        self.batch_size = int(config.options.get("batch_size", 16))

    def translate(self, batch: Sequence[Any], *, progress: bool | str = False) -> list[Translation]:
        """Translate a batch of inputs (arrays, paths, AudioData ...), one Translation each."""
        from polymodal.doc.apply import progress_bar

        items = list(batch)
        out: list[Translation] = []
        with progress_bar(len(items), progress, unit=self.source) as bar:
            for start in range(0, len(items), self.batch_size):
                chunk = items[start : start + self.batch_size]
                out.extend(self._translate_batch(chunk))
                bar.update(len(chunk))
        return out

    def translate_one(self, item: Any) -> Translation:
        return self.translate([item])[0]

    @abstractmethod
    def _translate_batch(self, items: list[Any]) -> list[Translation]: ...
