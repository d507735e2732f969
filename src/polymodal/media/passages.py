"""Splitting long text into passages that a text model can embed and a person can read."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Passage", "split_passages"]

_PARA = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage and where it sits in the text (character offsets, end exclusive)."""

    text: str
    start: int
    end: int


def split_passages(text: str, *, max_chars: int = 800, min_chars: int = 80) -> list[Passage]:
    """Paragraph-aware chunks of at most ``max_chars`` characters.

    Paragraphs are kept whole when they fit, short neighbours are merged (up to ``max_chars``),
    and over-long paragraphs are split at sentence ends (or hard-wrapped as a last resort).
    """
    pieces: list[tuple[int, int]] = []
    pos = 0
    for match in [*_PARA.finditer(text), None]:
        end = match.start() if match else len(text)
        if text[pos:end].strip():
            pieces.extend(_split_long(text, pos, end, max_chars))
        pos = match.end() if match else len(text)
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if (
            merged
            and (end - merged[-1][0] <= max_chars)
            and (merged[-1][1] - merged[-1][0] < min_chars or end - start < min_chars)
        ):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    out = []
    for start, end in merged:
        chunk = text[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk.rstrip())
        out.append(Passage(chunk.strip(), start + lead, start + trail))
    return out


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    if end - start <= max_chars:
        return [(start, end)]
    out: list[tuple[int, int]] = []
    cut_start = start
    last_break = None
    for m in _SENTENCE.finditer(text, start, end):
        if m.start() - cut_start > max_chars and last_break is not None:
            out.append((cut_start, last_break))
            cut_start = last_break
        last_break = m.end()
    rest = end
    while rest - cut_start > max_chars:
        hard = text.rfind(" ", cut_start, cut_start + max_chars)
        hard = hard if hard > cut_start else cut_start + max_chars
        out.append((cut_start, hard))
        cut_start = hard
    out.append((cut_start, rest))
    return [(a, b) for a, b in out if text[a:b].strip()]
