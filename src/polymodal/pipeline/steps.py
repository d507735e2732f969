"""Pipeline steps: the ``Step`` protocol, Decode and Function (Embed, Translate and Index live
in their own modules and are re-exported here).

What flows between steps is a batch of *items*: file paths or bytes at the start, then
records (plain dicts such as ``{"id", "uri", "name", "modality", "text", "image", ...}``) or
documents. Steps read and write named fields, so one vocabulary serves Python and YAML, and a
record crosses a process boundary as JSON (see :mod:`polymodal.pipeline.wire`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, runtime_checkable

from polymodal.doc.base import Doc
from polymodal.errors import ConfigError, SchemaError
from polymodal.pipeline.index import Index
from polymodal.pipeline.models import TRANSLATE_FIELDS, Embed, Translate
from polymodal.pipeline.records import get_field, resolve_ref, with_fields

__all__ = [
    "TRANSLATE_FIELDS",
    "Decode",
    "Embed",
    "Function",
    "Index",
    "Step",
    "Translate",
    "get_field",
    "resolve_ref",
    "with_fields",
]


@runtime_checkable
class Step(Protocol):
    """One stage of a pipeline: a batch of items in, a batch out (any length: a step may drop
    or split items).

    Optional attributes the pipeline honours: ``timeout`` (seconds per call), ``handles_timeout``
    (True when the step enforces ``timeout`` itself, as remote and batched steps do) and
    ``close()``.
    """

    name: str

    def run(self, batch: list[Any]) -> list[Any]: ...


# -- decode ----------------------------------------------------------------------------------
class Decode:
    """File paths, URIs or bytes -> records holding the decoded media.

    An item is a path or URI, bytes (``ImageBytes`` ... carry their modality; plain bytes need
    ``modality=``), or a record/document whose ``field`` holds one. The output record keeps the
    input's fields and adds ``id`` (stable: a hash of the absolute path or of the bytes, so
    re-running replaces rather than duplicates), ``uri``, ``name``, ``modality`` and the decoded
    value under ``into`` (default: the modality name, e.g. ``"text"`` or ``"image"``).

    Raises (from ``run``):
        MediaError: an unreadable, missing or undecodable file (names the URI).
        SchemaError: an item with nothing to decode, or bytes of unknown modality.
    """

    def __init__(
        self,
        *,
        field: str = "uri",
        modality: str | None = None,
        into: str | None = None,
        options: Mapping[str, Any] | None = None,
        allow_remote: bool = False,
        name: str = "decode",
        timeout: float | None = None,
    ) -> None:
        if modality is not None and modality not in _MEDIA:
            raise ConfigError(f"unknown modality {modality!r}; known: {', '.join(_MEDIA)}")
        self.name = name
        self.field = field
        self.modality = modality
        self.into = into
        self.options = dict(options or {})
        self.allow_remote = allow_remote
        self.timeout = timeout

    def run(self, batch: list[Any]) -> list[Any]:
        return [self._decode(item) for item in batch]

    def _decode(self, item: Any) -> dict[str, Any]:
        from polymodal.doc.url import MediaBytes, MediaUrl

        if isinstance(item, Mapping):
            record, source = dict(item), item.get(self.field)
        elif isinstance(item, Doc):
            record = {k: getattr(item, k) for k in type(item).model_fields}
            source = record.get(self.field)
        else:
            record, source = {}, item
        if isinstance(source, (bytes, bytearray, memoryview)):
            modality = source.modality if isinstance(source, MediaBytes) else self.modality
            if modality is None:
                raise SchemaError(f"step {self.name!r}: cannot tell what bytes hold; set modality=")
            uri, name, key = "", "", hashlib.blake2b(bytes(source), digest_size=12).hexdigest()
            value = _MEDIA[modality][1](bytes(source)).load(**self.options)
        elif isinstance(source, (str, os.PathLike)):
            uri = os.fspath(source)
            modality = source.modality if isinstance(source, MediaUrl) else self.modality or _modality_of(uri)
            if modality is None:
                raise SchemaError(
                    f"step {self.name!r}: cannot tell the media type of {uri!r} from its extension; set modality="
                )
            url = _MEDIA[modality][0](uri)
            value = url.load(allow_remote=self.allow_remote, **self.options)
            path = url.path
            name = path.name if path is not None else ""
            key = _path_id(path) if path is not None else hashlib.blake2b(uri.encode(), digest_size=12).hexdigest()
        else:
            raise SchemaError(
                f"step {self.name!r}: expected a path, URI or bytes (or a record with {self.field!r}), "
                f"got {type(source).__name__}"
            )
        record.setdefault("id", key)
        record.setdefault("uri", uri)
        record.setdefault("name", name)
        record["modality"] = modality
        record[self.into or modality] = value
        return record


def _media() -> dict[str, tuple[Any, Any]]:
    from polymodal.doc import url as u

    return {
        "image": (u.ImageUrl, u.ImageBytes),
        "audio": (u.AudioUrl, u.AudioBytes),
        "video": (u.VideoUrl, u.VideoBytes),
        "text": (u.TextUrl, u.TextBytes),
        "mesh": (u.Mesh3DUrl, u.Mesh3DBytes),
    }


_MEDIA = _media()


def _modality_of(uri: str) -> str | None:
    from polymodal.library.build import EXTENSIONS

    return EXTENSIONS.get(PurePosixPath(uri.split("?", 1)[0]).suffix.lower())


def _path_id(path: Path) -> str:
    """The id the media library gives a file, so both index a file as the same document."""
    from polymodal.library.build import item_id

    return item_id(path)


# -- user functions --------------------------------------------------------------------------
class Function:
    """Any callable as a step: ``fn(batch, **options) -> batch`` or, with ``each=True``,
    ``fn(item, **options) -> item``.

    ``fn`` may be ``"package.module:name"`` (how YAML names it; imported when the step is made,
    so a typo fails at load time). A per-item function must return the item: None is refused,
    because a function that edits in place and forgets to return would silently empty the
    pipeline; to drop items, use a batch function.
    """

    def __init__(
        self,
        fn: Callable[..., Any] | str,
        *,
        each: bool = False,
        options: Mapping[str, Any] | None = None,
        name: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if isinstance(fn, str):
            fn = resolve_ref(fn, what="function")
        if not callable(fn):
            raise ConfigError(f"function step needs a callable, got {type(fn).__name__}")
        self.fn: Callable[..., Any] = fn
        self.each = each
        self.options = dict(options or {})
        self.name: str = name or str(getattr(fn, "__name__", "function"))
        self.timeout = timeout

    def run(self, batch: list[Any]) -> list[Any]:
        if self.each:
            out = []
            for item in batch:
                result = self.fn(item, **self.options)
                if result is None:
                    raise SchemaError(f"step {self.name!r}: the function returned None; return the item")
                out.append(result)
            return out
        result = self.fn(list(batch), **self.options)
        if not isinstance(result, Sequence) or isinstance(result, (str, bytes)):
            raise SchemaError(f"step {self.name!r}: the function must return a list, got {type(result).__name__}")
        return list(result)
