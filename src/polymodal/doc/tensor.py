"""Tensor field types: ``NdArray[...]`` for any tensor and ``Vector[D]`` for embeddings.

Both are annotations over a plain ``numpy.ndarray``: the value a user reads back is always a
numpy array (torch tensors are accepted and converted), so nothing heavy is imported here.

``NdArray[224, 224, 3]`` fixes the shape, ``NdArray["h", "w", 3]`` names free dimensions (equal
names must have equal sizes), ``NdArray[..., 3]`` allows any leading dimensions, and a numpy
scalar type anywhere in the brackets fixes the dtype: ``NdArray[np.uint8, 224, 224, 3]``.
``Vector[512]`` is a finite 1-D float32 array of length 512.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

if TYPE_CHECKING:
    from pydantic.json_schema import JsonSchemaValue

__all__ = ["NdArray", "TensorSpec", "Vector", "to_numpy"]

Dim = int | str | None | type(Ellipsis)  # type: ignore[misc]

#: dtypes a tensor field may hold: they round-trip through every format (JSON, binary, Arrow).
SUPPORTED_KINDS = frozenset("biuf")


def _dtype_of(item: Any) -> np.dtype[Any] | None:
    """Return the numpy dtype ``item`` denotes, or None when ``item`` is a dimension."""
    if isinstance(item, np.dtype):
        return item
    if isinstance(item, type) and issubclass(item, np.generic):
        return np.dtype(item)
    return None


_F32 = np.dtype(np.float32)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """What a tensor field accepts: an optional shape pattern, an optional dtype, vector rules.

    Used as ``Annotated`` metadata; pydantic calls its hooks to validate and serialize.
    """

    shape: tuple[Any, ...] | None = None
    dtype: str | None = None
    vector: bool = False

    # -- introspection -------------------------------------------------------------------
    @property
    def np_dtype(self) -> np.dtype[Any] | None:
        return None if self.dtype is None else np.dtype(self.dtype)

    @property
    def fixed_shape(self) -> tuple[int, ...] | None:
        """The exact shape when every dimension is an int, else None."""
        if self.shape is not None and all(isinstance(d, int) for d in self.shape):
            return tuple(self.shape)
        return None

    def describe(self) -> str:
        """A short human form, such as ``Vector[512]`` or ``NdArray[uint8, h, w, 3]``."""
        if self.vector:
            return f"Vector[{self.shape[0] if self.shape else ''}]"
        parts: list[str] = [] if self.dtype is None else [self.dtype]
        for d in self.shape or ():
            parts.append("..." if d is Ellipsis else "?" if d is None else str(d))
        return f"NdArray[{', '.join(parts)}]"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description, stored with schemas and serialized files."""
        shape = None if self.shape is None else ["..." if d is Ellipsis else d for d in self.shape]
        return {"shape": shape, "dtype": self.dtype, "vector": self.vector}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        shape = data.get("shape")
        dims = None if shape is None else tuple(Ellipsis if d == "..." else d for d in shape)
        return cls(shape=dims, dtype=data.get("dtype"), vector=bool(data.get("vector")))

    # -- validation ----------------------------------------------------------------------
    def validate(self, value: Any) -> np.ndarray:
        """Convert ``value`` to a numpy array that fits this spec, or raise a pydantic error."""
        if self.vector and type(value) is np.ndarray and value.dtype == _F32 and value.ndim == 1:
            # The usual case (a float32 vector, as every store and model hands back), checked
            # in one float64 dot product (which no float32 value can overflow): a finite sum of
            # squares means finite values; NaN or infinity takes the full path below.
            want = self.shape[0] if self.shape else None
            if want is None or want == value.shape[0]:
                wide = value.astype(np.float64)
                squares = float(wide.dot(wide))
                if squares - squares == 0:
                    return value
        arr, from_python = _coerce(value)
        if arr.dtype.kind not in SUPPORTED_KINDS:
            raise PydanticCustomError(
                "tensor_dtype",
                "expected a numeric tensor, got dtype {actual} (supported: bool, int, uint, float)",
                {"actual": str(arr.dtype)},
            )
        target = np.dtype(np.float32) if self.vector else self.np_dtype
        if target is not None and arr.dtype != target:
            arr = self._cast(arr, target, from_python)
        if self.shape is not None:
            self._check_shape(arr.shape)
        if self.vector and not np.isfinite(arr).all():
            raise PydanticCustomError(
                "vector_not_finite",
                "expected a finite vector, got NaN or infinity at index {index}",
                {"index": int(np.flatnonzero(~np.isfinite(arr))[0])},
            )
        return arr

    def _cast(self, arr: np.ndarray, target: np.dtype[Any], from_python: bool) -> np.ndarray:
        if self.vector and arr.dtype.kind in "iuf":
            return arr.astype(np.float32)
        if np.can_cast(arr.dtype, target, "safe"):
            return arr.astype(target)
        if from_python:  # a Python list has no dtype intent: accept it when the values fit exactly
            with np.errstate(all="ignore"):
                cast = arr.astype(target)
            if np.array_equal(cast.astype(arr.dtype), arr, equal_nan=arr.dtype.kind == "f"):
                return cast
        raise PydanticCustomError(
            "tensor_dtype",
            "expected dtype {expected}, got {actual}",
            {"expected": str(target), "actual": str(arr.dtype)},
        )

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        pattern = self.shape or ()
        if Ellipsis in pattern:
            cut = pattern.index(Ellipsis)
            head, tail = pattern[:cut], pattern[cut + 1 :]
            ok = len(shape) >= len(head) + len(tail)
            pairs = list(zip(head, shape[: len(head)], strict=False))
            pairs += list(zip(tail, shape[len(shape) - len(tail) :], strict=False)) if tail else []
        else:
            ok = len(shape) == len(pattern)
            pairs = list(zip(pattern, shape, strict=False))
        named: dict[str, int] = {}
        for want, got in pairs:
            if isinstance(want, int) and want != got:
                ok = False
            elif isinstance(want, str):
                ok = ok and named.setdefault(want, got) == got
        if not ok:
            raise PydanticCustomError(
                "tensor_shape",
                "expected shape {expected}, got {actual}",
                {"expected": _shape_str(pattern), "actual": _shape_str(shape)},
            )

    # -- serialization -------------------------------------------------------------------
    def serialize(self, value: np.ndarray, info: core_schema.SerializationInfo) -> Any:
        """Python mode keeps the array; JSON mode writes nested lists, with the dtype when the
        field does not fix it (so every format round-trips the dtype exactly)."""
        if info.mode != "json":
            return value
        if self.vector or self.dtype is not None:
            return value.tolist()
        return {"dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}

    # -- pydantic hooks ------------------------------------------------------------------
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(self.serialize, info_arg=True),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out: dict[str, Any] = {"type": "array", "items": {"type": "number"}, "x-tensor": self.to_dict()}
        fixed = self.fixed_shape
        if fixed is not None and len(fixed) == 1:
            out["minItems"] = out["maxItems"] = fixed[0]
        return out


def _shape_str(shape: tuple[Any, ...]) -> str:
    inner = ", ".join("..." if d is Ellipsis else "?" if d is None else str(d) for d in shape)
    return f"({inner}{',' if len(shape) == 1 else ''})"


def to_numpy(value: Any) -> np.ndarray:
    """Convert arrays, torch tensors and nested lists to numpy, without importing torch."""
    return _coerce(value)[0]


def _coerce(value: Any) -> tuple[np.ndarray, bool]:
    """Return ``(array, came_from_python_values)``."""
    if isinstance(value, np.ndarray):
        return value, False
    module = type(value).__module__
    if module.startswith("torch"):  # a torch.Tensor: detach, move to cpu, widen bfloat16
        tensor = value.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":
            tensor = tensor.float()
        return tensor.numpy(), False
    if isinstance(value, dict) and {"dtype", "shape"} <= value.keys() and ("data" in value or "b64" in value):
        return _from_mapping(value), False
    if isinstance(value, np.generic):
        return np.asarray(value), False
    if isinstance(value, (bool, int, float)):  # a 0-d tensor, as JSON writes it
        return np.asarray(value), True
    if isinstance(value, (list, tuple)) or hasattr(value, "__array__"):
        try:
            arr = np.asarray(value)
        except ValueError as exc:  # ragged nested lists
            raise PydanticCustomError(
                "tensor_type", "not a rectangular array: {reason}", {"reason": str(exc)}
            ) from None
        if arr.dtype == object:
            raise PydanticCustomError("tensor_type", "not a rectangular numeric array", {})
        return arr, not hasattr(value, "__array__")
    raise PydanticCustomError(
        "tensor_type", "expected an array, tensor or list of numbers, got {actual}", {"actual": type(value).__name__}
    )


def _from_mapping(value: dict[str, Any]) -> np.ndarray:
    """``{"dtype", "shape", "data": [...]}`` or ``{"dtype", "shape", "b64": "..."}`` (raw
    little-endian bytes, base64): the JSON forms of a tensor whose dtype must survive."""
    try:
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in SUPPORTED_KINDS:
            raise ValueError(f"dtype {dtype} is not supported")
        if "b64" in value:
            import base64

            raw = base64.b64decode(value["b64"], validate=True)
            return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(value["shape"])
        return np.asarray(value["data"], dtype=dtype).reshape(value["shape"])
    except (TypeError, ValueError) as exc:
        raise PydanticCustomError("tensor_type", "invalid tensor mapping: {reason}", {"reason": str(exc)}) from None


def tensor_to_b64(arr: np.ndarray) -> dict[str, Any]:
    """The compact JSON form of a tensor (exact dtype, shape and values, NaN included)."""
    import base64

    raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    return {"dtype": arr.dtype.str, "shape": list(arr.shape), "b64": base64.b64encode(raw.tobytes()).decode("ascii")}


class NdArray(np.ndarray):  # type: ignore[type-arg]
    """Annotation for a tensor field; values are plain ``numpy.ndarray``.

    >>> import numpy as np, polymodal as pm
    >>> class Photo(pm.Doc):
    ...     pixels: pm.NdArray[np.uint8, "h", "w", 3]
    >>> Photo(pixels=np.zeros((2, 4, 3), np.uint8)).pixels.shape
    (2, 4, 3)
    """

    def __class_getitem__(cls, item: Any) -> Any:
        items = item if isinstance(item, tuple) else (item,)
        dtype: str | None = None
        dims: list[Any] = []
        for it in items:
            dt = _dtype_of(it)
            if dt is not None:
                if dt.kind not in SUPPORTED_KINDS:
                    raise TypeError(f"NdArray dtype {dt} is not supported (use bool, int, uint or float)")
                dtype = dt.str
            elif it is Ellipsis or it is None or isinstance(it, str) or (isinstance(it, int) and it >= 0):
                dims.append(it)
            else:
                raise TypeError(f"NdArray[...] takes ints, names, ... and numpy dtypes, got {it!r}")
        if dims.count(Ellipsis) > 1:
            raise TypeError("NdArray[...] allows at most one '...'")
        return Annotated[np.ndarray, TensorSpec(shape=tuple(dims) if dims else None, dtype=dtype)]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return TensorSpec().__get_pydantic_core_schema__(source, handler)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return TensorSpec().__get_pydantic_json_schema__(schema, handler)


class Vector(np.ndarray):  # type: ignore[type-arg]
    """Annotation for a float32 embedding of a fixed dimension: ``Vector[512]``.

    Values are cast to float32 and must be finite (NaN or infinity is a ``SchemaError``).
    """

    def __class_getitem__(cls, dim: Any) -> Any:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
            raise TypeError(f"Vector[D] needs a positive int dimension, got {dim!r}")
        return Annotated[np.ndarray, TensorSpec(shape=(dim,), dtype="<f4", vector=True)]

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return TensorSpec(shape=(None,), dtype="<f4", vector=True).__get_pydantic_core_schema__(source, handler)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return TensorSpec(shape=(None,), dtype="<f4", vector=True).__get_pydantic_json_schema__(schema, handler)
