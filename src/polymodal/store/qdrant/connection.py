"""Where a Qdrant store lives: URI parsing, password redaction, the client, retries.

The URI forms::

    qdrant://[[user]:API_KEY@]host[:port]/collection[?option=value&...]
    qdrant+local://DIRECTORY/collection     (embedded Qdrant "local mode", persisted in DIRECTORY)
    qdrant+local://:memory:/collection      (local mode, nothing persisted)

Server options: ``https``, ``grpc`` (prefer gRPC), ``grpc_port`` (6334), ``prefix`` (a URL path
prefix), ``timeout`` (seconds, 10), ``retries`` (3), ``pool_size`` and ``api_key``. The port
defaults to 6333 (REST). The API key is the URI's password (or, alone before ``@``, its user
name), its ``api_key`` option, or ``api_key=`` given to ``polymodal.open``; messages and errors
only ever show :func:`redact`-ed URIs.

Every client call goes through :meth:`Connection.call`, which retries transient failures
(connection refused or reset, timeouts, HTTP 408/429/5xx, gRPC UNAVAILABLE ...) with a short
exponential backoff (writes are idempotent upserts and deletes, so a retried write cannot
duplicate anything) and turns what is left into a :class:`~polymodal.errors.BackendError` naming
the redacted URI. Connection pooling is the client's: one ``httpx`` connection pool (``pool_size``
connections) or gRPC channel pool per store, which reconnects by itself after a dropped
connection. Local mode allows one client per directory and process, so stores opened on the same
directory share one (reference counted), and calls into it are serialised by a lock.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from polymodal.errors import BackendError, ConfigError, OptionalDependencyError

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

__all__ = ["Connection", "QdrantTarget", "is_transient", "parse_uri", "redact"]

R = TypeVar("R")

SCHEMES = ("qdrant", "qdrant+local")
_BAD_NAME_CHARS = '<>:"/\\|?*\0\x1f'
_QUERY_KEYS = ("https", "grpc", "grpc_port", "prefix", "timeout", "retries", "pool_size", "api_key")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class QdrantTarget:
    """A parsed Qdrant URI. ``uri`` is the redacted form, safe to print."""

    uri: str
    collection: str
    local_path: str | None = None  # a directory or ":memory:" for local mode; None for a server
    host: str = ""
    port: int = 6333
    https: bool = False
    prefer_grpc: bool = False
    grpc_port: int = 6334
    prefix: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    retries: int = 3
    pool_size: int | None = None

    @property
    def local(self) -> bool:
        return self.local_path is not None


def redact(uri: str) -> str:
    """``uri`` with its password and any ``api_key`` query value replaced by ``***``.

    >>> redact("qdrant://user:s3cret@db:6333/clips?api_key=k&https=1")
    'qdrant://user:***@db:6333/clips?api_key=***&https=1'
    """
    try:
        parts = urlsplit(uri)
        netloc, query = parts.netloc, parts.query
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            netloc = f"{user}:***@{hostport}" if sep else f"***@{hostport}"  # a lone name is a key too
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "api_key" for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() == "api_key" else v) for k, v in pairs], safe="*/:")
    except ValueError:  # unparseable: show only the scheme, never the rest
        return uri.split("://", 1)[0] + "://***"
    if netloc == parts.netloc and query == parts.query:
        return uri
    tail = (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return f"{parts.scheme}://{netloc}{parts.path}{tail}"


def parse_uri(
    uri: str,
    *,
    api_key: str | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    prefer_grpc: bool | None = None,
    pool_size: int | None = None,
) -> QdrantTarget:
    """Parse a ``qdrant://`` or ``qdrant+local://`` URI; keyword arguments override its query.

    Raises:
        ConfigError: an unknown scheme or query option, a missing collection, a bad number.
    """
    shown = redact(uri)
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SCHEMES:
        raise ConfigError(
            f"not a Qdrant URI: {shown}; use qdrant://host:6333/collection or qdrant+local://dir/collection"
        )
    overrides: dict[str, Any] = {
        k: v
        for k, v in {"timeout": timeout, "retries": retries, "prefer_grpc": prefer_grpc, "pool_size": pool_size}.items()
        if v is not None
    }
    if scheme == "qdrant+local":
        if "?" in rest:
            raise ConfigError(f"qdrant+local:// URIs take no options: {shown}")
        if rest.startswith(":memory:"):
            directory, collection = ":memory:", rest[len(":memory:") :].strip("/")
        else:
            directory, _, collection = rest.rstrip("/").rpartition("/")
            directory = os.path.expanduser(directory) if directory else ""
        if not directory or not collection:
            raise ConfigError(
                f"{shown}: expected qdrant+local://DIRECTORY/COLLECTION (or qdrant+local://:memory:/COLLECTION)"
            )
        return QdrantTarget(
            uri=shown, collection=_collection_name(collection, shown), local_path=directory, **overrides
        )

    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
    if not host:
        raise ConfigError(f"{shown}: no host; expected qdrant://host:6333/collection")
    collection = parts.path.strip("/")
    if not collection or "/" in collection:
        raise ConfigError(f"{shown}: the path must be one collection name, as in qdrant://host:6333/clips")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - set(_QUERY_KEYS))
    if unknown:
        raise ConfigError(f"{shown}: unknown option(s) {unknown}; known: {', '.join(_QUERY_KEYS)}")
    key = api_key or query.get("api_key") or parts.password or parts.username or None
    opts: dict[str, Any] = {
        "https": _flag(query, "https", shown),
        "prefer_grpc": _flag(query, "grpc", shown),
        "prefix": query.get("prefix") or None,
    }
    for name, kind in (("grpc_port", int), ("timeout", float), ("retries", int), ("pool_size", int)):
        if name in query:
            try:
                opts[name] = kind(query[name])
            except ValueError:
                raise ConfigError(f"{shown}: {name}={query[name]!r} is not a number") from None
    opts.update(overrides)
    if opts.get("retries", 0) < 0 or opts.get("timeout", 1) <= 0:
        raise ConfigError(f"{shown}: retries must be >= 0 and timeout > 0")
    return QdrantTarget(
        uri=shown,
        collection=_collection_name(collection, shown),
        host=host,
        port=port or 6333,
        api_key=key,
        **opts,
    )


def _flag(query: dict[str, str], name: str, shown: str) -> bool:
    value = query.get(name, "0").lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{shown}: {name}={value!r}; use true or false")


def _collection_name(name: str, shown: str) -> str:
    name = unquote(name)
    bad = [c for c in name if c in _BAD_NAME_CHARS]
    if bad or name in (".", "..") or len(name.encode()) > 200:
        raise ConfigError(
            f"{shown}: {name!r} is not a valid collection name (at most 200 bytes, none of {_BAD_NAME_CHARS!r})"
        )
    return name


# -- transient errors ----------------------------------------------------------------------------
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request may succeed (network trouble, overload, restarts)."""
    source = getattr(exc, "source", None)  # qdrant_client's ResponseHandlingException wraps httpx errors
    if isinstance(source, BaseException) and source is not exc and is_transient(source):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    module = type(exc).__module__
    if module.startswith("httpx"):
        import httpx

        return isinstance(exc, httpx.TransportError)
    if type(exc).__name__ == "ResourceExhaustedResponse":
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in _RETRY_STATUS
    code = getattr(exc, "code", None)
    if module.startswith("grpc") and callable(code):
        name = getattr(code(), "name", "")
        return name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED")
    return False


