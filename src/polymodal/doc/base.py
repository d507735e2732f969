"""``Doc``: the one typed document for every modality (a pydantic v2 model with an ``id``)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from polymodal.errors import SchemaError

__all__ = ["Doc", "new_id", "schema_error"]


_LIST_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def new_id() -> str:
    """A random 128-bit id as 32 hex characters (what ``uuid4().hex`` gives, twice as fast)."""
    return os.urandom(16).hex()


class Doc(BaseModel):
    """Base class of every document schema.

    Subclass it and declare fields; ``id`` is filled in automatically. Unknown fields, wrong
    tensor shapes or dtypes and non-finite vectors raise :class:`~polymodal.SchemaError`
    naming the field, the expected and the actual value, both at construction and on
    assignment.

    >>> import polymodal as pm
    >>> class Note(pm.Doc):
    ...     text: str
    ...     embedding: pm.Vector[3] | None = None
    >>> note = Note(text="hello", embedding=[1, 2, 3])
    >>> note.embedding.dtype, len(note.id)
    (dtype('float32'), 32)
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        validate_assignment=True,
        revalidate_instances="never",
        protected_namespaces=(),
    )

    id: str = Field(default_factory=new_id, description="Unique document id.")

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise schema_error(exc, type(self)) from None

    # Tell pydantic this __init__ only wraps errors, so validation of nested documents does not
    # route through it (pydantic calls a "custom" __init__ during validation).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            raise schema_error(exc, type(self)) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Doc:
        """Validate a mapping (as produced by ``model_dump``) into a document of this class."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise schema_error(exc, cls) from None

    @classmethod
    def from_dicts(cls, rows: list[dict[str, Any]]) -> list[Doc]:
        """:meth:`from_dict` for many mappings in one validator call (a third faster for the
        handful of documents a search returns); errors name the document and field alike."""
        adapter = _LIST_ADAPTERS.get(cls)
        if adapter is None:
            adapter = _LIST_ADAPTERS[cls] = TypeAdapter(list[cls])  # type: ignore[valid-type]
        try:
            docs: list[Doc] = adapter.validate_python(rows)
        except ValidationError:
            return [cls.from_dict(row) for row in rows]  # the first bad row raises, named
        return docs

    @classmethod
    def _trusted(cls, values: dict[str, Any]) -> Doc:
        """Build a document from values that already passed validation, without validating
        again (twice as fast as ``model_construct``; used for rows of a validated DocVec).

        ``values`` must hold every field. Falls back to ``model_construct`` for classes with
        private attributes or a ``model_post_init`` hook, which need pydantic's own path.
        """
        if cls.__pydantic_post_init__ is not None or cls.__private_attributes__:
            return cls.model_construct(**values)
        obj = cls.__new__(cls)
        object.__setattr__(obj, "__dict__", values)
        object.__setattr__(obj, "__pydantic_fields_set__", set(values))
        object.__setattr__(obj, "__pydantic_extra__", None)
        object.__setattr__(obj, "__pydantic_private__", None)
        return obj

    def __eq__(self, other: object) -> bool:
        """Field-by-field equality that understands numpy arrays (dtype, shape and values)."""
        if type(other) is not type(self):
            return NotImplemented
        return _equal(self.__dict__, other.__dict__)  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]  # mutable model: not hashable, like a dict

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if isinstance(value, np.ndarray):
                yield name, _ArrayRepr(value)
            else:
                yield name, value


class _ArrayRepr:
    """Short stand-in for arrays in ``repr(doc)``: a 512-d vector should not fill the screen."""

    __slots__ = ("arr",)

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr

    def __repr__(self) -> str:
        if self.arr.size <= 8:
            return f"array({self.arr.tolist()}, dtype={self.arr.dtype})"
        return f"ndarray(shape={self.arr.shape}, dtype={self.arr.dtype})"


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if isinstance(a, tuple) != isinstance(b, tuple) or len(a) != len(b):
            return False
        return all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True  # NaN == NaN for round-trip purposes
    return bool(a == b)


def schema_error(exc: ValidationError, cls: type) -> SchemaError:
    """Turn pydantic's ValidationError into a SchemaError that names each field, what was
    expected and what was given, and says how to fix an unknown field."""
    lines = []
    first: dict[str, Any] = {}
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or "<document>"
        if err["type"] == "extra_forbidden":
            known = ", ".join(getattr(cls, "model_fields", {}))
            msg = f"unknown field (the schema has: {known})"
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"]
            if not err["type"].startswith(("tensor_", "vector_")):
                msg += f" (got {_short(err.get('input'))})"
        lines.append(f"{path}: {msg}")
        if not first:
            first = {"field": path, "error_type": err["type"]}
    head = f"invalid {cls.__name__}"
    message = f"{head}: {lines[0]}" if len(lines) == 1 else head + ":\n  " + "\n  ".join(lines)
    return SchemaError(message, **first)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
