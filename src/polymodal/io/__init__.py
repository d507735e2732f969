"""Serialization: JSON/JSONL, the binary format, Arrow/Parquet/pandas; streaming for each.

``iter_read``/``write`` pick the format from the file suffix (``.pmd`` binary, ``.jsonl``,
``.parquet``) and stream in batches, so files larger than memory work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.errors import ConfigError, SchemaError

__all__ = ["iter_read", "write"]

_FORMATS = {".pmd": "binary", ".bin": "binary", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def _format(path: str | Path, fmt: str | None, batch_size: int) -> str:
    """The format name, from ``format=`` or the suffix; checks the options common to all."""
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    if fmt:
        if fmt not in _FORMATS.values():
            raise ConfigError(f"unknown format {fmt!r}; use one of {sorted(set(_FORMATS.values()))}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ConfigError(f"cannot tell the format of {path}: use a suffix in {sorted(_FORMATS)} or pass format=")
    return _FORMATS[suffix]


def write(
    path: str | Path,
    docs: Iterable[Doc | dict[str, Any]],
    doc_type: type[Doc],
    *,
    format: str | None = None,
    batch_size: int = 4096,
    compression: str | None = None,
) -> int:
    """Stream documents to a file in batches; returns how many were written.

    Raises:
        SchemaError: a document is not a ``doc_type`` (nor a dict that validates as one). The
            partial file is removed (JSONL, Parquet) or left unsealed (binary: readers report
            it as truncated), so no file silently holds fewer documents than were given.
        ConfigError: unknown format or compression.
    """
    fmt = _format(path, format, batch_size)
    docs = _checked(docs, doc_type)
    if fmt == "binary":
        from polymodal.io import binary

        return binary.write(path, docs, doc_type, batch_size=batch_size, compression=compression)
    if fmt == "jsonl":
        from polymodal.io import json

        if compression:  # silently writing plain text would surprise whoever asked for compression
            raise ConfigError(f"JSON Lines files are not compressed (compression={compression!r})")
        return json.write_jsonl(path, docs)
    from polymodal.io import arrow

    return arrow.write_parquet(path, _batched(docs, batch_size, doc_type), doc_type, compression=compression or "zstd")


def _checked(docs: Iterable[Doc | dict[str, Any]], doc_type: type[Doc]) -> Iterator[Doc]:
    """Each document as a ``doc_type`` (dicts validated): a file holds one schema, the one its
    reader will be given, so a stray document is an error at write time, not at read time."""
    for doc in docs:
        if type(doc) is doc_type:
            yield doc
        elif isinstance(doc, dict):
            yield doc_type.from_dict(doc)
        else:
            raise SchemaError(
                f"cannot write a {type(doc).__name__} to a file of {doc_type.__name__} documents",
                expected=doc_type.__name__,
                actual=type(doc).__name__,
            )


def iter_read(
    path: str | Path, doc_type: type[Doc], *, format: str | None = None, batch_size: int = 4096
) -> Iterator[DocList[Any]]:
    """Yield the documents of a file in batches (DocLists), whatever its format.

    JSONL and Parquet batches hold at most ``batch_size`` documents; binary files yield the
    batches they were written in. A truncated or corrupt file raises ``FormatError`` after the
    intact batches before the damage, so a reader never ends early without saying so (except
    a JSONL file cut exactly at a line end, which is itself a valid, shorter JSONL file).
    """
    fmt = _format(path, format, batch_size)
    if fmt == "binary":
        from polymodal.io import binary

        yield from binary.iter_batches(path, doc_type)
    elif fmt == "jsonl":
        from polymodal.io import json

        yield from json.iter_jsonl(path, doc_type, batch_size=batch_size)
    else:
        from polymodal.io import arrow

        yield from arrow.iter_parquet(path, doc_type, batch_size=batch_size)


def _batched(docs: Iterable[Doc], size: int, doc_type: type[Doc]) -> Iterator[DocList[Any]]:
    batch: list[Doc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield DocList[doc_type](batch)  # type: ignore[valid-type]
            batch = []
    if batch:
        yield DocList[doc_type](batch)  # type: ignore[valid-type]
