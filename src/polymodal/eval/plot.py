"""Pictures of an embedding space: do the modalities line up, do the labels cluster?

One point per document (the mean of its vectors in the chosen space), projected to 2-D with
PCA (always available), t-SNE (scikit-learn) or UMAP (umap-learn), coloured by modality or by
any plain field. A PNG (matplotlib) or a self-contained HTML page whose points show a
thumbnail and text on hover. A query can be drawn in, with lines to its top hits. The
silhouette of the colouring (cosine, in the original space) says in one number how well the
colours separate.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import ConfigError, OptionalDependencyError

__all__ = ["Projection", "Point", "project", "render_html", "render_png", "silhouette"]

SPACES = {
    "text": ("text_vec", "segments.text_vec"),
    "image": ("image_vec", "segments.image_vec"),
    "audio": ("audio_vec", "segments.audio_vec"),
}


@dataclass(frozen=True, slots=True)
class Point:
    id: str
    label: str
    title: str
    text: str
    uri: str
    modality: str


@dataclass(frozen=True)
class Projection:
    """2-D coordinates of documents (and of an optional query) and what they are."""

    xy: np.ndarray
    points: tuple[Point, ...]
    method: str
    silhouette: float | None
    query: str | None = None
    query_xy: np.ndarray | None = None
    query_hits: tuple[int, ...] = ()


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n == 0, 1, n)


def document_vectors(store: Any, space: str, color_by: str) -> tuple[np.ndarray, list[Point]]:
    """One unit vector per document with vectors in ``space`` (mean over its segments)."""
    if space not in SPACES:
        raise ConfigError(f"unknown space {space!r}; use one of {', '.join(SPACES)}")
    top, nested = SPACES[space]
    name = nested.split(".", 1)[1]
    rows, points = [], []
    for doc in store:
        vecs = [np.asarray(getattr(doc, top), np.float64)] if getattr(doc, top, None) is not None else []
        vecs += [
            np.asarray(getattr(s, name), np.float64)
            for s in getattr(doc, "segments", None) or []
            if getattr(s, name) is not None
        ]
        if not vecs:
            continue
        mean = _unit_rows(np.stack(vecs)).mean(axis=0)
        rows.append(mean / (np.linalg.norm(mean) or 1.0))
        label = getattr(doc, color_by, None)
        if label is None and color_by not in type(doc).model_fields:
            raise ConfigError(f"cannot colour by {color_by!r}: the documents have no such field")
        text = (getattr(doc, "text", "") or "")[:200]
        points.append(
            Point(
                doc.id,
                str(label),
                getattr(doc, "name", doc.id),
                text,
                getattr(doc, "uri", ""),
                getattr(doc, "modality", ""),
            )
        )
    if not rows:
        raise ConfigError(f"no document has vectors in the {space} space; try --space image or --space text")
    return np.stack(rows), points


def silhouette(x: np.ndarray, labels: Sequence[str]) -> float | None:
    """Mean silhouette with cosine distance (None with fewer than 2 labels or 3 points)."""
    uniq = sorted(set(labels))
    if len(uniq) < 2 or len(x) < 3 or len(uniq) >= len(x):
        return None
    lab = np.array([uniq.index(v) for v in labels])
    xs = _unit_rows(x)
    dist = 1.0 - xs @ xs.T
    scores = []
    for i in range(len(x)):
        same = lab == lab[i]
        same[i] = False
        if not same.any():
            scores.append(0.0)
            continue
        a = dist[i, same].mean()
        b = min(dist[i, lab == j].mean() for j in range(len(uniq)) if j != lab[i] and (lab == j).any())
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


def _reduce(x: np.ndarray, method: str, seed: int) -> tuple[np.ndarray, Any]:
    if method == "pca":
        mean = x.mean(axis=0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        comps = vt[:2] if len(vt) >= 2 else np.vstack([vt, np.zeros((2 - len(vt), x.shape[1]))])
        return (x - mean) @ comps.T, (mean, comps)
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise OptionalDependencyError.for_package("scikit-learn", "demo", "t-SNE projection") from None
        perplexity = max(2.0, min(30.0, (len(x) - 1) / 3))
        return TSNE(
            n_components=2, perplexity=perplexity, random_state=seed, init="pca", metric="cosine"
        ).fit_transform(x), None
    if method == "umap":
        try:
            import umap  # type: ignore[import-not-found]
        except ImportError:
            raise OptionalDependencyError.for_package("umap-learn", "demo", "UMAP projection") from None
        return umap.UMAP(n_components=2, random_state=seed, metric="cosine").fit_transform(x), None
    raise ConfigError(f"unknown projection {method!r}; use pca, tsne or umap")


def project(
    store: Any,
    *,
    space: str = "text",
    color_by: str = "modality",
    method: str = "pca",
    query_vector: np.ndarray | None = None,
    query: str | None = None,
    top: int = 5,
    seed: int = 0,
) -> Projection:
    """Project a store's documents (and optionally a query) to 2-D."""
    x, points = document_vectors(store, space, color_by)
    q = None if query_vector is None else np.asarray(query_vector, np.float64) / (np.linalg.norm(query_vector) or 1.0)
    if q is not None and method != "pca":
        xy_all, _ = _reduce(np.vstack([x, q]), method, seed)  # non-linear maps cannot place new points later
        xy, qxy = xy_all[:-1], xy_all[-1]
    else:
        xy, model = _reduce(x, method, seed) if len(x) > 1 else (np.zeros((1, 2)), None)
        qxy = None
        if q is not None and model is not None:
            mean, comps = model
            qxy = (q - mean) @ comps.T
    hits: tuple[int, ...] = ()
    if q is not None:
        hits = tuple(int(i) for i in np.argsort(-(x @ q))[:top])
    sil = silhouette(x, [p.label for p in points])
    return Projection(np.asarray(xy, np.float64), tuple(points), method, sil, query, qxy, hits)


