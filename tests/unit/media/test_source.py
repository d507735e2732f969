"""Where media bytes come from: paths, file://, data: and (only when allowed) http(s)."""

from __future__ import annotations

import base64
import pickle
import socket
import urllib.parse
from pathlib import Path

import pytest

from polymodal import ConfigError, MediaError
from polymodal.media.source import (
    display_uri,
    is_remote,
    local_path,
    media_error,
    read_bytes,
    scheme_of,
    validate_uri,
)


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("photo.png", "file"),
        ("./a:b.png", "file"),
        ("/abs/photo.png", "file"),
        ("C:\\Users\\me\\photo.png", "file"),
        ("~/photo.png", "file"),
        ("file:///tmp/x.png", "file"),
        ("HTTP://example.com/x.png", "http"),
        ("https://example.com/x.png", "https"),
        ("data:,hello", "data"),
        ("s3://bucket/key.png", "s3"),
    ],
)
def test_scheme_of(uri, scheme):
    assert scheme_of(uri) == scheme


def test_is_remote():
    assert is_remote("https://example.com/a.png")
    assert is_remote("HTTP://example.com/a.png")
    assert not is_remote("/tmp/a.png")
    assert not is_remote("data:,x")


@pytest.mark.parametrize("uri", ["", "ftp://host/a.png", "s3://bucket/a.png", "gs://b/a.wav", "javascript:alert(1)"])
def test_unsupported_uris_are_config_errors(uri):
    with pytest.raises(ConfigError):
        validate_uri(uri)


def test_file_uri_with_a_host_is_refused():
    """``file://images/a.png`` names host "images" and path "/a.png": never what was meant."""
    with pytest.raises(ConfigError, match="host 'images'"):
        validate_uri("file://images/a.png")
    assert validate_uri("file://localhost/tmp/a.png") == "file://localhost/tmp/a.png"
    assert validate_uri("file:///tmp/a.png") == "file:///tmp/a.png"


def test_local_path_of_file_uris():
    assert local_path("file:///tmp/a%20b.png") == Path("/tmp/a b.png")
    assert local_path("file://localhost/tmp/x.png") == Path("/tmp/x.png")
    assert local_path("FILE:///tmp/x.png") == Path("/tmp/x.png")


def test_local_path_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert local_path("~/media/x.png") == tmp_path / "media" / "x.png"


def test_local_path_keeps_relative_paths_and_ignores_other_schemes():
    assert local_path("media/x.png") == Path("media/x.png")
    assert local_path("data:,x") is None
    assert local_path("https://example.com/x.png") is None


# --------------------------------------------------------------------------- data: URIs


def test_data_uri_base64():
    payload = bytes(range(256))
    assert read_bytes("data:application/octet-stream;base64," + base64.b64encode(payload).decode()) == payload


def test_data_uri_percent_encoded():
    assert read_bytes("data:text/plain;charset=utf-8,Gr%C3%BC%C3%9Fe%2C%20world") == "Grüße, world".encode()
    assert read_bytes("data:,") == b""


@pytest.mark.parametrize(
    "uri",
    [
        "data:text/plain;BASE64,aGVsbG8gd29ybGQ=",  # the flag is case-insensitive
        "data:text/plain;base64,aGVsbG8g\nd29y bGQ=",  # wrapped over lines
        "data:text/plain;base64," + urllib.parse.quote("aGVsbG8gd29ybGQ=", safe=""),  # percent-encoded
    ],
)
def test_data_uri_base64_variants(uri):
    assert read_bytes(uri) == b"hello world"


@pytest.mark.parametrize("uri", ["data:text/plain;base64,not*base64!", "data:text/plain;base64,aGVsbG8"])
def test_malformed_base64_is_a_media_error(uri):
    with pytest.raises(MediaError, match="base64") as info:
        read_bytes(uri)
    assert info.value.uri == uri


def test_data_uri_without_comma():
    with pytest.raises(MediaError, match="no comma"):
        read_bytes("data:text/plain;base64")


# --------------------------------------------------------------------------- local files


def test_read_local_file(images):
    assert read_bytes(str(images["png"])) == images["png"].read_bytes()
    assert read_bytes(images["png"].as_uri()) == images["png"].read_bytes()


def test_missing_file(tmp_path):
    uri = str(tmp_path / "missing.png")
    with pytest.raises(MediaError, match="not found") as info:
        read_bytes(uri)
    assert info.value.uri == uri
    assert str(info.value).startswith(uri)


def test_directory_is_unreadable(tmp_path):
    with pytest.raises(MediaError, match="cannot read") as info:
        read_bytes(str(tmp_path))
    assert info.value.uri == str(tmp_path)


# --------------------------------------------------------------------------- remote URLs


def test_remote_url_is_refused_without_allow_remote(http_server, no_network):
    url = f"{http_server.url}/gradient.png"
    with pytest.raises(MediaError, match="allow_remote=True") as info:
        read_bytes(url)
    assert info.value.uri == url
    assert http_server.requests == []
    assert no_network == []  # not even a connection attempt


def test_remote_url_is_fetched_when_allowed(http_server, images):
    data = read_bytes(f"{http_server.url}/gradient.png", allow_remote=True)
    assert data == images["png"].read_bytes()
    assert http_server.requests == ["/gradient.png"]
    assert http_server.user_agents == ["polymodal"]


@pytest.mark.parametrize("prefix", ["", "/nolength"], ids=["content-length", "no-content-length"])
def test_max_bytes_is_enforced(http_server, images, prefix):
    size = images["png"].stat().st_size
    url = f"{http_server.url}{prefix}/gradient.png"
    with pytest.raises(MediaError, match="max_bytes") as info:
        read_bytes(url, allow_remote=True, max_bytes=size - 1)
    assert info.value.uri == url
    assert read_bytes(url, allow_remote=True, max_bytes=size) == images["png"].read_bytes()


def test_http_error_is_a_media_error(http_server):
    url = f"{http_server.url}/no/such/file.png"
    with pytest.raises(MediaError, match=r"download failed.*404") as info:
        read_bytes(url, allow_remote=True)
    assert info.value.uri == url


@pytest.mark.usefixtures("direct_http")
def test_connection_refused_is_a_media_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/gradient.png"
        with pytest.raises(MediaError, match="download failed") as info:
            read_bytes(url, allow_remote=True, timeout=5)
    assert info.value.uri == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:notaport/x.png", "http://[::1/x.png"])
def test_malformed_url_is_a_media_error(url):
    with pytest.raises(MediaError, match="download failed"):
        read_bytes(url, allow_remote=True, timeout=5)


# --------------------------------------------------------------------------- messages


def test_media_error_starts_with_the_uri_and_pickles():
    exc = media_error("/data/a.png", "cannot decode image: broken")
    assert str(exc) == "/data/a.png: cannot decode image: broken"
    clone = pickle.loads(pickle.dumps(exc))
    assert isinstance(clone, MediaError)
    assert clone.uri == "/data/a.png"
    assert str(clone) == str(exc)


def test_long_data_uris_are_shortened_in_messages():
    uri = "data:image/png;base64," + "A" * 10_000
    shown = display_uri(uri)
    assert len(shown) < 120
    assert shown.startswith("data:image/png;base64,")
    assert str(len(uri)) in shown
    assert display_uri("/a/long/" + "x" * 200) == "/a/long/" + "x" * 200  # paths are never cut


def test_malformed_file_uri_is_a_config_error():
    with pytest.raises(ConfigError, match="malformed file URI"):
        validate_uri("file://[::1/x.png")
