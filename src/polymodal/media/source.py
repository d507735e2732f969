"""Where media bytes come from: local paths, ``file://``, ``data:`` and (when allowed) http(s).

Decoders never open URIs themselves; they ask this module, so the rule "remote URLs are only
fetched when the caller allows it" lives in one place. It also names URIs in error messages
(:func:`media_error`), so every decoder reports failures the same way.
"""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from pathlib import Path

from polymodal.errors import ConfigError, MediaError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "data_uri_mime",
    "display_uri",
    "is_remote",
    "local_path",
    "media_error",
    "read_bytes",
    "scheme_of",
    "validate_uri",
]

#: Largest remote download accepted by default (bytes); a caller can pass ``max_bytes``.
DEFAULT_MAX_BYTES = 1 << 30
SCHEMES = ("file", "http", "https", "data")
_WHITESPACE = re.compile(rb"\s+")


def scheme_of(uri: str) -> str:
    """``"file"`` for local paths (also Windows drive letters), else the URI scheme, lowercased."""
    head, sep, _ = uri.partition(":")
    if not sep or len(head) == 1 or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return "file"
    return head.lower()


def display_uri(uri: str, limit: int = 80) -> str:
    """``uri`` shortened for messages: a data: URI can be megabytes long, a path never is."""
    if scheme_of(uri) == "data" and len(uri) > limit:
        return f"{uri[:limit]}...({len(uri)} chars)"
    return uri


def media_error(uri: str, problem: str) -> MediaError:
    """A :class:`MediaError` whose message starts with the URI, so a bare traceback already
    says which file failed; ``.uri`` carries it too (shortened for data: URIs)."""
    shown = display_uri(uri)
    return MediaError(f"{shown}: {problem}", uri=shown)


def validate_uri(uri: str) -> str:
    """Return ``uri`` when it is a path or one of the supported schemes, else raise ConfigError.

    ``file://name/x`` is refused: ``name`` is a host, so it would silently read ``/x`` where
    the author almost always meant the relative path ``name/x``.
    """
    if not uri:
        raise ConfigError("empty media URI")
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise ConfigError(
            f"unsupported URI scheme {scheme!r} in {uri[:80]!r}; use a path, file://, http(s):// or data:"
        )
    if scheme == "file" and uri[:5].lower() == "file:":
        try:
            host = urllib.parse.urlparse(uri).netloc
        except ValueError as exc:  # "file://[x": an unbalanced IPv6 bracket
            raise ConfigError(f"malformed file URI {uri[:80]!r}: {exc}") from None
        if host not in ("", "localhost"):
            raise ConfigError(
                f"file URI {uri[:80]!r} names host {host!r}; write file:///absolute/path or a plain relative path"
            )
    return uri


def is_remote(uri: str) -> bool:
    """True for http(s) URLs."""
    return scheme_of(uri) in ("http", "https")


def local_path(uri: str) -> Path | None:
    """The filesystem path a URI names (``~`` expanded), or None for data: and remote URIs."""
    scheme = scheme_of(uri)
    if scheme != "file":
        return None
    if uri[:5].lower() == "file:":
        from urllib.request import url2pathname  # urllib.request is slow to import: only here

        return Path(url2pathname(urllib.parse.urlparse(uri).path))
    return Path(uri).expanduser()


def data_uri_mime(uri: str) -> str:
    """The media type of a data: URI, lowercased (``""`` when it states none)."""
    header = uri.partition(",")[0]
    return header[5:].split(";", 1)[0].strip().lower() if header[:5].lower() == "data:" else ""


def read_bytes(
    uri: str, *, allow_remote: bool = False, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 30.0
) -> bytes:
    """Read the bytes a URI names.

    Args:
        allow_remote: fetch http(s) URLs; when False they are refused without any network access.
        max_bytes: largest download accepted (remote URLs only).

    Raises:
        MediaError: the file is missing or unreadable, the data: URI is malformed, the download
            failed or exceeded ``max_bytes``, or the URI is remote and ``allow_remote`` is False.
    """
    scheme = scheme_of(uri)
    if scheme == "data":
        return _decode_data_uri(uri)
    if scheme in ("http", "https"):
        if not allow_remote:
            raise media_error(uri, "not fetching a remote URL: pass allow_remote=True to load remote media")
        return _download(uri, max_bytes=max_bytes, timeout=timeout)
    path = local_path(uri)
    if path is None:
        raise media_error(uri, f"unsupported URI scheme {scheme!r}")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise media_error(uri, f"file not found: {path}") from None
    except OSError as exc:
        raise media_error(uri, f"cannot read {path}: {exc.strerror or exc}") from exc


def _decode_data_uri(uri: str) -> bytes:
    """Decode ``data:[<mime>][;base64],<payload>`` (RFC 2397).

    The ``;base64`` flag is matched case-insensitively, and a base64 payload may be
    percent-encoded or wrapped over lines, as both happen when data: URIs are pasted or built
    by other tools.
    """
    header, sep, payload = uri.partition(",")
    if not sep:
        raise media_error(uri, "malformed data: URI (no comma)")
    if header.lower().endswith(";base64"):
        try:
            text = urllib.parse.unquote_to_bytes(payload)
            return base64.b64decode(_WHITESPACE.sub(b"", text), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise media_error(uri, f"malformed base64 in data: URI: {exc}") from exc
    return urllib.parse.unquote_to_bytes(payload)


def _download(uri: str, *, max_bytes: int, timeout: float) -> bytes:
    """GET ``uri``; refuses bodies over ``max_bytes`` (by Content-Length when sent, else while reading)."""
    import http.client
    import urllib.request

    try:
        request = urllib.request.Request(uri, headers={"User-Agent": "polymodal"})  # noqa: S310 - http(s) only
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise media_error(uri, f"download of {int(length)} bytes is larger than max_bytes={max_bytes}")
            data: bytes = response.read(max_bytes + 1)
    except MediaError:
        raise
    # OSError covers URLError/HTTPError/timeouts; HTTPException a truncated or garbled response;
    # ValueError a malformed URL (bad port, bad IPv6 literal).
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise media_error(uri, f"download failed: {exc}") from exc
    if len(data) > max_bytes:
        raise media_error(uri, f"download larger than max_bytes={max_bytes}")
    return data
