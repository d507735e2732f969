"""Test media generated in Python at session start (Pillow, PyAV, trimesh, stdlib ``wave``).

Nothing is downloaded and no system package (ffmpeg, sox) is needed: PyAV's wheel bundles the
FFmpeg encoders used here. Every file is small (a few seconds, 64x48 frames) so the suite stays
fast, and its content is known exactly, so tests can check what decoding returns:

* video: ``VIDEO_SECONDS`` seconds at ``VIDEO_FPS`` fps, one solid colour per second
  (``SECOND_COLOURS[s]``), a keyframe at the start of every second, and a 440 Hz AAC track;
* audio: 440 Hz sines with known amplitudes per channel (see ``wav_stereo``);
* meshes: a unit box (8 vertices, 12 triangles) in OBJ, PLY, STL and GLB;
* text: UTF-8 with BOM, latin-1, UTF-16;
* broken files: truncated, empty, random bytes, a PNG signature followed by garbage.

Fixtures are session-scoped and created on first use, so a test module only pays for the
media it asks for (under xdist each worker builds its own copy).
"""

from __future__ import annotations

import random
import struct
import wave
import zlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

VIDEO_FPS = 10
VIDEO_SECONDS = 4
VIDEO_SIZE = (64, 48)  # width, height (even: yuv420p needs it)
#: The colour of every frame in second ``s`` of the test videos.
SECOND_COLOURS: tuple[tuple[int, int, int], ...] = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))
AUDIO_FREQ = 440.0
WAV_RATE = 44_100
WAV_SECONDS = 2.0
#: Amplitudes of the left and right channel of ``wav_stereo``: a mono mixdown is their mean.
WAV_LEFT_AMP, WAV_RIGHT_AMP = 0.6, 0.2
IMAGE_SIZE = (40, 30)  # width, height
TEXT = "Grüße, naïve café: ünïcödé ✓\nline two\n"
LATIN1_TEXT = "café crème brûlée\n"


def colour_at(t: float) -> tuple[int, int, int]:
    """The colour the test video shows at ``t`` seconds."""
    return SECOND_COLOURS[min(int(t), VIDEO_SECONDS - 1)]


def sine(seconds: float, rate: int, amp: float = 0.5, freq: float = AUDIO_FREQ) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The frequency (Hz) of the strongest FFT bin: checks a resampled sine kept its pitch."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


# --------------------------------------------------------------------------- images


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def _gradient() -> np.ndarray:
    """A smooth RGB gradient (HxWx3 uint8) that survives JPEG/WebP compression."""
    w, h = IMAGE_SIZE
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    return np.stack([np.broadcast_to(x, (h, w)), np.broadcast_to(y, (h, w)), np.full((h, w), 128.0)], -1).astype(
        np.uint8
    )


@pytest.fixture(scope="session")
def gradient() -> np.ndarray:
    return _gradient()


