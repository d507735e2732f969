"""Indexing on a Ray cluster: decoding, translating and embedding spread over actors.

Each actor loads the profile's models once and builds documents for batches of files; the
driver (the ``polymodal index`` process) receives finished batches as they complete and
writes them into the target store, so the store needs no Ray support and sees ordinary
batched writes. Where the cluster has GPUs, each actor takes one and its models run there.
A crashed run is resumed by running it again: finished batches are in the store and
incremental indexing skips their files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from polymodal.errors import OptionalDependencyError
from polymodal.library.build import Failure
from polymodal.library.profile import Profile
from polymodal.library.schema import MediaItem

__all__ = ["build_on_ray"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OptionalDependencyError.for_package("ray", "ray", "Distributed indexing") from None
    return ray


class _BuildWorker:
    """Holds one Builder (and its models) for the life of the actor."""

    def __init__(self, profile_json: dict[str, Any]) -> None:
        from polymodal.library.build import Builder

        self.builder = Builder(Profile.model_validate(profile_json))

    def build(self, paths: list[str]) -> tuple[list[MediaItem], list[Failure]]:
        docs, failures = self.builder.build([Path(p) for p in paths])
        return list(docs), failures


def build_on_ray(
    profile: Profile, batches: Sequence[Sequence[Path]], *, address: str = "local", actors: int | None = None
) -> Iterator[tuple[list[MediaItem], list[Failure]]]:
    """Yield ``(documents, failures)`` per batch as Ray actors finish them (any order).

    Args:
        address: "local" to start (or join) a Ray instance on this machine, else a cluster
            address such as "ray://head:10001" or "auto".
        actors: how many builders; default one per GPU, or one per two CPUs without GPUs.
    """
    if not batches:
        return
    ray = _ray()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
        ray.init(address=None if address == "local" else address, **kwargs)
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    cpus = max(1, int(resources.get("CPU", 1)))
    count = actors or (gpus if gpus else max(1, cpus // 2))
    count = max(1, min(count, len(batches)))
    worker = ray.remote(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)(_BuildWorker)
    pool = [worker.remote(profile.model_dump(mode="json")) for _ in range(count)]
    pending: dict[Any, int] = {}
    queue = [[str(p) for p in batch] for batch in batches]
    for i, actor in enumerate(pool):
        if queue:
            pending[actor.build.remote(queue.pop(0))] = i
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            actor_index = pending.pop(ref)
            if queue:
                pending[pool[actor_index].build.remote(queue.pop(0))] = actor_index
            yield ray.get(ref)
    finally:
        for actor in pool:
            ray.kill(actor)