def _cause(exc: BaseException) -> str:
    """The driver's words, on one line (a wrapped httpx error says more than its wrapper)."""
    source = getattr(exc, "source", None)
    text = " ".join(str(source if isinstance(source, BaseException) else exc).split())
    return (text or type(exc).__name__)[:300]


# -- local clients: one per directory and process -------------------------------------------------
_LOCAL_LOCK = threading.Lock()
_LOCAL: dict[str, list[Any]] = {}  # realpath -> [client, references, call lock]


def _local_client(path: str) -> tuple[QdrantClient, threading.RLock, Callable[[], None]]:
    from qdrant_client import QdrantClient

    if path == ":memory:":
        client = QdrantClient(location=":memory:", force_disable_check_same_thread=True)
        return client, threading.RLock(), client.close
    key = os.path.realpath(path)
    with _LOCAL_LOCK:
        entry = _LOCAL.get(key)
        if entry is None:
            os.makedirs(key, exist_ok=True)
            entry = _LOCAL[key] = [QdrantClient(path=key, force_disable_check_same_thread=True), 0, threading.RLock()]
        entry[1] += 1

    def release() -> None:
        with _LOCAL_LOCK:
            entry[1] -= 1
            if entry[1] == 0 and _LOCAL.get(key) is entry:
                del _LOCAL[key]
                with entry[2]:
                    entry[0].close()

    return entry[0], entry[2], release


