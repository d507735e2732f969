"""Child processes for the embedded store's reliability tests, and the plans they share.

Run as a script (``python reliability_worker.py MODE ARGS``) by
``test_embedded_reliability.py``; the parent loads this module by path for the schemas and for
:func:`make_ops`, so both sides agree on exactly what each numbered operation wrote.

Every line a child prints is flushed at once; ``ack N`` is printed only after operation ``N``
has returned, so an acknowledged operation is one the store promised to keep.
"""

from __future__ import annotations

import json
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import polymodal as pm


class Seg(pm.Doc):
    start: float
    end: float
    text: str = ""
    embedding: pm.Vector[8] | None = None


class Item(pm.Doc):
    title: str
    batch: int
    tag: str
    embedding: pm.Vector[8] | None = None
    segments: pm.DocList[Seg] | None = None


TAGS = ("red", "green", "blue")
# A large ef makes HNSW search on these small stores find every stored vector, so tests can ask
# each document's own vector through the ANN path and expect it first.
OPTIONS = {"ef_search": 400}


@dataclass(frozen=True)
class Op:
    """One store call of a plan: add | delete | setting | checkpoint | reopen | search."""

    kind: str
    docs: tuple[Item, ...] = ()
    ids: tuple[str, ...] = ()
    value: int = 0


def make_item(rng: np.random.Generator, doc_id: str, batch: int, j: int) -> Item:
    """A document whose title and segment texts carry words unique to this version of it."""
    segs = None
    if rng.random() < 0.7:
        segs = [
            Seg(
                id=f"{doc_id}-s{s}",
                start=float(s),
                end=float(s) + 1.0,
                text=f"seg{batch}x{j}y{s} spoken",
                embedding=None if rng.random() < 0.1 else rng.normal(size=8),
            )
            for s in range(int(rng.integers(0, 4)))
        ]
    return Item(
        id=doc_id,
        title=f"tok{batch}x{j} {TAGS[(batch + j) % 3]} common",
        batch=batch,
        tag=TAGS[(batch + j) % 3],
        embedding=None if rng.random() < 0.15 else rng.normal(size=8),
        segments=segs,
    )


def make_ops(seed: int, n: int) -> list[Op]:
    """A deterministic mix of inserts, upserts (mixed with inserts), deletes, settings,
    checkpoints, close-and-reopen and searches."""
    rng = np.random.default_rng(seed)
    live: list[str] = []
    ops: list[Op] = []
    counter = 0
    for i in range(n):
        if i % 9 == 8:
            ops.append(Op("checkpoint"))
            continue
        if i % 13 == 12:
            ops.append(Op("reopen"))
            continue
        if i % 5 == 4:
            ops.append(Op("search", value=i))
            continue
        r = rng.random()
        if r < 0.5 or len(live) < 4:
            k = int(rng.integers(1, 5))
            new = [f"d{counter + j}" for j in range(k)]
            counter += k
            old = [live[int(rng.integers(len(live)))]] if live and rng.random() < 0.5 else []
            ids = new + old
            ops.append(Op("add", docs=tuple(make_item(rng, d, i, j) for j, d in enumerate(ids))))
            live.extend(new)
        elif r < 0.75:
            picks = rng.choice(len(live), size=min(len(live), int(rng.integers(1, 4))), replace=False)
            ids = [live[int(p)] for p in picks]
            ops.append(Op("add", docs=tuple(make_item(rng, d, i, j) for j, d in enumerate(ids))))
        elif r < 0.9:
            picks = rng.choice(len(live), size=int(rng.integers(1, 3)), replace=False)
            ids = [live[int(p)] for p in picks]
            live = [d for d in live if d not in ids]
            ops.append(Op("delete", ids=(*ids, f"missing{i}")))
        else:
            ops.append(Op("setting", value=i))
    return ops


