"""Items as pipelines see them: records (dicts) or documents, read and updated by field name.

Steps never modify their input items: they return updated copies (shallow: a decoded video is
not copied), so a failed step leaves the caller's data as it was and a batch can be retried.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from polymodal.doc.base import Doc
from polymodal.errors import ConfigError, SchemaError

__all__ = ["describe", "get_field", "is_present", "resolve_ref", "with_fields"]


def get_field(item: Any, name: str) -> Any:
    """A field of a record (dict) or document; None when it has none."""
    if isinstance(item, Mapping):
        return item.get(name)
    if isinstance(item, Doc):
        return getattr(item, name, None)
    return None


def with_fields(item: Any, updates: Mapping[str, Any], *, step: str = "") -> Any:
    """A shallow copy of a record or document with ``updates`` applied (the input is unchanged).

    Raises:
        SchemaError: a document has no such field, or the value does not fit it.
    """
    if isinstance(item, Mapping):
        return {**item, **updates}
    if isinstance(item, Doc):
        missing = [k for k in updates if k not in type(item).model_fields]
        if missing:
            raise SchemaError(
                f"step {step!r}: {type(item).__name__} has no field {missing[0]!r}; add it to the schema "
                "or choose another with into=",
                field=missing[0],
            )
        out = item.model_copy()
        for key, value in updates.items():
            setattr(out, key, value)  # validated: a vector of the wrong size is a SchemaError
        return out
    raise SchemaError(f"step {step!r} needs records (dicts) or documents, got {type(item).__name__}")


def resolve_ref(ref: str, *, what: str = "object") -> Any:
    """Import ``"package.module:attr"`` (the attribute may be dotted: ``"mod:Class.method"``).

    Raises:
        ConfigError: malformed, not importable, or no such attribute (names the reference).
    """
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {ref!r} must look like 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {ref!r}: cannot import {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what} {ref!r}: {module_name!r} has no attribute {attr!r}") from None
    return obj


def is_present(value: Any) -> bool:
    """Whether a field holds something to process (None and blank text are skipped)."""
    return value is not None and not (isinstance(value, str) and not value.strip())


def describe(item: Any, limit: int = 80) -> str:
    """A short name for an item in error messages: its id or URI, a path, or its type."""
    for key in ("uri", "id", "name"):
        value = get_field(item, key)
        if isinstance(value, str) and value:
            return value if len(value) <= limit else value[: limit - 3] + "..."
    if isinstance(item, (bytes, bytearray, memoryview)):
        return f"<{len(item)} bytes>"
    if isinstance(item, str):
        return repr(item if len(item) <= limit else item[: limit - 3] + "...")
    if hasattr(item, "__fspath__"):
        return str(item)
    return f"<{type(item).__name__}>"
