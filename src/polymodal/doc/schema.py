"""What each field of a Doc class is: the one place that reads annotations.

Serializers, ``DocVec`` and stores all need the same facts (which fields are vectors of which
dimension, which are nested documents, which are media references), so they ask
:func:`schema_of` instead of re-reading type hints. A schema also has a portable JSON form,
saved inside stores and files, from which an equivalent Doc class can be rebuilt when the
user's own class is not importable.
"""

from __future__ import annotations

import hashlib
import importlib
import types
import typing
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import orjson

from polymodal.doc.tensor import TensorSpec
from polymodal.errors import SchemaError

if TYPE_CHECKING:
    from polymodal.doc.base import Doc

__all__ = ["DocSchema", "FieldKind", "FieldSpec", "schema_of"]

FieldKind = Literal["vector", "tensor", "docs", "doc", "url", "bytes", "scalar", "other"]

_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool"}
_SCALAR_TYPES: dict[str, type] = {v: k for k, v in _SCALARS.items()}


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a Doc class, classified once."""

    name: str
    kind: FieldKind
    optional: bool
    annotation: Any = None
    tensor: TensorSpec | None = None
    doc_type: type[Doc] | None = None
    media: str | None = None
    scalar: str | None = None

    def describe(self) -> str:
        if self.tensor is not None:
            base = self.tensor.describe()
        elif self.doc_type is not None:
            base = f"DocList[{self.doc_type.__name__}]" if self.kind == "docs" else self.doc_type.__name__
        elif self.kind in ("url", "bytes"):
            base = self.annotation.__name__
        elif self.scalar is not None:
            base = self.scalar
        else:
            base = getattr(self.annotation, "__name__", repr(self.annotation))
        return f"{base} | None" if self.optional else base

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "optional": self.optional}
        if self.tensor is not None:
            out["tensor"] = self.tensor.to_dict()
        if self.doc_type is not None:
            out["schema"] = schema_of(self.doc_type).to_dict()
        if self.kind in ("url", "bytes"):
            out["type"] = self.annotation.__name__
        if self.scalar is not None:
            out["scalar"] = self.scalar
        return out


@dataclass(frozen=True)
class DocSchema:
    """The classified fields of one Doc class, with a stable fingerprint."""

    doc_type: type[Doc]
    fields: tuple[FieldSpec, ...]
    by_name: dict[str, FieldSpec] = field(repr=False, compare=False)

    def __getitem__(self, name: str) -> FieldSpec:
        try:
            return self.by_name[name]
        except KeyError:
            raise SchemaError(
                f"{self.doc_type.__name__} has no field {name!r}; fields: {', '.join(self.by_name)}",
                field=name,
            ) from None

    def of_kind(self, *kinds: FieldKind) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.kind in kinds)

    def to_dict(self) -> dict[str, Any]:
        """Portable description: enough to rebuild an equivalent class with :meth:`rebuild`."""
        cls = self.doc_type
        return {
            "name": cls.__name__,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "fields": [f.to_dict() for f in self.fields],
        }

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the field layout (names, kinds, shapes, nested layouts), not of the class name."""
        layout = orjson.dumps(_layout(self.to_dict()), option=orjson.OPT_SORT_KEYS)
        return hashlib.blake2b(layout, digest_size=8).hexdigest()

    @staticmethod
    def rebuild(data: dict[str, Any], *, prefer_import: bool = True) -> type[Doc]:
        """Return a Doc class for a stored schema: the original class when it is importable and
        has the same layout, else an equivalent class built with ``pydantic.create_model``."""
        if prefer_import:
            cls = _import_class(data.get("class", ""))
            if cls is not None and schema_of(cls).fingerprint == _fingerprint_of(data):
                return cls
        import warnings

        warnings.warn(
            f"the class {data.get('class', data['name'])} is not importable here, so documents come back as an "
            f"equivalent generated class {data['name']!r}; pass schema={data['name']} to get your own class",
            stacklevel=3,
        )
        return _create_class(data)


def _layout(d: dict[str, Any]) -> Any:
    fields = []
    for f in d["fields"]:
        g = {k: v for k, v in f.items() if k != "schema"}
        if "schema" in f:
            g["schema"] = _layout(f["schema"])
        fields.append(g)
    return fields