def state_after(ops: list[Op], upto: int) -> tuple[dict[str, Item], int | None]:
    """The documents and the ``last`` setting after operations ``0 .. upto - 1``."""
    docs: dict[str, Item] = {}
    setting = None
    for op in ops[:upto]:
        if op.kind == "add":
            docs.update({d.id: d for d in op.docs})
        elif op.kind == "delete":
            for i in op.ids:
                docs.pop(i, None)
        elif op.kind == "setting":
            setting = op.value
    return docs, setting


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# -- modes -----------------------------------------------------------------------------------
def writer(path: str, seed: int, n: int) -> None:
    """Run plan ``seed`` against the store at ``path``, acknowledging each operation."""
    ops = make_ops(seed, n)
    rng = np.random.default_rng(seed + 10_000)
    store = pm.open(path, schema=Item, **OPTIONS)
    for i, op in enumerate(ops):
        if op.kind == "add":
            store.add(list(op.docs))
        elif op.kind == "delete":
            store.delete(list(op.ids))
        elif op.kind == "setting":
            store.set_setting("last", op.value)
        elif op.kind == "checkpoint":
            say(f"ckpt {i}")
            store.checkpoint()
        elif op.kind == "reopen":
            say(f"close {i}")
            store.close()
            store = pm.open(path, schema=Item, **OPTIONS)
        elif op.kind == "search":  # loads the indexes here, so later writes also update them in place
            store.search(rng.normal(size=8), field="embedding", exact=False)
            store.search(rng.normal(size=8), field="segments.embedding", exact=False)
        say(f"ack {i}")
    say("close end")
    store.close()
    say("done")


def version_vector(doc_id: str, version: int, sub: int = -1) -> np.ndarray:
    """A vector determined by (id, version, sub-document), so readers can check a document is
    whole: its body and every vector come from the same version."""
    key = [zlib.crc32(doc_id.encode()), version, sub + 1]
    return np.random.default_rng(key).normal(size=8)


def versioned(doc_id: str, version: int, tag: str) -> Item:
    n_segs = version % 4
    return Item(
        id=doc_id,
        title=f"v{version} {doc_id} common",
        batch=version,
        tag=tag,
        embedding=version_vector(doc_id, version),
        segments=[
            Seg(
                id=f"{doc_id}-{s}",
                start=s,
                end=s + 1,
                text=f"v{version} part",
                embedding=version_vector(doc_id, version, s),
            )
            for s in range(n_segs)
        ],
    )


def check_whole(doc: Item) -> None:
    """Raise unless ``doc`` is exactly one version of a :func:`versioned` document."""
    version = doc.batch
    expected = versioned(doc.id, version, doc.tag)
    if doc != expected:
        raise AssertionError(f"{doc.id} mixes versions: got {doc!r}, expected version {version}")


def churn_writer(path: str, batches: int) -> None:
    """Add ``keep`` documents, upsert the ``init`` ones with new versions (their number of
    segments changes), and add then delete a ``tmp`` document holding the highest row id."""
    store = pm.open(path, schema=Item, **OPTIONS)
    for b in range(batches):
        version = 100 + b
        store.add([versioned(f"k{b}-{j}", version, "keep") for j in range(3)] + [versioned(f"tmp{b}", version, "tmp")])
        store.search(version_vector("x", version), field="embedding", exact=False)
        store.delete(f"tmp{b}")
        store.add([versioned(f"init{(b + j) % 10}", version, "init") for j in range(2)])
        if b % 10 == 9:
            store.checkpoint()
        say(f"ack {b}")
    store.close()
    say("done")


def reader(path: str, stop_file: str) -> None:
    """Read in a loop until ``stop_file`` exists, then check the final state it describes.

    Raises (exit status 1, the traceback on stderr) on any error, on a ``keep`` count that goes
    down, or on a document that is not whole.
    """
    store = pm.open(path, **OPTIONS)  # the stored schema, as a reader that has no class would
    rng = np.random.default_rng(os.getpid())
    say("ready")
    last_keep = 0
    loops = 0
    while not os.path.exists(stop_file):
        loops += 1
        keep = store.count(where={"tag": "keep"})
        if keep < last_keep:
            raise AssertionError(f"count went down: {last_keep} -> {keep}")
        last_keep = keep
        if store.count() < keep:
            raise AssertionError("total count below the keep count")
        ids = [f"init{int(i)}" for i in rng.integers(0, 10, size=3)]
        for doc in store.get(ids):
            check_whole(Item.model_validate(doc.model_dump()))
        q = rng.normal(size=8)
        for exact in (True, False):
            for hit in store.search(q, field="embedding", limit=5, exact=exact):
                doc = Item.model_validate(hit.doc.model_dump())
                check_whole(doc)
                cos = float(doc.embedding @ q / (np.linalg.norm(doc.embedding) * np.linalg.norm(q)))
                if abs(cos - hit.score) > 1e-4:  # the index and the loaded document disagree
                    raise AssertionError(f"hit {hit.id} score {hit.score} but its vector gives {cos}")
            for hit in store.search(q, field="segments.embedding", limit=5, exact=exact):
                check_whole(Item.model_validate(hit.doc.model_dump()))
        for hit in store.text_search("common part", limit=5, where={"tag": {"$in": ["keep", "init"]}}):
            check_whole(Item.model_validate(hit.doc.model_dump()))
        for batch in store.iter_batches(16):
            for doc in batch:
                check_whole(Item.model_validate(doc.model_dump()))
    final = json.loads(Path(stop_file).read_text())
    if store.count() != final["count"]:
        raise AssertionError(f"final count {store.count()} != {final['count']}")
    for doc_id in final["newest"]:
        vec = store.get(doc_id).embedding
        top = store.search(vec, field="embedding", limit=1, exact=False)
        if not top or top[0].id != doc_id:
            raise AssertionError(f"ANN search does not find the newest document {doc_id}: {top}")
    store.close()
    say(f"ok loops={loops} keep={last_keep}")


