import numpy as np
import pytest

import polymodal as pm


class Seg(pm.Doc):
    start: float
    emb: pm.Vector[2] | None = None


class Item(pm.Doc):
    title: str
    emb: pm.Vector[4]
    img: pm.NdArray | None = None
    segs: pm.DocList[Seg] | None = None


def items(n=4):
    return pm.DocList[Item](
        Item(
            id=f"i{i}",
            title=f"t{i}",
            emb=np.full(4, i),
            img=np.zeros((i + 1, 2), np.uint8),
            segs=None if i == 2 else [Seg(id=f"s{i}.{j}", start=j, emb=[j, i]) for j in range(i)],
        )
        for i in range(n)
    )


def test_columns_are_contiguous_and_rows_are_views():
    vec = pm.DocVec[Item](items())
    assert vec.emb.shape == (4, 4) and vec.emb.flags.c_contiguous
    row = vec[1]
    assert np.shares_memory(row.emb, vec.emb)
    row.emb[0] = 42
    assert vec.emb[1, 0] == 42
    assert isinstance(vec.img, list)  # ragged shapes stay a list
    assert vec.title == ["t0", "t1", "t2", "t3"]


def test_nested_columns_are_flattened():
    vec = pm.DocVec[Item](items())
    nested = vec.raw_column("segs")
    assert nested.child.emb.shape == (0 + 1 + 3, 2)
    assert nested.offsets.tolist() == [0, 0, 1, 1, 4]
    assert nested.present.tolist() == [True, True, False, True]
    segs = vec.segs
    assert segs[2] is None and len(segs[3]) == 3 and segs[3].start == [0.0, 1.0, 2.0]


def test_roundtrip_to_list_equals_original():
    docs = items()
    vec = pm.DocVec[Item](docs)
    assert vec.to_list() == docs
    assert list(vec) == list(docs)


def test_slices_are_views_and_fancy_indexing_copies():
    vec = pm.DocVec[Item](items())
    part = vec[1:3]
    assert np.shares_memory(part.emb, vec.emb)
    assert part.to_list() == items()[1:3]
    picked = vec[[3, 0]]
    assert [d.id for d in picked] == ["i3", "i0"]
    assert picked.to_list() == items()[[3, 0]]
    masked = vec[np.array([False, True, False, True])]
    assert masked.to_list() == items()[[1, 3]]
    assert vec[::2].to_list() == items()[::2]
    assert vec[-1].id == "i3"
    with pytest.raises(IndexError):
        vec[4]


def test_set_column_validates():
    vec = pm.DocVec[Item](items())
    vec.emb = np.ones((4, 4), np.float64)
    assert vec.emb.dtype == np.float32
    with pytest.raises(pm.SchemaError, match="expected shape"):
        vec.emb = np.ones((4, 3))
    bad = np.ones((4, 4))
    bad[2, 1] = np.nan
    with pytest.raises(pm.SchemaError, match="row 2 is not finite"):
        vec.emb = bad
    with pytest.raises(pm.SchemaError, match="3 values for 4"):
        vec.title = ["a", "b", "c"]
    vec.title = ["a", "b", "c", "d"]
    assert vec[3].title == "d"


def test_setitem_writes_row():
    vec = pm.DocVec[Item](items())
    new = Item(id="n", title="new", emb=[9, 9, 9, 9], segs=[Seg(id="s", start=7)])
    vec[0] = new
    assert vec[0] == new
    assert vec.emb[0].tolist() == [9.0] * 4
    assert vec[1] == items()[1]


def test_from_columns_zero_copy_and_defaults():
    arr = np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32)
    vec = pm.DocVec[Item].from_columns({"emb": arr, "title": [str(i) for i in range(1000)]})
    assert vec.emb is arr
    assert len(set(vec.id)) == 1000
    assert vec[5].img is None
    with pytest.raises(pm.SchemaError, match="required"):
        pm.DocVec[Item].from_columns({"emb": arr})
    with pytest.raises(pm.SchemaError, match="different lengths"):
        pm.DocVec[Item].from_columns({"emb": arr, "title": ["a"]})
    with pytest.raises(pm.SchemaError, match="unknown field"):
        pm.DocVec[Item].from_columns({"emb": arr, "title": ["a"] * 1000, "nope": [1] * 1000})


class Emb(pm.Doc):
    emb: pm.Vector[4]


def test_tensor_memory_is_the_raw_array():
    arr = np.zeros((10_000, 4), np.float32)
    vec = pm.DocVec[Emb].from_columns({"emb": arr})
    assert vec.nbytes == arr.nbytes
    assert pm.DocVec[Emb](vec.to_list()).nbytes == arr.nbytes
