import json
import re

import numpy as np
import pytest

import polymodal as pm
from polymodal.eval.plot import project, render_html, render_png, silhouette
from polymodal.library.schema import MediaItem, MediaSegment


def test_silhouette_known_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 4)) * 0.05 + np.array([1, 0, 0, 0])
    b = rng.normal(size=(20, 4)) * 0.05 + np.array([0, 1, 0, 0])
    x = np.vstack([a, b])
    assert silhouette(x, ["a"] * 20 + ["b"] * 20) > 0.8
    assert abs(silhouette(x, ["a", "b"] * 20)) < 0.1  # labels unrelated to the geometry
    assert silhouette(x, ["a"] * 40) is None


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(1)
    s = pm.open(tmp_path / "db", schema=MediaItem)
    docs = []
    for i in range(12):
        mod = "image" if i % 2 else "video"
        centre = np.eye(8)[0 if mod == "image" else 1]
        if mod == "image":
            docs.append(
                MediaItem(
                    id=f"d{i}",
                    uri=f"/nope/{i}.png",
                    modality=mod,
                    name=f"d{i}.png",
                    text=f"text {i}",
                    text_vec=centre + 0.1 * rng.normal(size=8),
                )
            )
        else:
            segs = [MediaSegment(start=k, end=k + 1, text_vec=centre + 0.1 * rng.normal(size=8)) for k in range(3)]
            docs.append(MediaItem(id=f"d{i}", uri=f"/nope/{i}.mp4", modality=mod, name=f"d{i}.mp4", segments=segs))
    docs.append(MediaItem(id="empty", uri="/nope/e.txt", modality="text", name="e.txt"))  # no vectors: not drawn
    s.add(docs)
    yield s
    s.close()


def test_projection_png_and_html(store, tmp_path):
    q = np.eye(8)[0]
    proj = project(store, space="text", color_by="modality", query_vector=q, query="images", top=3)
    assert len(proj.points) == 12
    assert proj.xy.shape == (12, 2)
    assert proj.silhouette is not None and proj.silhouette > 0.5
    assert len(proj.query_hits) == 3
    assert all(proj.points[i].modality == "image" for i in proj.query_hits)
    png = tmp_path / "p.png"
    render_png(proj, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = tmp_path / "p.html"
    render_html(proj, page)
    text = page.read_text()
    assert len(re.findall(r"<circle ", text)) == 12
    data = json.loads(re.search(r"const DATA=(\[.*?\]);", text).group(1))
    assert {d["label"] for d in data} == {"image", "video"}
    assert text.count("<line ") == 3
    tsne = project(store, method="tsne")
    assert tsne.xy.shape == (12, 2)


def test_projection_errors(store):
    with pytest.raises(pm.ConfigError, match="no document has vectors"):
        project(store, space="audio")
    with pytest.raises(pm.ConfigError, match="unknown space"):
        project(store, space="smell")
    with pytest.raises(pm.ConfigError, match="unknown projection"):
        project(store, method="mds")
    with pytest.raises(pm.ConfigError, match="no such field"):
        project(store, color_by="colour")
