"""The operations a server offers, independent of HTTP or gRPC: both front ends call this.

It owns the open store (and, for a media library, its searcher and models), checks what a
client may name (paths and URLs against the allow-lists), enforces limits, and turns results
into plain JSON-ready dicts. Errors are polymodal errors; the front ends map them to status
codes in one place (:func:`polymodal.errors.http_status`).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from polymodal.doc.base import Doc
from polymodal.doc.schema import FieldSpec, schema_of
from polymodal.errors import ConfigError, NotFoundError, SchemaError
from polymodal.library.schema import MediaItem
from polymodal.library.search import LibrarySearch
from polymodal.serve.security import allowed_path, fetch_allowed, sign_media
from polymodal.store.base import Hit, Store

__all__ = ["Limits", "SearchQuery", "Service"]

#: How deep a client's ``where`` may nest, and how many values (leaves) it may hold in all: the
#: embedded store compiles a filter to one SQL expression, and SQLite refuses expressions deeper
#: than 1000 (a 500 once: 100 nested ``$and``, a 600-way ``$or``, a 500-value ``$in``).
MAX_FILTER_DEPTH = 16
MAX_FILTER_TERMS = 128
_INT64 = (-(2**63), 2**63 - 1)


class Limits(BaseModel):
    """Request limits (all configurable on the command line)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(64 << 20, ge=1024)
    max_docs: int = Field(1000, ge=1, description="Documents per upload request.")
    max_limit: int = Field(1000, ge=1, description="Largest `limit` a search may ask for.")
    max_ids: int = Field(1000, ge=1, description="Examples per `similar` request.")


