"""The ``polymodal`` command: index a folder of media, search it, recommend, describe.

Thin by design: it parses arguments, calls the library, and prints a table (or JSON with
``--json``). Every error the library raises on purpose becomes one line on stderr saying what
to do, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    ix.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="decode and embed on Ray actors (a local instance, or the cluster at ADDRESS)")

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
    sv.add_argument("--media-root", action="append", default=[], help="directory media may be served from "
                    "(default: the folders the store was indexed from)")
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


# -- commands ----------------------------------------------------------------------------------
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


def cmd_eval(args: argparse.Namespace) -> int:
    from polymodal.errors import ConfigError
    from polymodal.eval.qrels import load_qrels
    from polymodal.eval.runner import compare, learn_weights

    try:
        ks = [int(k) for k in args.k.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--k takes comma-separated integers like 1,5,10, got {args.k!r}") from None
    queries = load_qrels(args.qrels)
    configs_spec = _compare_configs(args.compare)
    store, searcher = _open_search(args.db)
    opened = [store]
    try:
        configs: list[tuple[str, Any, Any]] = [("default", searcher, None)]
        for spec in configs_spec:
            other_store, other = _open_search(spec["db"]) if spec.get("db") not in (None, args.db) else (None, searcher)
            if other_store is not None:
                opened.append(other_store)
            configs.append((str(spec["name"]), other, spec.get("weights")))
        evaluations = compare(configs, queries, ks=ks)
        learnt = None
        if args.learn_weights:
            learnt = learn_weights(searcher, queries, metric=args.metric)
            if args.save_weights:
                store.set_setting("weights", dict(learnt.weights))
    finally:
        for s in opened:
            s.close()
    if args.json:
        out: dict[str, Any] = {"configs": [e.as_dict() for e in evaluations]}
        if learnt is not None:
            out["learnt"] = {
                "weights": dict(learnt.weights),
                "metric": learnt.metric,
                "train": [learnt.train_before, learnt.train_after],
                "heldout": [learnt.heldout_before, learnt.heldout_after],
                "saved": bool(args.save_weights),
            }
        print(json.dumps(out, indent=2, default=_nan_safe))
        return 0
    _print_evaluations(evaluations)
    if learnt is not None:
        print(f"\nlearnt weights (maximising {learnt.metric}):")
        for name, w in learnt.weights.items():
            print(f"  {name:<20} {w:g}")
        print(f"  training queries ({len(learnt.train_ids)}): {learnt.train_before:.3f} -> {learnt.train_after:.3f}")
        print(
            f"  held-out queries ({len(learnt.heldout_ids)}): {learnt.heldout_before:.3f} -> {learnt.heldout_after:.3f}"
        )
        print("  saved in the store" if args.save_weights else "  (not saved: add --save-weights)")
    return 0


def _nan_safe(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else str(value)


def _compare_configs(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    from polymodal.errors import ConfigError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read --compare file {path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "name" in d for d in data):
        raise ConfigError('--compare takes a JSON list like [{"name": "bm25 off", "weights": {"bm25": 0}}]')
    return data


def _print_evaluations(evaluations: Sequence[Any]) -> None:
    first = evaluations[0]
    metrics = list(first.overall.metrics)
    print(f"{first.overall.num_queries} queries")
    header = f"{'configuration':<18}" + "".join(f"{m:>13}" for m in metrics)
    print(header)
    for e in evaluations:
        print(f"{e.name:<18}" + "".join(f"{e.overall.means[m]:>13.3f}" for m in metrics))
    print(f"\nper modality of the relevant files ({first.name}):")
    print(f"{'modality':<18}" + "".join(f"{m:>13}" for m in metrics))
    for mod, result in first.per_modality.items():
        print(f"{mod:<18}" + "".join(f"{result.means[m]:>13.3f}" for m in metrics))
    worst = [(o, v) for o, v in first.worst() if v < 1.0 - 1e-9]
    if worst:
        print("\nworst queries:")
        for o, v in worst:
            rank = "not found" if o.first_relevant is None else f"first relevant at rank {o.first_relevant}"
            above = ", ".join(o.above()[:4]) or "-"
            print(f"  {o.query.id}: {o.query.value!r}  {v:.3f}  ({rank}; above it: {above})")


def cmd_plot(args: argparse.Namespace) -> int:
    from polymodal.embed import load as load_embedder
    from polymodal.errors import ConfigError
    from polymodal.eval.plot import project, render_html, render_png
    from polymodal.library.indexer import open_library

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise ConfigError("--out must end in .png or .html")
    store, profile, _ = open_library(args.db, create=False)
    try:
        qvec = None
        if args.query:
            cfg = {"text": profile.text, "image": profile.image_text, "audio": profile.audio_text}[args.space]
            if cfg is None:
                raise ConfigError(f"the {profile.name} profile cannot put words into the {args.space} space")
            qvec = load_embedder(cfg).embed_one(args.query)
        proj = project(
            store, space=args.space, color_by=args.color_by, method=args.method, query_vector=qvec, query=args.query
        )
        if out.suffix.lower() == ".png":
            render_png(proj, out)
        else:
            render_html(proj, out)
    finally:
        store.close()
    sil = None if proj.silhouette is None else round(proj.silhouette, 4)
    if args.json:
        print(json.dumps({"out": str(out), "points": len(proj.points), "method": proj.method, "silhouette": sil}))
    else:
        print(
            f"wrote {out}: {len(proj.points)} documents, {proj.method.upper()}, "
            f"silhouette by {args.color_by}: {'n/a' if sil is None else sil}"
        )
    return 0


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
    report = copy_store(args.src, args.dst, batch_size=args.batch_size, overwrite=args.overwrite,
                        progress=not args.json)
    if args.json:
        print(json.dumps({"copied": report.copied, "skipped": report.skipped, "total": report.total}))
    else:
        print(f"copied {report.copied}, skipped {report.skipped} already there, of {report.total} documents")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from polymodal.library.demo import run_demo

    return run_demo(Path(args.dir), profile=args.profile, as_json=args.json)


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
