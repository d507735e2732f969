"""polymodal copy: every document and the collection's settings move; an interrupted copy resumes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import polymodal as pm
from polymodal.store.copy import copy_store


class Seg(pm.Doc):
    start: float
    v: pm.Vector[4] | None = None


class Item(pm.Doc):
    title: str
    v: pm.Vector[4]
    segs: pm.DocList[Seg] | None = None


def items(n):
    rng = np.random.default_rng(0)
    return [
        Item(
            id=f"i{k}",
            title=f"item {k}",
            v=rng.normal(size=4),
            segs=[Seg(id=f"i{k}.{j}", start=j, v=rng.normal(size=4)) for j in range(k % 3)],
        )
        for k in range(n)
    ]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "src"
    s = pm.open(path, schema=Item, metric="ip")
    s.add(items(57))
    s.set_setting("weights", {"v": 2.0})
    s.close()
    return path


def test_copy_everything_with_settings(source, tmp_path):
    dst = tmp_path / "dst"
    report = copy_store(str(source), str(dst), batch_size=10)
    assert (report.copied, report.skipped, report.total) == (57, 0, 57)
    a, b = pm.open(source), pm.open(dst)
    try:
        assert b.count() == 57
        assert b.config.metric == "ip"
        assert b.get_setting("weights") == {"v": 2.0}
        assert list(b.get([f"i{k}" for k in range(57)])) == list(a.get([f"i{k}" for k in range(57)]))
        q = np.ones(4)
        assert [h.id for h in b.search(q, field="v", limit=5)] == [h.id for h in a.search(q, field="v", limit=5)]
    finally:
        a.close()
        b.close()


def test_interrupted_copy_resumes(source, tmp_path):
    dst = tmp_path / "dst"

    def stop_after_two(done):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_store(str(source), str(dst), batch_size=10, on_batch=stop_after_two)
    partial = pm.open(dst)
    assert partial.count() == 20
    partial.close()
    report = copy_store(str(source), str(dst), batch_size=10)
    assert (report.copied, report.skipped) == (37, 20)
    done = pm.open(dst)
    assert done.count() == 57
    done.close()


def test_copy_into_memory_and_across_backends(source):
    report = copy_store(str(source), "memory://", batch_size=25)
    assert report.copied == 57


def test_cli_copy(source, tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "copy", str(source), str(tmp_path / "c"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {"copied": 57, "skipped": 0, "total": 57}
    bad = subprocess.run(
        [sys.executable, "-m", "polymodal.cli", "copy", str(tmp_path / "nope"), str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "no polymodal store" in bad.stderr
