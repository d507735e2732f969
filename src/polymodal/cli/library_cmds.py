"""The library commands: ``index`` a folder of media, ``search`` it, find ``similar`` items,
and ``info`` about a store; and the table of hits that search and similar print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["cmd_index", "cmd_info", "cmd_search", "cmd_similar"]


def _modalities(value: str | None) -> list[str] | None:
    return [m.strip() for m in value.split(",") if m.strip()] if value else None


def _where(value: str | None) -> dict[str, Any] | None:
    if not value:
        return None
    from polymodal.errors import ConfigError

    try:
        where = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f'--where is not valid JSON ({exc.msg} at column {exc.colno}); write it like \'{{"modality": "video"}}\''
        ) from None
    if not isinstance(where, dict):
        raise ConfigError('--where must be a JSON object, like \'{"modality": "video"}\'')
    return where


def cmd_index(args: argparse.Namespace) -> int:
    from polymodal.errors import ConfigError
    from polymodal.library.indexer import index_paths, open_library

    missing = [p for p in args.paths if not Path(p).expanduser().exists()]
    if missing:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    store, profile, reason = open_library(args.db, profile=args.profile)
    try:
        if not args.json:
            print(f"using the {reason}", file=sys.stderr)
        report = index_paths(
            store, profile, args.paths, prune=args.prune, progress=not (args.quiet or args.json), ray_address=args.ray
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            f"indexed {report.indexed}, skipped {report.skipped} unchanged, failed {len(report.failed)}"
            + (f", pruned {report.pruned}" if args.prune else "")
            + f" ({report.seconds:.1f} s)"
        )
        for f in report.failed:
            print(f"  failed: {f.path}: {f.reason}")
    return 0


def _open_search(db: str) -> Any:
    from polymodal.library.indexer import open_library
    from polymodal.library.search import LibrarySearch

    store, profile, _ = open_library(db, create=False)
    return store, LibrarySearch(store, profile)


def cmd_search(args: argparse.Namespace) -> int:
    from polymodal.errors import ConfigError

    if args.limit <= 0:
        raise ConfigError("--limit must be a positive number")
    if args.query is None and not (args.image or args.audio):
        raise ConfigError("give words to search for, or --image FILE, or --audio FILE")
    for f in (args.image, args.audio):
        if f and not Path(f).is_file():
            raise ConfigError(f"no such file: {f}")
    where = _where(args.where)
    store, searcher = _open_search(args.db)
    try:
        kw = {"limit": args.limit, "where": where, "modalities": _modalities(args.modality)}
        if args.image:
            hits = searcher.image(args.image, **kw)
        elif args.audio:
            hits = searcher.audio(args.audio, **kw)
        else:
            hits = searcher.text(args.query, **kw)
    finally:
        store.close()
    _print_hits(hits, args.json)
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    store, searcher = _open_search(args.db)
    try:
        hits = searcher.similar(args.examples, args.negative, limit=args.limit, modalities=_modalities(args.modality))
    finally:
        store.close()
    _print_hits(hits, args.json)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from polymodal.library.indexer import open_library
    from polymodal.library.schema import MODALITIES

    store, profile, _ = open_library(args.db, create=False)
    try:
        per = {m: store.count({"modality": m}) for m in MODALITIES}
        size = store.size_on_disk() if hasattr(store, "size_on_disk") else None
        models = {
            role: getattr(profile, role).model
            for role in ("text", "image", "image_text", "audio", "audio_text")
            if getattr(profile, role) is not None
        }
        translators = {
            role: getattr(profile, role).family
            for role in ("labels", "ocr", "asr")
            if getattr(profile, role) is not None
        }
        data = {
            "db": args.db,
            "documents": store.count(),
            "per_modality": per,
            "profile": profile.name,
            "models": models,
            "translators": translators,
            "size_bytes": size,
        }
    finally:
        store.close()
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"store     {args.db}")
    print(f"documents {data['documents']}  (" + ", ".join(f"{m} {n}" for m, n in per.items()) + ")")
    print(f"profile   {profile.name}")
    for role, model in models.items():
        print(f"  {role:<11} {model}")
    for role, fam in translators.items():
        print(f"  {role:<11} {fam}")
    if size is not None:
        print(f"size      {size / 1e6:.1f} MB on disk")
    return 0


def _print_hits(hits: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([h.as_dict() for h in hits], indent=2, ensure_ascii=False))
        return
    if not hits:
        print("no results")
        return
    print(f"{'#':>2}  {'score':>6}  {'modality':<8} {'moment':<13} file / snippet")
    for i, h in enumerate(hits, 1):
        moment = f"{_clock(h.start)}-{_clock(h.end)}" if h.start is not None else ""
        print(f"{i:>2}  {h.score:>6.2f}  {h.modality:<8} {moment:<13} {h.uri}")
        if h.snippet:
            print(f"{'':>33}{' '.join(h.snippet.split())[:90]}")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"
