"""Dynamic batching: many callers submit single items, one worker runs them as batches.

Model forward passes cost about the same for 1 input as for 16 on a GPU (and are several times
cheaper per item on a CPU), so a server answering many small requests should group them. A
:class:`DynamicBatcher` queues items from any number of threads or event loops and hands them
to ``fn(list_of_items)`` when ``max_batch_size`` are waiting or the oldest has waited
``max_wait_ms``; each caller gets back its own result.

The semantics every caller can rely on:

* **Order and matching**: ``fn`` receives items in submission order and must return one result
  per item, in the same order; result ``i`` goes to the caller of item ``i``. A wrong count
  fails the whole batch with :class:`~polymodal.errors.BackendError`.
* **Backpressure**: at most ``max_queue`` items wait (items already running do not count).
  A caller arriving at a full queue blocks (``await``\\s, for :meth:`DynamicBatcher.asubmit`)
  until there is room, at most ``queue_timeout`` seconds and never past its own ``timeout``,
  then gets a ``BackendError`` with ``reason="overloaded"`` (HTTP 503).
* **Timeouts**: ``timeout`` bounds the whole call (waiting for room, in the queue, running).
  On expiry the caller gets ``BackendError(reason="timeout")``; an item that had not started
  is removed from the queue (``fn`` never sees it), one already running finishes and its
  result is discarded.
* **Cancellation**: a cancelled ``asubmit`` task (or a sync caller interrupted by
  ``KeyboardInterrupt``) is treated like a timeout: dropped if queued, result discarded if
  running; the ``CancelledError`` propagates unchanged.
* **Errors**: when ``fn`` raises, every caller of that batch, and only those, gets the
  exception (a copy each, so concurrent raises do not tangle tracebacks). With
  ``isolate_errors=True`` a failed batch is retried one item at a time, so only the callers of
  bad items fail; it is off by default because it repeats ``fn``'s side effects and, on a
  systematic failure (a model out of memory), multiplies the cost by the batch size.
* **Shutdown**: :meth:`DynamicBatcher.close` refuses new items (``reason="closed"``), including
  callers still blocked waiting for room. ``drain=True`` runs everything already queued, at
  once (no ``max_wait``); ``drain=False`` fails queued items with ``reason="closed"``. A batch
  already running always finishes and delivers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from polymodal.errors import BackendError, ConfigError
from polymodal.pipeline import _calls
from polymodal.pipeline._calls import (
    DEFAULT,
    BatcherStats,
    Call,
    Default,
    State,
    batcher_error,
    copy_error,
    deliver,
    set_none,
    wake,
)

__all__ = ["BatcherStats", "DynamicBatcher"]

T = TypeVar("T")
R = TypeVar("R")


class DynamicBatcher(Generic[T, R]):
    """Group single-item calls from many callers into batched calls of ``fn``.

    Args:
        fn: takes a list of items, returns one result per item in the same order.
        max_batch_size: the most items per call of ``fn``.
        max_wait_ms: how long the oldest waiting item may wait for company before its batch
            runs anyway (0: run whatever is queued as soon as the worker is free).
        max_queue: the most items waiting (backpressure); callers beyond it block.
        timeout: default deadline in seconds for each call (None: none).
        queue_timeout: the longest a caller waits for room in a full queue (None: up to its
            ``timeout``; 0: fail at once, for load shedding).
        isolate_errors: retry a failed batch one item at a time (see the module notes).
        name: used in error messages and the worker thread's name.

    >>> with DynamicBatcher(lambda xs: [x * 2 for x in xs], max_wait_ms=0) as doubler:
    ...     doubler.submit(21)
    42
    """

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        timeout: float | None = None,
        queue_timeout: float | None = None,
        isolate_errors: bool = False,
        name: str | None = None,
    ) -> None:
        least: list[tuple[str, float | None, int]] = [
            ("max_batch_size", max_batch_size, 1),
            ("max_queue", max_queue, 1),
        ]
        least += [("max_wait_ms", max_wait_ms, 0), ("timeout", timeout, 0), ("queue_timeout", queue_timeout, 0)]
        for label, value, floor in least:
            if value is not None and value < floor:
                raise ConfigError(f"{label} must be at least {floor}, got {value}")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.timeout = timeout
        self.queue_timeout = queue_timeout
        self.isolate_errors = isolate_errors
        self.name: str = name or str(getattr(fn, "__name__", "batcher"))
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)  # the worker waits here
        self._not_full = threading.Condition(self._lock)  # blocked sync callers wait here
        self._room_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._queue: deque[Call] = deque()
        self._closing = False
        self._worker: threading.Thread | None = None
        self._counts = dict.fromkeys(
            ("calls", "items", "largest_batch", "failed_calls", "cancelled", "discarded", "rejected", "running"), 0
        )
        self._blocked = 0

    # -- submitting ----------------------------------------------------------------------------
    def submit(self, item: T, *, timeout: float | Default | None = DEFAULT) -> R:
        """Run ``item`` in the next batch and return its result (blocks the calling thread).

        Raises:
            BackendError: ``reason`` is ``"overloaded"`` (queue full), ``"timeout"`` or
                ``"closed"``; or whatever ``fn`` raised for this item's batch.
        """
        return self.submit_many([item], timeout=timeout)[0]

    def submit_many(self, items: Sequence[T], *, timeout: float | Default | None = DEFAULT) -> list[R]:
        """Submit several items (they may share batches with other callers); their results in order.

        On the first failure the remaining items are dropped (or their results discarded) and
        the error is raised; the rules are those of :meth:`submit`.
        """
        deadline = self._deadline(timeout)
        calls: list[Call] = []
        try:
            for item in items:
                call = Call(item)
                self._admit(call, deadline)
                calls.append(call)
            seconds = self.timeout if timeout is DEFAULT else timeout
            return [self._wait(call, deadline, seconds) for call in calls]
        except BaseException:
            for call in calls:
                self._drop(call)
            raise

    async def asubmit(self, item: T, *, timeout: float | Default | None = DEFAULT) -> R:
        """:meth:`submit` for asyncio: waits without blocking the event loop; cancellable."""
        loop = asyncio.get_running_loop()
        call = Call(item, loop, loop.create_future())
        deadline = self._deadline(timeout)
        await self._aadmit(call, deadline)
        assert call.future is not None
        try:
            remaining = _calls.remaining(deadline)
            if remaining is None:
                result: R = await call.future
                return result
            return await asyncio.wait_for(call.future, remaining)
        except TimeoutError:
            was = self._drop(call)
            if was is not None:
                raise _timeout_error(self.name, was, self.timeout if timeout is DEFAULT else timeout) from None
            done: R = self._outcome(call)  # finished just as the deadline passed
            return done
        except BaseException:  # CancelledError included: leave the queue, then propagate
            self._drop(call)
            raise

    # -- state ---------------------------------------------------------------------------------
    def stats(self) -> BatcherStats:
        """A snapshot of the counters (see :class:`BatcherStats`)."""
        with self._lock:
            return BatcherStats(**self._counts, queued=len(self._queue), blocked=self._blocked)

    @property
    def closed(self) -> bool:
        return self._closing

    def close(self, *, drain: bool = True, timeout: float | None = None) -> None:
        """Stop taking items, finish or fail what is queued, and stop the worker.

        Args:
            drain: run the queued items now (True) or fail them with ``reason="closed"``.
            timeout: the longest to wait for the worker to finish (None: as long as it takes).

        Raises:
            BackendError: the worker was still running ``fn`` after ``timeout`` seconds.
        """
        with self._lock:
            if not self._closing:
                self._closing = True
                if not drain:
                    while self._queue:
                        call = self._queue.popleft()
                        call.state = State.DONE
                        call.error = batcher_error(self.name, "closed", "the batcher is closed")
                        deliver(call)
                self._not_empty.notify_all()
                self._wake_blocked()
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
            if worker.is_alive():
                raise batcher_error(self.name, "timeout", f"did not stop within {timeout}s: fn is still running")

    def __enter__(self) -> DynamicBatcher[T, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _overloaded(self) -> BackendError:
        """Count a caller turned away by the full queue, and the error it gets (lock held)."""
        self._counts["rejected"] += 1
        detail = f"{self.max_queue} items are already waiting; retry later, or raise max_queue"
        return batcher_error(self.name, "overloaded", detail)

    # -- admission -----------------------------------------------------------------------------
    def _deadline(self, timeout: float | Default | None) -> float | None:
        value = self.timeout if timeout is DEFAULT else timeout
        if value is not None and value < 0:
            raise ConfigError(f"timeout must not be negative, got {value}")
        return None if value is None else time.monotonic() + value

    def _room_deadline(self, deadline: float | None) -> float | None:
        """When a caller blocked on a full queue gives up: its queue_timeout or its deadline."""
        if self.queue_timeout is None:
            return deadline
        mine = time.monotonic() + self.queue_timeout
        return mine if deadline is None else min(mine, deadline)

    def _enqueue_locked(self, call: Call) -> bool:
        """Put ``call`` in the queue if there is room (the lock is held)."""
        if self._closing:
            raise batcher_error(self.name, "closed", "the batcher is closed")
        if len(self._queue) >= self.max_queue:
            return False
        if self._worker is None:  # started on first use: an idle batcher costs no thread
            self._worker = threading.Thread(target=self._loop, name=f"batcher:{self.name}", daemon=True)
            self._worker.start()
        call.enqueued = time.monotonic()
        self._queue.append(call)
        self._not_empty.notify()
        return True

    def _admit(self, call: Call, deadline: float | None) -> None:
        room_deadline: float | Default | None = DEFAULT
        with self._lock:
            while not self._enqueue_locked(call):
                if room_deadline is DEFAULT:
                    room_deadline = self._room_deadline(deadline)
                remaining = _calls.remaining(room_deadline)
                if remaining is not None and remaining <= 0:
                    raise self._overloaded()
                self._blocked += 1
                try:
                    self._not_full.wait(remaining)
                finally:
                    self._blocked -= 1

    async def _aadmit(self, call: Call, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        room_deadline = self._room_deadline(deadline)
        while True:
            with self._lock:
                if self._enqueue_locked(call):
                    return
                remaining = _calls.remaining(room_deadline)
                if remaining is not None and remaining <= 0:
                    raise self._overloaded()
                room: asyncio.Future[None] = loop.create_future()
                entry = (loop, room)
                self._room_waiters.append(entry)
                self._blocked += 1
            try:
                await asyncio.wait_for(room, remaining)
            except TimeoutError:
                with self._lock:
                    raise self._overloaded() from None
            finally:
                with self._lock:
                    self._blocked -= 1
                    if entry in self._room_waiters:
                        self._room_waiters.remove(entry)

    def _wake_blocked(self) -> None:
        """Room was freed (or the batcher closed): wake callers waiting to enqueue (lock held)."""
        self._not_full.notify_all()
        for loop, fut in self._room_waiters:
            wake(loop, set_none, fut)
        self._room_waiters.clear()

    # -- waiting -------------------------------------------------------------------------------
    def _wait(self, call: Call, deadline: float | None, seconds: float | None) -> Any:
        assert call.event is not None
        if not call.event.wait(_calls.remaining(deadline)):
            was = self._drop(call)
            if was is not None:
                raise _timeout_error(self.name, was, seconds)
        return self._outcome(call)

    def _drop(self, call: Call) -> State | None:
        """The caller left: unqueue the item, or mark its running result for discarding.

        Returns the state the item was in (QUEUED: removed, fn never sees it; RUNNING: its result
        will be discarded), or None when its result had already been delivered."""
        with self._lock:
            was = call.state
            if was is State.QUEUED:
                try:
                    self._queue.remove(call)
                except ValueError:  # never enqueued (admission failed)
                    pass
                else:
                    self._counts["cancelled"] += 1
                    self._wake_blocked()
            elif was is State.RUNNING:
                self._counts["discarded"] += 1
            elif was is State.DONE:
                return None
            call.state = State.DROPPED
            return was

    @staticmethod
    def _outcome(call: Call) -> Any:
        if call.error is not None:
            raise copy_error(call.error)
        return call.result

    # -- the worker ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _next_batch(self) -> list[Call] | None:
        """Wait until a batch is due (full, or its oldest item waited max_wait); None: closed."""
        with self._lock:
            while True:
                while not self._queue and not self._closing:
                    self._not_empty.wait()
                if not self._queue:
                    return None  # closing and nothing left
                while not self._closing and len(self._queue) < self.max_batch_size:
                    left = self._queue[0].enqueued + self.max_wait - time.monotonic()
                    if left <= 0:
                        break
                    self._not_empty.wait(left)
                    if not self._queue:
                        break  # every waiting caller left
                if not self._queue:
                    continue
                batch = [self._queue.popleft() for _ in range(min(self.max_batch_size, len(self._queue)))]
                for call in batch:
                    call.state = State.RUNNING
                self._counts["running"] = len(batch)
                self._wake_blocked()
                return batch

    def _run(self, batch: list[Call]) -> None:
        try:
            results = self._apply([c.item for c in batch])
        except BaseException as exc:  # noqa: BLE001 - delivered to the callers; the worker lives on
            if self.isolate_errors and len(batch) > 1:
                self._finish(batch, None, exc, counted=False)
                for call in batch:
                    self._run_alone(call)
                return
            self._finish(batch, None, exc)
        else:
            self._finish(batch, results, None)

    def _run_alone(self, call: Call) -> None:
        with self._lock:
            if call.state is not State.RUNNING:
                return  # its caller left while the batch failed: do not run it again
        try:
            self._finish([call], self._apply([call.item]), None)
        except BaseException as exc:  # noqa: BLE001 - delivered to its caller
            self._finish([call], None, exc)

    def _apply(self, items: list[Any]) -> list[Any]:
        results = list(self.fn(items))
        if len(results) != len(items):
            raise BackendError(
                f"batcher {self.name!r}: fn returned {len(results)} results for {len(items)} items",
                backend=f"batcher:{self.name}",
            )
        return results

    def _finish(
        self, batch: list[Call], results: list[Any] | None, error: BaseException | None, *, counted: bool = True
    ) -> None:
        """Record the run and hand each result (or the error) to its caller, unless it left.

        With ``counted=False`` (a failed batch about to be retried item by item) only the
        counters change: the callers wait for their own runs."""
        with self._lock:
            c = self._counts
            c["calls"] += 1
            c["items"] += len(batch)
            c["largest_batch"] = max(c["largest_batch"], len(batch))
            c["failed_calls"] += error is not None
            if not counted:
                return
            c["running"] = 0
            for i, call in enumerate(batch):
                if call.state is State.DROPPED:
                    continue
                call.state = State.DONE
                if error is not None:
                    call.error = error
                else:
                    assert results is not None
                    call.result = results[i]
                deliver(call)


def _timeout_error(name: str, was: State, seconds: float | None) -> BackendError:
    if was is State.RUNNING:
        return batcher_error(name, "timeout", f"no result within {seconds}s (it had started; its result is discarded)")
    return batcher_error(name, "timeout", f"no result within {seconds}s (it had not started: removed from the queue)")
