"""DynamicBatcher and BatchingEmbedder: results reach the right callers, batches are shared,
and timeouts, cancellation, backpressure, errors and shutdown behave as documented."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import numpy as np
import pytest
from pipeline_support import SAFETY, FakeEmbedder, Gate, vector, wait_until

from polymodal.embed.base import Embedder
from polymodal.errors import BackendError, ConfigError
from polymodal.pipeline import BatchingEmbedder, DynamicBatcher


class Recorder:
    """fn for the batcher: squares numbers, records each batch, can be gated or made to fail."""

    def __init__(self, gate: Gate | None = None, fail_on: object = None) -> None:
        self.gate = gate
        self.fail_on = fail_on
        self.batches: list[list] = []
        self.lock = threading.Lock()

    def __call__(self, items: list) -> list:
        with self.lock:
            self.batches.append(list(items))
        if self.gate is not None:
            self.gate.hold(items)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"bad item in batch of {len(items)}")
        return [f"r:{x}" for x in items]

    @property
    def seen(self) -> list:
        return [x for b in self.batches for x in b]


def start(target: Callable[[], object]) -> tuple[threading.Thread, dict]:
    """Run ``target`` in a thread; its result or exception lands in the returned dict."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def hold_worker(batcher: DynamicBatcher, gate: Gate) -> tuple[threading.Thread, dict]:
    """Occupy the worker with a full batch of gate items and wait until it is inside fn (a full
    batch runs at once, whatever max_wait is)."""
    holder = start(lambda: batcher.submit_many([gate.key] * batcher.max_batch_size))
    assert gate.entered.wait(SAFETY)
    return holder


def queue_in_order(batcher: DynamicBatcher, items: list, **kw) -> list[tuple[threading.Thread, dict]]:
    """Submit each item from its own thread, in this order (each is queued before the next starts)."""
    out = []
    for item in items:
        before = batcher.stats().queued
        out.append(start(lambda item=item: batcher.submit(item, **kw)))
        wait_until(lambda before=before: batcher.stats().queued == before + 1, f"{item!r} queued")
    return out


def join(*threads: tuple[threading.Thread, dict]) -> None:
    for thread, _ in threads:
        thread.join(SAFETY)
        assert not thread.is_alive()


# -- correctness under concurrency -----------------------------------------------------------
def test_64_threads_get_their_own_results_in_batches_of_at_most_max():
    fn = Recorder()
    barrier = threading.Barrier(64)
    results: dict[int, str] = {}
    with DynamicBatcher(fn, max_batch_size=8, max_wait_ms=20) as batcher:

        def call(i: int) -> None:
            barrier.wait()
            results[i] = batcher.submit(i)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SAFETY)
    assert results == {i: f"r:{i}" for i in range(64)}
    assert all(1 <= len(b) <= 8 for b in fn.batches)
    assert sorted(fn.seen) == list(range(64))
    stats = batcher.stats()
    assert stats.items == 64 and stats.largest_batch <= 8 and stats.calls == len(fn.batches)


def test_concurrent_callers_share_forward_passes():
    """80 callers, batch 16: 5 calls of fn (the gated batch, then four full ones), not 80."""
    gate = Gate()
    fn = Recorder(gate)
    with DynamicBatcher(fn, max_batch_size=16, max_wait_ms=60_000) as batcher:
        holder = hold_worker(batcher, gate)
        callers = [start(lambda i=i: batcher.submit(i)) for i in range(64)]
        wait_until(lambda: batcher.stats().queued == 64, "64 queued")
        gate.open()
        join(holder, *callers)
    assert [len(b) for b in fn.batches] == [16, 16, 16, 16, 16]
    assert sorted(box["result"] for _, box in callers) == sorted(f"r:{i}" for i in range(64))


def test_full_batch_runs_without_waiting_for_max_wait():
    """max_wait is an upper bound: a full batch goes at once (here it would otherwise wait a minute)."""
    fn = Recorder()
    barrier = threading.Barrier(8)
    with DynamicBatcher(fn, max_batch_size=8, max_wait_ms=60_000) as batcher:
        callers = [start(lambda i=i: (barrier.wait(), batcher.submit(i))[1]) for i in range(8)]
        join(*callers)
    assert [len(b) for b in fn.batches] == [8]


def test_asyncio_tasks_get_their_own_results():
    fn = Recorder()

    async def main(batcher: DynamicBatcher) -> list:
        return await asyncio.gather(*(batcher.asubmit(i) for i in range(64)))

    with DynamicBatcher(fn, max_batch_size=16, max_wait_ms=10) as batcher:
        results = asyncio.run(main(batcher))
    assert results == [f"r:{i}" for i in range(64)]
    assert all(len(b) <= 16 for b in fn.batches) and sorted(fn.seen) == list(range(64))


def test_order_within_a_batch_is_submission_order():
    gate = Gate()
    fn = Recorder(gate)
    with DynamicBatcher(fn, max_batch_size=4, max_wait_ms=60_000) as batcher:
        holder = hold_worker(batcher, gate)
        callers = queue_in_order(batcher, ["a", "b", "c", "d"])
        gate.open()
        join(holder, *callers)
    assert fn.batches[1] == ["a", "b", "c", "d"]
    assert [box["result"] for _, box in callers] == ["r:a", "r:b", "r:c", "r:d"]


# -- timeouts and cancellation ---------------------------------------------------------------
def test_timed_out_caller_is_removed_from_the_queue():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0)
    holder = hold_worker(batcher, gate)
    with pytest.raises(BackendError, match="had not started") as info:
        batcher.submit("late", timeout=0.05)
    assert info.value.reason == "timeout"
    assert batcher.stats().cancelled == 1 and batcher.stats().queued == 0
    gate.open()
    batcher.close()
    join(holder)
    assert "late" not in fn.seen


def test_timed_out_caller_of_a_running_batch_gets_an_error_and_the_result_is_discarded():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0)
    with pytest.raises(BackendError, match="had started") as info:
        batcher.submit("gate", timeout=0.05)
    assert info.value.reason == "timeout"
    gate.open()
    batcher.close()
    assert fn.seen == ["gate"] and batcher.stats().discarded == 1


def test_default_timeout_applies_and_none_overrides_it():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, timeout=0.05)
    holder = start(lambda: batcher.submit("gate", timeout=None))  # waits as long as it takes
    assert gate.entered.wait(SAFETY)
    with pytest.raises(BackendError, match=r"no result within 0\.05s"):
        batcher.submit("x")
    gate.open()
    join(holder)
    batcher.close()
    assert holder[1]["result"] == "r:gate"


def test_cancelled_task_is_dropped_before_its_batch_runs():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0)

    async def main() -> list:
        first = asyncio.create_task(batcher.asubmit("gate"))
        await asyncio.to_thread(gate.entered.wait, SAFETY)
        doomed = asyncio.create_task(batcher.asubmit("doomed"))
        kept = asyncio.create_task(batcher.asubmit("kept"))
        while batcher.stats().queued < 2:
            await asyncio.sleep(0.001)
        doomed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await doomed
        assert batcher.stats().queued == 1
        gate.open()
        return [await first, await kept]

    assert asyncio.run(main()) == ["r:gate", "r:kept"]
    batcher.close()
    assert "doomed" not in fn.seen and batcher.stats().cancelled == 1


def test_cancelled_task_of_a_running_batch_has_its_result_discarded():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=4, max_wait_ms=0)

    async def main() -> None:
        task = asyncio.create_task(batcher.asubmit("gate"))
        await asyncio.to_thread(gate.entered.wait, SAFETY)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.open()

    asyncio.run(main())
    batcher.close()
    assert batcher.stats().discarded == 1


def test_async_timeout_drops_the_item():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0)
    holder = hold_worker(batcher, gate)

    async def main() -> None:
        with pytest.raises(BackendError, match="had not started"):
            await batcher.asubmit("late", timeout=0.05)

    asyncio.run(main())
    gate.open()
    batcher.close()
    join(holder)
    assert "late" not in fn.seen


# -- backpressure ----------------------------------------------------------------------------
def test_full_queue_blocks_then_raises_overloaded():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=2)
    holder = hold_worker(batcher, gate)
    queued = queue_in_order(batcher, ["a", "b"])
    with pytest.raises(BackendError, match="2 items are already waiting") as info:
        batcher.submit("c", timeout=0.05)
    assert info.value.reason == "overloaded"
    assert batcher.stats().rejected == 1
    gate.open()
    join(holder, *queued)
    batcher.close()
    assert "c" not in fn.seen


def test_queue_timeout_zero_sheds_load_at_once():
    gate = Gate()
    batcher = DynamicBatcher(Recorder(gate), max_batch_size=1, max_wait_ms=0, max_queue=1, queue_timeout=0)
    holder = hold_worker(batcher, gate)
    queued = queue_in_order(batcher, ["a"])
    with pytest.raises(BackendError) as info:
        batcher.submit("b")  # no timeout of its own: queue_timeout=0 still refuses at once
    assert info.value.reason == "overloaded"
    gate.open()
    join(holder, *queued)
    batcher.close()


def test_blocked_caller_proceeds_when_room_frees():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=1)
    holder = hold_worker(batcher, gate)
    queued = queue_in_order(batcher, ["a"])
    blocked = start(lambda: batcher.submit("b"))
    wait_until(lambda: batcher.stats().blocked == 1, "a caller blocked on the full queue")
    assert "result" not in blocked[1]
    gate.open()
    join(holder, *queued, blocked)
    batcher.close()
    assert blocked[1]["result"] == "r:b"


def test_async_caller_waits_for_room_without_blocking_the_loop():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=1)
    holder = hold_worker(batcher, gate)
    queued = queue_in_order(batcher, ["a"])

    async def main() -> list:
        waiting = [asyncio.create_task(batcher.asubmit(x)) for x in ("b", "c")]
        while batcher.stats().blocked < 2:
            await asyncio.sleep(0.001)  # the loop still runs: the waiters do not block it
        with pytest.raises(BackendError) as info:
            await batcher.asubmit("d", timeout=0.02)
        assert info.value.reason == "overloaded"
        gate.open()
        return await asyncio.gather(*waiting)

    assert asyncio.run(main()) == ["r:b", "r:c"]
    join(holder, *queued)
    batcher.close()
    assert "d" not in fn.seen


# -- errors ----------------------------------------------------------------------------------
def test_error_reaches_exactly_the_callers_of_the_failing_batch():
    gate = Gate()
    fn = Recorder(gate, fail_on="bad")
    with DynamicBatcher(fn, max_batch_size=4, max_wait_ms=60_000) as batcher:
        holder = hold_worker(batcher, gate)
        callers = queue_in_order(batcher, ["a", "bad", "c", "d", "e", "f", "g", "h"])
        gate.open()
        join(holder, *callers)
    outcomes = [type(box.get("error")).__name__ if "error" in box else box["result"] for _, box in callers]
    assert outcomes == ["ValueError"] * 4 + ["r:e", "r:f", "r:g", "r:h"]
    errors = [box["error"] for _, box in callers[:4]]
    assert all("bad item in batch of 4" in str(e) for e in errors)
    assert len({id(e) for e in errors}) == 4  # a copy each: tracebacks do not tangle
    assert batcher.stats().failed_calls == 1


def test_isolate_errors_fails_only_the_bad_item():
    gate = Gate()
    fn = Recorder(gate, fail_on="bad")
    with DynamicBatcher(fn, max_batch_size=4, max_wait_ms=60_000, isolate_errors=True) as batcher:
        holder = hold_worker(batcher, gate)
        callers = queue_in_order(batcher, ["a", "bad", "c", "d"])
        gate.open()
        join(holder, *callers)
    outcomes = [type(box["error"]).__name__ if "error" in box else box["result"] for _, box in callers]
    assert outcomes == ["r:a", "ValueError", "r:c", "r:d"]
    assert fn.batches[1:] == [["a", "bad", "c", "d"], ["a"], ["bad"], ["c"], ["d"]]


def test_wrong_number_of_results_fails_the_batch():
    with (
        DynamicBatcher(lambda xs: xs[:-1], max_wait_ms=0) as batcher,
        pytest.raises(BackendError, match="returned 0 results for 1 items"),
    ):
        batcher.submit("x")


def test_worker_survives_a_failing_batch():
    fn = Recorder(fail_on="bad")
    with DynamicBatcher(fn, max_wait_ms=0) as batcher:
        with pytest.raises(ValueError, match="bad item"):
            batcher.submit("bad")
        assert batcher.submit("ok") == "r:ok"


def test_submit_many_returns_results_in_order():
    with DynamicBatcher(Recorder(), max_batch_size=3, max_wait_ms=0) as batcher:
        assert batcher.submit_many(list(range(10))) == [f"r:{i}" for i in range(10)]


# -- shutdown --------------------------------------------------------------------------------
def test_close_drains_queued_items_without_waiting_for_max_wait():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=10, max_wait_ms=3_600_000)
    holder = hold_worker(batcher, gate)
    callers = queue_in_order(batcher, ["a", "b", "c"])
    closer = start(lambda: batcher.close(drain=True))
    wait_until(lambda: batcher.closed, "closing")
    with pytest.raises(BackendError, match="closed") as info:
        batcher.submit("late")
    assert info.value.reason == "closed"
    gate.open()
    join(holder, *callers, closer)
    assert [box["result"] for _, box in callers] == ["r:a", "r:b", "r:c"]


def test_close_without_drain_fails_queued_items_and_finishes_the_running_batch():
    gate = Gate()
    fn = Recorder(gate)
    batcher = DynamicBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=2)
    holder = hold_worker(batcher, gate)
    callers = queue_in_order(batcher, ["a", "b"])
    blocked = start(lambda: batcher.submit("c"))
    wait_until(lambda: batcher.stats().blocked == 1, "a blocked caller")
    closer = start(lambda: batcher.close(drain=False))
    join(*callers, blocked)  # answered before the running batch ends
    for _, box in [*callers, blocked]:
        assert isinstance(box["error"], BackendError) and box["error"].reason == "closed"
    gate.open()
    join(holder, closer)
    assert holder[1]["result"] == ["r:gate"]
    assert fn.seen == ["gate"]


def test_close_is_idempotent_and_reports_a_hung_worker():
    gate = Gate()
    batcher = DynamicBatcher(Recorder(gate), max_wait_ms=0)
    holder = hold_worker(batcher, gate)
    with pytest.raises(BackendError, match="did not stop"):
        batcher.close(timeout=0.01)
    gate.open()
    batcher.close()
    batcher.close()
    join(holder)


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_size": 0}, {"max_wait_ms": -1}, {"max_queue": 0}, {"timeout": -1}, {"queue_timeout": -2}]
)
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        DynamicBatcher(lambda xs: xs, **kwargs)


# -- BatchingEmbedder ------------------------------------------------------------------------
def test_batching_embedder_shares_forward_passes_and_matches_the_plain_embedder():
    gate = Gate()
    inner = FakeEmbedder(gate)
    emb = BatchingEmbedder(inner, max_batch_size=32, max_wait_ms=60_000)
    assert isinstance(emb, Embedder) and emb.dim == inner.dim and emb.space == inner.space
    holder = start(lambda: emb.embed(["gate"] * 32))  # a full batch: runs at once
    assert gate.entered.wait(SAFETY)
    words = [f"query {i}" for i in range(32)]
    callers = [start(lambda w=w: emb.embed_one(w)) for w in words]
    wait_until(lambda: emb.stats().queued == 32, "32 queued")
    gate.open()
    join(holder, *callers)
    emb.close()
    assert inner.calls == [32, 32]
    for word, (_, box) in zip(words, callers, strict=True):
        np.testing.assert_array_equal(box["result"], vector(word))


def test_batching_embedder_embed_and_async():
    emb = BatchingEmbedder(FakeEmbedder(), max_batch_size=4, max_wait_ms=0)
    out = emb.embed(["a", "b", "c", "d", "e"])
    assert out.shape == (5, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out[4], vector("e"))
    assert emb.embed([]).shape == (0, 8)

    async def main() -> list:
        return await asyncio.gather(*(emb.aembed_one(w) for w in ["x", "y"]))

    x, _ = asyncio.run(main())
    np.testing.assert_array_equal(x, vector("x"))
    emb.close()
