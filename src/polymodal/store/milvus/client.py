"""One pymilvus client per store over pooled connections, with retries and clear errors.

pymilvus keeps one gRPC channel per server address and credentials and shares it between
clients (its ``ConnectionManager``): that is the connection pool. Milvus Lite servers (one per
``.db`` path, started in-process by pymilvus) are counted here and stopped when the last store
using one closes, so the file is flushed and released for the next open.

Every call goes through :meth:`Connection.call`: transient failures (server unavailable, deadline,
rate limit, a collection unloaded by a server restart) are retried with backoff, which is safe
because every write the store makes is idempotent (deterministic primary keys, upserts); anything
else becomes a :class:`~polymodal.errors.BackendError` naming the URI without its password.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from polymodal.errors import BackendError, OptionalDependencyError
from polymodal.store.milvus.uri import MilvusTarget

__all__ = ["Connection"]

R = TypeVar("R")
_LITE_USERS: dict[str, int] = {}
_LITE_LOCK = threading.Lock()
_TRANSIENT_WORDS = ("unavailable", "connect", "not ready", "deadline", "timeout", "timed out", "rate limit")
_UNLOADED_WORDS = ("not loaded", "released", "load() before", "collection not load")


class Connection:
    """A pymilvus ``MilvusClient`` for one target, with retrying calls."""

    def __init__(self, target: MilvusTarget, *, timeout: float, retries: int) -> None:
        try:
            from pymilvus import MilvusClient  # type: ignore[import-untyped]
        except ImportError:
            raise OptionalDependencyError.for_package("pymilvus", "milvus", "the Milvus store") from None
        self.target = target
        self.timeout = timeout
        self.retries = retries
        self._reload: Callable[[], None] | None = None
        if target.lite:
            with _LITE_LOCK:
                _LITE_USERS[target.address] = _LITE_USERS.get(target.address, 0) + 1
        try:
            if target.lite:
                self.client = MilvusClient(uri=target.address, timeout=timeout)
            else:
                self.client = MilvusClient(
                    uri=target.address,
                    user=target.user,
                    password=target.password,
                    token=target.token,
                    db_name=target.db,
                    timeout=timeout,
                )
        except Exception as exc:  # pymilvus raises several types for "cannot connect"
            self._release_lite()
            what = "cannot start Milvus Lite for" if target.lite else "cannot reach the Milvus server at"
            raise BackendError(f"{what} {target.redacted}: {_describe(exc)}", backend="milvus") from exc

    def on_unloaded(self, reload: Callable[[], None]) -> None:
        """What to do when the server says a collection is not loaded (it restarted)."""
        self._reload = reload

    def call(self, what: str, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """``fn(*args, **kwargs, timeout=...)``, retried on transient errors, wrapped on others."""
        delay = 0.25
        for attempt in range(self.retries + 1):
            try:
                return fn(*args, timeout=self.timeout, **kwargs)
            except Exception as exc:  # classified below, re-raised wrapped
                last = attempt == self.retries
                if _unloaded(exc) and self._reload is not None and not last:
                    self._reload_quietly()
                    continue
                if not _transient(exc) or last:
                    raise BackendError(
                        f"Milvus {what} failed for {self.target.redacted}: {_describe(exc)}", backend="milvus"
                    ) from exc
                time.sleep(delay)
                delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def call_once(self, what: str, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` without a timeout or retries (a step of a stateful reader), errors wrapped."""
        try:
            return fn(*args)
        except Exception as exc:  # wrapped with the URI
            raise BackendError(
                f"Milvus {what} failed for {self.target.redacted}: {_describe(exc)}", backend="milvus"
            ) from exc

    def _reload_quietly(self) -> None:
        assert self._reload is not None
        with contextlib.suppress(Exception):  # the retried call reports the real error
            self._reload()

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self._release_lite()

    def _release_lite(self) -> None:
        if not self.target.lite:
            return
        with _LITE_LOCK:
            users = _LITE_USERS.get(self.target.address, 0) - 1
            if users > 0:
                _LITE_USERS[self.target.address] = users
                return
            _LITE_USERS.pop(self.target.address, None)
        try:
            from milvus_lite.server_manager import server_manager_instance  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - the server could not have started either
            return
        server_manager_instance.release_server(self.target.address)


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or ""
    code = getattr(exc, "code", None)
    text = f"{type(exc).__name__}" + (f" (code {code})" if code not in (None, "") else "")
    return f"{text}: {message}" if message else text


def _transient(exc: BaseException) -> bool:
    import grpc

    code = getattr(exc, "code", None)
    if callable(code):  # a raw grpc.RpcError
        code = code()
    if isinstance(code, grpc.StatusCode):
        return code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.ABORTED,
        )
    if getattr(exc, "retriable", False) or code == 8:  # pymilvus ErrorCode.RATE_LIMIT
        return True
    text = (getattr(exc, "message", None) or str(exc)).lower()
    if "retry timeout" in text or "retry run out" in text:  # pymilvus has retried already
        return False
    return any(w in text for w in _TRANSIENT_WORDS)


def _unloaded(exc: BaseException) -> bool:
    text = (getattr(exc, "message", None) or str(exc)).lower()
    return getattr(exc, "code", None) == 101 or any(w in text for w in _UNLOADED_WORDS)
