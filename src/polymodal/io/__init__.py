"""Serialization: JSON/JSONL, the binary format, Arrow/Parquet/pandas; streaming for each.

``read``/``write`` pick the format from the file suffix (``.pmd`` binary, ``.jsonl``,
``.parquet``) and stream in batches, so files larger than memory work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from polymodal.doc.base import Doc
from polymodal.doc.doclist import DocList
from polymodal.errors import ConfigError

__all__ = ["iter_read", "write"]

_FORMATS = {".pmd": "binary", ".bin": "binary", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def _format(path: str | Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ConfigError(f"cannot tell the format of {path}: use a suffix in {sorted(_FORMATS)} or pass format=")
    return _FORMATS[suffix]


def write(path: str | Path, docs: Iterable[Doc], doc_type: type[Doc], *, format: str | None = None,
          batch_size: int = 4096, compression: str | None = None) -> int:
    """Stream documents to a file in batches; returns how many were written."""
    fmt = _format(path, format)
    if fmt == "binary":
        from polymodal.io import binary

        return binary.write(path, docs, doc_type, batch_size=batch_size, compression=compression)
    if fmt == "jsonl":
        from polymodal.io import json

        return json.write_jsonl(path, docs)
    from polymodal.io import arrow

    return arrow.write_parquet(path, _batched(docs, batch_size, doc_type), doc_type,
                               compression=compression or "zstd")


def iter_read(path: str | Path, doc_type: type[Doc], *, format: str | None = None,
              batch_size: int = 4096) -> Iterator[DocList[Any]]:
    """Yield the documents of a file in batches (DocLists), whatever its format."""
    fmt = _format(path, format)
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
