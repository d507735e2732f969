"""Searching a media library by words, an image or a sound, and "more like this".

Which fields a query reaches depends on the profile: words reach every text vector (labels,
OCR, transcripts, passages) through the text model, images and frames through CLIP's text
encoder, and audio through CLAP's; an image query reaches image vectors; a sound reaches audio
vectors (CLAP) and, through its transcript, the text vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.embed import load as load_embedder
from polymodal.errors import ConfigError, NotFoundError
from polymodal.library.build import Builder, item_id, modality_of
from polymodal.library.profile import Profile
from polymodal.library.schema import MODALITIES, MediaItem
from polymodal.search.multimodal import Channel, MultiSearch, QueryVector, Scored, fuse
from polymodal.store.base import Hit, Store

__all__ = ["LibraryHit", "LibrarySearch"]

TEXT_FIELDS = ("text_vec", "segments.text_vec")
IMAGE_FIELDS = ("image_vec", "segments.image_vec")
AUDIO_FIELDS = ("audio_vec", "segments.audio_vec")


@dataclass(frozen=True, slots=True)
class LibraryHit:
    """A search result as the command line and the web page show it."""

    id: str
    uri: str
    score: float
    modality: str
    start: float | None
    end: float | None
    snippet: str | None
    hit: Hit

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "score": round(self.score, 6),
            "modality": self.modality,
            "start": self.start,
            "end": self.end,
            "snippet": self.snippet,
        }


class LibrarySearch:
    """Search a store of :class:`MediaItem` documents indexed with ``profile``."""

    def __init__(self, store: Store[Any], profile: Profile, *, weights: Mapping[str, float] | None = None) -> None:
        self.store = store
        self.profile = profile
        saved = store.get_setting("weights") or {}
        self.weights = {**saved, **(weights or {})}
        self.engine = MultiSearch(store)

    def _channels(self, fields: Sequence[str]) -> list[Channel]:
        """Channels for a group of fields embedded by one model (one calibration space)."""
        space = fields[0].split(".")[-1]  # "text_vec", "image_vec" or "audio_vec"
        return [Channel(f, float(self.weights.get(f, 1.0)), space=space) for f in fields]

    def _where(self, where: Mapping[str, Any] | None, modalities: Sequence[str] | None) -> dict[str, Any] | None:
        clauses: list[Mapping[str, Any]] = [where] if where else []
        if modalities:
            unknown = set(modalities) - set(MODALITIES)
            if unknown:
                raise ConfigError(f"unknown modality {sorted(unknown)}; use some of {', '.join(MODALITIES)}")
            clauses.append({"modality": {"$in": list(modalities)}})
        if not clauses:
            return None
        return dict(clauses[0]) if len(clauses) == 1 else {"$and": list(clauses)}

    # -- queries -------------------------------------------------------------------------------
    def text(
        self,
        query: str,
        *,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> list[LibraryHit]:
        """Words -> every modality, one ranking."""
        scored = self.collect("text", query, where=where, modalities=modalities, depth=max(50, 5 * limit))
        return self.rank(scored, limit=limit)

    def collect(
        self,
        kind: str,
        value: str | Path | bytes,
        *,
        where: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
        depth: int = 50,
    ) -> list[Scored]:
        """Candidates for a query of ``kind`` ("text", "image" or "audio") with their calibrated
        channel scores, before weighting: :meth:`rank` fuses them with the current weights, and
        evaluation re-fuses them with other weights without searching again."""
        filt = self._where(where, modalities)
        if kind == "text":
            query = str(value)
            if not query.strip():
                raise ConfigError("the query is empty: type some words to search for")
            return self.engine.collect(self._embed_text(query), text=query, where=filt, depth=depth)
        if kind == "image":
            return self.engine.collect(self._embed_image(value), where=filt, depth=depth)
        if kind == "audio":
            qvs, words = self._embed_audio(value)
            return self.engine.collect(qvs, text=words or None, where=filt, depth=depth)
        raise ConfigError(f"unknown query kind {kind!r}; use text, image or audio")

    def rank(
        self, scored: Sequence[Scored], *, limit: int = 10, weights: Mapping[str, float] | None = None
    ) -> list[LibraryHit]:
        """Fuse collected candidates with ``weights`` (default: the store's) into hits."""
        w = {**self.weights, **(weights or {})}
        hits = fuse(scored, w, text_weight=float(w.get("bm25", 0.3)), limit=limit)
        return [self._present(h) for h in hits]

    def _embed_text(self, query: str) -> list[QueryVector]:
        p = self.profile
        out = []
        vec = load_embedder(p.text).embed_one(query)
        out += [QueryVector(c, vec) for c in self._channels(TEXT_FIELDS)]
        if p.image_text is not None:
            vec = load_embedder(p.image_text).embed_one(query)
            out += [QueryVector(c, vec) for c in self._channels(IMAGE_FIELDS)]
        if p.audio_text is not None:
            vec = load_embedder(p.audio_text).embed_one(query)
            out += [QueryVector(c, vec) for c in self._channels(AUDIO_FIELDS)]
        return out

    def image(
        self,
        path: str | Path | bytes,
        *,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> list[LibraryHit]:
        """An image file -> images, video frames and mesh views that look like it."""
        scored = self.collect("image", path, where=where, modalities=modalities, depth=max(50, 5 * limit))
        return self.rank(scored, limit=limit)

    def _embed_image(self, path: str | Path | bytes) -> list[QueryVector]:
        if self.profile.image is None:
            raise ConfigError(f"the {self.profile.name} profile has no image model")
        from polymodal.media.image import decode_image

        data = path if isinstance(path, bytes) else Path(path)
        pixels = decode_image(data, uri="<upload>" if isinstance(path, bytes) else str(path))
        vec = load_embedder(self.profile.image).embed_one(pixels)
        return [QueryVector(c, vec) for c in self._channels(IMAGE_FIELDS)]

    def audio(
        self,
        path: str | Path | bytes,
        *,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
    ) -> list[LibraryHit]:
        """A sound file -> audio that sounds like it (CLAP) and moments where its words are said."""
        scored = self.collect("audio", path, where=where, modalities=modalities, depth=max(50, 5 * limit))
        return self.rank(scored, limit=limit)

    def _embed_audio(self, path: str | Path | bytes) -> tuple[list[QueryVector], str]:
        from polymodal.media.av_io import decode_audio

        data = path if isinstance(path, bytes) else Path(path)
        audio = decode_audio(data, uri="<upload>" if isinstance(path, bytes) else str(path), sample_rate=16000)
        qvs: list[QueryVector] = []
        if self.profile.audio is not None:
            vec = load_embedder(self.profile.audio).embed_one(audio)
            qvs += [QueryVector(c, vec) for c in self._channels(AUDIO_FIELDS)]
        words = ""
        if self.profile.asr is not None:
            from polymodal.translate import load as load_translator

            words = load_translator(self.profile.asr).translate_one(audio).text
            if words:
                vec = load_embedder(self.profile.text).embed_one(words)
                qvs += [QueryVector(c, vec) for c in self._channels(TEXT_FIELDS)]
        if not qvs:
            raise ConfigError("nothing to search with: the sound has no words and the profile has no audio model")
        return qvs, words

    def similar(
        self,
        positive: Sequence[str | Path],
        negative: Sequence[str | Path] = (),
        *,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        modalities: Sequence[str] | None = None,
        neg_weight: float = 0.5,
    ) -> list[LibraryHit]:
        """ "More like this": documents (by id) or files like the positives and unlike the
        negatives (Rocchio: mean of positive vectors minus a share of the negatives', per field)."""
        if not positive:
            raise ConfigError("similar() needs at least one positive example")
        pos_items, exclude = self._examples(positive)
        neg_items, _ = self._examples(negative)
        qvs = []
        for fields in (TEXT_FIELDS, IMAGE_FIELDS, AUDIO_FIELDS):
            # one query per embedding space, from the examples' vectors anywhere in it, sent to
            # every field of that space: a photo's example finds the matching video frames too
            p = _space_vectors(pos_items, fields)
            if not len(p):
                continue
            vec = _unit(p.mean(axis=0))
            n = _space_vectors(neg_items, fields)
            if len(n):
                vec = _unit(vec - neg_weight * _unit(n.mean(axis=0)))
            if np.linalg.norm(vec) > 0:
                qvs += [QueryVector(c, vec) for c in self._channels(fields)]
        if not qvs:
            raise ConfigError("the examples have no vectors to compare with")
        scored = self.engine.collect(
            qvs, where=self._where(where, modalities), exclude=exclude, depth=max(50, 5 * limit)
        )
        return self.rank(scored, limit=limit)

    def _examples(self, refs: Sequence[str | Path]) -> tuple[list[MediaItem], list[str]]:
        items: list[MediaItem] = []
        ids: list[str] = []
        files = []
        for ref in refs:
            found = self.store.get([str(ref)]) if isinstance(ref, str) and self.store.count({"id": ref}) else None
            if found:  # a stored id wins over a file of the same name
                items.append(found[0])
                ids.append(str(ref))
                continue
            path = Path(ref).expanduser()
            if path.is_file() and modality_of(path) is not None:
                files.append(path)
                ids.append(item_id(path.resolve()))  # an indexed example is not its own recommendation
                continue
            raise NotFoundError(f"{ref!r} is neither a document id in the store nor a supported file")
        if files:
            built, failures = Builder(self.profile).build(files)
            if failures:
                raise ConfigError(f"cannot read example {failures[0].path}: {failures[0].reason}")
            items.extend(built)
        return items, ids

    # -- presentation --------------------------------------------------------------------------
    def _present(self, hit: Hit) -> LibraryHit:
        doc: Any = hit.doc
        seg: Any = hit.match
        timed = doc.modality in ("video", "audio") and seg is not None
        snippet = hit.snippet
        if snippet is None:
            snippet = (seg.text if seg is not None else doc.text) or None
        return LibraryHit(
            id=doc.id,
            uri=doc.uri,
            score=hit.score,
            modality=doc.modality,
            start=seg.start if timed else None,
            end=seg.end if timed else None,
            snippet=(snippet[:300] if snippet else None),
            hit=hit,
        )


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n else v


def _space_vectors(items: Sequence[MediaItem], fields: Sequence[str]) -> np.ndarray:
    """Every vector the items hold in the given fields (top-level and per segment), unit length."""
    rows: list[np.ndarray] = []
    for item in items:
        for field in fields:
            if field.startswith("segments."):
                name = field.split(".", 1)[1]
                rows.extend(
                    _unit(np.asarray(getattr(s, name), np.float64))
                    for s in item.segments or []
                    if getattr(s, name) is not None
                )
            elif getattr(item, field) is not None:
                rows.append(_unit(np.asarray(getattr(item, field), np.float64)))
    return np.stack(rows) if rows else np.zeros((0, 0))