class SearchQuery(BaseModel):
    """A search request: words, a vector, or a media file (uploaded, or named when allowed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str | None = Field(None, max_length=10_000, description="Words to search for.")
    vector: list[float] | None = Field(None, max_length=65_536, description="A query vector for `field`.")
    field: str | None = Field(None, max_length=200, description="Vector field (with `vector`).")
    image_url: str | None = Field(None, max_length=4096, description="A server-side image path or URL (allow-listed).")
    audio_url: str | None = Field(None, max_length=4096, description="A server-side audio path or URL (allow-listed).")
    limit: int = Field(10, ge=1, description="How many hits.")
    where: dict[str, Any] | None = Field(None, description="Filter (see docs/store.md).")
    modality: list[str] | None = Field(None, max_length=10, description="Only these modalities (media libraries).")


@dataclass
class Service:
    """One open store served to many clients (thread-safe: the store locks internally)."""

    store: Store[Any]
    limits: Limits = field(default_factory=Limits)
    api_key: str | None = None
    media_roots: tuple[str, ...] = ()
    allow_urls: tuple[str, ...] = ()
    searcher: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if type(self.searcher) is LibrarySearch:  # see StoredExamplesSearch: never read example files
            s = self.searcher
            self.searcher = StoredExamplesSearch(s.store, s.profile, weights=s.weights)

    @classmethod
    def open(cls, uri: str, **kwargs: Any) -> Service:
        """Open a store; a media library (one indexed by ``polymodal index``) also gets its
        searcher, so text, image and audio queries work."""
        import polymodal as pm

        store: Store[Any] = pm.open(uri)
        svc = cls(store=store, **kwargs)
        if store.get_setting("profile") is not None:
            from polymodal.library.profile import Profile

            svc.searcher = StoredExamplesSearch(store, Profile.model_validate(store.get_setting("profile")))
            if not svc.media_roots:
                svc.media_roots = tuple(store.get_setting("roots") or ())
        return svc

    # -- search --------------------------------------------------------------------------------
    def search(
        self, query: SearchQuery, *, image: bytes | None = None, audio: bytes | None = None
    ) -> list[dict[str, Any]]:
        """Hits as JSON-ready dicts, best first.

        Raises:
            ConfigError: nothing to search with, or a named path/URL outside the allow-lists.
            SchemaError: a vector of the wrong size, an unknown field, a bad filter.
        """
        if query.limit > self.limits.max_limit:
            raise ConfigError(f"limit {query.limit} is over the server's maximum of {self.limits.max_limit}")
        check_where(query.where)
        given = [x for x in (query.text, query.vector, query.image_url, query.audio_url, image, audio) if x is not None]
        if len(given) != 1:
            raise ConfigError("give exactly one of text, vector, image_url, audio_url or an uploaded file")
        if query.vector is not None:
            with np.errstate(over="ignore"):  # 1e39 becomes inf, which the store refuses (422)
                vector = np.asarray(query.vector, np.float32)
            hits = self.store.search(
                vector,
                field=query.field,
                limit=query.limit,
                where=self._where(query.where, query.modality),
            )
            return [self._hit(h) for h in hits]
        if self.searcher is None:
            if query.text is not None:
                hits = self.store.text_search(
                    query.text, limit=query.limit, where=self._where(query.where, query.modality)
                )
                return [self._hit(h) for h in hits]
            raise ConfigError("this store has no models (it was not made by `polymodal index`): send a vector or text")
        # named files are read only now, once a model can use them
        image = image if image is not None else self._named(query.image_url)
        audio = audio if audio is not None else self._named(query.audio_url)
        kw = {"limit": query.limit, "where": query.where, "modalities": query.modality}
        if query.text is not None:
            results = self.searcher.text(query.text, **kw)
        elif image is not None:
            results = self.searcher.image(image, **kw)
        else:
            results = self.searcher.audio(audio, **kw)
        return [self._library_hit(h) for h in results]

    def similar(
        self,
        ids: Sequence[str],
        negative: Sequence[str] = (),
        *,
        limit: int = 10,
        where: Mapping[str, Any] | None = None,
        modality: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """ "More like this" for stored documents (ids only: a server never reads client paths).

        Raises:
            NotFoundError: an example id is not stored.
            ConfigError: no ids, too many, a limit over the maximum, or an oversized filter.
        """
        if not ids:
            raise ConfigError("give at least one document id")
        if len(ids) + len(negative) > self.limits.max_ids:
            raise ConfigError(f"at most {self.limits.max_ids} examples per request")
        if limit > self.limits.max_limit:
            raise ConfigError(f"limit {limit} is over the server's maximum of {self.limits.max_limit}")
        check_where(where)
        for ref in (*ids, *negative):
            self.store.get(ref)  # NotFoundError (404) for unknown ids; never treated as a path
        if self.searcher is not None:
            return [
                self._library_hit(h)
                for h in self.searcher.similar(list(ids), list(negative), limit=limit, where=where, modalities=modality)
            ]
        doc = self.store.get(ids[0])
        vf = next(
            (
                vf
                for vf in self.store.vector_fields.values()
                if not vf.nested and getattr(doc, vf.path, None) is not None
            ),
            None,
        )
        if vf is None:
            raise ConfigError("the example has no top-level vector to search with")
        hits = self.store.search(
            getattr(doc, vf.path), field=vf.path, limit=limit + len(ids), where=self._where(where, modality)
        )
        return [self._hit(h) for h in hits if h.id not in set(ids)][:limit]

    def _where(self, where: Mapping[str, Any] | None, modality: Sequence[str] | None) -> dict[str, Any] | None:
        if not modality:
            return dict(where) if where else None
        if "modality" not in self.store.doc_type.model_fields:
            raise SchemaError("this store's documents have no modality field")
        clause = {"modality": {"$in": list(modality)}}
        return {"$and": [dict(where), clause]} if where else clause

    def _named(self, ref: str | None) -> bytes | None:
        """The bytes of a server-side path or URL a client named, only when allow-listed."""
        if ref is None:
            return None
        if ref.lower().startswith(("http://", "https://")):
            # fetch_allowed, not media.source.read_bytes: urlopen follows redirects off the list
            return fetch_allowed(ref, self.allow_urls, max_bytes=self.limits.max_body_bytes)
        path = allowed_path(ref, self.media_roots)
        if path is None or not path.is_file():
            raise ConfigError("the server does not read that path (not under its media roots); upload the file")
        if path.stat().st_size > self.limits.max_body_bytes:  # no bigger than an upload may be
            raise ConfigError(f"that file is over the server's limit of {self.limits.max_body_bytes} bytes")
        return path.read_bytes()

    # -- documents -------------------------------------------------------------------------------
    def add(self, docs: Sequence[Doc | Mapping[str, Any]]) -> int:
        if len(docs) > self.limits.max_docs:
            raise ConfigError(f"at most {self.limits.max_docs} documents per request; send them in batches")
        self.store.add(docs)  # type: ignore[arg-type]
        return len(docs)

    def get(self, doc_id: str) -> Doc:
        doc: Doc = self.store.get(doc_id)
        return doc

    def delete(self, doc_id: str) -> int:
        return self.store.delete([doc_id])

    def media_path(self, doc_id: str) -> Path:
        """The local file behind a document, when it is under the media roots.

        Raises:
            NotFoundError: unknown id, a document without a file, or a file outside the roots
                (reported as not found, so the server does not confirm what exists).
        """
        doc = self.store.get(doc_id)
        uri = getattr(doc, "uri", None)
        path = allowed_path(uri, self.media_roots) if isinstance(uri, str) else None
        if path is None or not path.is_file():
            raise NotFoundError(f"no media for document {doc_id!r}")
        return path

    def warm(self) -> None:
        """Load the query models and score calibration now, so the first user search does not
        wait for them (tens of seconds on a cold machine)."""
        if self.searcher is not None and self.store.count():
            self.searcher.text("warm up", limit=1)

    def ready(self) -> dict[str, Any]:
        profile = getattr(self.searcher, "profile", None)
        return {
            "ready": True,
            "documents": self.store.count(),
            "schema": self.store.doc_type.__name__,
            "profile": getattr(profile, "name", None),
        }

    # -- results as JSON -------------------------------------------------------------------------
    def _media(self, doc_id: str, start: float | None) -> str:
        """A media link; the id is percent-encoded, so ids with ``?``, ``#`` or ``/`` still work."""
        sig = sign_media(doc_id, self.api_key)
        url = f"/media/{urllib.parse.quote(doc_id, safe='')}" + (f"?{sig}" if sig else "")
        return url + (f"#t={start:g}" if start is not None else "")

    def _library_hit(self, h: Any) -> dict[str, Any]:
        out: dict[str, Any] = h.as_dict()
        out["media"] = self._media(h.id, h.start)
        out["name"] = getattr(h.hit.doc, "name", None)
        return out

    def _hit(self, h: Hit) -> dict[str, Any]:
        return {
            "id": h.id,
            "score": h.score,
            "field": h.field,
            "snippet": h.snippet,
            "doc": doc_json(h.doc),
            "match": doc_json(h.match) if h.match is not None else None,
        }


