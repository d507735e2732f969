"""Moving a collection between any two backends, resumably.

The destination is created with the source's schema and options (metric, text fields) and
receives its settings (models, calibration, weights); documents go across in batches. A run
that stops half-way is simply started again: documents already in the destination (same id)
are skipped, so nothing is copied twice and nothing is lost (``overwrite=True`` re-sends
them instead).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polymodal.store.base import Store

__all__ = ["CopyReport", "copy_store"]


@dataclass(frozen=True, slots=True)
class CopyReport:
    copied: int
    skipped: int
    total: int


def _settings(src: Store[Any]) -> dict[str, Any]:
    """The settings that belong to a collection: its models, weights, media roots, fixed
    dimensions and score calibrations (per field and per embedding space)."""
    spaces = {vf.path.split(".")[-1] for vf in src.vector_fields.values()} | set(src.vector_fields)
    # not the fixed dimensions ("dim:..."): the destination fixes them itself on its first add,
    # and backends create their vector tables then
    keys = [*("profile", "weights", "roots", "embedders"), *(f"calibration:{s}" for s in sorted(spaces))]
    out = {k: src.get_setting(k) for k in keys}
    return {k: v for k, v in out.items() if v is not None}


def copy_store(
    src_uri: str,
    dst_uri: str,
    *,
    batch_size: int = 500,
    overwrite: bool = False,
    progress: bool | str = False,
    on_batch: Callable[[int], None] | None = None,
) -> CopyReport:
    """Copy every document of ``src_uri`` into ``dst_uri`` (created when missing).

    Raises:
        ConfigError: a missing source, or bad URIs.
        SchemaError: the destination exists with another schema.
    """
    import polymodal as pm
    from polymodal.doc.apply import progress_bar

    src: Store[Any] = pm.open(src_uri)
    try:
        options = src.config.model_dump(exclude={"durability"})
        dst: Store[Any] = pm.open(dst_uri, schema=src.doc_type, **options)
        try:
            for key, value in _settings(src).items():
                dst.set_setting(key, value)
            copied = skipped = 0
            total = src.count()
            with progress_bar(total, progress, unit="doc") as bar:
                for batch in src.iter_batches(batch_size):
                    docs = list(batch)
                    if not overwrite:
                        ids = [d.id for d in docs]
                        present = {row["id"] for row in dst.scan(["id"], where={"id": {"$in": ids}})}
                        docs = [d for d in docs if d.id not in present]
                        skipped += len(batch) - len(docs)
                    if docs:
                        dst.add(docs)
                        copied += len(docs)
                    bar.update(len(batch))
                    if on_batch is not None:
                        on_batch(copied + skipped)
            return CopyReport(copied=copied, skipped=skipped, total=total)
        finally:
            dst.close()
    finally:
        src.close()
