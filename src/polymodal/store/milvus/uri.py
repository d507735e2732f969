"""Milvus store URIs: which server (or Milvus Lite file) and which collection, with secrets kept out
of every message.

``milvus://[user[:password]@]host[:port]/collection[?db=NAME&token=T&tls=true&timeout=S&retries=N]``
  a Milvus server (default port 19530); ``tls=true`` connects with https.
``milvus+lite:///absolute/path/store.db/collection`` or ``milvus+lite://relative/path/store.db/collection``
  Milvus Lite, the local server pymilvus starts for a ``.db`` path (a directory it creates).

>>> t = parse_uri("milvus://ann:s3cret@db.local/clips?timeout=5")
>>> (t.address, t.collection, t.user, t.timeout, t.redacted)
('http://db.local:19530', 'clips', 'ann', 5.0, 'milvus://ann:***@db.local:19530/clips?timeout=5')
>>> parse_uri("milvus+lite:///data/store.db/clips").address
'/data/store.db'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from polymodal.errors import ConfigError

__all__ = ["DEFAULT_PORT", "MilvusTarget", "parse_uri", "redact"]

DEFAULT_PORT = 19530
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
_QUERY_KEYS = ("db", "token", "tls", "timeout", "retries")


@dataclass(frozen=True, slots=True)
class MilvusTarget:
    """Where a Milvus store lives. ``address`` is what pymilvus connects to: an http(s) URL, or
    the Milvus Lite ``.db`` path (``lite`` is then True)."""

    address: str
    collection: str
    lite: bool
    user: str = ""
    password: str = ""
    token: str = ""
    db: str = ""
    timeout: float | None = None
    retries: int | None = None
    redacted: str = ""


def redact(uri: str) -> str:
    """The URI with its password and token replaced by ``***`` (safe for messages and logs).

    >>> redact("milvus://u:pw@h:1/c?token=abc&db=x")
    'milvus://u:***@h:1/c?token=***&db=x'
    """
    out = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", uri)
    return re.sub(r"([?&]token=)[^&]*", r"\1***", out)


def parse_uri(uri: str) -> MilvusTarget:
    """Parse a ``milvus://`` or ``milvus+lite://`` URI.

    Raises:
        ConfigError: not a Milvus URI, no collection, a collection name Milvus rejects, or an
            unknown or malformed query option (the message shows the URI without secrets).
    """
    shown = redact(uri)
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("milvus", "milvus+lite"):
        raise ConfigError(
            f"not a Milvus URI: {shown!r}; use milvus://host:port/collection or "
            "milvus+lite:///path/to/store.db/collection"
        )
    rest, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_QUERY_KEYS))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} in {shown!r}; known: {', '.join(_QUERY_KEYS)}")
    timeout = _number(options.get("timeout"), "timeout", shown)
    retries_value = _number(options.get("retries"), "retries", shown)
    retries = None if retries_value is None else int(retries_value)
    if scheme == "milvus+lite":
        path, _, collection = unquote(rest).rstrip("/").rpartition("/")
        if not path.endswith(".db"):
            raise ConfigError(
                f"a Milvus Lite URI names a .db path and a collection, like milvus+lite:///data/store.db/clips; "
                f"got {shown!r}"
            )
        _check_name(collection, shown)
        address = str(Path(path).expanduser().resolve()) if path.startswith(("/", "~")) else str(Path(path).resolve())
        return MilvusTarget(address, collection, True, timeout=timeout, retries=retries, redacted=shown)
    parts = urlsplit(f"milvus://{rest}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"bad port in {shown!r}") from None
    if not parts.hostname:
        raise ConfigError(f"no host in {shown!r}; use milvus://host:port/collection")
    collection = parts.path.strip("/")
    _check_name(collection, shown)
    tls = options.get("tls", "false").lower() in ("1", "true", "yes")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    userinfo = f"{quote(user)}:***@" if password else (f"{quote(user)}@" if user else "")
    clean = f"milvus://{userinfo}{host}:{port}/{collection}" + (f"?{redact('?' + query)[1:]}" if query else "")
    return MilvusTarget(
        address=f"{'https' if tls else 'http'}://{host}:{port}",
        collection=collection,
        lite=False,
        user=user,
        password=password,
        token=options.get("token", ""),
        db=options.get("db", ""),
        timeout=timeout,
        retries=retries,
        redacted=clean,
    )


def _check_name(name: str, shown: str) -> None:
    if not name:
        raise ConfigError(f"no collection in {shown!r}: add it as the last path part, e.g. .../clips")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"collection name {name!r} in {shown!r}: Milvus allows letters, digits and underscores, "
            "not starting with a digit, up to 200 characters"
        )


def _number(text: str | None, key: str, shown: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{key}={text!r} in {shown!r} is not a number") from None
    if value < 0:
        raise ConfigError(f"{key} in {shown!r} must not be negative")
    return value
