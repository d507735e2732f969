"""The service commands: ``serve`` a store over HTTP/gRPC, ``copy`` a collection between
backends, and build and search a ``demo`` corpus."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["cmd_copy", "cmd_demo", "cmd_serve"]


def cmd_serve(args: argparse.Namespace) -> int:
    from polymodal.serve.run import serve

    return serve(args)


def cmd_copy(args: argparse.Namespace) -> int:
    from polymodal.errors import ConfigError
    from polymodal.store.copy import copy_store

    if args.batch_size <= 0:
        raise ConfigError("--batch-size must be positive")
    if "://" not in args.src and not (Path(args.src) / "store.db").exists():
        raise ConfigError(f"no polymodal store at {args.src}")
    report = copy_store(
        args.src, args.dst, batch_size=args.batch_size, overwrite=args.overwrite, progress=not args.json
    )
    if args.json:
        print(json.dumps({"copied": report.copied, "skipped": report.skipped, "total": report.total}))
    else:
        print(f"copied {report.copied}, skipped {report.skipped} already there, of {report.total} documents")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from polymodal.library.demo import run_demo

    return run_demo(Path(args.dir), profile=args.profile, as_json=args.json)