def _palette(labels: Sequence[str]) -> dict[str, str]:
    colours = [
        "#4e79a7",
        "#f28e2b",
        "#e15759",
        "#76b7b2",
        "#59a14f",
        "#edc948",
        "#b07aa1",
        "#ff9da7",
        "#9c755f",
        "#bab0ac",
    ]
    return {lab: colours[i % len(colours)] for i, lab in enumerate(sorted(set(labels)))}


def render_png(proj: Projection, path: str | Path, *, title: str = "") -> None:
    """A scatter plot PNG with a legend, the silhouette in the title, the query in black."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise OptionalDependencyError.for_package("matplotlib", "demo", "PNG plots") from None
    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    palette = _palette([p.label for p in proj.points])
    for label, colour in palette.items():
        idx = [i for i, p in enumerate(proj.points) if p.label == label]
        ax.scatter(proj.xy[idx, 0], proj.xy[idx, 1], s=40, c=colour, label=label, alpha=0.85, edgecolors="white")
    for i, p in enumerate(proj.points):
        ax.annotate(p.title[:18], proj.xy[i], fontsize=6, alpha=0.6, xytext=(3, 3), textcoords="offset points")
    if proj.query_xy is not None:
        for i in proj.query_hits:
            ax.plot([proj.query_xy[0], proj.xy[i, 0]], [proj.query_xy[1], proj.xy[i, 1]], c="black", lw=0.6, alpha=0.5)
        ax.scatter([proj.query_xy[0]], [proj.query_xy[1]], marker="*", s=220, c="black", label=f"query: {proj.query}")
    sil = "n/a" if proj.silhouette is None else f"{proj.silhouette:.3f}"
    ax.set_title(title or f"{proj.method.upper()} of document embeddings (silhouette {sil})")
    ax.legend(fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)


def _thumbnail(uri: str, modality: str) -> str | None:
    """A small JPEG data URI for images (and a video's first frame), or None."""
    try:
        from PIL import Image

        if modality == "image":
            img = Image.open(uri).convert("RGB")
        elif modality == "video":
            from polymodal.media.av_io import iter_video_frames

            _, frame = next(iter_video_frames(Path(uri), uri=uri))
            img = Image.fromarray(frame)
        else:
            return None
        img.thumbnail((160, 160))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=70)
        return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    except Exception:  # noqa: BLE001 - a missing or unreadable file just has no thumbnail
        return None