def interleaved_writer(path: str, prefix: str, batches: int) -> None:
    """Add ``batches`` batches of three documents named after ``prefix``, and upsert one shared
    document each time; search now and then so this process's indexes are loaded and must
    catch up with the other writer's changes."""
    store = pm.open(path, schema=Item, **OPTIONS)
    for b in range(batches):
        store.add([versioned(f"{prefix}{b}-{j}", b, prefix) for j in range(3)])
        store.add(versioned("shared", b, prefix))
        if b % 4 == 0:
            store.search(version_vector(prefix, b), field="segments.embedding", exact=False)
        if b % 10 == 9:
            store.checkpoint()
    store.close()
    say("done")


def hold_lock(path: str) -> None:
    """Hold the store's write lock until stdin closes."""
    from polymodal.store.embedded import db

    with db.WriteLock(Path(path), timeout=30):
        say("locked")
        sys.stdin.read()


def checkpoint_then_more(path: str) -> None:
    """Add, checkpoint, add more without a checkpoint, then wait to be killed."""
    store = pm.open(path, schema=Item, **OPTIONS)
    ops = make_ops(7, 40)
    docs, _ = state_after(ops, 40)
    items = sorted(docs.values(), key=lambda d: d.id)
    half = len(items) // 2
    store.add(items[:half])
    store.search(np.ones(8), field="embedding", exact=False)
    store.checkpoint()
    store.add(items[half:])
    store.delete(items[0].id)
    say("ready")
    sys.stdin.read()


def die_in_checkpoint(path: str, nth: int) -> None:
    """Write past a checkpoint, then checkpoint again and die (``os._exit``, like kill -9)
    just before the ``nth`` file-system step of it: an fsync, the manifest's rename, or the
    removal of a stale file. Prints ``survived`` when the checkpoint has fewer steps."""
    store = pm.open(path, schema=Item, **OPTIONS)
    docs, _ = state_after(make_ops(11, 40), 40)
    items = sorted(docs.values(), key=lambda d: d.id)
    store.add(items[: len(items) // 2])
    store.search(np.ones(8), field="embedding", exact=False)
    store.checkpoint()
    store.add(items[len(items) // 2 :])
    store.delete(items[0].id)
    calls = 0

    def hook(real):
        def step(*args, **kwargs):
            nonlocal calls
            calls += 1
            if calls == nth:
                os._exit(137)
            return real(*args, **kwargs)

        return step

    os.fsync = hook(os.fsync)
    os.replace = hook(os.replace)
    Path.unlink = hook(Path.unlink)  # type: ignore[method-assign]
    store.checkpoint()
    say(f"survived {calls}")
    os._exit(0)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "writer":
        writer(args[0], int(args[1]), int(args[2]))
    elif mode == "churn":
        churn_writer(args[0], int(args[1]))
    elif mode == "reader":
        reader(args[0], args[1])
    elif mode == "interleaved":
        interleaved_writer(args[0], args[1], int(args[2]))
    elif mode == "holdlock":
        hold_lock(args[0])
    elif mode == "die-in-checkpoint":
        die_in_checkpoint(args[0], int(args[1]))
    elif mode == "ckpt-then-more":
        checkpoint_then_more(args[0])
    else:
        raise SystemExit(f"unknown mode {mode}")
