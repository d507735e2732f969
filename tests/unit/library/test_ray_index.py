"""Indexing on a local Ray instance gives the same documents as indexing in-process, and a
run that stopped part-way is finished by running it again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import polymodal as pm
from polymodal.library.indexer import index_paths
from polymodal.library.profile import offline_profile
from polymodal.library.schema import TEXT_FIELDS, MediaItem

ray = pytest.importorskip("ray")

NOTES = {
    "a.md": "# Harbour\n\nBoats in the harbour at dawn.",
    "b.md": "# Soup\n\nTomato soup with basil.",
    "c.txt": "Fixing a flat bicycle tyre.",
    "d.txt": "Notes from the design team meeting on Thursday.",
    "e.md": "# Glacier\n\nWe hiked to the glacier above the valley.",
}


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.fixture
def corpus(tmp_path):
    for name, text in NOTES.items():
        (tmp_path / "media" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "media" / name).write_text(text)
    (tmp_path / "media" / "broken.png").write_bytes(b"not a png")
    return tmp_path / "media"


PROFILE = offline_profile(image=None, labels=None, ocr=None, asr=None)  # text only: one model per actor


def _open(path: Path):
    s = pm.open(path, schema=MediaItem, text_fields=TEXT_FIELDS)
    s.set_setting("profile", PROFILE.model_dump(mode="json"))
    return s


def test_ray_indexing_matches_local_and_resumes(ray_local, corpus, tmp_path):
    local, remote = _open(tmp_path / "local"), _open(tmp_path / "ray")
    try:
        r1 = index_paths(local, PROFILE, [corpus], batch_files=2, progress=False)
        r2 = index_paths(remote, PROFILE, [corpus], batch_files=2, progress=False, ray_address="local", ray_actors=1)
        assert (r2.indexed, len(r2.failed)) == (r1.indexed, len(r1.failed)) == (5, 1)
        assert r2.failed[0].path.endswith("broken.png")
        ids = sorted(d.id for d in local)
        assert sorted(d.id for d in remote) == ids
        for a, b in zip(local.get(ids), remote.get(ids), strict=True):
            assert a.segments[0].text == b.segments[0].text
            assert np.allclose(a.segments[0].text_vec, b.segments[0].text_vec, atol=1e-5)
        # a run that died before writing some batches is finished by running it again
        remote.delete([d.id for d in remote if d.name in ("b.md", "e.md")])
        again = index_paths(remote, PROFILE, [corpus], batch_files=2, progress=False, ray_address="local", ray_actors=1)
        assert (again.indexed, again.skipped) == (2, 3)
        assert remote.count() == 5
    finally:
        local.close()
        remote.close()