def _fingerprint_of(data: dict[str, Any]) -> str:
    layout = orjson.dumps(_layout(data), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(layout, digest_size=8).hexdigest()


def _import_class(path: str) -> type[Doc] | None:
    from polymodal.doc.base import Doc

    module_name, _, qualname = path.partition(":")
    if not module_name or "<locals>" in qualname or module_name == "__main__":
        return None
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception:  # noqa: BLE001 - any failure means "not importable here"
        return None
    return obj if isinstance(obj, type) and issubclass(obj, Doc) else None


def _create_class(data: dict[str, Any]) -> type[Doc]:
    import pydantic

    from polymodal.doc import url as url_types
    from polymodal.doc.base import Doc
    from polymodal.doc.doclist import doclist_of

    definitions: dict[str, Any] = {}
    for f in data["fields"]:
        if f["name"] == "id":
            continue
        kind = f["kind"]
        ann: Any
        if kind in ("vector", "tensor"):
            ann = typing.Annotated[__import__("numpy").ndarray, TensorSpec.from_dict(f["tensor"])]
        elif kind == "docs":
            ann = doclist_of(_create_class(f["schema"]))
        elif kind == "doc":
            ann = _create_class(f["schema"])
        elif kind in ("url", "bytes"):
            ann = getattr(url_types, f["type"])
        elif kind == "scalar":
            ann = _SCALAR_TYPES[f["scalar"]]
        else:
            ann = Any
        if f["optional"]:
            definitions[f["name"]] = (ann | None, None)  # type: ignore[operator]
        else:
            definitions[f["name"]] = (ann, ...)
    model: type[Doc] = pydantic.create_model(data["name"], __base__=Doc, **definitions)
    return model


_CACHE: dict[type, DocSchema] = {}


def schema_of(doc_type: type[Doc]) -> DocSchema:
    """The (cached) :class:`DocSchema` of a Doc class."""
    cached = _CACHE.get(doc_type)
    if cached is not None:
        return cached
    specs = tuple(_classify(name, info) for name, info in doc_type.model_fields.items())
    schema = DocSchema(doc_type=doc_type, fields=specs, by_name={s.name: s for s in specs})
    _CACHE[doc_type] = schema
    return schema


def _classify(name: str, info: Any) -> FieldSpec:
    from polymodal.doc.base import Doc
    from polymodal.doc.doclist import DocList
    from polymodal.doc.url import MediaBytes, MediaUrl

    ann, metadata = info.annotation, list(info.metadata)
    ann, optional = _strip_optional(ann)
    if typing.get_origin(ann) is typing.Annotated:
        metadata += list(ann.__metadata__)
        ann = typing.get_args(ann)[0]
        ann, opt2 = _strip_optional(ann)
        optional = optional or opt2
    spec = next((m for m in metadata if isinstance(m, TensorSpec)), None)
    if spec is None and isinstance(ann, type) and ann.__name__ in ("NdArray", "Vector"):
        spec = TensorSpec(shape=(None,), dtype="<f4", vector=True) if ann.__name__ == "Vector" else TensorSpec()
    if spec is not None:
        return FieldSpec(name, "vector" if spec.vector else "tensor", optional, ann, tensor=spec)
    if isinstance(ann, type):
        if issubclass(ann, DocList) and ann.doc_type is not None:
            return FieldSpec(name, "docs", optional, ann, doc_type=ann.doc_type)
        if issubclass(ann, Doc):
            return FieldSpec(name, "doc", optional, ann, doc_type=ann)
        if issubclass(ann, MediaUrl):
            return FieldSpec(name, "url", optional, ann, media=ann.modality)
        if issubclass(ann, MediaBytes):
            return FieldSpec(name, "bytes", optional, ann, media=ann.modality)
        if ann in _SCALARS:
            return FieldSpec(name, "scalar", optional, ann, scalar=_SCALARS[ann])
    return FieldSpec(name, "other", optional, info.annotation)


def _strip_optional(ann: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(ann)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) != len(typing.get_args(ann))
    return ann, False
