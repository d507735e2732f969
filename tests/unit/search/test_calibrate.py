import numpy as np
import pytest

from polymodal.search.calibrate import FieldStats, fit_stats
from polymodal.search.multimodal import _max_adjusted


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_zscore_matches_empirical_distribution():
    """For a query, z-scores of the field's own vectors have mean ~0 and std ~1."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=64)
    vectors = _unit(base + rng.normal(size=(3000, 64)) * 0.6)  # anisotropic, offset cloud (like CLIP)
    stats = fit_stats(vectors[:2000], k=32)
    q = _unit(rng.normal(size=64))
    z = stats.zscore(q, vectors[2000:] @ q)
    assert abs(z.mean()) < 0.1
    assert 0.85 < z.std() < 1.15


def test_two_fields_on_different_scales_become_comparable():
    rng = np.random.default_rng(1)
    a = _unit(rng.normal(size=(1000, 32)) + 4.0)  # cosines all near 0.95
    b = _unit(rng.normal(size=(1000, 32)))  # cosines spread around 0
    sa, sb = fit_stats(a), fit_stats(b)
    qa, qb = _unit(a[:10].mean(0)), _unit(rng.normal(size=32))
    za, zb = sa.zscore(qa, a @ qa), sb.zscore(qb, b @ qb)
    assert (a @ qa).mean() > 0.9 > abs((b @ qb).mean())
    assert abs(za.mean()) < 0.2 and abs(zb.mean()) < 0.2


def test_roundtrip_and_tiny_samples():
    rng = np.random.default_rng(2)
    stats = fit_stats(_unit(rng.normal(size=(100, 16))), k=8)
    back = FieldStats.from_dict(stats.to_dict())
    q = _unit(rng.normal(size=16))
    assert back.zscore(q, 0.3) == pytest.approx(stats.zscore(q, 0.3), rel=1e-5)
    one = fit_stats(np.ones((1, 16)) / 4)
    assert np.isfinite(one.zscore(q, 0.5))
    empty = fit_stats(np.zeros((0, 16)))
    assert np.isfinite(empty.zscore(q, 0.5))


def test_best_of_many_is_corrected_monotonically():
    assert _max_adjusted(2.5, 1) == 2.5
    assert _max_adjusted(2.5, 100) < _max_adjusted(2.5, 10) < 2.5
    assert _max_adjusted(4.0, 100) > _max_adjusted(3.0, 100)
    assert np.isfinite(_max_adjusted(-5.0, 1000))
