"""Steps served over HTTP on a free loopback port and used inside pipelines: payload formats,
errors across the hop, timeouts, overload, API keys, and shared batches across requests."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from pipeline_support import SAFETY, FakeEmbedder, Gate, vector, wait_until

import polymodal as pm
from polymodal.errors import BackendError, ConfigError, MediaError, SchemaError
from polymodal.pipeline import Decode, Embed, Function, Pipeline, RemoteStep, StepServer, wire

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


class Note(pm.Doc):
    text: str = ""
    embedding: pm.Vector[8] | None = None


def shout(batch: list) -> list:
    return [{**r, "text": r["text"].upper()} for r in batch]


def test_pipeline_mixes_local_and_remote_steps():
    with StepServer(Function(shout)) as server:
        assert server.port != 0 and server.url.startswith("http://127.0.0.1:")
        remote = RemoteStep(server.url, name="shout")
        pipeline = Pipeline(
            [
                Function(lambda xs: [{"text": x} for x in xs], name="wrap"),
                remote,
                Function(lambda rs: [r["text"] + "!" for r in rs], name="unwrap"),
            ]
        )
        assert pipeline.run(["hi", "there", "you"], batch_size=2) == ["HI!", "THERE!", "YOU!"]
        assert remote.info()["name"] == "shout"
        pipeline.close()


def test_served_embed_step_over_json_records_and_binary_documents():
    with StepServer(Embed(FakeEmbedder(), into="embedding", max_wait_ms=0), doc_types=[Note]) as server:
        remote = RemoteStep(server.url)
        records = remote.run([{"id": "r1", "text": "alpha", "extra": np.arange(3, dtype=np.int16)}])
        np.testing.assert_array_equal(records[0]["embedding"], vector("alpha"))  # bit-exact over JSON
        assert records[0]["extra"].dtype == np.int16
        notes = remote.run([Note(text="beta"), Note(text="gamma")])  # the binary document format
        assert all(isinstance(n, Note) for n in notes)
        np.testing.assert_array_equal(notes[1].embedding, vector("gamma"))
        remote.close()


def test_documents_of_a_type_the_server_does_not_allow_are_refused():
    with StepServer(Function(lambda xs: xs, name="echo")) as server:
        remote = RemoteStep(server.url)
        with pytest.raises(SchemaError, match="not accepted here"):
            remote.run([Note(text="x")])
        remote.close()


def test_remote_errors_keep_their_class_and_name_the_step(tmp_path):
    missing = tmp_path / "nope.txt"
    with StepServer(Decode()) as server:
        pipeline = Pipeline([RemoteStep(server.url, name="remote-decode")])
        with pytest.raises(MediaError) as info:
            pipeline.run([str(missing)])
        assert "step 1 'remote-decode' failed on item 0" in str(info.value)
        assert "nope.txt" in str(info.value) and info.value.status == 422
        pipeline.close()


def test_unexpected_remote_errors_become_backend_errors():
    def broken(batch: list) -> list:
        raise RuntimeError("disk on fire")

    with StepServer(Function(broken)) as server:
        remote = RemoteStep(server.url)
        with pytest.raises(BackendError, match="RuntimeError: disk on fire") as info:
            remote.run([{"a": 1}])
        assert info.value.status == 500
        remote.close()


def test_remote_timeout():
    release = threading.Event()

    def stuck(batch: list) -> list:
        release.wait(SAFETY)
        return batch

    with StepServer(Function(stuck)) as server:
        remote = RemoteStep(server.url, timeout=0.1)
        with pytest.raises(BackendError, match=r"no answer within 0\.1s") as info:
            Pipeline([remote]).run([1])
        assert info.value.reason == "timeout"
        release.set()
        remote.close()


def test_server_answers_overloaded_beyond_max_inflight():
    gate = Gate(key=0)

    def held(batch: list) -> list:
        gate.hold(batch)
        return batch

    with StepServer(Function(held), max_inflight=1) as server:
        first = RemoteStep(server.url)
        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(out=first.run([0])))
        thread.start()
        assert gate.entered.wait(SAFETY)
        second = RemoteStep(server.url)
        with pytest.raises(BackendError, match="busy") as info:
            second.run([1])
        assert info.value.reason == "overloaded" and info.value.status == 503
        gate.open()
        thread.join(SAFETY)
        assert box["out"] == [0]
        assert second.run([2]) == [2]  # room again
        first.close()
        second.close()


def test_concurrent_requests_share_the_served_embedders_forward_passes():
    gate = Gate()
    embedder = FakeEmbedder(gate)
    step = Embed(embedder, max_batch_size=16, max_wait_ms=60_000)
    with StepServer(step) as server:
        holder = threading.Thread(target=RemoteStep(server.url).run, args=([{"text": "gate"}] * 16,))
        holder.start()
        assert gate.entered.wait(SAFETY)
        results: dict[int, list] = {}

        def request(i: int) -> None:
            results[i] = RemoteStep(server.url).run([{"text": f"q{i}"}])

        clients = [threading.Thread(target=request, args=(i,)) for i in range(16)]
        for t in clients:
            t.start()
        wait_until(lambda: step.stats().queued == 16, "16 requests queued")
        gate.open()
        for t in [holder, *clients]:
            t.join(SAFETY)
    step.close()
    assert embedder.calls == [16, 16]  # 16 requests, one forward pass
    for i in range(16):
        np.testing.assert_array_equal(results[i][0]["text_vec"], vector(f"q{i}"))


def test_api_key_is_required_when_set():
    key = "k" * 24
    with StepServer(Function(lambda xs: xs, name="echo"), api_key=key) as server:
        with pytest.raises(BackendError, match="API key") as info:
            RemoteStep(server.url).run([1])
        assert info.value.status == 401
        assert RemoteStep(server.url, api_key=key).run([1]) == [1]


def test_non_loopback_host_needs_a_key():
    with pytest.raises(ConfigError, match="without an API key"):
        StepServer(Function(lambda xs: xs), host="0.0.0.0")


def test_unreachable_server():
    with StepServer(Function(lambda xs: xs)) as server:
        url = server.url
    with pytest.raises(BackendError, match="cannot reach"):
        RemoteStep(url, timeout=5).run([1])


# -- the wire format -------------------------------------------------------------------------
def test_wire_round_trips_records_with_media_values():
    audio = pm.AudioData(np.linspace(-1, 1, 50, dtype=np.float32), 16000)
    record = {
        "vec": np.arange(6, dtype=np.float32).reshape(2, 3),
        "raw": b"\x00\x01",
        "img": pm.ImageBytes(b"\x89PNG"),
        "url": pm.ImageUrl("photo.jpg"),
        "audio": audio,
        "nested": [{"n": np.float64(1.5)}, None, True],
    }
    body, headers = wire.encode_items([record])
    (back,) = wire.decode_items(body, headers["content-type"], None, {})
    np.testing.assert_array_equal(back["vec"], record["vec"])
    assert back["raw"] == b"\x00\x01" and isinstance(back["img"], pm.ImageBytes)
    assert isinstance(back["url"], pm.ImageUrl) and back["url"] == "photo.jpg"
    np.testing.assert_array_equal(back["audio"].samples, audio.samples)
    assert back["nested"] == [{"n": 1.5}, None, True]


@pytest.mark.parametrize("bad", [{"x": object()}, {1: "int key"}, {"$pm": "spoof"}])
def test_wire_refuses_what_cannot_travel(bad):
    with pytest.raises(SchemaError):
        wire.encode_items([bad])


def test_wire_rejects_corrupt_payloads():
    with pytest.raises(pm.FormatError):
        wire.decode_items(b"{not json", wire.JSON, None, {})
    body = b'{"items": [{"$pm": "ndarray", "dtype": "<f4", "shape": [9], "b64": "AAAA"}]}'
    with pytest.raises(pm.FormatError):
        wire.decode_items(body, wire.JSON, None, {})


def test_serve_step_command_builds_the_step_of_a_yaml_entry(tmp_path):
    from polymodal.pipeline.__main__ import build_server, main

    spec = tmp_path / "p.yaml"
    spec.write_text(
        "- type: decode\n"
        "- type: function\n  name: echo\n  call: polymodal.pipeline.records:describe\n  each: true\n"
        "  remote: http://127.0.0.1:9\n"
    )
    server = build_server(["serve-step", str(spec), "--step", "echo", "--port", "0"])
    try:
        assert isinstance(server.step, Function) and server.step.name == "echo"
        with server:
            assert RemoteStep(server.url).run([{"uri": "a.png"}]) == ["a.png"]
    finally:
        server.stop()
    assert main(["serve-step", str(spec), "--step", "7", "--port", "0"]) == 2  # no such step: one-line error
