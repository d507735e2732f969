"""``python -m polymodal.pipeline serve-step PIPELINE.yaml --step N``: run one step of a YAML
pipeline as its own process, so the pipeline can name it with ``remote: http://host:port``.

The same YAML entry configures both sides: the pipeline sees ``remote:`` and sends batches,
this command ignores ``remote:`` and builds the step itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from polymodal.errors import ConfigError, PolymodalError

__all__ = ["build_server", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m polymodal.pipeline", description="Serve pipeline steps.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-step", help="serve one step of a pipeline over HTTP")
    serve.add_argument("pipeline", help="the pipeline YAML file")
    serve.add_argument("--step", required=True, help="the step's position (1 = first) or name")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8700)
    serve.add_argument("--api-key-file", help="file holding the API key (or set POLYMODAL_API_KEY)")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback host without a key")
    return parser


def build_server(argv: Sequence[str]) -> Any:
    """The StepServer the command would run (not started), from command-line arguments.

    Raises:
        ConfigError: a bad pipeline file, or no step with that position or name.
    """
    from polymodal.pipeline.remote import StepServer
    from polymodal.pipeline.spec import load_spec, step_from_spec
    from polymodal.serve.security import load_api_key

    args = _parser().parse_args(list(argv))
    spec = load_spec(args.pipeline)
    entries = spec.get("steps") if isinstance(spec, dict) else spec
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{args.pipeline} holds no list of steps")
    if args.step.isdigit():
        position = int(args.step)
        if not 1 <= position <= len(entries):
            raise ConfigError(f"--step {position}: the pipeline has steps 1 to {len(entries)}")
    else:
        names = [e.get("name") if isinstance(e, dict) else None for e in entries]
        if args.step not in names:
            raise ConfigError(f"--step {args.step!r}: no step of that name; named steps: {[n for n in names if n]}")
        position = names.index(args.step) + 1
    step = step_from_spec(entries[position - 1], position=position, local=True)
    key = load_api_key(args.api_key_file)
    return StepServer(step, host=args.host, port=args.port, api_key=key, insecure=args.insecure)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        server = build_server(sys.argv[1:] if argv is None else argv)
    except PolymodalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"serving step {server.step.name!r} on {server.url}", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
