import numpy as np
import pytest

import polymodal as pm


class T(pm.Doc):
    vec: pm.Vector[4] | None = None
    img: pm.NdArray[np.uint8, "h", "w", 3] | None = None
    sq: pm.NdArray["n", "n"] | None = None
    tail: pm.NdArray[..., 2] | None = None
    anyt: pm.NdArray | None = None


def test_vector_casts_to_float32_and_keeps_values():
    d = T(vec=[1, 2, 3, 4])
    assert d.vec.dtype == np.float32
    assert d.vec.tolist() == [1.0, 2.0, 3.0, 4.0]
    d = T(vec=np.arange(4, dtype=np.float64))
    assert d.vec.dtype == np.float32


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([1, 2, 3], "expected shape (4,), got (3,)"),
        (np.zeros((2, 2)), "expected shape (4,), got (2, 2)"),
        ([1, 2, float("nan"), 4], "finite"),
        ([1, float("inf"), 3, 4], "finite"),
        ("abcd", "expected an array"),
        ([["a", "b", "c", "d"]], "dtype"),
    ],
)
def test_vector_rejects_bad_values_naming_field(value, fragment):
    with pytest.raises(pm.SchemaError) as info:
        T(vec=value)
    assert "vec" in str(info.value)
    assert fragment in str(info.value)
    assert info.value.field == "vec"


def test_named_dims_and_dtype():
    ok = T(img=np.zeros((5, 7, 3), np.uint8))
    assert ok.img.shape == (5, 7, 3)
    with pytest.raises(pm.SchemaError, match=r"expected dtype uint8, got float64"):
        T(img=np.zeros((5, 7, 3)))
    with pytest.raises(pm.SchemaError, match=r"expected shape \(h, w, 3\), got \(5, 7, 4\)"):
        T(img=np.zeros((5, 7, 4), np.uint8))
    # python lists carry no dtype intent: accepted when the values fit exactly
    assert T(img=[[[1, 2, 3]]]).img.dtype == np.uint8
    with pytest.raises(pm.SchemaError, match="uint8"):
        T(img=[[[1, 2, 300]]])
    # safe casts are accepted
    assert T(img=np.zeros((1, 1, 3), np.bool_)).img.dtype == np.uint8


def test_same_name_dims_must_agree_and_ellipsis():
    T(sq=np.zeros((3, 3)))
    with pytest.raises(pm.SchemaError, match="expected shape"):
        T(sq=np.zeros((3, 4)))
    T(tail=np.zeros((2,)))
    T(tail=np.zeros((5, 6, 2)))
    with pytest.raises(pm.SchemaError):
        T(tail=np.zeros((5, 3)))


def test_untyped_ndarray_keeps_dtype_and_rejects_objects():
    for dt in [np.int8, np.uint16, np.float16, np.bool_, np.float64]:
        assert T(anyt=np.zeros((2, 0), dt)).anyt.dtype == dt
    with pytest.raises(pm.SchemaError, match="numeric"):
        T(anyt=np.array(["a"]))
    with pytest.raises(pm.SchemaError, match="rectangular"):
        T(anyt=[[1, 2], [3]])


def test_no_copy_for_matching_arrays():
    arr = np.zeros((2, 2, 3), np.uint8)
    assert T(img=arr).img is arr


def test_torch_tensors_are_converted():
    torch = pytest.importorskip("torch")
    d = T(vec=torch.ones(4, dtype=torch.float64), anyt=torch.zeros(2, 3, dtype=torch.bfloat16))
    assert isinstance(d.vec, np.ndarray) and d.vec.dtype == np.float32
    assert d.anyt.dtype == np.float32


def test_bad_annotations_fail_at_class_definition():
    with pytest.raises(TypeError):
        pm.Vector[0]
    with pytest.raises(TypeError):
        pm.Vector["x"]
    with pytest.raises(TypeError):
        pm.NdArray[np.complex64, 3]
    with pytest.raises(TypeError):
        pm.NdArray[..., 3, ...]


def test_json_schema_describes_vectors():
    schema = T.model_json_schema()
    vec = schema["properties"]["vec"]["anyOf"][0]
    assert vec["minItems"] == vec["maxItems"] == 4