class StoredExamplesSearch(LibrarySearch):
    """A :class:`LibrarySearch` whose "more like this" examples are stored documents only.

    ``LibrarySearch.similar`` treats an example that names an existing file as that file and
    reads it (right for the command line); a server given ids must never read a path, even one
    a client stored as a document id (POST /docs with ``id="/srv/secret.txt"``).
    """

    def _examples(self, refs: Sequence[str | Path]) -> tuple[list[MediaItem], list[str]]:
        ids = [str(r) for r in refs]
        return (list(self.store.get(ids)) if ids else []), ids


def check_where(where: Mapping[str, Any] | None) -> None:
    """Refuse a client's filter that is too deep or too large for a store to compile, holds an
    empty ``{}`` clause, or an integer that does not fit 64 bits (each was a 500 from SQLite).

    Raises:
        ConfigError: over :data:`MAX_FILTER_DEPTH` or :data:`MAX_FILTER_TERMS`, or an empty clause.
        SchemaError: an integer outside the 64-bit range.
    """
    if not where:
        return
    stack: list[tuple[Any, int]] = [(where, 1)]
    terms = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise ConfigError(f"the filter nests deeper than the server's maximum of {MAX_FILTER_DEPTH} levels")
        if isinstance(node, Mapping) and not node and depth > 1:
            raise ConfigError("the filter holds an empty {} clause; leave it out")  # the store's SQL was "()"
        children = list(node.values()) if isinstance(node, Mapping) else node if isinstance(node, list) else []
        if children:
            stack.extend((child, depth + 1) for child in children)
            continue
        terms += 1  # a value, or an empty [] (it still compiles to a term)
        if terms > MAX_FILTER_TERMS:
            raise ConfigError(f"the filter has more than the server's maximum of {MAX_FILTER_TERMS} values")
        if isinstance(node, int) and not isinstance(node, bool) and not _INT64[0] <= node <= _INT64[1]:
            raise SchemaError(f"the filter value {node} does not fit in 64 bits")


def doc_json(doc: Doc, *, vectors: bool = False) -> dict[str, Any]:
    """A document as JSON, without its vectors unless asked (hits stay small).

    Top-level vectors are left out of the dump rather than dumped and dropped: turning a
    128-d vector into a list of floats was most of the cost of a hit."""
    if vectors:
        return doc.model_dump(mode="json")
    skip, nested = _vector_plan(type(doc))
    data: dict[str, Any] = doc.model_dump(mode="json", exclude=skip) if skip else doc.model_dump(mode="json")
    for spec in nested:
        value = data.get(spec.name)
        if value and spec.doc_type is not None:
            for sub in value if spec.kind == "docs" else (value,):
                _drop_vectors(spec.doc_type, sub)
    return data


_PLANS: dict[type, tuple[set[str], tuple[FieldSpec, ...]]] = {}


def _vector_plan(doc_type: type[Doc]) -> tuple[set[str], tuple[FieldSpec, ...]]:
    """The top-level vector fields of a Doc class, and its nested document fields (cached)."""
    plan = _PLANS.get(doc_type)
    if plan is None:
        fields = schema_of(doc_type).fields
        plan = (
            {f.name for f in fields if f.kind == "vector"},
            tuple(f for f in fields if f.kind in ("doc", "docs") and f.doc_type is not None),
        )
        _PLANS[doc_type] = plan
    return plan


def _drop_vectors(doc_type: type[Doc], data: dict[str, Any]) -> None:
    for spec in schema_of(doc_type).fields:
        if spec.kind == "vector":
            data.pop(spec.name, None)
        elif spec.kind == "docs" and spec.doc_type is not None and data.get(spec.name):
            for sub in data[spec.name]:
                _drop_vectors(spec.doc_type, sub)
        elif spec.kind == "doc" and spec.doc_type is not None and data.get(spec.name):
            _drop_vectors(spec.doc_type, data[spec.name])
