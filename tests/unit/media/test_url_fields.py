"""Media URL and bytes fields inside documents: validation, serialization and ``.load()``."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

import polymodal as pm
from polymodal import (
    AudioBytes,
    AudioUrl,
    Doc,
    ImageBytes,
    ImageUrl,
    MediaError,
    Mesh3DBytes,
    Mesh3DUrl,
    OptionalDependencyError,
    SchemaError,
    TextBytes,
    TextUrl,
    VideoBytes,
    VideoUrl,
)
from polymodal.doc import MediaUrl
from polymodal.errors import UnsupportedOperation


class Media(Doc):
    image: ImageUrl | None = None
    audio: AudioUrl | None = None
    video: VideoUrl | None = None
    text: TextUrl | None = None
    mesh: Mesh3DUrl | None = None


class Blobs(Doc):
    image: ImageBytes | None = None
    text: TextBytes | None = None


URL_TYPES = [ImageUrl, AudioUrl, VideoUrl, TextUrl, Mesh3DUrl]


# --------------------------------------------------------------------------- validation


def test_fields_accept_strings_and_paths(images, texts):
    doc = Media(image=str(images["png"]), text=texts["utf8"])
    assert type(doc.image) is ImageUrl
    assert type(doc.text) is TextUrl
    assert doc.image == str(images["png"])
    assert doc.text == str(texts["utf8"])  # a Path becomes its string
    assert isinstance(doc.image, str)


def test_validation_imports_no_decoder(images):
    """Building documents must not load Pillow/PyAV/trimesh (checked in a fresh interpreter)."""
    code = (
        "import sys, polymodal as pm\n"
        "class D(pm.Doc):\n"
        "    image: pm.ImageUrl\n"
        "    video: pm.VideoUrl\n"
        "    mesh: pm.Mesh3DUrl\n"
        f"d = D(image={str(images['png'])!r}, video='https://example.com/v.mp4', mesh='m.obj')\n"
        "d.model_dump_json()\n"
        "print(sorted(m for m in ('av', 'PIL', 'trimesh', 'urllib.request') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_polymodal_is_light():
    code = "import sys, polymodal\nprint(sorted(m for m in ('av', 'PIL', 'trimesh', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("value", ["ftp://host/a.png", "s3://bucket/a.png", "gs://b/c.png", "file://images/a.png", ""])
def test_unsupported_uri_in_a_doc_is_a_schema_error(value):
    with pytest.raises(SchemaError) as info:
        Media(image=value)
    assert info.value.field == "image"
    assert "image" in str(info.value)


def test_unsupported_uri_on_assignment_is_a_schema_error(images):
    doc = Media(image=images["png"])
    with pytest.raises(SchemaError, match="scheme"):
        doc.image = "ftp://host/a.png"
    assert doc.image == str(images["png"])


@pytest.mark.parametrize("value", [42, 1.5, b"bytes", ["a.png"]])
def test_non_string_value_is_a_schema_error(value):
    with pytest.raises(SchemaError, match="expected a path or URL string"):
        Media(image=value)


def test_direct_construction_of_a_bad_uri_is_a_config_error():
    with pytest.raises(pm.ConfigError):
        ImageUrl("ftp://host/a.png")


def test_json_round_trip(images, texts):
    doc = Media(image=images["png"], text="data:,hello", video="https://example.com/v.mp4")
    again = Media.model_validate_json(doc.model_dump_json())
    assert again == doc
    assert type(again.image) is ImageUrl


def test_bytes_fields_round_trip_through_base64_json(images):
    raw = images["png"].read_bytes()
    doc = Blobs(image=raw, text=b"hello")
    assert type(doc.image) is ImageBytes
    payload = doc.model_dump(mode="json")
    assert payload["image"] == base64.b64encode(raw).decode()
    again = Blobs.model_validate_json(doc.model_dump_json())
    assert again.image == raw
    assert type(again.image) is ImageBytes


def test_invalid_base64_for_bytes_is_a_schema_error():
    with pytest.raises(SchemaError, match="base64"):
        Blobs(image="not base64!")


def test_url_properties(images):
    url = ImageUrl(images["png"])
    assert url.path == images["png"]
    assert not url.is_remote
    remote = ImageUrl("https://example.com/a.png")
    assert remote.is_remote
    assert remote.path is None
    assert ImageUrl("data:,x").path is None


# --------------------------------------------------------------------------- where load() reads from


def test_load_relative_path(images, gradient, monkeypatch):
    monkeypatch.chdir(images["png"].parent)
    np.testing.assert_array_equal(ImageUrl("gradient.png").load(), gradient)
    np.testing.assert_array_equal(ImageUrl("./gradient.png").load(), gradient)


def test_load_home_relative_path(images, gradient, monkeypatch):
    monkeypatch.setenv("HOME", str(images["png"].parent))
    np.testing.assert_array_equal(ImageUrl("~/gradient.png").load(), gradient)


def test_load_file_uri(images, gradient, tmp_path):
    np.testing.assert_array_equal(ImageUrl(images["png"].as_uri()).load(), gradient)
    spaced = tmp_path / "with space é.png"
    spaced.write_bytes(images["png"].read_bytes())
    assert "%20" in spaced.as_uri()
    np.testing.assert_array_equal(ImageUrl(spaced.as_uri()).load(), gradient)


def test_load_base64_data_uri(images, gradient):
    uri = "data:image/png;base64," + base64.b64encode(images["png"].read_bytes()).decode()
    np.testing.assert_array_equal(ImageUrl(uri).load(), gradient)
    np.testing.assert_array_equal(Media(image=uri).image.load(), gradient)


def test_load_percent_encoded_data_uri(images, gradient, spec):
    uri = "data:image/png," + urllib.parse.quote_from_bytes(images["png"].read_bytes())
    np.testing.assert_array_equal(ImageUrl(uri).load(), gradient)
    text_uri = "data:text/plain;charset=utf-8," + urllib.parse.quote(spec.TEXT)
    assert TextUrl(text_uri).load() == spec.TEXT


def test_load_video_and_audio_from_data_uris(videos, audio, spec):
    video = VideoUrl("data:video/mp4;base64," + base64.b64encode(videos["mp4"].read_bytes()).decode()).load(fps=1)
    np.testing.assert_allclose(video.timestamps, np.arange(spec.VIDEO_SECONDS), atol=1e-3)
    sound = AudioUrl("data:audio/wav;base64," + base64.b64encode(audio["wav_mono16k"].read_bytes()).decode()).load()
    assert sound.sample_rate == 16_000


def test_remote_load_without_allow_remote_makes_no_request(http_server, no_network):
    doc = Media(image=f"{http_server.url}/gradient.png", video=f"{http_server.url}/video/colours.mp4")
    for field in (doc.image, doc.video):
        with pytest.raises(MediaError, match="allow_remote") as info:
            field.load()
        assert info.value.uri == field
        assert field in str(info.value)
    assert http_server.requests == []
    assert no_network == []


def test_remote_load_with_allow_remote(http_server, images, videos, meshes, gradient, spec):
    np.testing.assert_array_equal(ImageUrl(f"{http_server.url}/gradient.png").load(allow_remote=True), gradient)
    video = VideoUrl(f"{http_server.url}/video/colours.mp4").load(allow_remote=True, fps=1)
    assert len(video) == spec.VIDEO_SECONDS
    mesh = Mesh3DUrl(f"{http_server.url}/mesh/box.obj?rev=3").load(allow_remote=True)
    assert mesh.faces.shape == (12, 3)
    assert http_server.requests == ["/gradient.png", "/video/colours.mp4", "/mesh/box.obj?rev=3"]


def test_load_enforces_max_bytes(http_server, images):
    url = ImageUrl(f"{http_server.url}/gradient.png")
    with pytest.raises(MediaError, match="max_bytes"):
        url.load(allow_remote=True, max_bytes=10)
    with pytest.raises(MediaError, match="max_bytes"):
        url.read_bytes(allow_remote=True, max_bytes=10)
    assert url.read_bytes(allow_remote=True) == images["png"].read_bytes()


@pytest.mark.parametrize("cls", URL_TYPES, ids=lambda c: c.__name__)
def test_missing_file_names_the_uri(cls, tmp_path):
    uri = str(tmp_path / "missing.bin")
    with pytest.raises(MediaError, match="not found") as info:
        cls(uri).load()
    assert info.value.uri == uri
    assert uri in str(info.value)


def test_media_error_from_load_pickles(corrupt):
    with pytest.raises(MediaError) as info:
        ImageUrl(corrupt["random.png"]).load()
    clone = pickle.loads(pickle.dumps(info.value))
    assert clone.uri == str(corrupt["random.png"])
    assert str(clone) == str(info.value)


def test_bare_media_url_has_no_decoder(texts):
    with pytest.raises(UnsupportedOperation, match="no decoder"):
        MediaUrl(texts["utf8"]).load()


# --------------------------------------------------------------------------- bytes counterparts


def test_bytes_counterparts_decode_like_urls(images, audio, videos, texts, meshes):
    np.testing.assert_array_equal(ImageBytes(images["png"].read_bytes()).load(), ImageUrl(images["png"]).load())
    assert AudioBytes(audio["flac"].read_bytes()).load().sample_rate == AudioUrl(audio["flac"]).load().sample_rate
    assert len(VideoBytes(videos["webm"].read_bytes()).load(fps=1)) == len(VideoUrl(videos["webm"]).load(fps=1))
    assert TextBytes(texts["utf8_bom"].read_bytes()).load() == TextUrl(texts["utf8_bom"]).load()
    mesh = Mesh3DBytes(meshes["ply"].read_bytes()).load(file_type="ply")
    np.testing.assert_array_equal(mesh.faces, Mesh3DUrl(meshes["ply"]).load().faces)


# --------------------------------------------------------------------------- optional packages


@pytest.mark.parametrize(
    ("cls", "fixture", "key", "module", "extra"),
    [
        (ImageUrl, "images", "png", "PIL", "image"),
        (AudioUrl, "audio", "wav_stereo", "av", "audio"),
        (VideoUrl, "videos", "mp4", "av", "video"),
        (Mesh3DUrl, "meshes", "obj", "trimesh", "mesh"),
    ],
    ids=["image", "audio", "video", "mesh"],
)
def test_hidden_package_names_its_extra(request, monkeypatch, cls, fixture, key, module, extra):
    path: Path = request.getfixturevalue(fixture)[key]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(OptionalDependencyError) as info:
        cls(path).load()
    assert isinstance(info.value, ImportError)
    assert info.value.extra == extra
    assert f"pip install 'polymodal[{extra}]'" in str(info.value)


def test_text_needs_no_optional_package(texts, monkeypatch, spec):
    for module in ("PIL", "av", "trimesh"):
        monkeypatch.setitem(sys.modules, module, None)
    assert TextUrl(texts["utf8"]).load() == spec.TEXT
