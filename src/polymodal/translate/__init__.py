"""Translators: image -> labels, image -> OCR text, speech -> transcript."""

from polymodal.translate.base import TextSpan, Translation, Translator, TranslatorConfig
from polymodal.translate.registry import FAMILIES, load

__all__ = ["FAMILIES", "TextSpan", "Translation", "Translator", "TranslatorConfig", "load"]
