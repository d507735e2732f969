"""``polymodal serve``: checks that must pass before listening, then uvicorn (and gRPC)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError

__all__ = ["build_service", "serve"]

_WORKER_ENV = "POLYMODAL_SERVE_WORKER_CONFIG"


def build_service(
    db: str, *, api_key: str | None, media_roots: list[str], allow_urls: list[str], max_body_mb: float
) -> Any:
    from polymodal.serve.service import Limits, Service

    if "://" not in db and not (Path(db) / "store.db").exists():
        raise ConfigError(f"no polymodal store at {db}; create one with `polymodal index PATH --db {db}`")
    return Service.open(
        db,
        api_key=api_key,
        media_roots=tuple(str(Path(r).resolve()) for r in media_roots),
        allow_urls=tuple(allow_urls),
        limits=Limits(max_body_bytes=int(max_body_mb * (1 << 20))),
    )


def serve(args: argparse.Namespace) -> int:
    """Refuse unsafe setups with one clear line, then serve until interrupted."""
    from polymodal.serve.security import is_loopback, load_api_key

    key = load_api_key(args.api_key_file)
    if not is_loopback(args.host) and key is None and not args.insecure:
        raise ConfigError(
            f"refusing to listen on {args.host} without an API key: set POLYMODAL_API_KEY or --api-key-file "
            "(or pass --insecure if this network is trusted)"
        )
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    import uvicorn

    from polymodal.serve.http import create_app

    service = build_service(
        args.db, api_key=key, media_roots=args.media_root, allow_urls=args.allow_url, max_body_mb=args.max_body_mb
    )
    service.warm()
    grpc_server = None
    if args.grpc_port is not None:
        from polymodal.serve.grpc_server import start_grpc

        grpc_server = start_grpc(service, host=args.host, port=args.grpc_port)
    print(
        f"polymodal: serving {args.db} on http://{args.host}:{args.port}"
        + (f" and gRPC {args.host}:{args.grpc_port}" if grpc_server else "")
        + ("" if key else " (no API key: loopback only)"),
        file=sys.stderr,
    )
    try:
        if args.workers > 1:
            # worker processes rebuild the same service: every option travels, the key included
            # (the environment of a process is readable by its owner only)
            os.environ[_WORKER_ENV] = json.dumps(
                {
                    "db": args.db,
                    "api_key": key,
                    "media_roots": list(service.media_roots),
                    "allow_urls": list(service.allow_urls),
                    "max_body_mb": args.max_body_mb,
                }
            )
            uvicorn.run(
                "polymodal.serve.run:app_from_env",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_level="warning",
            )
        else:
            uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=2)
        service.store.close()
    return 0


def app_from_env() -> Any:
    """App factory for worker processes: the parent's full configuration, key included."""
    from polymodal.serve.http import create_app

    cfg = json.loads(os.environ[_WORKER_ENV])
    service = build_service(
        cfg["db"],
        api_key=cfg["api_key"],
        media_roots=cfg["media_roots"],
        allow_urls=cfg["allow_urls"],
        max_body_mb=float(cfg["max_body_mb"]),
    )
    service.warm()
    return create_app(service)
