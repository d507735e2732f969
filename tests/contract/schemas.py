"""Schemas and data shared by the contract tests."""

from __future__ import annotations

from datetime import datetime

import numpy as np

import polymodal as pm


class Segment(pm.Doc):
    start: float
    end: float
    transcript: str = ""
    embedding: pm.Vector[8] | None = None


class Clip(pm.Doc):
    title: str
    year: int = 2000
    rating: float | None = None
    draft: bool = False
    tags: list[str] = []
    meta: dict[str, str] = {}
    when: datetime | None = None
    thumb: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    embedding: pm.Vector[8] | None = None
    segments: pm.DocList[Segment] | None = None


WORDS = ["harbour", "boats", "forest", "mountain", "city", "night", "river", "snow"]


def make_clips(n: int = 60, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        segs = None
        if i % 5 != 4:
            segs = [
                Segment(
                    id=f"c{i}-s{j}",
                    start=2.0 * j,
                    end=2.0 * j + 2.0,
                    transcript=f"{WORDS[(i + j) % len(WORDS)]} talk {j}",
                    embedding=rng.normal(size=8),
                )
                for j in range(i % 4)
            ]
        clips.append(
            Clip(
                id=f"c{i}",
                title=f"{WORDS[i % len(WORDS)]} clip {i}",
                year=1990 + i % 30,
                rating=None if i % 7 == 0 else float(i % 10) / 2,
                draft=i % 3 == 0,
                tags=[WORDS[i % 3], WORDS[(i + 1) % 4]] if i % 6 else [],
                meta={"author": f"a{i % 4}"} if i % 2 else {},
                when=datetime(2020, 1, 1 + i % 28, 12, 0) if i % 4 else None,
                thumb=np.full((2, 3, 3), i, np.uint8) if i % 8 == 0 else None,
                embedding=None if i % 11 == 10 else rng.normal(size=8),
                segments=segs,
            )
        )
    return clips
