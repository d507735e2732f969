"""Pipelines in-process: YAML and Python declarations, the built-in steps, errors that name the
step and the item, timeouts, cancellation, and YAML mistakes reported clearly."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from pipeline_support import SAFETY, FakeEmbedder, Gate, vector, wait_until

import polymodal as pm
from polymodal.errors import BackendError, ConfigError, MediaError, SchemaError
from polymodal.pipeline import Decode, Embed, Function, Index, Pipeline, RemoteStep, Translate, step_from_spec
from polymodal.translate.base import Translation, Translator, TranslatorConfig


class Note(pm.Doc):
    text: str = ""
    embedding: pm.Vector[8] | None = None


# -- the YAML pipeline with a real model -----------------------------------------------------
def test_yaml_decode_embed_index_then_search_finds_the_right_document(tmp_path, texts):
    pytest.importorskip("sentence_transformers")
    store_dir = tmp_path / "store"
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        f"""
steps:
  - type: decode
  - type: embed
    family: sentence-transformers
    model: all-MiniLM-L6-v2
    max_batch_size: 8
    max_wait_ms: 2
  - type: index
    store: {store_dir}
"""
    )
    with Pipeline.from_yaml(spec) as pipeline:
        assert [s.name for s in pipeline.steps] == ["decode", "embed:text", "index"]
        out = pipeline.run(sorted(texts.values()), batch_size=3)
    assert len(out) == 4 and all(r["text_vec"].shape == (384,) for r in out)

    from polymodal.embed import load

    with pm.open(store_dir) as store:
        assert store.count() == 4
        saved = store.get_setting("embedders")["text_vec"]
        embedder = load(saved)  # the saved config rebuilds the same model for queries
        for query, expected in [("lava erupting from a mountain", "volcano"), ("interest rates", "finance")]:
            hits = store.search(embedder.embed_one(query), field="text_vec", limit=1)
            assert hits[0].doc.name == f"{expected}.txt"
            assert hits[0].doc.uri == str(texts[expected])


# -- built-in steps in Python ----------------------------------------------------------------
def test_python_pipeline_embeds_documents_into_a_store_with_a_custom_schema(tmp_path):
    notes = [Note(text=t) for t in ("alpha", "beta", "gamma")]
    store_dir = tmp_path / "notes"
    with Pipeline([Embed(FakeEmbedder(), into="embedding"), Index(store_dir, schema=Note)]) as pipeline:
        out = pipeline.run(notes, batch_size=2)
    assert [n.text for n in out] == ["alpha", "beta", "gamma"]
    np.testing.assert_array_equal(out[1].embedding, vector("beta"))
    assert all(n.embedding is None for n in notes)  # inputs are not modified
    with pm.open(store_dir) as store:
        hit = store.search(vector("gamma"), field="embedding", limit=1)[0]
        assert hit.doc.text == "gamma"
        assert store.get_setting("embedders")["embedding"]["family"] == "fake"


def test_embed_passes_items_without_the_field_through():
    records = [{"id": "a", "text": "hello"}, {"id": "b", "image": "pixels"}, {"id": "c", "text": "  "}]
    out = Pipeline([Embed(FakeEmbedder(), batching=False)]).run(records)
    assert "text_vec" in out[0] and "text_vec" not in out[1] and "text_vec" not in out[2]
    assert records[0] == {"id": "a", "text": "hello"}  # the input record is unchanged


def test_decode_gives_stable_ids_and_decodes_bytes(texts):
    decode = Decode()
    first = decode.run([texts["cats"]])[0]
    again = decode.run([str(texts["cats"])])[0]
    assert first["id"] == again["id"] and first["modality"] == "text" and first["name"] == "cats.txt"
    assert first["text"].startswith("Cats purr")
    from_bytes = Decode(modality="text").run([b"plain words"])[0]
    assert from_bytes["text"] == "plain words" and from_bytes["uri"] == ""
    typed = Decode().run([pm.TextBytes(b"typed bytes")])[0]  # the class carries the modality
    assert typed["text"] == "typed bytes"
    with pytest.raises(SchemaError, match="set modality"):
        Decode().run([b"what is this"])


def test_translate_step_writes_text(tmp_path):
    class Shouter(Translator):
        family = "shout"

        def _translate_batch(self, items: list) -> list[Translation]:
            return [Translation(str(x).upper()) for x in items]

    step = Translate(Shouter(TranslatorConfig(family="shout")), field="text", into="loud", max_wait_ms=0)
    out = Pipeline([step]).run([{"text": "hi"}, {"other": 1}])
    step.close()
    assert out == [{"text": "hi", "loud": "HI"}, {"other": 1}]


def test_function_steps_per_item_and_per_batch():
    pipeline = Pipeline(
        [
            Function(lambda x, add: x + add, each=True, options={"add": 1}, name="inc"),
            Function(lambda xs: [x for x in xs if x % 2], name="odd"),
        ]
    )
    assert pipeline.run(range(10), batch_size=4) == [1, 3, 5, 7, 9]
    with pytest.raises(SchemaError, match="returned None"):
        Pipeline([Function(lambda x: None, each=True)]).run([1])


def test_function_by_reference():
    step = Function("polymodal.pipeline.records:describe", each=True)
    assert step.run([{"uri": "a.png"}]) == ["a.png"]


def test_concurrent_pipeline_runs_share_the_embed_steps_forward_passes():
    """Two threads running the same pipeline: their items meet in one batch of the embedder."""
    gate = Gate()
    embedder = FakeEmbedder(gate)
    step = Embed(embedder, max_batch_size=8, max_wait_ms=60_000)
    pipeline = Pipeline([step])
    holder = threading.Thread(target=pipeline.run, args=([{"text": "gate"}] * 8,))
    holder.start()
    assert gate.entered.wait(SAFETY)
    results: dict[int, list] = {}
    runs = [
        threading.Thread(
            target=lambda i=i: results.update({i: pipeline.run([{"text": f"t{i}.{j}"} for j in range(4)])})
        )
        for i in range(2)
    ]
    for t in runs:
        t.start()
    wait_until(lambda: step.stats().queued == 8, "both runs queued")
    gate.open()
    for t in [holder, *runs]:
        t.join(SAFETY)
    pipeline.close()
    assert embedder.calls == [8, 8]
    np.testing.assert_array_equal(results[1][2]["text_vec"], vector("t1.2"))


# -- errors ----------------------------------------------------------------------------------
def test_error_names_the_step_and_the_item_and_keeps_its_class(texts, tmp_path):
    missing = tmp_path / "gone.txt"
    items = [texts["cats"], missing, texts["finance"]]
    with pytest.raises(MediaError) as info:
        Pipeline([Decode(), Function(lambda xs: xs, name="noop")]).run(items)
    err = info.value
    assert "step 1 'decode' failed on item 1" in str(err) and "gone.txt" in str(err)
    assert (err.step, err.index) == ("decode", 1)
    assert err.uri == str(missing)  # the original context survives


def test_error_of_a_user_function_is_isolated_to_its_item():
    seen: list[list] = []

    def picky(batch: list) -> list:
        seen.append(list(batch))
        if "bad" in batch:
            raise ValueError("cannot take 'bad'")
        return batch

    with pytest.raises(BackendError) as info:
        Pipeline([Function(picky)]).run(["a", "b", "bad", "c"], batch_size=4)
    assert "step 1 'picky' failed on item 2 ('bad'): ValueError: cannot take 'bad'" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert seen == [["a", "b", "bad", "c"], ["a"], ["b"], ["bad"]]


def test_without_isolation_the_error_names_the_batch():
    def boom(batch: list) -> list:
        if "e" in batch:
            raise RuntimeError("broken")
        return batch

    with pytest.raises(BackendError, match=r"failed on items 4\.\.7 \(first: 'e'\): RuntimeError: broken"):
        Pipeline([Function(lambda xs: xs, name="ok"), Function(boom)], isolate_errors=False).run(
            list("abcdefgh"), batch_size=4
        )


def test_a_step_returning_a_non_list_is_refused():
    class Bad:
        name = "bad"

        def run(self, batch: list) -> tuple:
            return tuple(batch)

    with pytest.raises(SchemaError, match="must return a list"):
        Pipeline([Bad()]).run([1])


def test_not_a_step():
    with pytest.raises(ConfigError, match="not a step"):
        Pipeline([object()])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="at least one step"):
        Pipeline([])


def test_embedding_into_a_missing_document_field_names_it():
    class Plain(pm.Doc):
        text: str

    with pytest.raises(SchemaError, match="Plain has no field 'text_vec'"):
        Pipeline([Embed(FakeEmbedder(), batching=False)]).run([Plain(text="x")])


# -- timeouts and cancellation ---------------------------------------------------------------
def test_step_timeout_raises_and_names_the_step():
    release = threading.Event()

    def stuck(batch: list) -> list:
        release.wait(SAFETY)
        return batch

    pipeline = Pipeline([Function(stuck, timeout=0.05)])
    with pytest.raises(BackendError, match="step 1 'stuck' failed on item 0") as info:
        pipeline.run(["x"])
    release.set()
    assert info.value.reason == "timeout"


def test_batched_step_timeout_drops_queued_items():
    gate = Gate()
    embedder = FakeEmbedder(gate)
    step = Embed(embedder, max_batch_size=1, max_wait_ms=0, timeout=0.05)
    with pytest.raises(BackendError, match="embed:text") as info:
        Pipeline([step]).run([{"text": "gate"}, {"text": "never"}])
    assert info.value.reason == "timeout"
    gate.open()
    step.close()
    assert embedder.calls == [1]  # 'never' left the queue with its caller


def test_cancelling_arun_stops_at_the_next_step_boundary():
    entered, release, left = threading.Event(), threading.Event(), threading.Event()
    later: list = []

    def slow(batch: list) -> list:
        entered.set()
        release.wait(SAFETY)
        left.set()
        return batch

    pipeline = Pipeline([Function(slow), Function(lambda xs: later.extend(xs) or xs, name="after")])

    async def main() -> None:
        task = asyncio.create_task(pipeline.arun(["x", "y"]))
        await asyncio.to_thread(entered.wait, SAFETY)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.to_thread(left.wait, SAFETY)
        for _ in range(10):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert later == []


def test_arun_returns_the_same_as_run():
    pipeline = Pipeline([Function(lambda xs: [x * 3 for x in xs])])
    assert asyncio.run(pipeline.arun(range(7), batch_size=3)) == pipeline.run(range(7), batch_size=3)


# -- YAML mistakes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- type: decoder", r"step 1: unknown step type 'decoder'; known: decode, embed"),
        ("- type: decode\n  modalty: image", r"step 1 \(decode\): unknown option\(s\) 'modalty'; allowed: .*modality"),
        ("- type: decode\n- type: embed\n  family: x", r"step 2 \(embed\): missing option 'model'"),
        ("- type: embed\n  family: x\n  model: y\n  max_wait_ms: soon", r"option 'max_wait_ms': Input should be"),
        ("- type: index", r"missing option 'store'"),
        ("- type: function\n  call: no_such_module_xyz:f", r"cannot import 'no_such_module_xyz'"),
        ("- type: function\n  call: not-a-ref", r"must look like 'package.module:name'"),
        ("- type: decode\n  - oops", r"not valid YAML at line"),
        ("steps: []", r"non-empty list of steps"),
        ("type: decode", r"unknown pipeline option\(s\) 'type'"),
        ("- decode", r"must be a mapping"),
        ("- type: remote", r"give the server's URL"),
        ("- type: embed\n  remote: ftp://x", r"must start with http"),
        ("- type: embed\n  remote: http://127.0.0.1:9\n  modle: x", r"unknown option\(s\) 'modle'"),
    ],
)
def test_bad_yaml_is_a_config_error_naming_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        Pipeline.from_yaml(text)


def test_missing_pipeline_file():
    with pytest.raises(ConfigError, match="cannot read the pipeline file"):
        Pipeline.from_yaml("no/such/pipeline.yaml")


def test_yaml_options_reach_the_steps():
    pipeline = Pipeline.from_yaml(
        """
