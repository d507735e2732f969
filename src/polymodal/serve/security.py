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
import http.client
import ipaddress
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException

from polymodal.errors import ConfigError

__all__ = [
    "BodyLimit",
    "BodyTooLarge",
    "allowed_path",
    "allowed_url",
    "check_key",
    "fetch_allowed",
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
    """Whether ``exp``/``sig`` sign ``doc_id`` and have not expired.

    ``exp`` and ``sig`` come from the client: only short ASCII digit strings are parsed as
    ``exp`` (``str.isdigit`` accepts "²", ``int()`` refuses over 4300 digits) and ``sig`` is
    compared as bytes (``compare_digest`` refuses non-ASCII str): each once raised a 500."""
    if not exp or not sig or len(exp) > 12 or not (exp.isascii() and exp.isdigit()) or int(exp) < time.time():
        return False
    want = hmac.new(key.encode(), f"{doc_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]
    return hmac.compare_digest(want.encode(), sig.encode())  # bytes: str refuses non-ASCII (TypeError)


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
    """Whether ``url`` is http(s) and lies under an allowed prefix (compared after parsing, so
    ``http://allowed.example@evil.example/`` does not pass for ``http://allowed.example/``).

    Paths with ``.``/``..`` segments (also percent-encoded) or backslashes are refused: the
    remote server would normalise ``/allowed/../private`` out of the allowed prefix."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal
        return False
    if parts.scheme not in ("http", "https") or parts.username or parts.password or not parts.hostname:
        return False
    path = urllib.parse.unquote(parts.path)
    if "\\" in path or any(seg in (".", "..") for seg in path.split("/")):
        return False
    for prefix in prefixes:
        try:
            p = urllib.parse.urlsplit(prefix)
            prefix_port = p.port
        except ValueError:
            continue
        if (parts.scheme, parts.hostname, port) == (p.scheme, p.hostname, prefix_port) and _under(
            parts.path or "/", p.path or "/"
        ):
            return True
    return False


def _under(path: str, base: str) -> bool:
    """``path`` is ``base`` or below it, on a segment boundary (``/media`` does not allow
    ``/media-private``)."""
    return path == base or path.startswith(base if base.endswith("/") else base + "/")


def fetch_allowed(url: str, prefixes: Sequence[str], *, max_bytes: int, timeout: float = 30.0) -> bytes:
    """GET ``url`` when it is allow-listed, following a redirect only to another allowed URL
    (``urlopen`` alone would follow an allowed URL's redirect anywhere: SSRF).

    Raises:
        ConfigError: the URL, or a redirect target, is not allowed.
        MediaError: the download failed or is larger than ``max_bytes``.
    """
    from polymodal.media.source import media_error

    if not allowed_url(url, prefixes):
        raise ConfigError("the server does not fetch that URL (not in its --allow-url list); upload the file")
    opener = urllib.request.build_opener(_AllowListRedirects(prefixes))
    request = urllib.request.Request(url, headers={"User-Agent": "polymodal"})  # noqa: S310 - http(s), allow-listed
    try:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length", "")
            if length.isascii() and length.isdigit() and int(length) > max_bytes:
                raise media_error(url, f"download of {int(length)} bytes is larger than the limit of {max_bytes}")
            data: bytes = response.read(max_bytes + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if isinstance(exc, ConfigError):  # ConfigError is a ValueError: our redirect refusal
            raise
        raise media_error(url, f"download failed: {exc}") from None
    if len(data) > max_bytes:
        raise media_error(url, f"download larger than the limit of {max_bytes} bytes")
    return data


class _AllowListRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only when its target is allow-listed too."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = tuple(prefixes)

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if not allowed_url(newurl, self.prefixes):
            raise ConfigError(f"the URL redirects ({code}) to one the server does not fetch (not allow-listed)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, whether or not they
    declare a Content-Length, before the application reads them.

    A body without Content-Length (chunked) is counted while the application reads it. Going
    over sends the 413 at once and raises :class:`BodyTooLarge` (an ``HTTPException(413)``) to
    abort the read; whatever the application answers after that is dropped. Raising alone was
    not enough: FastAPI turned the error into a 400 "error parsing the body", and through a
    ``BaseHTTPMiddleware`` it arrived as an ``ExceptionGroup``, a 500. Nothing is buffered, so a
    client without the key still gets its 401 before its body is read.
    """

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
                    await _reject(send, 413, self.detail)
                    return
        seen = 0
        started = rejected = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen, rejected
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    if not started and not rejected:
                        rejected = True
                        await _reject(send, 413, self.detail)
                    raise BodyTooLarge(self.detail)
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if rejected:
                return  # the 413 is out: drop the application's answer to the aborted read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise

    @property
    def detail(self) -> str:
        return f"request body over the limit of {self.max_bytes} bytes"


class BodyTooLarge(HTTPException):
    """The body went over the limit while it was read (answered 413)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


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
