import pytest

from polymodal.errors import ConfigError
from polymodal.search.fusion import fuse, min_max, rrf, weighted


def test_rrf_hand_computed():
    ranked = {"a": [("x", 9.0), ("y", 8.0)], "b": [("y", 0.5), ("z", 0.1)]}
    out = rrf(ranked, k=60)
    scores = {f.key: f.score for f in out}
    assert scores["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["x"] == pytest.approx(1 / 61)
    assert scores["z"] == pytest.approx(1 / 62)
    assert [f.key for f in out] == ["y", "x", "z"]
    assert out[0].parts == {"a": 8.0, "b": 0.5}


def test_min_max_and_weighted_renormalise_missing_lists():
    assert min_max([("a", 2.0), ("b", 4.0)]) == {"a": 0.0, "b": 1.0}
    assert min_max([("a", 3.0)]) == {"a": 1.0}
    out = weighted({"v": [("a", 0.9), ("b", 0.1)], "t": []}, {"v": 0.5, "t": 0.5})
    assert {f.key: f.score for f in out} == {"a": 1.0, "b": 0.0}  # an empty list does not halve scores
    out = weighted({"v": [("a", 1.0), ("b", 0.0)], "t": [("b", 5.0), ("a", 0.0)]}, {"v": 0.75, "t": 0.25})
    assert {f.key: f.score for f in out} == {"a": pytest.approx(0.75), "b": pytest.approx(0.25)}


def test_fuse_dispatch_and_errors():
    ranked = {"a": [("x", 1.0)]}
    assert fuse(ranked, method="rrf")[0].key == "x"
    assert fuse(ranked, method="weighted")[0].score == 1.0
    with pytest.raises(ConfigError):
        fuse(ranked, method="borda")
