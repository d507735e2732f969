"""Pipelines declared in YAML (or the same structure as Python lists and dicts).

A pipeline is a list of steps, or a mapping with ``steps`` and pipeline options::

    timeout: 120            # seconds per step call, for steps that set none
    isolate_errors: true
    steps:
      - type: decode
      - type: embed
        family: sentence-transformers
        model: all-MiniLM-L6-v2
        field: text                # into: text_vec
        max_batch_size: 64
        max_wait_ms: 5
      - type: embed                # the same kind of step, served by another process
        remote: http://10.0.0.7:8700
        timeout: 30
      - type: function
        call: mypackage.cleaning:fix_ids
      - type: index
        store: ./my-store

Every step takes ``type``, ``name``, ``timeout`` and ``remote`` (the URL of a step server:
the step then runs there, and its options, still checked here for typos, are the server's
business). Unknown types and options are a ConfigError naming them and listing what is
allowed. YAML is read with ``safe_load``: no Python objects can be built from it; ``call`` and
``schema`` import code by name, so a pipeline file is as trusted as code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from polymodal.errors import ConfigError, OptionalDependencyError
from polymodal.pipeline.steps import Step

__all__ = ["STEP_TYPES", "load_spec", "pipeline_kwargs", "step_from_spec"]


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), populate_by_name=True)

    type: str
    name: str | None = None
    timeout: float | None = Field(None, gt=0)
    remote: str | None = Field(None, description="URL of a step server (polymodal.pipeline.serve_step).")
    api_key_env: str | None = Field(None, description="Environment variable holding the remote server's key.")


class _Batching(_Common):
    batching: bool = True
    max_batch_size: int | None = Field(None, ge=1)
    max_wait_ms: float = Field(5.0, ge=0)
    max_queue: int = Field(1024, ge=1)


class _DecodeSpec(_Common):
    field: str = "uri"
    modality: Literal["image", "audio", "video", "text", "mesh"] | None = None
    into: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    allow_remote: bool = False


class _EmbedSpec(_Batching):
    family: str
    model: str
    modality: Literal["text", "image", "audio"] = "text"
    options: dict[str, Any] = Field(default_factory=dict)
    field: str = "text"
    into: str | None = None


class _TranslateSpec(_Batching):
    family: str
    model: str = "default"
    options: dict[str, Any] = Field(default_factory=dict)
    field: str | None = None
    into: str | None = None


class _IndexSpec(_Common):
    store: str
    doc_schema: str | None = Field(None, alias="schema")
    options: dict[str, Any] = Field(default_factory=dict)


class _FunctionSpec(_Common):
    call: str
    each: bool = False
    options: dict[str, Any] = Field(default_factory=dict)


class _RemoteSpec(_Common):
    pass


#: Step type -> the options it takes (the YAML vocabulary).
STEP_TYPES: dict[str, type[_Common]] = {
    "decode": _DecodeSpec,
    "embed": _EmbedSpec,
    "translate": _TranslateSpec,
    "index": _IndexSpec,
    "function": _FunctionSpec,
    "remote": _RemoteSpec,
}
_PIPELINE_KEYS = ("steps", "timeout", "isolate_errors")


def load_spec(source: str | Path) -> Any:
    """Parse YAML from a file (a Path, or a one-line string naming a file) or from text.

    Raises:
        ConfigError: a missing file or malformed YAML (with the line and column).
        OptionalDependencyError: PyYAML is not installed.
    """
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise OptionalDependencyError.for_package("PyYAML", "serve", "YAML pipelines") from None

    text: str
    if isinstance(source, Path) or ("\n" not in source and source.strip().endswith((".yaml", ".yml"))):
        path = Path(source).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the pipeline file {path}: {exc.strerror or exc}") from None
    else:
        text = source
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"the pipeline is not valid YAML{where}: {problem}") from None


def pipeline_kwargs(spec: Any) -> dict[str, Any]:
    """Check a parsed spec and build ``Pipeline(**kwargs)`` arguments (its steps made)."""
    options: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(_PIPELINE_KEYS))
        if unknown:
            raise ConfigError(f"unknown pipeline option(s) {_names(unknown)}; allowed: {', '.join(_PIPELINE_KEYS)}")
        options = {k: spec[k] for k in ("timeout", "isolate_errors") if k in spec}
        spec = spec.get("steps")
    if not isinstance(spec, Sequence) or isinstance(spec, (str, bytes)) or not spec:
        raise ConfigError("a pipeline is a non-empty list of steps (or a mapping with 'steps:')")
    return {"steps": [step_from_spec(entry, position=i + 1) for i, entry in enumerate(spec)], **options}


def step_from_spec(entry: Any, *, position: int = 1, local: bool = False) -> Step:
    """Build one step from its spec (a mapping with ``type`` and options).

    Args:
        local: build the step itself even when the spec names a ``remote`` URL (what the
            server of that step does with the same YAML entry).

    Raises:
        ConfigError: unknown type or option, missing or invalid option (named, with the step).
    """
    if not isinstance(entry, Mapping):
        raise ConfigError(f"pipeline step {position} must be a mapping with a 'type', got {type(entry).__name__}")
    kind = entry.get("type")
    model = STEP_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ConfigError(
            f"pipeline step {position}: unknown step type {kind!r}; known: {', '.join(STEP_TYPES)}",
            step=position,
        )
    remote = bool(entry.get("remote")) and not local
    spec = _validate(model, dict(entry), position, str(kind), remote=remote)
    if remote or kind == "remote":
        if not spec.remote:
            raise ConfigError(f"pipeline step {position} (remote): give the server's URL as remote:")
        return _remote(spec)
    return _build(spec)


def _validate(model: type[_Common], entry: dict[str, Any], position: int, kind: str, *, remote: bool) -> Any:
    """The validated spec; for a remote step only typos count (required options, such as an
    embedder's model, are the server's business)."""
    try:
        return model.model_validate(entry)
    except ValidationError as exc:
        problems = [e for e in exc.errors() if not (remote and e["type"] == "missing")]
        if not problems:
            return _Common.model_validate({k: v for k, v in entry.items() if k in _Common.model_fields})
    unknown = [str(e["loc"][0]) for e in problems if e["type"] == "extra_forbidden"]
    if unknown:
        allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
        message = f"unknown option(s) {_names(unknown)}; allowed: {allowed}"
    else:
        first = problems[0]
        loc = ".".join(str(p) for p in first["loc"])
        message = f"missing option {loc!r}" if first["type"] == "missing" else f"option {loc!r}: {first['msg']}"
    raise ConfigError(f"pipeline step {position} ({kind}): {message}", step=position)


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _remote(spec: _Common) -> Step:
    import os

    from polymodal.pipeline.remote import RemoteStep

    key = os.environ.get(spec.api_key_env) if spec.api_key_env else None
    if spec.api_key_env and not key:
        raise ConfigError(f"environment variable {spec.api_key_env} (api_key_env) is not set")
    assert spec.remote is not None
    return RemoteStep(spec.remote, name=spec.name or f"{spec.type}@{spec.remote}", timeout=spec.timeout, api_key=key)


def _build(spec: Any) -> Step:
    from polymodal.pipeline import steps as s

    common: dict[str, Any] = {"timeout": spec.timeout}
    if spec.name:
        common["name"] = spec.name
    if isinstance(spec, _DecodeSpec):
        return s.Decode(
            field=spec.field,
            modality=spec.modality,
            into=spec.into,
            options=spec.options,
            allow_remote=spec.allow_remote,
            **common,
        )
    if isinstance(spec, _Batching):
        batching: dict[str, Any] = {
            "batching": spec.batching,
            "max_batch_size": spec.max_batch_size,
            "max_wait_ms": spec.max_wait_ms,
            "max_queue": spec.max_queue,
        }
        if isinstance(spec, _EmbedSpec):
            config = {"family": spec.family, "model": spec.model, "modality": spec.modality, "options": spec.options}
            return s.Embed(config, field=spec.field, into=spec.into, **batching, **common)
        assert isinstance(spec, _TranslateSpec)
        config = {"family": spec.family, "model": spec.model, "options": spec.options}
        return s.Translate(config, field=spec.field, into=spec.into, **batching, **common)
    if isinstance(spec, _IndexSpec):
        return s.Index(spec.store, schema=spec.doc_schema, options=spec.options, **common)
    assert isinstance(spec, _FunctionSpec)
    return s.Function(spec.call, each=spec.each, options=spec.options, **common)
