"""``Pipeline``: ordered steps run over a stream of items, a batch at a time.

Semantics:

* **Batches**: input is consumed lazily, ``batch_size`` items at a time, and each batch goes
  through every step before the next is read, so memory stays bounded and a slow step slows
  the reader (backpressure by construction); :meth:`Pipeline.iter_batches` streams results.
* **Timeouts**: each step call may take at most the step's ``timeout`` (or the pipeline's).
  Remote and batched steps enforce it themselves; any other step runs in a helper thread that
  the pipeline stops waiting for: Python cannot stop a thread, so the call runs on in the
  background and its result is discarded. The error is a ``BackendError`` with
  ``reason="timeout"``.
* **Errors** name the step (position and name) and the item (position among the items that
  entered that step, and its id/URI). When a batch fails, its items are retried one at a time
  (``isolate_errors=True``) to find the bad one; set it False when a step's side effects must
  not repeat. Timeouts and overloads are not retried (it would only multiply the wait). A
  polymodal error keeps its class (a bad file is still a ``MediaError``) with ``step``,
  ``item`` and ``index`` added to its context; any other exception becomes a ``BackendError``
  with the original as ``__cause__``.
* **Cancellation**: :meth:`Pipeline.arun` stops at the next step boundary when its task is
  cancelled: the step call in flight finishes in its thread, its result is discarded, and no
  later step or batch runs. A sync :meth:`Pipeline.run` stops on ``KeyboardInterrupt``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any

from polymodal.errors import ConfigError, DeadlineExceeded, PolymodalError, SchemaError, StepError
from polymodal.pipeline.records import describe
from polymodal.pipeline.steps import Step

__all__ = ["Pipeline"]


class Pipeline:
    """Ordered steps (decode, embed, translate, index, functions, remote steps).

    Args:
        steps: objects with ``name`` and ``run(batch) -> batch`` (see :class:`Step`).
        timeout: seconds per step call for steps that set none (None: no limit).
        isolate_errors: retry a failed batch item by item to name the bad item.

    >>> from polymodal.pipeline import Function
    >>> double = Pipeline([Function(lambda xs: [x * 2 for x in xs], name="double")])
    >>> double.run([1, 2, 3], batch_size=2)
    [2, 4, 6]
    """

    def __init__(self, steps: Sequence[Step], *, timeout: float | None = None, isolate_errors: bool = True) -> None:
        if not steps:
            raise ConfigError("a pipeline needs at least one step")
        for i, step in enumerate(steps):
            if not isinstance(step, Step):
                raise ConfigError(f"step {i + 1} ({type(step).__name__}) is not a step: it needs name and run(batch)")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {timeout}")
        self.steps: tuple[Step, ...] = tuple(steps)
        self.timeout = timeout
        self.isolate_errors = isolate_errors
        self._note_embedders()

    @classmethod
    def from_yaml(cls, source: str | Path) -> Pipeline:
        """A pipeline from YAML text or a YAML file (see :mod:`polymodal.pipeline.spec`).

        Raises:
            ConfigError: malformed YAML, an unknown step type or option (named), a bad value.
        """
        from polymodal.pipeline.spec import load_spec, pipeline_kwargs

        spec = load_spec(source)
        return cls(**pipeline_kwargs(spec))

    @classmethod
    def from_spec(cls, spec: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Pipeline:
        """A pipeline from the parsed form of the YAML (a list of steps, or ``{"steps": [...]}``)."""
        from polymodal.pipeline.spec import pipeline_kwargs

        return cls(**pipeline_kwargs(spec))

    def _note_embedders(self) -> None:
        """Tell each Index which embedder made which vector field (saved with its store)."""
        from polymodal.pipeline.index import Index
        from polymodal.pipeline.models import Embed

        made: dict[str, Any] = {}
        for step in self.steps:
            if isinstance(step, Embed):
                made[step.into] = step.config
            elif isinstance(step, Index):
                for field, config in made.items():
                    step.record_embedder(field, config)

    # -- running -------------------------------------------------------------------------------
    def run(self, items: Iterable[Any], *, batch_size: int = 32, progress: bool | str = False) -> list[Any]:
        """Every item through every step; the outputs of the last step, in order.

        Raises:
            PolymodalError: the first failure, naming the step and the item (see module notes).
        """
        return [out for batch in self.iter_batches(items, batch_size=batch_size, progress=progress) for out in batch]

    def iter_batches(
        self, items: Iterable[Any], *, batch_size: int = 32, progress: bool | str = False
    ) -> Iterator[list[Any]]:
        """Like :meth:`run`, yielding each batch's outputs as soon as it is done (streaming)."""
        from polymodal.doc.apply import progress_bar

        counters = [0] * len(self.steps)
        total = len(items) if isinstance(items, Sized) else None
        with progress_bar(total, progress, unit="item") as bar:
            for chunk in _chunks(items, batch_size):
                batch = chunk
                for pos in range(len(self.steps)):
                    if not batch:
                        break
                    batch = self._step(pos, batch, counters)
                bar.update(len(chunk))
                yield batch

    async def arun(self, items: Iterable[Any], *, batch_size: int = 32) -> list[Any]:
        """:meth:`run` for asyncio: steps run in worker threads, the loop stays free, and
        cancelling the task stops the pipeline at the next step boundary."""
        counters = [0] * len(self.steps)
        out: list[Any] = []
        for chunk in _chunks(items, batch_size):
            batch = chunk
            for pos in range(len(self.steps)):
                if not batch:
                    break
                batch = await asyncio.to_thread(self._step, pos, batch, counters)
            out.extend(batch)
        return out

    def run_batch(self, batch: Sequence[Any]) -> list[Any]:
        """One batch through every step (no chunking)."""
        counters = [0] * len(self.steps)
        out = list(batch)
        for pos in range(len(self.steps)):
            if not out:
                break
            out = self._step(pos, out, counters)
        return out

    # -- one step ------------------------------------------------------------------------------
    def _step(self, pos: int, batch: list[Any], counters: list[int]) -> list[Any]:
        """Run step ``pos`` on ``batch``, with its timeout, isolating a failing item."""
        step = self.steps[pos]
        offset = counters[pos]
        counters[pos] += len(batch)
        try:
            out = self._call(step, batch)
        except Exception as exc:
            if not self.isolate_errors or len(batch) == 1 or getattr(exc, "reason", None) is not None:
                raise _step_error(pos, step, batch, offset, exc) from exc
            out = []
            for i, item in enumerate(batch):
                try:
                    out.extend(self._call(step, [item]))
                except Exception as item_exc:
                    raise _step_error(pos, step, [item], offset + i, item_exc) from item_exc
        return out

    def _call(self, step: Step, batch: list[Any]) -> list[Any]:
        own = getattr(step, "timeout", None)
        timeout = own if own is not None else self.timeout
        if timeout is None or (own is not None and getattr(step, "handles_timeout", False)):
            out = step.run(batch)
        else:
            out = _run_with_timeout(step, batch, timeout)
        if not isinstance(out, list):
            raise SchemaError(f"step {step.name!r} returned {type(out).__name__}; run() must return a list")
        return out

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every step that holds resources (batching workers, stores, HTTP clients)."""
        for step in self.steps:
            closer = getattr(step, "close", None)
            if callable(closer):
                closer()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(step.name for step in self.steps)})"


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    if size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {size}")
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _run_with_timeout(step: Step, batch: list[Any], timeout: float) -> list[Any]:
    """Run ``step`` in a helper thread and stop waiting after ``timeout`` seconds."""
    done = threading.Event()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = step.run(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"step:{step.name}", daemon=True).start()
    if not done.wait(timeout):
        raise DeadlineExceeded(
            f"no result within {timeout}s; the call runs on in the background and its result will be discarded",
            backend=f"pipeline step {step.name}",
            reason="timeout",
        )
    if "error" in box:
        raise box["error"]
    out: list[Any] = box["out"]
    return out


def _step_error(pos: int, step: Step, batch: list[Any], index: int, exc: Exception) -> PolymodalError:
    """The error to raise: names the step and the item (or the batch, when not isolated)."""
    first = describe(batch[0])
    if len(batch) == 1:
        where = f"step {pos + 1} {step.name!r} failed on item {index} ({first})"
    else:
        where = f"step {pos + 1} {step.name!r} failed on items {index}..{index + len(batch) - 1} (first: {first})"
    context = {"step": step.name, "item": first, "index": index}
    if isinstance(exc, PolymodalError):
        try:
            return type(exc)(f"{where}: {exc}", **{**exc._context, **context})
        except TypeError:  # a subclass whose constructor takes other arguments
            pass
    name = type(exc).__name__
    return StepError(f"{where}: {name}: {exc}", backend=f"pipeline step {step.name}", error=name, **context)
