"""Indexing a folder tree into a store: incremental, resumable, with a progress bar.

Files are identified by their absolute path (hashed into the document id). A file whose size
and modification time are unchanged is skipped; a changed file is re-indexed (its document is
replaced); ``prune=True`` removes documents of files that no longer exist under the roots.
Documents are written batch by batch, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError
from polymodal.library.build import Builder, Failure, modality_of
from polymodal.library.profile import Profile, choose_profile
from polymodal.library.schema import TEXT_FIELDS, MediaItem
from polymodal.store.base import Store

__all__ = ["IndexReport", "index_paths", "open_library"]


@dataclass
class IndexReport:
    """What an index run did."""

    indexed: int = 0
    skipped: int = 0
    pruned: int = 0
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    profile: str = ""
    profile_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "indexed": self.indexed,
            "skipped": self.skipped,
            "pruned": self.pruned,
            "failed": [{"path": f.path, "reason": f.reason} for f in self.failed],
            "seconds": round(self.seconds, 3),
            "profile": self.profile,
        }


def open_library(db: str | Path, *, profile: str | None = None, create: bool = True) -> tuple[Store[Any], Profile, str]:
    """Open (or create) a media library store and the profile it was (or will be) indexed with.

    Raises:
        ConfigError: the store was indexed with another profile than the one asked for, or
            it does not exist and ``create`` is False.
    """
    import polymodal as pm

    path = str(db)
    if "://" not in path and not (Path(path) / "store.db").exists() and not create:
        raise ConfigError(f"no polymodal store at {path}; run `polymodal index PATH --db {path}` first")
    # creating and reopening alike: a store made with another schema is refused (SchemaError),
    # and a missing collection on a server is created when `create` allows it
    if create:
        store = pm.open(path, schema=MediaItem, text_fields=TEXT_FIELDS)
    else:
        try:
            store = pm.open(path)
        except ConfigError as exc:
            if "no polymodal store" not in str(exc):
                raise
            raise ConfigError(f"no polymodal store at {path}; run `polymodal index PATH --db {path}` first") from None
    saved = store.get_setting("profile")
    if saved is not None:
        stored = Profile.model_validate(saved)
        if profile not in (None, "auto", stored.name):
            store.close()
            raise ConfigError(
                f"{path} was indexed with the {stored.name!r} profile; searching or indexing it with {profile!r} "
                "would mix models. Use a new --db for another profile."
            )
        return store, stored, f"{stored.name} profile (recorded in the store)"
    choice = choose_profile(profile)
    store.set_setting("profile", choice.profile.model_dump(mode="json"))
    return store, choice.profile, choice.reason


def walk(roots: Sequence[Path]) -> Iterator[Path]:
    """Every supported file under the roots (a root may itself be a file), sorted, no duplicates."""
    seen: set[Path] = set()
    for root in roots:
        if root.is_file():
            candidates: Iterable[Path] = [root]
        else:
            candidates = (
                Path(dp) / name for dp, dirs, files in os.walk(root) for name in sorted(files) if not dirs.sort()
            )  # sorting dirs in place makes the walk deterministic
        for p in candidates:
            if p.name.startswith(".") or modality_of(p) is None:
                continue
            resolved = p.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield resolved


def index_paths(
    store: Store[Any],
    profile: Profile,
    roots: Sequence[str | Path],
    *,
    prune: bool = False,
    batch_files: int = 8,
    progress: bool = True,
    ray_address: str | None = None,
    ray_actors: int | None = None,
) -> IndexReport:
    """Index every supported file under ``roots`` into ``store`` (see module doc).

    With ``ray_address`` ("local" for a Ray instance on this machine, or a cluster address),
    decoding and embedding run on Ray actors (one GPU each where the cluster has GPUs) while
    this process writes their batches into the store.
    """
    started = time.perf_counter()
    report = IndexReport(profile=profile.name)
    paths = [Path(r).expanduser() for r in roots]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    roots = sorted(
        {*(store.get_setting("roots") or []), *(str(p.resolve() if p.is_dir() else p.resolve().parent) for p in paths)}
    )
    store.set_setting("roots", roots)  # what a server may serve files from (see polymodal serve)
    known = {row["uri"]: row for row in store.scan(["uri", "size", "mtime"])}
    files = list(walk(paths))
    todo: list[Path] = []
    for path in files:
        st = path.stat()
        row = known.get(str(path))
        if row is not None and row["size"] == st.st_size and row["mtime"] == st.st_mtime:
            report.skipped += 1
        else:
            todo.append(path)
    batches = [todo[start : start + batch_files] for start in range(0, len(todo), batch_files)]
    from polymodal.doc.apply import progress_bar

    with progress_bar(len(todo), "indexing" if progress else False, unit="file") as bar:
        if ray_address is not None:
            from polymodal.library.distributed import build_on_ray

            results = build_on_ray(profile, batches, address=ray_address, actors=ray_actors)
        else:
            builder = Builder(profile)
            results = (builder.build(batch) for batch in batches)
        for docs, failures in results:
            if docs:
                store.add(docs)  # each batch is durable as soon as it is written: a rerun resumes
            report.indexed += len(docs)
            report.failed.extend(failures)
            bar.update(len(docs) + len(failures))
    if prune:
        present = {str(p) for p in files}
        roots_abs = [str(p.resolve()) for p in paths]
        stale = [
            row["id"]
            for uri, row in known.items()
            if uri not in present and any(uri == r or uri.startswith(r.rstrip("/") + "/") for r in roots_abs)
        ]
        report.pruned = store.delete(stale)
    report.seconds = time.perf_counter() - started
    return report
