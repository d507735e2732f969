"""The ``polymodal`` command: index a folder of media, search it, recommend, describe.

Thin by design: it parses arguments, calls the library, and prints a table (or JSON with
``--json``). Every error the library raises on purpose becomes one line on stderr saying what
to do, and a non-zero exit status.

This module holds the parser and the dispatch; the commands are in ``library_cmds`` (index,
search, similar, info), ``eval_cmds`` (eval, plot) and ``service_cmds`` (serve, copy, demo).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from polymodal.cli.eval_cmds import cmd_eval, cmd_plot
from polymodal.cli.library_cmds import cmd_index, cmd_info, cmd_search, cmd_similar
from polymodal.cli.service_cmds import cmd_copy, cmd_demo, cmd_serve
from polymodal.errors import PolymodalError

__all__ = ["main"]

EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polymodal", description="Search your photos, videos, sounds and notes by meaning."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ix = sub.add_parser("index", help="index files and folders into a store")
    ix.add_argument("paths", nargs="+", metavar="PATH")
    ix.add_argument("--db", required=True, help="store directory (or store URI)")
    ix.add_argument(
        "--profile",
        default="auto",
        choices=["auto", "offline", "clip"],
        help="models to use (default: the best available, recorded in the store)",
    )
    ix.add_argument("--prune", action="store_true", help="remove documents of files that no longer exist")
    ix.add_argument("--json", action="store_true", help="print the summary as JSON")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="decode and embed on Ray actors (a local instance, or the cluster at ADDRESS)",
    )

    se = sub.add_parser("search", help="search by words, an image or a sound")
    se.add_argument("query", nargs="?", default=None, help="words to search for")
    se.add_argument("--db", required=True)
    group = se.add_mutually_exclusive_group()
    group.add_argument("--image", metavar="FILE", help="find what looks like this image")
    group.add_argument("--audio", metavar="FILE", help="find what sounds like (or says the words of) this file")
    se.add_argument("--limit", type=int, default=10)
    se.add_argument("--modality", default=None, help="comma-separated: image,video,audio,text,mesh")
    se.add_argument("--where", default=None, metavar="JSON", help='filter, e.g. \'{"modality": "video"}\'')
    se.add_argument("--json", action="store_true")

    si = sub.add_parser("similar", help="more like this: documents (by id) or files")
    si.add_argument("examples", nargs="+", metavar="ID_OR_FILE")
    si.add_argument(
        "--not",
        dest="negative",
        nargs="*",
        default=[],
        metavar="ID_OR_FILE",
        help="examples the results should not resemble",
    )
    si.add_argument("--db", required=True)
    si.add_argument("--limit", type=int, default=10)
    si.add_argument("--modality", default=None)
    si.add_argument("--json", action="store_true")

    info = sub.add_parser("info", help="what a store holds")
    info.add_argument("--db", required=True)
    info.add_argument("--json", action="store_true")

    ev = sub.add_parser("eval", help="retrieval metrics on labelled queries (qrels)")
    ev.add_argument("--db", required=True)
    ev.add_argument("--qrels", required=True, help="JSONL of queries and relevant files (see docs/quality.md)")
    ev.add_argument("--k", default="1,5,10", help="cutoffs, e.g. 1,5,10")
    ev.add_argument(
        "--compare",
        metavar="CONFIGS.json",
        help='more configurations: [{"name": ..., "db": ..., "weights": {...}}, ...]',
    )
    ev.add_argument("--learn-weights", action="store_true", help="search fusion weights on the labels")
    ev.add_argument("--metric", default="ndcg@10", help="metric to maximise with --learn-weights")
    ev.add_argument("--save-weights", action="store_true", help="store the learnt weights in the store")
    ev.add_argument("--json", action="store_true")

    pl = sub.add_parser("plot", help="a 2-D picture of the embedding space (PNG or HTML)")
    pl.add_argument("--db", required=True)
    pl.add_argument("--out", required=True, help="FILE.png or FILE.html")
    pl.add_argument("--color-by", default="modality", help="modality or any plain field")
    pl.add_argument("--space", default="text", choices=["text", "image", "audio"])
    pl.add_argument("--method", default="pca", choices=["pca", "tsne", "umap"])
    pl.add_argument("--query", default=None, help="draw this query and lines to its top hits")
    pl.add_argument("--json", action="store_true")

    sv = sub.add_parser("serve", help="serve a store over HTTP (and gRPC) with a search page")
    sv.add_argument("--db", required=True, help="store directory or URI")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8080)
    sv.add_argument("--grpc-port", type=int, default=None, help="also serve gRPC on this port")
    sv.add_argument("--workers", type=int, default=1, help="HTTP worker processes")
    sv.add_argument("--api-key-file", default=None, help="file holding the API key (else POLYMODAL_API_KEY)")
    sv.add_argument("--insecure", action="store_true", help="listen beyond loopback without an API key")
    sv.add_argument(
        "--media-root",
        action="append",
        default=[],
        help="directory media may be served from (default: the folders the store was indexed from)",
    )
    sv.add_argument("--allow-url", action="append", default=[], help="URL prefix the server may fetch")
    sv.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body, in MB")

    cp = sub.add_parser("copy", help="copy a collection between backends (resumable)")
    cp.add_argument("src", metavar="SRC_URI")
    cp.add_argument("dst", metavar="DST_URI")
    cp.add_argument("--batch-size", type=int, default=500)
    cp.add_argument("--overwrite", action="store_true", help="re-send documents the destination already has")
    cp.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="build a demo corpus from packaged media, index it, run example queries")
    demo.add_argument("--dir", default="polymodal-demo", help="where to write the demo files and store")
    demo.add_argument("--profile", default="auto", choices=["auto", "offline", "clip"])
    demo.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(_COMMANDS[args.command](args) or 0)
    except PolymodalError as exc:
        print(f"polymodal {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"polymodal {args.command}: interrupted (documents already written are kept)", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


_COMMANDS = {
    "index": cmd_index,
    "search": cmd_search,
    "similar": cmd_similar,
    "info": cmd_info,
    "eval": cmd_eval,
    "plot": cmd_plot,
    "serve": cmd_serve,
    "copy": cmd_copy,
    "demo": cmd_demo,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
