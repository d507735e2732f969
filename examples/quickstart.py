"""Build documents of several modalities, serialize them three ways, and read them back."""

import tempfile
from pathlib import Path

import numpy as np

import polymodal as pm


class Segment(pm.Doc):
    start: float
    end: float
    embedding: pm.Vector[8] | None = None


class Clip(pm.Doc):
    title: str
    video: pm.VideoUrl | None = None
    embedding: pm.Vector[8] | None = None
    segments: pm.DocList[Segment] | None = None


rng = np.random.default_rng(0)
docs = pm.DocList[Clip](
    Clip(
        title=f"clip {i}",
        video=f"clips/{i}.mp4",
        embedding=rng.normal(size=8),
        segments=[Segment(start=s * 2.0, end=s * 2.0 + 2.0, embedding=rng.normal(size=8)) for s in range(3)],
    )
    for i in range(1000)
)

blob = docs.to_bytes(compression="zlib")
assert pm.DocList[Clip].from_bytes(blob) == docs
assert pm.DocList[Clip].from_json(docs.to_json()) == docs
with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "clips.parquet"
    docs.to_parquet(path)
    assert pm.DocList[Clip].from_parquet(path) == docs

cols = pm.DocVec[Clip](docs)
seg_vectors = cols.raw_column("segments").child.embedding
print(f"{len(docs)} clips, {len(seg_vectors)} segments: binary {len(blob):,} bytes, JSON {len(docs.to_json()):,} bytes")
print(f"DocVec columns: embedding {cols.embedding.shape}, segment embeddings {seg_vectors.shape}")
print("round trips (binary, JSON, Parquet): exact")
