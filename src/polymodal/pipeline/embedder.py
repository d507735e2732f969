"""``BatchingEmbedder``: any Embedder, with concurrent calls sharing forward passes.

A server embeds one query per request; 32 concurrent requests would make 32 forward passes of
batch 1. Wrapped, they queue in a :class:`~polymodal.pipeline.batching.DynamicBatcher` and run
as a few batched passes, each caller getting its own row. It is still an :class:`Embedder`
(same config, dim, space), so it drops in wherever one is expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polymodal.embed.base import Embedder, Modality
from polymodal.pipeline.batching import BatcherStats, DynamicBatcher

__all__ = ["BatchingEmbedder"]


class BatchingEmbedder(Embedder):
    """Wrap ``embedder`` so that concurrent ``embed``/``embed_one`` calls are batched together.

    Args:
        embedder: the model to call.
        max_batch_size: the most inputs per forward pass (default: the embedder's ``batch_size``).
        max_wait_ms, max_queue, timeout, queue_timeout, isolate_errors: see
            :class:`~polymodal.pipeline.batching.DynamicBatcher`; its errors (overloaded,
            timeout, closed) are raised by the calls here.
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_batch_size: int | None = None,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        timeout: float | None = None,
        queue_timeout: float | None = None,
        isolate_errors: bool = False,
    ) -> None:
        super().__init__(embedder.config)
        self.inner = embedder
        self.batcher: DynamicBatcher[Any, np.ndarray] = DynamicBatcher(
            self._forward,
            max_batch_size=max_batch_size or embedder.batch_size,
            max_wait_ms=max_wait_ms,
            max_queue=max_queue,
            timeout=timeout,
            queue_timeout=queue_timeout,
            isolate_errors=isolate_errors,
            name=f"embed:{embedder.config.key()}",
        )

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def modality(self) -> Modality:
        return self.inner.modality

    @property
    def space(self) -> str:
        return self.inner.space

    @property
    def normalized(self) -> bool:
        return self.inner.normalized

    def embed(self, batch: Sequence[Any], *, progress: bool | str = False) -> np.ndarray:
        """Embed ``batch`` through the shared queue (``progress`` is ignored: the passes are
        shared with other callers, so there is no bar of one's own to show)."""
        items = list(batch)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        return np.stack(self.batcher.submit_many(items)).astype(np.float32, copy=False)

    def embed_one(self, item: Any) -> np.ndarray:
        """One input's vector; concurrent callers share a forward pass."""
        return self.batcher.submit(item)

    async def aembed_one(self, item: Any) -> np.ndarray:
        """:meth:`embed_one` for asyncio (waits without blocking the loop; cancellable)."""
        return await self.batcher.asubmit(item)

    def stats(self) -> BatcherStats:
        """Forward passes made, inputs embedded, largest batch ... (see BatcherStats)."""
        return self.batcher.stats()

    def close(self, *, drain: bool = True) -> None:
        """Stop the batching worker (queued inputs are embedded first unless ``drain=False``)."""
        self.batcher.close(drain=drain)

    def _forward(self, items: list[Any]) -> list[np.ndarray]:
        return list(self.inner.embed(items))

    def _embed_batch(self, items: list[Any]) -> np.ndarray:
        return self.inner.embed(items)