def make_images(media_dir: Path) -> dict[str, Path]:
    """PNG, JPEG, WebP, RGBA PNG, grayscale PNG, 16-bit grayscale PNG, palette PNG with
    transparency, EXIF-rotated JPEG, animated GIF, and an oversized (bomb) PNG header."""
    from PIL import Image

    out: dict[str, Path] = {}
    rgb = Image.fromarray(_gradient())
    for name, fmt in (("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")):
        out[name] = media_dir / f"gradient.{name}"
        rgb.save(out[name], format=fmt, **({"quality": 95} if fmt != "PNG" else {}))

    # Left half opaque red, right half fully transparent: composited over white.
    w, h = IMAGE_SIZE
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[:, : w // 2] = (255, 0, 0, 255)
    rgba[:, w // 2 :] = (0, 0, 255, 0)
    out["rgba"] = media_dir / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(out["rgba"])

    out["gray"] = media_dir / "gray.png"
    Image.fromarray(np.full((h, w), 77, np.uint8), "L").save(out["gray"])

    # 16-bit grayscale: the top half at 1/4 of full scale, the bottom half at full scale.
    g16 = np.zeros((h, w), np.uint16)
    g16[: h // 2] = 16384
    g16[h // 2 :] = 65535
    out["gray16"] = media_dir / "gray16.png"
    Image.fromarray(g16).save(out["gray16"])

    pal = Image.new("P", (w, h), 0)
    pal.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    pal.paste(1, (w // 2, 0, w, h))
    out["palette"] = media_dir / "palette.png"
    pal.save(out["palette"], transparency=1)  # index 1 (right half) is transparent

    # Stored as a 40x30 landscape image whose EXIF says "rotate 90° CW to display" (orientation 6):
    # the decoded image must be 30 wide and 40 high, with the stored top-left corner at top-right.
    stored = np.zeros((h, w, 3), np.uint8)
    stored[: h // 2, : w // 2] = (255, 0, 0)  # red top-left quadrant as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    out["exif_rotated"] = media_dir / "exif_rotated.jpg"
    Image.fromarray(stored).save(out["exif_rotated"], format="JPEG", quality=95, exif=exif.tobytes())

    frames = [Image.new("RGB", (w, h), c) for c in ((255, 0, 0), (0, 0, 255))]
    out["gif"] = media_dir / "anim.gif"
    frames[0].save(out["gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)

    # A 60-byte file whose header claims 20000x20000 pixels: a decompression bomb by its header.
    out["bomb"] = media_dir / "bomb.png"
    out["bomb"].write_bytes(png_header_only(20_000, 20_000))
    return out


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR chunk claiming ``width`` x ``height`` 8-bit greyscale, and IEND."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def make_corrupt(media_dir: Path, images: dict[str, Path], videos: dict[str, Path]) -> dict[str, Path]:
    """Broken files: each must give a MediaError naming its path."""
    rng = random.Random(1234)
    d = media_dir / "corrupt"
    d.mkdir()
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = d / name
        out[name].write_bytes(data)

    png = images["png"].read_bytes()
    jpeg = images["jpeg"].read_bytes()
    mp4 = videos["mp4"].read_bytes()
    put("random.png", rng.randbytes(2048))
    put("empty.png", b"")
    put("header_garbage.png", png[:16] + rng.randbytes(512))
    put("truncated.png", png[: len(png) // 2])
    put("truncated.jpg", jpeg[: len(jpeg) // 2])
    put("truncated.webp", images["webp"].read_bytes()[:60])
    put("text.jpg", b"this is not an image\n" * 10)
    put("truncated.mp4", mp4[: len(mp4) // 2])
    put("random.mp4", rng.randbytes(4096))
    put("empty.mp4", b"")
    put("random.mp3", rng.randbytes(4096))
    put("empty.wav", b"")
    put("random.ogg", rng.randbytes(4096))
    put("garbage.obj", b"\x00\x01\x02 not an obj file \xff\xfe" * 20)
    put("empty.obj", b"")
    put("garbage.stl", rng.randbytes(200))
    put("garbage.glb", b"glTF" + rng.randbytes(200))
    put("garbage.ply", b"ply\nformat nonsense\n" + rng.randbytes(100))
    put("binary.txt", b"PK\x03\x04\x00\x00" + rng.randbytes(200))
    return out


# --------------------------------------------------------------------------- audio


def _write_wav(path: Path, channels: list[np.ndarray], rate: int) -> None:
    pcm = np.clip(np.stack(channels, axis=1), -1, 1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes((pcm * 32767).astype("<i2").tobytes())


def _encode_audio(path: Path, codec: str, samples: np.ndarray, rate: int, layout: str = "mono") -> None:
    """Encode mono or stereo float32 samples with one of PyAV's bundled encoders."""
    import av

    planar = np.atleast_2d(samples).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.format.name  # what this encoder accepts (fltp for aac/mp3/opus)
        frame_size = stream.codec_context.frame_size or 1024
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for i in range(0, planar.shape[1], frame_size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar[:, i : i + frame_size]), "fltp", layout)
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for f in resampler.resample(frame):
                container.mux(stream.encode(f))
        for f in resampler.resample(None):
            container.mux(stream.encode(f))
        container.mux(stream.encode(None))


def make_audio(media_dir: Path) -> dict[str, Path]:
    """``wav_stereo``: 44.1 kHz, left 0.6 and right 0.2 amplitude 440 Hz sines, 2 s;
    ``wav_opposite``: left = -right (mixes down to silence); ``wav_mono16k``: 16 kHz mono;
    ``mp3``/``opus``/``m4a``/``flac``: 1 s 440 Hz sines at amplitude 0.5."""
    d = media_dir / "audio"
    d.mkdir()
    out = {name: d / f"{name}.wav" for name in ("wav_stereo", "wav_opposite", "wav_mono16k")}
    _write_wav(
        out["wav_stereo"],
        [sine(WAV_SECONDS, WAV_RATE, WAV_LEFT_AMP), sine(WAV_SECONDS, WAV_RATE, WAV_RIGHT_AMP)],
        WAV_RATE,
    )
    s = sine(WAV_SECONDS, WAV_RATE, 0.5)
    _write_wav(out["wav_opposite"], [s, -s], WAV_RATE)
    _write_wav(out["wav_mono16k"], [sine(1.0, 16_000, 0.5)], 16_000)
    for name, codec, rate in (
        ("mp3", "libmp3lame", 44_100),
        ("opus", "libopus", 48_000),
        ("m4a", "aac", 44_100),
        ("flac", "flac", 22_050),
    ):
        ext = {"opus": "ogg"}.get(name, name)
        out[name] = d / f"sine.{ext}"
        _encode_audio(out[name], codec, sine(1.0, rate, 0.5), rate)
    return out


# --------------------------------------------------------------------------- video


def _encode_video(path: Path, codec: str, audio_codec: str | None, audio_rate: int, **options: str) -> None:
    """Write ``VIDEO_SECONDS`` seconds of solid colours (``SECOND_COLOURS``) at ``VIDEO_FPS``,
    a keyframe at each second, plus (optionally) a mono 440 Hz audio track."""
    import av

    w, h = VIDEO_SIZE
    with av.open(str(path), "w") as container:
        vs = container.add_stream(codec, rate=VIDEO_FPS, options=options)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.gop_size = VIDEO_FPS  # one keyframe per second
        vs.codec_context.time_base = Fraction(1, VIDEO_FPS)
        for i in range(VIDEO_SECONDS * VIDEO_FPS):
            rgb = np.empty((h, w, 3), np.uint8)
            rgb[:] = colour_at(i / VIDEO_FPS)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, VIDEO_FPS)
            if i % VIDEO_FPS == 0:
                frame.pict_type = av.video.frame.PictureType.I
            container.mux(vs.encode(frame))
        container.mux(vs.encode(None))
    if audio_codec is not None:  # a second pass would reorder nothing: mux audio into a copy
        _add_audio(path, audio_codec, audio_rate)


def _add_audio(path: Path, audio_codec: str, rate: int) -> None:
    """Remux ``path`` with an added mono sine audio track (PyAV cannot append to a closed file)."""
    import av

    samples = sine(VIDEO_SECONDS, rate, 0.5)
    tmp = path.with_name("tmp_" + path.name)
    with av.open(str(path)) as src, av.open(str(tmp), "w") as dst:
        v_in = src.streams.video[0]
        v_out = dst.add_stream_from_template(v_in)
        a_out = dst.add_stream(audio_codec, rate=rate, layout="mono")
        fmt = a_out.codec_context.format.name
        frame_size = a_out.codec_context.frame_size or 1024
        for packet in src.demux(v_in):
            if packet.dts is None:
                continue
            packet.stream = v_out
            dst.mux(packet)
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        for i in range(0, len(samples), frame_size):
            frame = av.AudioFrame.from_ndarray(samples[None, i : i + frame_size], "fltp", "mono")
            frame.sample_rate = rate
            frame.pts = i
            frame.time_base = Fraction(1, rate)
            for f in resampler.resample(frame):
                dst.mux(a_out.encode(f))
        for f in resampler.resample(None):
            dst.mux(a_out.encode(f))
        dst.mux(a_out.encode(None))
    tmp.replace(path)


def make_videos(media_dir: Path) -> dict[str, Path]:
    """``mp4``: H.264 + AAC; ``mp4_silent``: H.264 without audio; ``webm``: VP8 + Opus;
    ``mkv``: MPEG-4 part 2 in Matroska."""
    import av

    d = media_dir / "video"
    d.mkdir()
    h264 = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    x264 = {"preset": "ultrafast"} if h264 == "libx264" else {}
    out = {
        "mp4": d / "colours.mp4",
        "mp4_silent": d / "silent.mp4",
        "webm": d / "colours.webm",
        "mkv": d / "colours.mkv",
    }
    _encode_video(out["mp4"], h264, "aac", 44_100, **x264)
    _encode_video(out["mp4_silent"], h264, None, 0, **x264)
    _encode_video(out["webm"], "libvpx", "libopus", 48_000)
    _encode_video(out["mkv"], "mpeg4", None, 0)
    return out


# --------------------------------------------------------------------------- meshes and text


def make_meshes(media_dir: Path) -> dict[str, Path]:
    """A unit box (8 vertices, 12 triangles) as OBJ, PLY, STL, GLB; a point cloud PLY."""
    import trimesh

    d = media_dir / "mesh"
    d.mkdir()
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    out = {ext: d / f"box.{ext}" for ext in ("obj", "ply", "stl", "glb")}
    for ext, path in out.items():
        box.export(str(path), file_type=ext)
    out["points"] = d / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((20, 3))).export(str(out["points"]), file_type="ply")
    return out


def make_texts(media_dir: Path) -> dict[str, Path]:
    d = media_dir / "text"
    d.mkdir()
    out = {
        "utf8": d / "plain.txt",
        "utf8_bom": d / "bom.txt",
        "latin1": d / "latin1.txt",
        "utf16": d / "utf16.txt",
        "empty": d / "empty.txt",
    }
    out["utf8"].write_bytes(TEXT.encode("utf-8"))
    out["utf8_bom"].write_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    out["latin1"].write_bytes(LATIN1_TEXT.encode("latin-1"))
    out["utf16"].write_bytes(TEXT.encode("utf-16"))  # with BOM
    out["empty"].write_bytes(b"")
    return out


class Spec:
    """What the generated media contain, for assertions (tests get it through ``spec``)."""

    VIDEO_FPS = VIDEO_FPS
    VIDEO_SECONDS = VIDEO_SECONDS
    VIDEO_SIZE = VIDEO_SIZE
    SECOND_COLOURS = SECOND_COLOURS
    AUDIO_FREQ = AUDIO_FREQ
    WAV_RATE = WAV_RATE
    WAV_SECONDS = WAV_SECONDS
    WAV_LEFT_AMP = WAV_LEFT_AMP
    WAV_RIGHT_AMP = WAV_RIGHT_AMP
    IMAGE_SIZE = IMAGE_SIZE
    TEXT = TEXT
    LATIN1_TEXT = LATIN1_TEXT
    colour_at = staticmethod(colour_at)
    sine = staticmethod(sine)
    dominant_frequency = staticmethod(dominant_frequency)
    gradient = staticmethod(_gradient)


@pytest.fixture(scope="session")
def images(media_dir: Path) -> dict[str, Path]:
    return make_images(media_dir)


@pytest.fixture(scope="session")
def audio(media_dir: Path) -> dict[str, Path]:
    return make_audio(media_dir)


@pytest.fixture(scope="session")
def videos(media_dir: Path) -> dict[str, Path]:
    return make_videos(media_dir)


@pytest.fixture(scope="session")
def meshes(media_dir: Path) -> dict[str, Path]:
    return make_meshes(media_dir)


@pytest.fixture(scope="session")
def texts(media_dir: Path) -> dict[str, Path]:
    return make_texts(media_dir)


@pytest.fixture(scope="session")
def corrupt(media_dir: Path, images: dict[str, Path], videos: dict[str, Path]) -> dict[str, Path]:
    return make_corrupt(media_dir, images, videos)


@pytest.fixture(scope="session")
def spec() -> type[Spec]:
    return Spec


# --------------------------------------------------------------------------- a local HTTP server


class LocalServer:
    """A real HTTP server on 127.0.0.1 serving ``root``; ``requests`` lists every path asked for.

    ``/nolength/<file>`` serves the file without a Content-Length header (the body ends when
    the connection closes), to test limits enforced while reading.
    """

    def __init__(self, root: Path) -> None:
        import http.server
        import threading

        self.root = root
        self.requests: list[str] = []
        self.user_agents: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.user_agents.append(self.headers.get("User-Agent", ""))
                if self.path.startswith("/nolength/"):
                    body = (root / self.path.removeprefix("/nolength/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                super().do_GET()

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def direct_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear proxy variables so urllib connects to 127.0.0.1 itself."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def http_server(media_dir: Path, direct_http: None) -> Iterator[LocalServer]:
    """A local server over ``media_dir``."""
    server = LocalServer(media_dir)
    yield server
    server.close()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every outgoing socket connection made by the code under test."""
    import socket

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access during a test that forbids it")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts
