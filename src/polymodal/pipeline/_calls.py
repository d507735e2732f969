"""The bookkeeping behind :class:`~polymodal.pipeline.batching.DynamicBatcher`: one record
per submitted item, and the ways a result travels back to a thread or an event loop.

Kept apart so the batcher module reads as the policy (when to run, who waits, what fails)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from polymodal.errors import BackendError, DeadlineExceeded, OverloadedError

__all__ = [
    "DEFAULT",
    "BatcherStats",
    "Call",
    "Default",
    "State",
    "batcher_error",
    "copy_error",
    "deliver",
    "remaining",
    "resolve",
    "set_none",
    "wake",
]


class Default(enum.Enum):
    """Marks "use the batcher's own setting" (None already means "no limit")."""

    TOKEN = 0


DEFAULT = Default.TOKEN


class State(enum.Enum):
    QUEUED = 1
    RUNNING = 2
    DONE = 3
    DROPPED = 4  # the caller left (timeout, cancellation): never run, or result thrown away


class Call:
    """One submitted item and the way back to its caller (an Event, or a future on a loop)."""

    __slots__ = ("enqueued", "error", "event", "future", "item", "loop", "result", "state")

    def __init__(
        self, item: Any, loop: asyncio.AbstractEventLoop | None = None, future: asyncio.Future[Any] | None = None
    ) -> None:
        self.item = item
        self.loop = loop
        self.future = future
        self.event = threading.Event() if future is None else None
        self.state = State.QUEUED
        self.result: Any = None
        self.error: BaseException | None = None
        self.enqueued = 0.0


@dataclass(frozen=True, slots=True)
class BatcherStats:
    """Counters since the batcher was made, and what is happening now.

    ``calls``/``items`` count runs of ``fn``; ``largest_batch`` is the biggest batch run;
    ``failed_calls`` runs of ``fn`` that raised; ``cancelled`` items dropped before they ran;
    ``discarded`` results thrown away because their caller had left; ``rejected`` callers turned
    away by a full queue; ``queued``, ``running`` and ``blocked`` (callers waiting for room) are
    the current state.
    """

    calls: int
    items: int
    largest_batch: int
    failed_calls: int
    cancelled: int
    discarded: int
    rejected: int
    queued: int
    running: int
    blocked: int


def remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def deliver(call: Call) -> None:
    """Wake the caller: set its Event, or resolve its future on its own loop."""
    if call.event is not None:
        call.event.set()
    elif call.loop is not None and call.future is not None:
        wake(call.loop, resolve, call.future, call.result, call.error)


def wake(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(fn, *args)


def resolve(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(copy_error(error))
    else:
        fut.set_result(result)


def set_none(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def copy_error(exc: BaseException) -> BaseException:
    """A copy of ``exc`` per caller (same type, message, context, cause and traceback), so
    several threads raising "the" batch error do not append to one shared traceback."""
    try:
        dup = copy.copy(exc)
    except Exception:  # noqa: BLE001 - an exception class that cannot be rebuilt from its args
        return exc
    dup.__cause__, dup.__context__ = exc.__cause__, exc.__context__
    dup.__suppress_context__ = exc.__suppress_context__
    return dup.with_traceback(exc.__traceback__)


def batcher_error(name: str, reason: str, detail: str) -> BackendError:
    """The error a caller gets from the batcher itself; ``reason`` is what a program checks:
    ``"overloaded"`` (queue full, retry later), ``"timeout"`` or ``"closed"``."""
    cls = {"overloaded": OverloadedError, "timeout": DeadlineExceeded}.get(reason, BackendError)
    return cls(f"batcher {name!r}: {detail}", backend=f"batcher:{name}", reason=reason)
