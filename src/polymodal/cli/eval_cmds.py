"""The evaluation commands: ``eval`` (retrieval metrics on labelled queries, compared across
configurations, with learnt fusion weights) and ``plot`` (a 2-D picture of the embedding space)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polymodal.cli.library_cmds import _open_search

__all__ = ["cmd_eval", "cmd_plot"]


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
