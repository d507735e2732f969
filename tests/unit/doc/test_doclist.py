import pickle

import numpy as np
import pytest

import polymodal as pm


class Note(pm.Doc):
    text: str
    score: float = 0.0
    embedding: pm.Vector[2] | None = None


class Photo(pm.Doc):
    path: pm.ImageUrl


def notes(n=5):
    return pm.DocList[Note]([Note(text=str(i), score=i) for i in range(n)])


def test_parametrized_class_is_cached_and_real():
    assert pm.DocList[Note] is pm.DocList[Note]
    assert issubclass(pm.DocList[Note], pm.DocList)
    assert isinstance(notes(), list)
    assert pm.DocList[Note].doc_type is Note
    with pytest.raises(TypeError):
        pm.DocList[Note][Note]


def test_rejects_other_doc_types_and_validates_dicts():
    docs = notes()
    with pytest.raises(pm.SchemaError, match="holds Note documents, got Photo"):
        docs.append(Photo(path="a.png"))
    with pytest.raises(pm.SchemaError, match="text"):
        docs.append({"score": 1})
    docs.append({"text": "x"})
    docs.insert(0, {"text": "first"})
    docs += [{"text": "last"}]
    assert docs.text[0] == "first" and docs.text[-1] == "last"
    with pytest.raises(pm.SchemaError):
        docs[0] = Photo(path="a.png")
    assert len(docs) == 8


def test_indexing_returns_doclists():
    docs = notes()
    assert isinstance(docs[1:3], pm.DocList[Note]) and docs[1:3].text == ["1", "2"]
    assert docs[[4, 0]].text == ["4", "0"]
    assert docs[np.array([True, False, True, False, False])].text == ["0", "2"]
    with pytest.raises(IndexError):
        docs[np.array([True])]
    assert docs[2].text == "2"


def test_column_access_and_assignment():
    docs = notes(3)
    assert docs.score == [0.0, 1.0, 2.0]
    docs.embedding = [[1, 2], [3, 4], [5, 6]]
    assert docs[2].embedding.tolist() == [5.0, 6.0]
    with pytest.raises(pm.SchemaError, match=r"2 values for 3"):
        docs.score = [1.0, 2.0]
    with pytest.raises(pm.SchemaError, match="embedding"):
        docs.embedding = [[1], [2], [3]]
    with pytest.raises(AttributeError):
        _ = docs.nope
    with pytest.raises(pm.SchemaError, match="has no field 'nope'"):
        docs.column("nope")


def test_batches_and_map():
    docs = notes(10)
    assert [len(b) for b in docs.batch(4)] == [4, 4, 2]
    assert docs.map(lambda d: d.score * 2, workers=2) == [i * 2.0 for i in range(10)]
    assert docs.map(lambda d: d.text, workers=0) == [str(i) for i in range(10)]
    assert docs.map_batches(len, batch_size=3) == [3, 3, 3, 1]
    with pytest.raises(ZeroDivisionError):
        docs.map(lambda d: 1 / 0)
    with pytest.raises(pm.ConfigError):
        docs.map(str, backend="gpu")


def _double(doc):
    return doc.score * 2


def test_map_in_processes():
    docs = notes(6)
    assert docs.map(_double, backend="process", workers=2, chunksize=2) == [i * 2.0 for i in range(6)]


def test_pickle_and_untyped_lists():
    docs = notes()
    back = pickle.loads(pickle.dumps(docs))
    assert type(back) is pm.DocList[Note] and back == docs
    loose = pm.DocList([Note(text="a")])
    assert loose.to_vec().text == ["a"]
    with pytest.raises(pm.SchemaError):
        pm.DocList([{"text": "a"}])
    with pytest.raises(pm.SchemaError, match="name the schema"):
        pm.DocList.from_json(b"[]")


def test_as_pydantic_field_serializes_as_list():
    class Holder(pm.Doc):
        notes: pm.DocList[Note]

    h = Holder(notes=[{"id": "n", "text": "a"}])
    assert h.model_dump(mode="json")["notes"] == [{"id": "n", "text": "a", "score": 0.0, "embedding": None}]
    assert Holder.model_validate_json(h.model_dump_json()) == h
