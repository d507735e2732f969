"""Pipelines: ordered steps (decode, embed, translate, index, any function) run in-process or
as served processes, with dynamic batching so concurrent requests share forward passes.

>>> # Pipeline.from_yaml("pipeline.yaml").run(["a.jpg", "b.txt"], batch_size=32)

Importing this package loads no model, web framework or store engine: each is imported when
a step first needs it (``RemoteStep``/``StepServer`` need the ``serve`` extra).
"""

from __future__ import annotations

from polymodal.pipeline.batching import BatcherStats, DynamicBatcher
from polymodal.pipeline.embedder import BatchingEmbedder
from polymodal.pipeline.pipeline import Pipeline
from polymodal.pipeline.remote import RemoteStep, StepServer, create_step_app, serve_step
from polymodal.pipeline.spec import step_from_spec
from polymodal.pipeline.steps import Decode, Embed, Function, Index, Step, Translate

__all__ = [
    "BatcherStats",
    "BatchingEmbedder",
    "Decode",
    "DynamicBatcher",
    "Embed",
    "Function",
    "Index",
    "Pipeline",
    "RemoteStep",
    "Step",
    "StepServer",
    "Translate",
    "create_step_app",
    "serve_step",
    "step_from_spec",
]
