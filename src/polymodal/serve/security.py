"""What the server lets a client do: API keys, signed media links, path and URL allow-lists,
and request size limits.

* Every route but ``/health`` (and the static search page, which holds no data) needs
  ``Authorization: Bearer KEY`` when a key is configured; keys are compared in constant time.
* Browsers cannot send headers for ``<video src>``, so media links in search results carry a
  signature (HMAC of the document id and an expiry, keyed by the API key) instead of the key.
* The server reads a local file, or fetches a URL, only under an allowed root or prefix: a
  document that claims ``uri="/etc/passwd"`` is not served.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError

__all__ = [
    "BodyLimit",
    "allowed_path",
    "allowed_url",
    "check_key",
    "is_loopback",
    "load_api_key",
    "sign_media",
    "verify_media",
]


def load_api_key(key_file: str | None = None) -> str | None:
    """The API key from ``--api-key-file`` or ``POLYMODAL_API_KEY`` (None when neither is set).

    Raises:
        ConfigError: the key file is missing, unreadable or empty, or the key is too short.
    """
    key: str | None
    if key_file:
        try:
            key = Path(key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the API key file {key_file}: {exc.strerror or exc}") from None
        if not key:
            raise ConfigError(f"the API key file {key_file} is empty")
    else:
        key = os.environ.get("POLYMODAL_API_KEY") or None
    if key is not None and len(key) < 16:
        raise ConfigError(
            "the API key is too short: use at least 16 characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )
    return key


def check_key(header: str | None, key: str) -> bool:
    """Whether an ``Authorization`` header carries the key (constant-time comparison)."""
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode(), key.encode())


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost; False for 0.0.0.0 and real addresses."""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sign_media(doc_id: str, key: str | None, *, ttl: float = 3600.0) -> str:
    """Query string for a media link: ``exp=...&sig=...`` (empty without a key)."""
    if key is None:
        return ""
    exp = int(time.time() + ttl)
    sig = hmac.new(key.encode(), f"{doc_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"exp={exp}&sig={sig}"


def verify_media(doc_id: str, key: str, exp: str | None, sig: str | None) -> bool:
    if not exp or not sig or not exp.isdigit() or int(exp) < time.time():
        return False
    want = hmac.new(key.encode(), f"{doc_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]
    return hmac.compare_digest(want, sig)


def allowed_path(path: str | Path, roots: Sequence[str | Path]) -> Path | None:
    """The resolved path when it lies inside one of ``roots`` (symlinks and ``..`` resolved
    first, so neither can escape), else None."""
    if not roots:
        return None
    try:
        real = Path(path).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    for root in roots:
        try:
            base = Path(root).expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real == base or base in real.parents:
            return real
    return None


def allowed_url(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` is http(s) and starts with an allowed prefix (compared after parsing, so
    ``http://allowed.example@evil.example/`` does not pass for ``http://allowed.example/``)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    for prefix in prefixes:
        p = urllib.parse.urlsplit(prefix)
        if (parts.scheme, parts.hostname, parts.port) == (p.scheme, p.hostname, p.port) and parts.path.startswith(
            p.path or "/"
        ):
            return True
    return False


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, whether or not they
    declare a Content-Length, before the application reads them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "invalid Content-Length header")
                    return
                if declared > self.max_bytes:
                    await _reject(send, 413, f"request body over the limit of {self.max_bytes} bytes")
                    return
        seen = 0
        started = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(send, 413, f"request body over the limit of {self.max_bytes} bytes")


class _TooLarge(Exception):
    pass


async def _reject(send: Any, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