timeout: 30
isolate_errors: false
steps:
  - type: decode
    modality: text
    name: read
  - type: translate
    family: rapidocr
  - type: embed
    family: sentence-transformers
    model: all-MiniLM-L6-v2
    field: ocr
    max_batch_size: 4
    batching: false
  - type: function
    call: polymodal.pipeline.records:describe
    each: true
  - type: embed
    remote: http://127.0.0.1:9
    timeout: 5
"""
    )
    read, ocr, embed, func, remote = pipeline.steps
    assert pipeline.timeout == 30 and pipeline.isolate_errors is False
    assert isinstance(read, Decode) and read.name == "read" and read.modality == "text"
    assert isinstance(ocr, Translate) and (ocr.field, ocr.into) == ("image", "ocr")
    assert isinstance(embed, Embed) and (embed.into, embed.batching, embed.max_batch_size) == ("ocr_vec", False, 4)
    assert embed.config.model == "sentence-transformers/all-MiniLM-L6-v2"  # the name stores record
    assert isinstance(func, Function) and func.each
    assert isinstance(remote, RemoteStep) and remote.timeout == 5 and remote.url == "http://127.0.0.1:9"


def test_step_from_spec_local_builds_the_served_step():
    entry = {"type": "function", "call": "polymodal.pipeline.records:describe", "remote": "http://127.0.0.1:9"}
    assert isinstance(step_from_spec(entry), RemoteStep)
    assert isinstance(step_from_spec(entry, local=True), Function)


def test_index_refuses_a_non_doc_schema(tmp_path: Path):
    with pytest.raises(ConfigError, match="Doc class"):
        Index(tmp_path / "s", schema="polymodal.pipeline.records:describe")