class Connection:
    """A Qdrant client with retries and errors that name the (redacted) URI."""

    def __init__(self, target: QdrantTarget) -> None:
        self.target = target
        try:
            import qdrant_client  # noqa: F401
        except ImportError:
            raise OptionalDependencyError.for_package("qdrant-client", "qdrant", "The Qdrant store") from None
        self._lock: threading.RLock | None = None
        self._release: Callable[[], None]
        try:
            if target.local_path is not None:
                self.client, self._lock, self._release = _local_client(target.local_path)
            else:
                from qdrant_client import QdrantClient

                self.client = QdrantClient(
                    host=target.host,
                    port=target.port,
                    grpc_port=target.grpc_port,
                    prefer_grpc=target.prefer_grpc,
                    https=target.https,
                    api_key=target.api_key,
                    prefix=target.prefix,
                    timeout=max(1, round(target.timeout)),
                    pool_size=target.pool_size,
                    check_compatibility=False,  # it would only warn; the first call below says more
                )
                self._release = self.client.close
        except (RuntimeError, OSError, ValueError) as exc:
            raise BackendError(
                f"cannot open Qdrant at {target.uri}: {_cause(exc)}", backend="qdrant", uri=target.uri
            ) from exc
        self.closed = False

    @property
    def local(self) -> bool:
        return self._lock is not None

    def call(self, what: str, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """``fn(*args, **kwargs)``, retried on transient errors; failures become BackendError."""
        attempt = 0
        while True:
            try:
                if self._lock is not None:
                    with self._lock:
                        return fn(*args, **kwargs)
                return fn(*args, **kwargs)
            except Exception as exc:  # the driver raises many types; all are wrapped or retried
                if is_transient(exc) and attempt < self.target.retries:
                    time.sleep(_backoff(attempt, exc))
                    attempt += 1
                    continue
                verb = "cannot reach" if is_transient(exc) else "error from"
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise BackendError(
                    f"qdrant {what}: {verb} Qdrant at {self.target.uri}{tries}: {_cause(exc)}",
                    backend="qdrant",
                    uri=self.target.uri,
                ) from exc

    def tune_local(self, collection: str, durability: str) -> None:
        """Make local-mode writes cheap: it commits every point in its own SQLite transaction, which
        with the default rollback journal costs an fsync each (15 ms). In WAL mode with
        ``synchronous=NORMAL`` (``durability="normal"``, as the embedded store) commits survive a
        process crash without an fsync each; ``"full"`` keeps the library's default. This reaches
        into qdrant_client's local-mode internals, so anything unexpected leaves it as it is."""
        if self._lock is None or durability != "normal":
            return
        with self._lock:
            try:
                storage = self.client._client.collections[collection].storage  # type: ignore[attr-defined]
                if storage is not None:
                    storage.storage.execute("PRAGMA journal_mode=WAL")
                    storage.storage.execute("PRAGMA synchronous=NORMAL")
            except (AttributeError, KeyError, TypeError, sqlite3.Error):
                return

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._release()


def _backoff(attempt: int, exc: BaseException) -> float:
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int) and retry_after > 0:
        return float(min(retry_after, 10))
    return float(min(0.05 * 2**attempt, 2.0) * (0.75 + random.random() / 2))  # jitter spreads retries
