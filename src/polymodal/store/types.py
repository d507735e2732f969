"""What stores take and return: search hits, capabilities, vector fields, store options, and
the schema walks that find a document type's vector and text fields.

Backends import these from :mod:`polymodal.store.base`, which re-exports them with the
:class:`~polymodal.store.base.Store` contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.errors import ConfigError

__all__ = [
    "Aggregate",
    "Capabilities",
    "Hit",
    "Metric",
    "StoreConfig",
    "T",
    "VectorField",
    "match_at",
    "ranked_hits",
    "text_paths",
    "vector_fields",
]

T = TypeVar("T", bound=Doc)
Metric = Literal["cosine", "ip", "l2"]
Aggregate = Literal["max", "mean"]


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result.

    Attributes:
        id: the top-level document's id.
        score: higher is better (cosine similarity, inner product, minus the L2 distance,
            BM25, or a fused score).
        doc: the document.
        match: for a search over nested documents, the best matching sub-document (a video
            segment, with its ``start``/``end``); None for top-level matches.
        field: the vector or text field that matched, such as ``"segments.embedding"``.
        snippet: for text matches, the matching text with the query terms marked.
        scores: for fused results, each component's own score.
    """

    id: str
    score: float
    doc: Doc
    match: Doc | None = None
    field: str | None = None
    snippet: str | None = None
    scores: Mapping[str, float] = dc_field(default_factory=dict)

    @property
    def start(self) -> float | None:
        """The matched sub-document's ``start`` (seconds), when it has one."""
        return getattr(self.match, "start", None) if self.match is not None else None

    @property
    def end(self) -> float | None:
        return getattr(self.match, "end", None) if self.match is not None else None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; the base class refuses other calls up front.

    ``hybrid`` means the engine ranks vector and text together natively; without it,
    :meth:`Store.hybrid_search` still works, fusing the two result lists in Python.
    """

    filter: bool = True
    text: bool = False
    hybrid: bool = False
    nested: bool = True
    metrics: tuple[str, ...] = ("cosine", "ip", "l2")


@dataclass(frozen=True, slots=True)
class VectorField:
    """A searchable vector field: its dotted path, the nested lists above it, dimension, metric."""

    path: str
    dim: int | None
    metric: Metric
    nesting: tuple[str, ...]  # the DocList fields traversed, e.g. ("segments",) for segments.embedding

    @property
    def nested(self) -> bool:
        return bool(self.nesting)


class StoreConfig(BaseModel):
    """Options of a store, saved with it. Structural options (``metric``, ``text_fields``,
    ``hnsw_m``, ``hnsw_ef_construction``) cannot change on reopen; the others (``ef_search``,
    ``exact_threshold``, ``durability``) can."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric | dict[str, Metric] = Field("cosine", description="One metric, or one per vector field path.")
    text_fields: tuple[str, ...] | None = Field(None, description="Text paths for BM25; default: every str field.")
    hnsw_m: int = Field(16, ge=4, le=128)
    hnsw_ef_construction: int = Field(200, ge=8)
    ef_search: int = Field(64, ge=1)
    exact_threshold: int = Field(
        2_000_000,
        ge=0,
        description=(
            "Exact search when candidates x dim is at most this (about 4k x 512, 16k x 128). Measured "
            "(benchmarks/results/exact_threshold.md): with a filter, exact beats filtered HNSW up to about "
            "2.5M (5% of 100k at 512-d) at 512-d and 0.6-1.3M at 128-d, and loses from 5M; without one, "
            "HNSW is faster from about 1,000 vectors but exact gives recall 1.0 where small graphs give "
            "0.95-0.98, for under ~0.5 ms. 2M keeps 1% filters on 100k x 512 or 1M x 128 exact."
        ),
    )
    durability: Literal["normal", "full"] = "normal"

    STRUCTURAL: ClassVar[tuple[str, ...]] = ("metric", "text_fields", "hnsw_m", "hnsw_ef_construction")

    def metric_for(self, path: str) -> Metric:
        if isinstance(self.metric, str):
            return self.metric
        return self.metric.get(path, "cosine")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> StoreConfig:
        """Validate store options (``polymodal.open`` keywords), naming the option at fault."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(dict(options))
        except ValidationError as exc:
            first = exc.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else "options"  # the option, not pydantic's inner path
            raise ConfigError(f"store option {name!r}: {first['msg']}", option=name) from None

    def reopened(self, options: Mapping[str, Any], what: str = "store") -> StoreConfig:
        """This saved config with the options given on reopening: runtime ones (``ef_search``,
        ``exact_threshold``, ...) apply; a structural one that differs is an error, since the
        indexes were built with it."""
        if not options:
            return self
        given = StoreConfig.from_options(options)
        for key in self.STRUCTURAL:
            if key in options and getattr(given, key) != getattr(self, key):
                raise ConfigError(
                    f"{key}={options[key]!r} differs from the {what}'s {getattr(self, key)!r}; "
                    f"it is fixed when a {what} is created"
                )
        runtime = {k: v for k, v in options.items() if k not in self.STRUCTURAL}
        return StoreConfig.model_validate({**self.model_dump(), **runtime})


def vector_fields(doc_type: type[Doc], config: StoreConfig) -> dict[str, VectorField]:
    """Every Vector field of a schema, nested ones included, keyed by dotted path."""
    out: dict[str, VectorField] = {}

    def walk(cls: type[Doc], prefix: str, nesting: tuple[str, ...]) -> None:
        for spec in schema_of(cls).fields:
            path = f"{prefix}{spec.name}"
            if spec.kind == "vector" and spec.tensor is not None:
                dim = spec.tensor.shape[0] if spec.tensor.shape else None
                out[path] = VectorField(path, dim if isinstance(dim, int) else None, config.metric_for(path), nesting)
            elif spec.kind == "docs" and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.", (*nesting, path))
            elif spec.kind == "doc" and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.", nesting)

    walk(doc_type, "", ())
    if isinstance(config.metric, dict):
        unknown = set(config.metric) - set(out)
        if unknown:
            raise ConfigError(
                f"metric given for unknown vector field(s) {sorted(unknown)}; vector fields: {sorted(out)}"
            )
    return out


def text_paths(doc_type: type[Doc], config: StoreConfig) -> tuple[str, ...]:
    """The str fields indexed for BM25 (every str field but ids, unless configured)."""
    found: list[str] = []

    def walk(cls: type[Doc], prefix: str) -> None:
        for spec in schema_of(cls).fields:
            path = f"{prefix}{spec.name}"
            if spec.scalar == "str" and spec.name != "id":
                found.append(path)
            elif spec.kind in ("docs", "doc") and spec.doc_type is not None:
                walk(spec.doc_type, f"{path}.")

    walk(doc_type, "")
    if config.text_fields is None:
        return tuple(found)
    unknown = set(config.text_fields) - set(found)
    if unknown:
        raise ConfigError(f"text_fields {sorted(unknown)} are not str fields; str fields: {found}")
    return tuple(config.text_fields)


def _values_at(obj: Any, parts: list[str]) -> list[Any]:
    """Every non-None value at a dotted path through nested documents."""
    if obj is None:
        return []
    if isinstance(obj, list):
        return [v for item in obj for v in _values_at(item, parts)]
    value = getattr(obj, parts[0], None)
    if len(parts) == 1:
        return [] if value is None else [value]
    return _values_at(value, parts[1:])


def match_at(doc: Doc, nesting: Sequence[str], pos: Sequence[int]) -> Doc | None:
    """The sub-document at positions ``pos`` along the nested list fields ``nesting``."""
    node: Any = doc
    prev = ""
    for path, i in zip(nesting, pos, strict=True):
        rel = path[len(prev) + 1 :] if prev else path
        for part in rel.split("."):
            node = getattr(node, part, None)
            if node is None:
                return None
        if not isinstance(node, list) or not 0 <= i < len(node):
            return None
        node = node[i]
        prev = path
    return node if isinstance(node, Doc) else None


def ranked_hits(ranked: Iterable[tuple[int, float, str]], docs: Mapping[int, Doc], field: VectorField) -> list[Hit]:
    """Hits from a backend's ranking of (row id, score, dotted position of the best sub-document)
    over loaded documents; rows whose document vanished meanwhile are skipped."""
    hits = []
    for rid, score, pos in ranked:
        doc = docs.get(rid)
        if doc is None:
            continue
        match = match_at(doc, field.nesting, tuple(int(p) for p in pos.split("."))) if field.nested else None
        hits.append(Hit(id=doc.id, score=score, doc=doc, match=match, field=field.path))
    return hits
