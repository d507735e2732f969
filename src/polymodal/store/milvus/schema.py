"""Collection schemas, index parameters, options and the small numeric helpers of the Milvus store."""

from __future__ import annotations

import math
from typing import Any

from polymodal.doc.base import Doc
from polymodal.doc.schema import schema_of
from polymodal.store.base import StoreConfig

__all__ = [
    "PAD",
    "big_ints_as_text",
    "main_schema",
    "meta_schema",
    "milvus_metric",
    "pad_index",
    "parts_schema",
    "score",
    "text_at",
    "text_index",
    "text_schema",
    "vector_index",
    "vector_schema",
    "with_placeholders",
]

PAD = [0.0, 0.0]  # Milvus wants a vector field in every collection; documents and settings get this one
_LONG = 65535  # the longest VARCHAR Milvus allows


def _schema(client: Any) -> Any:
    return client.create_schema(auto_id=False, enable_dynamic_field=False)


def main_schema(client: Any) -> Any:
    from pymilvus import DataType  # type: ignore[import-untyped]

    s = _schema(client)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=_LONG)
    s.add_field("body", DataType.JSON)
    s.add_field("fbody", DataType.JSON)
    s.add_field("_pad", DataType.FLOAT_VECTOR, dim=len(PAD))
    return s


def meta_schema(client: Any) -> Any:
    from pymilvus import DataType  # type: ignore[import-untyped]

    s = _schema(client)
    s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=_LONG)
    s.add_field("value", DataType.JSON)
    s.add_field("_pad", DataType.FLOAT_VECTOR, dim=len(PAD))
    return s


def parts_schema(client: Any) -> Any:
    from pymilvus import DataType  # type: ignore[import-untyped]

    s = _schema(client)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    s.add_field("parent", DataType.VARCHAR, max_length=_LONG)
    s.add_field("digest", DataType.VARCHAR, max_length=64)
    s.add_field("seq", DataType.INT64)
    s.add_field("data", DataType.VARCHAR, max_length=_LONG)
    s.add_field("_pad", DataType.FLOAT_VECTOR, dim=len(PAD))
    return s


def pad_index(client: Any) -> Any:
    index = client.prepare_index_params()
    index.add_index("_pad", index_type="FLAT", metric_type="L2")
    return index


def vector_schema(client: Any, dim: int) -> Any:
    from pymilvus import DataType  # type: ignore[import-untyped]

    s = _schema(client)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    s.add_field("parent", DataType.VARCHAR, max_length=_LONG)
    s.add_field("pos", DataType.VARCHAR, max_length=1024)
    s.add_field("fbody", DataType.JSON)
    s.add_field("raw", DataType.VARCHAR, max_length=_LONG)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    return s


def vector_index(client: Any, metric: str, config: StoreConfig) -> Any:
    index = client.prepare_index_params()
    index.add_index(
        "vec",
        index_type="HNSW",
        metric_type=milvus_metric(metric),
        params={"M": config.hnsw_m, "efConstruction": config.hnsw_ef_construction},
    )
    return index


def text_schema(client: Any) -> Any:
    from pymilvus import DataType, Function, FunctionType  # type: ignore[import-untyped]

    s = _schema(client)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    s.add_field("parent", DataType.VARCHAR, max_length=_LONG)
    s.add_field("path", DataType.VARCHAR, max_length=1024)
    s.add_field("pos", DataType.VARCHAR, max_length=1024)
    s.add_field("fbody", DataType.JSON)
    s.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=_LONG,
        enable_analyzer=True,
        enable_match=True,
        analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]},
    )
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(
        Function(
            name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]
        )
    )
    return s


def text_index(client: Any) -> Any:
    index = client.prepare_index_params()
    index.add_index(
        "sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.2, "bm25_b": 0.75}
    )
    return index


def milvus_metric(metric: str) -> str:
    """Cosine fields are stored at unit length and searched by inner product (no float32 overflow
    in Milvus's own normalisation of huge components)."""
    return "L2" if metric == "l2" else "IP"


def score(distance: float, metric: str) -> float:
    """Milvus's distance as the store's score: Milvus reports squared L2 distances."""
    return -math.sqrt(max(distance, 0.0)) if metric == "l2" else distance


def with_placeholders(doc_type: type[Doc], body: dict[str, Any]) -> dict[str, Any]:
    """The body with zero vectors where a required vector field is empty (vectors are stored
    apart; filters never read them)."""
    for spec in schema_of(doc_type).fields:
        value = body.get(spec.name)
        if spec.kind == "vector" and value is None and not spec.optional:
            dim = spec.tensor.shape[0] if spec.tensor is not None and spec.tensor.shape else None
            body[spec.name] = [0.0] * (dim if isinstance(dim, int) else 1)
        elif spec.kind == "docs" and spec.doc_type is not None and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    with_placeholders(spec.doc_type, item)
        elif spec.kind == "doc" and spec.doc_type is not None and isinstance(value, dict):
            with_placeholders(spec.doc_type, value)
    return body


def text_at(node: Any, path: str) -> str:
    for part in path.split("."):
        node = getattr(node, part, None)
    return node if isinstance(node, str) else ""


def big_ints_as_text(obj: Any) -> Any:
    """Ints beyond 64 bits as decimal text (validation turns them back into ints)."""
    if isinstance(obj, bool):
        return obj
    if isinstance(obj, int) and not -(2**63) <= obj < 2**63:
        return str(obj)
    if isinstance(obj, dict):
        return {k: big_ints_as_text(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [big_ints_as_text(v) for v in obj]
    return obj
