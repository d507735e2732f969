"""Where media bytes come from: local paths, ``file://``, ``data:`` and (when allowed) http(s).

Decoders never open URIs themselves; they ask this module, so the rule "remote URLs are only
fetched when the caller allows it" lives in one place.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
import urllib.request
from pathlib import Path

from polymodal.errors import ConfigError, MediaError

__all__ = ["DEFAULT_MAX_BYTES", "is_remote", "local_path", "read_bytes", "scheme_of", "validate_uri"]

#: Largest remote download accepted by default (bytes); a caller can pass ``max_bytes``.
DEFAULT_MAX_BYTES = 1 << 30
SCHEMES = ("file", "http", "https", "data")


def scheme_of(uri: str) -> str:
    """``"file"`` for local paths (also Windows drive letters), else the URI scheme, lowercased."""
    head, sep, _ = uri.partition(":")
    if not sep or len(head) == 1 or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return "file"
    return head.lower()


def validate_uri(uri: str) -> str:
    """Return ``uri`` when it is a path or one of the supported schemes, else raise ConfigError."""
    if not uri:
        raise ConfigError("empty media URI")
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise ConfigError(f"unsupported URI scheme {scheme!r} in {uri[:80]!r}; use a path, file://, http(s):// or data:")
    return uri


def is_remote(uri: str) -> bool:
    return scheme_of(uri) in ("http", "https")


def local_path(uri: str) -> Path | None:
    """The filesystem path a URI names, or None for data: and remote URIs."""
    scheme = scheme_of(uri)
    if scheme != "file":
        return None
    if uri.lower().startswith("file:"):
        parsed = urllib.parse.urlparse(uri)
        return Path(urllib.request.url2pathname(parsed.path))
    return Path(uri).expanduser()


def read_bytes(
    uri: str, *, allow_remote: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 30.0
) -> bytes:
    """Read the bytes a URI names.

    Raises:
        MediaError: the file is missing or unreadable, the data: URI is malformed, the download
            failed or exceeded ``max_bytes``, or the URI is remote and ``allow_remote`` is False.
    """
    scheme = scheme_of(uri)
    if scheme == "data":
        return _decode_data_uri(uri)
    if scheme in ("http", "https"):
        if not allow_remote:
            raise MediaError(
                f"not fetching remote URL {uri}: pass allow_remote=True to load remote media", uri=uri
            )
        return _download(uri, max_bytes=max_bytes, timeout=timeout)
    path = local_path(uri)
    if path is None:
        raise MediaError(f"unsupported URI scheme {scheme!r}", uri=uri)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MediaError(f"file not found: {path}", uri=uri) from None
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}", uri=uri) from exc


def _decode_data_uri(uri: str) -> bytes:
    header, sep, payload = uri.partition(",")
    if not sep:
        raise MediaError("malformed data: URI (no comma)", uri=uri[:80])
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=True)
        return urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise MediaError(f"malformed base64 in data: URI: {exc}", uri=uri[:80]) from exc


def _download(uri: str, *, max_bytes: int, timeout: float) -> bytes:
    request = urllib.request.Request(uri, headers={"User-Agent": "polymodal"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            data = response.read(max_bytes + 1)
    except OSError as exc:
        raise MediaError(f"download failed: {exc}", uri=uri) from exc
    if len(data) > max_bytes:
        raise MediaError(f"download larger than max_bytes={max_bytes}", uri=uri)
    return data
