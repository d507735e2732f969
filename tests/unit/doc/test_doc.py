import pickle

import numpy as np
import pytest

import polymodal as pm


class Segment(pm.Doc):
    start: float
    end: float
    embedding: pm.Vector[3] | None = None


class Clip(pm.Doc):
    title: str
    video: pm.VideoUrl | None = None
    embedding: pm.Vector[3] | None = None
    segments: pm.DocList[Segment] | None = None


def test_auto_id_is_unique_hex():
    ids = {Clip(title="a").id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert Clip(title="a", id="mine").id == "mine"


def test_nested_doclist_field_accepts_dicts_and_docs():
    c = Clip(title="a", segments=[{"start": 0, "end": 1}, Segment(start=1, end=2, embedding=[1, 2, 3])])
    assert isinstance(c.segments, pm.DocList[Segment])
    assert c.segments.start == [0.0, 1.0]
    assert c.segments[1].embedding.dtype == np.float32


def test_nested_errors_name_the_path():
    with pytest.raises(pm.SchemaError) as info:
        Clip(title="a", segments=[{"start": 0, "end": 1}, {"start": 0, "end": 1, "embedding": [1, 2]}])
    assert "segments.1.embedding" in str(info.value)
    assert "expected shape (3,), got (2,)" in str(info.value)


def test_unknown_and_missing_fields():
    with pytest.raises(pm.SchemaError, match=r"colour: unknown field \(the schema has: id, title"):
        Clip(title="a", colour="red")
    with pytest.raises(pm.SchemaError, match="title: required field is missing"):
        Clip()


def test_assignment_is_validated_and_loses_nothing():
    c = Clip(title="a", embedding=[1, 2, 3])
    with pytest.raises(pm.SchemaError, match="embedding"):
        c.embedding = [1, 2]
    assert c.embedding.tolist() == [1.0, 2.0, 3.0]
    c.embedding = np.ones(3)
    assert c.embedding.dtype == np.float32


def test_media_url_field_validates_scheme():
    assert Clip(title="a", video="file:///tmp/x.mp4").video.path.as_posix() == "/tmp/x.mp4"
    with pytest.raises(pm.SchemaError, match="unsupported URI scheme 'ftp'"):
        Clip(title="a", video="ftp://host/x.mp4")


def test_equality_understands_arrays():
    a = Clip(id="1", title="a", embedding=[1, 2, 3])
    b = Clip(id="1", title="a", embedding=np.array([1, 2, 3], np.float32))
    assert a == b
    b.embedding = [1, 2, 4]
    assert a != b
    assert a != Clip(id="1", title="a")


def test_repr_is_short_for_big_arrays():
    class Big(pm.Doc):
        v: pm.Vector[512]

    r = repr(Big(v=np.zeros(512)))
    assert "shape=(512,)" in r and len(r) < 200


def test_pickle_roundtrip():
    c = Clip(title="a", embedding=[1, 2, 3], segments=[{"start": 0, "end": 1}])
    back = pickle.loads(pickle.dumps(c))
    assert back == c
    assert isinstance(back.segments, pm.DocList[Segment])


def test_model_dump_json_mode_is_plain_json():
    c = Clip(id="x", title="a", video="v.mp4", embedding=[1, 2, 3], segments=[{"id": "s", "start": 0, "end": 1}])
    assert c.model_dump(mode="json") == {
        "id": "x",
        "title": "a",
        "video": "v.mp4",
        "embedding": [1.0, 2.0, 3.0],
        "segments": [{"id": "s", "start": 0.0, "end": 1.0, "embedding": None}],
    }
    assert Clip.from_dict(c.model_dump()) == c


def test_deeply_nested_docs():
    class Leaf(pm.Doc):
        v: pm.Vector[2]

    class Mid(pm.Doc):
        leaves: pm.DocList[Leaf]

    class Top(pm.Doc):
        mids: pm.DocList[Mid]

    t = Top(mids=[{"leaves": [{"v": [1, 2]}, {"v": [3, 4]}]}, {"leaves": []}])
    assert t.mids[0].leaves[1].v.tolist() == [3.0, 4.0]
    with pytest.raises(pm.SchemaError, match=r"mids\.0\.leaves\.0\.v"):
        Top(mids=[{"leaves": [{"v": [1]}]}])
