"""Relevance labels ("qrels"): which files (or moments of them) answer each query.

A qrels file is JSON Lines (one query per line) or a JSON array of the same objects::

    {"id": "q1", "query": "a cat on a sofa", "relevant": ["photos/cat.jpg"]}
    {"id": "q2", "image": "queries/bike.jpg",
     "relevant": [{"uri": "video/ride.mp4", "start": 12, "end": 20, "grade": 2}]}
    {"audio": "queries/hum.wav", "relevant": [{"uri": "memos/song.m4a", "grade": 1}]}

* A query is ``"query"`` (words; ``"text"`` is an alias), ``"image"`` or ``"audio"`` (a file).
* ``relevant`` lists files: a string is a whole file with grade 1; an object may add ``grade``
  (graded relevance for nDCG, default 1) and a time span ``start``/``end`` in seconds, which a
  hit matches when its segment overlaps the span.
* Paths are relative to the qrels file (or absolute); ``id`` defaults to the line number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError, FormatError

__all__ = ["Judgement", "Query", "load_qrels", "match_grade"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """One relevant item: a file, optionally a time span in it, and a grade."""

    key: str
    uri: str
    grade: float = 1.0
    start: float | None = None
    end: float | None = None

    def matches(self, uri: str, start: float | None, end: float | None) -> bool:
        if uri != self.uri:
            return False
        if self.start is None or self.end is None:
            return True
        if start is None:  # a hit without a moment cannot show a judged moment
            return False
        hit_end = end if end is not None else start
        return start < self.end and hit_end > self.start


@dataclass(frozen=True, slots=True)
class Query:
    """One labelled query: its kind (text, image or audio), the words or file, and judgements."""

    id: str
    kind: str
    value: str
    relevant: tuple[Judgement, ...]

    def grades(self) -> dict[str, float]:
        return {j.key: j.grade for j in self.relevant}


def _resolve(base: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str((p if p.is_absolute() else base / p).resolve())


def _judgement(item: Any, base: Path, where: str, n: int) -> Judgement:
    if isinstance(item, str):
        uri = _resolve(base, item)
        return Judgement(key=uri, uri=uri)
    if not isinstance(item, dict) or "uri" not in item:
        raise FormatError(f'{where}: a relevant item is a path or an object with "uri", got {item!r}')
    unknown = set(item) - {"uri", "grade", "start", "end"}
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {sorted(unknown)} in a relevant item")
    uri = _resolve(base, str(item["uri"]))
    raw_start, raw_end = item.get("start"), item.get("end")
    if (raw_start is None) != (raw_end is None):
        raise FormatError(f"{where}: give both start and end for a moment, or neither")
    try:
        start = None if raw_start is None else float(raw_start)
        end = None if raw_end is None else float(raw_end)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: start and end are seconds (numbers)") from None
    if start is not None and end is not None and end <= start:
        raise FormatError(f"{where}: a moment's end must come after its start")
    key = uri if start is None else f"{uri}#{start:g}-{end:g}#{n}"
    grade = float(item.get("grade", 1.0))
    if grade < 0:
        raise FormatError(f"{where}: grades are non-negative, got {grade}")
    return Judgement(
        key=key,
        uri=uri,
        grade=grade,
        start=None if start is None else float(start),
        end=None if end is None else float(end),
    )


def _query(obj: Any, base: Path, where: str, default_id: str) -> Query:
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: each query is a JSON object, got {type(obj).__name__}")
    kinds = [k for k in ("query", "text", "image", "audio") if k in obj]
    if len(kinds) != 1:
        raise FormatError(f'{where}: give exactly one of "query", "image" or "audio"')
    kind = "text" if kinds[0] in ("query", "text") else kinds[0]
    value = str(obj[kinds[0]])
    if kind == "text" and not value.strip():
        raise FormatError(f"{where}: the query is empty")
    if kind != "text":
        value = _resolve(base, value)
    unknown = set(obj) - {"id", "query", "text", "image", "audio", "relevant"}
    if unknown:
        raise FormatError(f"{where}: unknown key(s) {sorted(unknown)}")
    rel = obj.get("relevant")
    if not isinstance(rel, list) or not rel:
        raise FormatError(f'{where}: "relevant" must be a non-empty list')
    judgements = tuple(_judgement(item, base, where, n) for n, item in enumerate(rel))
    return Query(id=str(obj.get("id", default_id)), kind=kind, value=value, relevant=judgements)


def load_qrels(path: str | Path) -> list[Query]:
    """Read a qrels file (JSONL or a JSON array).

    Raises:
        ConfigError: the file does not exist.
        FormatError: malformed JSON or a malformed query (names the line and what to fix).
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"no qrels file at {file}")
    base = file.resolve().parent
    text = file.read_text(encoding="utf-8")
    stripped = text.lstrip()
    objs: list[tuple[str, Any]] = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatError(f"{file}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
        objs = [(f"{file}: query {i + 1}", o) for i, o in enumerate(data)]
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                objs.append((f"{file}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise FormatError(f"{file}:{lineno}: invalid JSON ({exc.msg})") from None
    queries = [_query(o, base, where, str(i + 1)) for i, (where, o) in enumerate(objs)]
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        raise FormatError(f"{file}: query ids must be unique")
    if not queries:
        raise FormatError(f"{file}: no queries")
    return queries


def match_grade(
    query: Query, uri: str, start: float | None, end: float | None, used: set[str]
) -> tuple[str | None, float]:
    """The judgement a hit satisfies (its key and grade), each judgement counted once."""
    best: Judgement | None = None
    for j in query.relevant:
        if j.key not in used and j.matches(uri, start, end) and (best is None or j.grade > best.grade):
            best = j
    if best is None:
        return None, 0.0
    used.add(best.key)
    return best.key, best.grade


def modalities_of(query: Query, modality_by_uri: dict[str, str]) -> Sequence[str]:
    """The modalities of a query's relevant files (for per-modality tables)."""
    return sorted({modality_by_uri.get(j.uri, "unknown") for j in query.relevant})
