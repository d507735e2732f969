import numpy as np
import pytest

from polymodal.media.passages import split_passages
from polymodal.media.render import render_views, sample_points
from polymodal.media.types import MeshData


def test_passages_keep_offsets_and_limits():
    text = "Intro.\n\n" + "A sentence that goes on. " * 80 + "\n\nShort end."
    parts = split_passages(text, max_chars=300)
    assert all(len(p.text) <= 300 for p in parts)
    assert all(text[p.start : p.end] == p.text for p in parts)
    covered = "".join("".join(p.text for p in parts).split())
    assert covered == "".join(text.split())
    assert split_passages("   \n\n  ") == []
    assert [p.text for p in split_passages("one\n\ntwo", min_chars=1)] == ["one", "two"]


def test_hard_wrap_without_sentence_breaks():
    parts = split_passages("x" * 2000, max_chars=500)
    assert [len(p.text) for p in parts] == [500, 500, 500, 500]


def _cube():
    v = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], np.float32)
    faces = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ]
    )
    return MeshData(v, faces)


def test_render_views_draw_the_object():
    views = render_views(_cube(), size=64, views=3)
    assert len(views) == 3
    for img in views:
        assert img.shape == (64, 64, 3) and img.dtype == np.uint8
        covered = (img < 250).any(axis=2).mean()
        assert 0.1 < covered < 0.9  # the cube fills part of the frame, not all of it
        assert len(np.unique(img[..., 0])) >= 3  # at least two shaded faces plus background
    cloud = MeshData(np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32), np.zeros((0, 3), np.int64))
    assert (render_views(cloud, size=32, views=1)[0] < 250).any()


def test_sample_points_on_surface():
    pts = sample_points(_cube(), 500)
    assert pts.shape == (500, 3)
    on_face = np.isclose(pts, 0, atol=1e-5) | np.isclose(pts, 1, atol=1e-5)
    assert on_face.any(axis=1).all()
    assert pts.min() >= -1e-6 and pts.max() <= 1 + 1e-6


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory):
    """6 s video: 2 s red, 2 s red, 2 s blue (one real scene change at 4 s)."""
    av = pytest.importorskip("av")
    path = tmp_path_factory.mktemp("v") / "scenes.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(60):
            colour = (200, 30, 30) if i < 40 else (30, 30, 200)
            frame = np.zeros((48, 64, 3), np.uint8) + np.array(colour, np.uint8)
            out.mux(s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(s.encode())
    return path


def test_sampling_modes(scene_video):
    from polymodal.media.sampling import sample_frames

    fixed = [t for t, _ in sample_frames(scene_video, every=2.0)]
    assert fixed == pytest.approx([0.0, 2.0, 4.0], abs=0.11)
    scenes = [t for t, _ in sample_frames(scene_video, mode="scenes", max_gap=100)]
    assert scenes[0] == pytest.approx(0.0, abs=0.11)
    assert len(scenes) == 2 and scenes[1] == pytest.approx(4.0, abs=0.3)
    gaps = [t for t, _ in sample_frames(scene_video, mode="scenes", max_gap=1.0)]
    assert len(gaps) >= 5
    assert len(list(sample_frames(scene_video, every=0.5, max_frames=3))) == 3
    from polymodal.errors import ConfigError

    with pytest.raises(ConfigError):
        list(sample_frames(scene_video, mode="random"))
