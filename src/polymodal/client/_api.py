"""The public methods of the clients, written once for sync (:class:`_SyncApi`) and once for
asyncio (:class:`_AsyncApi`); a client adds how one request travels (``_once``) and ``close``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from polymodal.client._common import (
    SearchArgs,
    SimilarArgs,
    T,
    _aretry,
    _batches,
    _Call,
    _decode_one,
    _progress,
    _query,
    _retry,
)
from polymodal.doc.base import Doc
from polymodal.errors import ConfigError, PolymodalError

if TYPE_CHECKING:
    from polymodal.client._grpc import _GrpcOps
    from polymodal.client._http import _HttpOps

__all__: list[str] = []


class _Base:
    def __init__(self, *, retries: int, backoff: float, max_batch_bytes: int, ops: _HttpOps | _GrpcOps) -> None:
        if retries < 0 or backoff < 0:
            raise ConfigError("retries and backoff must not be negative")
        self.retries, self.backoff, self.max_batch_bytes = retries, backoff, max_batch_bytes
        self._ops = ops


class _SyncApi(_Base, ABC):
    @abstractmethod
    def _once(self, call: _Call) -> Any: ...

    def _run(self, call: _Call) -> Any:
        return _retry(lambda: self._once(call), self.retries if call.retry else 0, self.backoff)

    def search(self, text: str | None = None, **query: Unpack[SearchArgs]) -> list[dict[str, Any]]:
        """Hits (dicts, best first) for words, a vector (with ``field``), or an image or sound.

        Args:
            text: words to search for; or exactly one of ``vector=`` (with ``field=``),
                ``image=``/``audio=`` (bytes or a local path, uploaded), ``image_url=``/``audio_url=``
                (read by the server, when it allows them). Options: ``limit``, ``where``, ``modality``.

        Raises:
            ConfigError: not exactly one query, or a limit over the server's maximum.
            SchemaError: a vector of the wrong size, an unknown field, a bad filter.
            AuthenticationError: the API key is missing or wrong.
            BackendError: the server stayed unavailable through every retry.
        """
        hits: list[dict[str, Any]] = self._run(self._ops.search(_query(text, query)))
        return hits

    def similar(
        self, ids: Sequence[str], negative: Sequence[str] = (), **opts: Unpack[SimilarArgs]
    ) -> list[dict[str, Any]]:
        """Stored documents like ``ids`` and unlike ``negative``."""
        hits: list[dict[str, Any]] = self._run(self._ops.similar(list(ids), list(negative), opts))
        return hits

    def add(self, docs: Iterable[Doc], *, batch_size: int = 500, progress: bool = False) -> int:
        """Upsert documents in batches (binary format); returns how many the server added.

        Args:
            docs: Doc instances of the store's schema (any iterable; streamed batch by batch).
            batch_size: documents per request (keep it within the server's ``max_docs``); a batch
                over ``max_batch_bytes`` is halved until it fits.
            progress: show a progress bar (tqdm) on stderr.

        Raises:
            ConfigError: a document alone is over the server's size limit, or too many per batch.
            SchemaError: not Doc instances, or documents that do not fit the store's schema.
        """
        added = 0
        with _progress(docs, progress) as bar:
            for count, body in _batches(docs, batch_size, self.max_batch_bytes):
                added += self._run(self._ops.add(body))
                bar.update(count)
        return added

    def get(self, doc_id: str, doc_type: type[Doc] | None = None) -> Doc:
        """One document, vectors and tensors included (``doc_type`` defaults to the sent schema)."""
        return _decode_one(self._run(self._ops.get(doc_id)), doc_type)

    def delete(self, doc_id: str) -> int:
        """Delete a document; 0 when it was not there."""
        return int(self._run(self._ops.delete(doc_id)))

    def ready(self) -> dict[str, Any]:
        """Readiness: documents, schema and profile of the served store."""
        state: dict[str, Any] = self._run(self._ops.ready())
        return state

    def health(self) -> bool:
        """Whether the server answers (no key needed, no retries)."""
        try:
            return bool(self._run(self._ops.health()))
        except PolymodalError:
            return False

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...


class _AsyncApi(_Base, ABC):
    @abstractmethod
    async def _once(self, call: _Call) -> Any: ...

    async def _run(self, call: _Call) -> Any:
        return await _aretry(lambda: self._once(call), self.retries if call.retry else 0, self.backoff)

    async def search(self, text: str | None = None, **query: Unpack[SearchArgs]) -> list[dict[str, Any]]:
        """Hits (dicts, best first) for words, a vector (with ``field``), or an image or sound."""
        hits: list[dict[str, Any]] = await self._run(self._ops.search(_query(text, query)))
        return hits

    async def similar(
        self, ids: Sequence[str], negative: Sequence[str] = (), **opts: Unpack[SimilarArgs]
    ) -> list[dict[str, Any]]:
        """Stored documents like ``ids`` and unlike ``negative``."""
        hits: list[dict[str, Any]] = await self._run(self._ops.similar(list(ids), list(negative), opts))
        return hits

    async def add(self, docs: Iterable[Doc], *, batch_size: int = 500, progress: bool = False) -> int:
        """Upsert documents in batches (binary format); returns how many the server added."""
        added = 0
        with _progress(docs, progress) as bar:
            for count, body in _batches(docs, batch_size, self.max_batch_bytes):
                added += await self._run(self._ops.add(body))
                bar.update(count)
        return added

    async def get(self, doc_id: str, doc_type: type[Doc] | None = None) -> Doc:
        """One document, vectors and tensors included (``doc_type`` defaults to the sent schema)."""
        return _decode_one(await self._run(self._ops.get(doc_id)), doc_type)

    async def delete(self, doc_id: str) -> int:
        """Delete a document; 0 when it was not there."""
        return int(await self._run(self._ops.delete(doc_id)))

    async def ready(self) -> dict[str, Any]:
        """Readiness: documents, schema and profile of the served store."""
        state: dict[str, Any] = await self._run(self._ops.ready())
        return state

    async def health(self) -> bool:
        """Whether the server answers (no key needed, no retries)."""
        try:
            return bool(await self._run(self._ops.health()))
        except PolymodalError:
            return False

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...
