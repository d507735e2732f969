"""The HTTP clients (httpx): :class:`Client` and :class:`AsyncClient`, and the request each
operation makes (JSON bodies; documents in the binary format)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import orjson

from polymodal.client._api import _AsyncApi, _Base, _SyncApi
from polymodal.client._common import _MB, SimilarArgs, _Call, _dict, _error, _modality, _Query, _unreachable
from polymodal.errors import ConfigError

__all__ = ["AsyncClient", "Client"]

BINARY = "application/vnd.polymodal.binary"


class _HttpOps:
    """Builds each operation's HTTP request."""

    def search(self, q: _Query) -> _Call:
        if q.kind in ("image", "audio"):
            form = {"kind": q.kind, "limit": str(q.limit)}
            if q.where:
                form["where"] = orjson.dumps(q.where).decode()
            if q.modality:
                form["modality"] = ",".join(q.modality)
            payload = {"files": {"file": ("upload", bytes(q.value))}, "data": form}
            return _Call("POST /search/file", payload, _json_key("hits"))
        body = {q.kind: q.value, "field": q.field, "limit": q.limit, "where": q.where, "modality": q.modality}
        return _Call("POST /search", {"json": {k: v for k, v in body.items() if v is not None}}, _json_key("hits"))

    def similar(self, ids: list[str], negative: list[str], args: SimilarArgs) -> _Call:
        limit, where, modality = args.get("limit", 10), _dict(args.get("where")), _modality(args.get("modality"))
        body = {"ids": ids, "negative": negative, "limit": limit, "where": where, "modality": modality}
        return _Call("POST /similar", {"json": body}, _json_key("hits"))

    def add(self, body: bytes) -> _Call:
        return _Call("POST /docs", {"content": body, "headers": {"content-type": BINARY}}, _json_key("added"))

    def get(self, doc_id: str) -> _Call:
        return _Call(f"GET /docs/{_path(doc_id)}", {"headers": {"accept": BINARY}}, lambda r: r.content)

    def delete(self, doc_id: str) -> _Call:
        return _Call(f"DELETE /docs/{_path(doc_id)}", {}, _json_key("deleted"))

    def ready(self) -> _Call:
        return _Call("GET /ready", {}, lambda r: r.json())

    def health(self) -> _Call:
        return _Call("GET /health", {}, lambda r: r.json().get("status") == "ok", retry=False)


def _path(doc_id: str) -> str:
    if not doc_id:
        raise ConfigError("give a document id")
    return urllib.parse.quote(doc_id, safe="")


def _json_key(key: str) -> Callable[[Any], Any]:
    return lambda response: response.json()[key]


def _http_check(response: Any) -> Any:
    """The response, or the polymodal error for a 4xx/5xx answer."""
    if response.status_code < 400:
        return response
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    message = str(detail or response.text or response.reason_phrase).strip()
    raise _error(response.status_code, message, response.headers.get("x-polymodal-error"))


class _HttpSetup(_Base):
    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_batch_bytes: int = 16 * _MB,
        transport: Any = None,
    ) -> None:
        import httpx

        super().__init__(retries=retries, backoff=backoff, max_batch_bytes=max_batch_bytes, ops=_HttpOps())
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        kind = httpx.AsyncClient if isinstance(self, _AsyncApi) else httpx.Client
        self._http: Any = kind(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._transport_error = httpx.TransportError


class Client(_HttpSetup, _SyncApi):
    """HTTP client (httpx) for ``url`` (``http://host:port``).

    Args:
        api_key: sent as ``Authorization: Bearer KEY`` (every route but ``/health`` needs it).
        timeout: seconds per request.
        retries: extra attempts for transient failures, ``backoff * 2**n`` seconds apart (jittered).
        max_batch_bytes: the largest upload body ``add`` sends.
        transport: passed to ``httpx.Client`` (tests, proxies).
    """

    def _once(self, call: _Call) -> Any:
        method, _, path = call.name.partition(" ")
        try:
            response = self._http.request(method, path, **call.payload)
        except self._transport_error as exc:
            raise _unreachable(self.url, exc) from exc
        return call.parse(_http_check(response))

    def close(self) -> None:
        self._http.close()


class AsyncClient(_HttpSetup, _AsyncApi):
    """HTTP client for asyncio (httpx.AsyncClient): the methods of :class:`Client`, awaited."""

    async def _once(self, call: _Call) -> Any:
        method, _, path = call.name.partition(" ")
        try:
            response = await self._http.request(method, path, **call.payload)
        except self._transport_error as exc:
            raise _unreachable(self.url, exc) from exc
        return call.parse(_http_check(response))

    async def close(self) -> None:
        await self._http.aclose()
