"""Late fusion over modality fields: missing modalities are left out, never counted as zero."""

import numpy as np
import pytest

import polymodal as pm
from polymodal.search.multimodal import Channel, MultiSearch, QueryVector


class Item(pm.Doc):
    name: str
    text_vec: pm.Vector[8] | None = None
    image_vec: pm.Vector[8] | None = None


def _unit(v):
    return np.asarray(v, np.float32) / np.linalg.norm(v)


@pytest.fixture
def store():
    rng = np.random.default_rng(0)
    s = pm.open("memory://", schema=Item)
    docs = [
        Item(id=f"n{i}", name=f"noise {i}", text_vec=rng.normal(size=8), image_vec=rng.normal(size=8))
        for i in range(60)
    ]
    s.add(docs)
    yield s
    s.close()


def channels():
    return Channel("text_vec", 1.0, space="text"), Channel("image_vec", 1.0, space="image")


def test_missing_modality_is_not_scored_as_zero(store):
    t_axis, i_axis = _unit(np.eye(8)[0]), _unit(np.eye(8)[1])
    store.add(
        [
            Item(id="both", name="both", text_vec=t_axis, image_vec=i_axis),
            Item(id="image-only", name="image only", image_vec=i_axis),
            Item(id="text-only", name="text only", text_vec=t_axis),
        ]
    )
    ct, ci = channels()
    engine = MultiSearch(store)
    hits = engine.search([QueryVector(ct, t_axis), QueryVector(ci, i_axis)], limit=5)
    by_id = {h.id: h for h in hits}
    assert {"both", "image-only", "text-only"} <= set(by_id)
    assert set(by_id["image-only"].scores) == {"image_vec"}
    # scored on what it has, with weights renormalised: its image z-score itself, not half of it
    assert by_id["image-only"].score == pytest.approx(by_id["image-only"].scores["image_vec"])
    assert by_id["both"].score == pytest.approx(np.mean(list(by_id["both"].scores.values())))
    assert by_id["image-only"].score > 0.5 * by_id["both"].scores["image_vec"]


def test_adding_an_empty_modality_document_keeps_the_ranking(store):
    ct, ci = channels()
    q = [QueryVector(ct, _unit(np.arange(8) + 1.0)), QueryVector(ci, _unit(np.arange(8)[::-1] + 1.0))]
    before = [(h.id, round(h.score, 9)) for h in MultiSearch(store).search(q, limit=20)]
    store.add(Item(id="empty", name="a file with no text and no picture"))
    after = [(h.id, round(h.score, 9)) for h in MultiSearch(store).search(q, limit=20)]
    assert "empty" not in {i for i, _ in after}
    assert after == before


def test_one_field_on_a_larger_scale_does_not_drown_the_other():
    """Text vectors tightly clustered (all cosines ~0.9) and image vectors spread out: after
    calibration the best image match competes with the best text match."""
    rng = np.random.default_rng(3)
    s = pm.open("memory://", schema=Item)
    centre = rng.normal(size=8) * 3
    s.add([Item(id=f"t{i}", name="t", text_vec=centre + rng.normal(size=8) * 0.3) for i in range(50)])
    s.add([Item(id=f"i{i}", name="i", image_vec=rng.normal(size=8)) for i in range(50)])
    ct, ci = channels()
    qt = _unit(centre + rng.normal(size=8) * 0.3)
    qi = _unit(s.get("i7").image_vec)
    hits = MultiSearch(s).search([QueryVector(ct, qt), QueryVector(ci, qi)], limit=3)
    assert "i7" in {h.id for h in hits}  # raw cosines would rank ~all 50 text items first
    raw_text_best = max(float(_unit(d.text_vec) @ qt) for d in s if d.text_vec is not None)
    assert raw_text_best > 0.8
    s.close()


def test_best_segment_is_reported():
    class Seg(pm.Doc):
        start: float
        end: float
        image_vec: pm.Vector[16] | None = None

    class Video(pm.Doc):
        segments: pm.DocList[Seg]

    s = pm.open("memory://", schema=Video)
    rng = np.random.default_rng(1)
    target = _unit(rng.normal(size=16))
    segs = [Seg(start=2.0 * k, end=2.0 * k + 2, image_vec=rng.normal(size=16)) for k in range(6)]
    segs[4].image_vec = target
    s.add(
        [Video(id="v", segments=segs)]
        + [Video(segments=[Seg(start=0, end=1, image_vec=rng.normal(size=16))]) for _ in range(20)]
    )
    hit = MultiSearch(s).search([QueryVector(Channel("segments.image_vec"), target)], limit=1)[0]
    assert hit.id == "v"
    assert (hit.match.start, hit.match.end) == (8.0, 10.0)
    s.close()
