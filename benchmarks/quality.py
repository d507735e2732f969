"""Retrieval quality on data that ships in packages; writes the tables of docs/quality.md.

1. scikit-learn's digits, image -> image: each of the 1,797 8x8 digits queries all the others;
   the same digit is relevant. Precision@10 (and more) with EfficientNet-lite0 features versus
   raw pixels, both ranked by cosine similarity; the features also go through the embedded
   store to show the stored path gives the same numbers.
2. The labelled check set of the demo corpus (photos, a narrated slideshow video, voice memos,
   notes, a 3D model), offline profile, through the full `polymodal` search.

    python benchmarks/quality.py [--limit N] [--out docs/quality.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from polymodal.eval.metrics import evaluate

METRICS = ["precision@1", "precision@10", "recall@10", "ndcg@10", "mrr", "map"]


def _rank_all(x: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1)[:, :100]
    run = {str(i): [str(j) for j in order[i]] for i in range(len(x))}
    qrels = {str(i): {str(j): 1.0 for j in np.flatnonzero(labels == labels[i]) if j != i} for i in range(len(x))}
    return dict(evaluate(run, qrels, METRICS).means)


def digits(limit: int | None) -> tuple[list[tuple[str, dict[str, float]]], dict[str, object]]:
    from sklearn.datasets import load_digits

    import polymodal as pm
    from polymodal.embed import load

    data = load_digits()
    images, labels = data.images, data.target
    if limit:
        images, labels = images[:limit], labels[:limit]
    pixels = images.reshape(len(images), -1).astype(np.float64)
    grey = [(img / 16.0 * 255).astype(np.uint8) for img in images]
    rgb = [np.repeat(g[..., None], 3, axis=2) for g in grey]
    # ImageNet photos show dark objects on lighter ground with a margin: invert and pad the digits
    framed = [np.repeat(np.pad(255 - g, 2, constant_values=255)[..., None], 3, axis=2) for g in grey]
    emb = load(family="efficientnet", model="efficientnet-lite0", modality="image")
    feats_plain = emb.embed(rgb)
    t0 = time.perf_counter()
    feats = emb.embed(framed)
    seconds = time.perf_counter() - t0
    rows = [
        ("raw pixels (64-d)", _rank_all(pixels, labels)),
        ("raw pixels, centred", _rank_all(pixels - pixels.mean(axis=0), labels)),
        ("EfficientNet-lite0 features, digits as given (1280-d)", _rank_all(feats_plain, labels)),
        ("EfficientNet-lite0 features, inverted and padded", _rank_all(feats, labels)),
    ]

    class Digit(pm.Doc):
        label: int
        features: pm.Vector[1280]

    with tempfile.TemporaryDirectory() as tmp:
        store = pm.open(Path(tmp) / "digits", schema=Digit)
        store.add(
            [Digit(id=str(i), label=int(y), features=f) for i, (y, f) in enumerate(zip(labels, feats, strict=True))]
        )
        results = store.search_batch(feats, field="features", limit=11)
        run = {str(i): [h.id for h in hits if h.id != str(i)][:10] for i, hits in enumerate(results)}
        qrels = {
            str(i): {str(j): 1.0 for j in np.flatnonzero(labels == labels[i]) if j != i} for i in range(len(labels))
        }
        stored = dict(evaluate(run, qrels, ["precision@1", "precision@10"]).means)
        store.close()
    rows.append(("EfficientNet features via the embedded store", {**{m: float("nan") for m in METRICS}, **stored}))
    info = {
        "images": len(images),
        "embed_seconds": round(seconds, 1),
        "images_per_second": round(len(images) / seconds, 1),
    }
    return rows, info


def check_set() -> tuple[dict[str, object], list[dict[str, object]]]:
    from polymodal.eval.qrels import load_qrels
    from polymodal.eval.runner import evaluate_library
    from polymodal.library.demo import build_corpus
    from polymodal.library.indexer import index_paths, open_library
    from polymodal.library.search import LibrarySearch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "media"
        checks = build_corpus(root)
        store, profile, _ = open_library(Path(tmp) / "store", profile="offline")
        index_paths(store, profile, [root], progress=False)
        qpath = Path(tmp) / "qrels.jsonl"
        lines = []
        for c in checks:
            rel = {"uri": str(root / c.file)} | ({"start": c.span[0], "end": c.span[1]} if c.span else {})
            lines.append(json.dumps({"id": c.query, "query": c.query, "relevant": [rel]}))
        qpath.write_text("\n".join(lines))
        ev = evaluate_library(LibrarySearch(store, profile), load_qrels(qpath), ks=(1, 3, 10))
        rows = []
        for o in ev.outcomes:
            rows.append(
                {
                    "query": o.query.value,
                    "expected": Path(o.query.relevant[0].uri).name,
                    "span": [o.query.relevant[0].start, o.query.relevant[0].end],
                    "rank": o.first_relevant,
                    "top3": [
                        h.uri.rsplit("/", 1)[-1] + (f"@{h.start:.0f}s" if h.start is not None else "")
                        for h in o.hits[:3]
                    ],
                }
            )
        summary = {
            "overall": dict(ev.overall.means),
            "per_modality": {m: dict(r.means) for m, r in ev.per_modality.items()},
            "queries": ev.overall.num_queries,
        }
        store.close()
    return summary, rows


def _fmt(v: float) -> str:
    return "-" if v != v else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="use only the first N digits")
    ap.add_argument("--out", default=None, help="write the Markdown tables here")
    args = ap.parse_args()
    rows, info = digits(args.limit)
    lines = [
        "## Digits: image -> image (scikit-learn `load_digits`)",
        "",
        f"{info['images']} images, leave-one-out: each digit queries all others; the same digit is relevant. "
        f"Cosine similarity. Features: {info['images_per_second']} images/s on this machine.",
        "",
        "| representation | " + " | ".join(METRICS) + " |",
        "|---|" + "---:|" * len(METRICS),
    ]
    for name, means in rows:
        lines.append(f"| {name} | " + " | ".join(_fmt(means.get(m, float("nan"))) for m in METRICS) + " |")
    summary, checks = check_set()
    ov = summary["overall"]
    cs_metrics = ["hit@1", "hit@3", "mrr", "ndcg@10"]
    lines += [
        "",
        "## The labelled check set (demo corpus, offline profile)",
        "",
        f"{summary['queries']} queries; a video or audio answer counts only when its segment lies in the "
        "labelled time span.",
        "",
        "| | " + " | ".join(cs_metrics) + " |",
        "|---|" + "---:|" * len(cs_metrics),
        "| all | " + " | ".join(_fmt(ov[m]) for m in cs_metrics) + " |",
    ]
    for mod, means in summary["per_modality"].items():
        lines.append(f"| {mod} | " + " | ".join(_fmt(means[m]) for m in cs_metrics) + " |")
    lines += ["", "| query | expected | rank | top 3 |", "|---|---|---:|---|"]
    for r in checks:
        span = f" ({r['span'][0]:.0f}-{r['span'][1]:.0f} s)" if r["span"][0] is not None else ""
        lines.append(f"| {r['query']} | {r['expected']}{span} | {r['rank'] or '-'} | {', '.join(r['top3'])} |")
    lines += [
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; "
        f"command: `python benchmarks/quality.py{' --limit ' + str(args.limit) if args.limit else ''}`.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