def render_html(proj: Projection, path: str | Path, *, title: str = "", thumbnails: bool = True) -> None:
    """A self-contained page: an SVG scatter whose points show a thumbnail and text on hover."""
    xy = proj.xy
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo == 0, 1, hi - lo)

    def to_px(p: np.ndarray) -> tuple[float, float]:
        u = (p - lo) / span
        return 40 + float(u[0]) * 720, 560 - float(u[1]) * 520

    palette = _palette([p.label for p in proj.points])
    data, circles = [], []
    for i, p in enumerate(proj.points):
        x, y = to_px(xy[i])
        data.append(
            {
                "title": p.title,
                "label": p.label,
                "text": p.text,
                "uri": p.uri,
                "thumb": _thumbnail(p.uri, p.modality) if thumbnails else None,
            }
        )
        circles.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{palette[p.label]}" data-i="{i}"/>')
    lines = []
    if proj.query_xy is not None:
        qx, qy = to_px(proj.query_xy)
        for i in proj.query_hits:
            x, y = to_px(xy[i])
            lines.append(
                f'<line x1="{qx:.1f}" y1="{qy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#333" stroke-width="1"/>'
            )
        lines.append(
            f'<text x="{qx:.1f}" y="{qy:.1f}" font-size="26" text-anchor="middle" dominant-baseline="middle">'
            f'&#9733;</text><text x="{qx + 14:.1f}" y="{qy - 10:.1f}" font-size="12">'
            f"{html.escape(proj.query or 'query')}</text>"
        )
    legend = "".join(
        f'<span class="key"><i style="background:{c}"></i>{html.escape(lab)}</span>' for lab, c in palette.items()
    )
    sil = "n/a" if proj.silhouette is None else f"{proj.silhouette:.3f}"
    heading = html.escape(title or f"{proj.method.upper()} of document embeddings")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{heading}</title><style>
body{{font-family:system-ui,sans-serif;margin:20px}} svg{{border:1px solid #ddd;background:#fff}}
circle{{stroke:#fff;stroke-width:1.5;cursor:pointer}} circle:hover{{stroke:#000}}
#tip{{position:absolute;display:none;background:#fff;border:1px solid #999;padding:8px;max-width:260px;
font-size:12px;box-shadow:2px 2px 6px #0003}} #tip img{{max-width:240px;display:block;margin-bottom:4px}}
.key{{margin-right:14px}} .key i{{display:inline-block;width:12px;height:12px;margin-right:4px;border-radius:6px}}
</style></head><body><h2>{heading}</h2>
<p>silhouette by colour: <b id="sil">{sil}</b> &middot; {len(proj.points)} documents</p>
<div>{legend}</div><svg id="plot" width="800" height="600">{"".join(lines)}{"".join(circles)}</svg><div id="tip"></div>
<script>const DATA={json.dumps(data)};const tip=document.getElementById('tip');
document.querySelectorAll('circle').forEach(c=>{{c.addEventListener('mousemove',e=>{{const d=DATA[+c.dataset.i];
tip.innerHTML=(d.thumb?'<img src="'+d.thumb+'">':'')+'<b></b><br><small></small><p></p>';
tip.querySelector('b').textContent=d.title;tip.querySelector('small').textContent=d.label;
tip.querySelector('p').textContent=d.text;tip.style.display='block';tip.style.left=(e.pageX+12)+'px';
tip.style.top=(e.pageY+12)+'px';}});c.addEventListener('mouseleave',()=>tip.style.display='none');}});</script>
</body></html>"""
    Path(path).write_text(page, encoding="utf-8")
