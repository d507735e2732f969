"""End-to-end: the search page (``GET /``) in headless Chromium, against a real server on the
demo corpus indexed with the offline profile.

A person types a query, sees the expected card, clicks play and the video starts at the moment
that matched; thumbnails load, audio gets a player, snippets are highlighted and never run
markup, an uploaded photo finds its original, "more like this" works, and a server with an API
key asks for it. Every request must stay on the loopback server: the page has no CDN, fonts or
scripts from elsewhere.

Needs Debian's Chromium (``apt-get install chromium``; Playwright's own browser downloads are
not used). Set ``POLYMODAL_CHROMIUM`` to use another Chromium binary.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("POLYMODAL_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium (or set POLYMODAL_CHROMIUM)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="needs uvicorn (pip install 'polymodal[serve]')")
expect = sync_api.expect

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_KEY = "test-key-0123456789abcdef"
WAIT_MS = 60_000  # generous: the first image query loads a model


class Server:
    """The ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: object) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def service(indexed):
    from polymodal.serve.service import SearchQuery, Service

    _, _, db, _ = indexed
    svc = Service.open(str(db))
    svc.search(SearchQuery(text="warm up the models", limit=1))
    yield svc
    svc.store.close()


@pytest.fixture(scope="module")
def server(service):
    from polymodal.serve.http import create_app

    with Server(create_app(service)) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def keyed_server(service):
    """The same store behind a server that needs an API key."""
    from polymodal.serve.http import create_app

    with Server(create_app(dataclasses.replace(service, api_key=API_KEY))) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Tab:
    """A page in a fresh browser context that records console errors and every request."""

    def __init__(self, page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.set_default_timeout(WAIT_MS)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: str = "/") -> Tab:
        self.page.goto(self.origin + path)
        return self

    def search(self, text: str):
        box = self.page.get_by_label("Search words")
        box.fill(text)
        box.press("Enter")
        self.wait_status(rf"\d+ results? for “{re.escape(text)}”")
        return self.cards()

    def wait_status(self, pattern: str) -> None:
        expect(self.page.get_by_test_id("status")).to_have_text(re.compile(pattern), timeout=WAIT_MS)

    def cards(self):
        return self.page.get_by_test_id("result-card")

    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if not (u.startswith(self.origin + "/") or u.startswith(("data:", "blob:")))]


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Tab(context.new_page(), server)
    context.close()


def test_page_loads_self_contained_with_no_errors(tab):
    tab.open()
    page = tab.page
    expect(page.get_by_test_id("about")).to_contain_text("items indexed")
    expect(page.get_by_label("Search words")).to_be_focused()
    expect(page.get_by_test_id("key-form")).to_be_hidden()
    html = page.content()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=[\"']?(https?:)?//", html), "external resource"
    # keyboard: "/" comes back to the search box from anywhere, Enter searches
    page.get_by_text("Skip to results").focus()
    page.keyboard.press("/")
    expect(page.get_by_label("Search words")).to_be_focused()
    tab.search("tomato soup recipe")
    assert tab.errors == []
    assert tab.foreign_requests() == []


def test_the_inline_script_is_allowed_by_the_pages_csp(server):
    """The page's Content-Security-Policy allows exactly its one inline script (by hash)."""
    import urllib.request

    with urllib.request.urlopen(server + "/") as response:
        html = response.read().decode()
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and "<script src" not in html
    text = scripts[0].replace("\r\n", "\n")  # what the browser hashes: the parser normalises newlines
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    assert f"'sha256-{digest}'" in csp.group(1), f"update script-src in index.html to 'sha256-{digest}'"


def test_query_finds_the_video_moment_and_play_starts_there(tab, indexed):
    _, checks, _, _ = indexed
    check = next(c for c in checks if c.query == "launch day")
    lo, hi = check.span
    cards = tab.open().search("launch day")
    top = cards.first
    expect(top).to_have_attribute("data-name", "slideshow.mp4")
    start, end = float(top.get_attribute("data-start")), float(top.get_attribute("data-end"))
    assert lo - 0.25 <= start < end <= hi + 0.25
    expect(top.get_by_test_id("moment")).to_have_text(re.compile(r"^0:\d\d\u20130:\d\d$"))
    expect(top.get_by_test_id("snippet").locator("mark").first).to_be_visible()
    video = top.get_by_test_id("video").element_handle()
    assert video is not None
    assert "#t=" in video.get_attribute("src")
    video.evaluate("v => v.addEventListener('playing', () => { v.dataset.playedFrom = v.currentTime }, {once: true})")
    top.get_by_test_id("play").click()
    tab.page.wait_for_function(
        "v => v.dataset.playedFrom !== undefined && !v.paused && v.currentTime > Number(v.dataset.playedFrom)",
        arg=video,
        timeout=WAIT_MS,
    )
    played_from = float(video.get_attribute("data-played-from"))
    assert start - 0.25 <= played_from <= end, (played_from, start, end)
    state = video.evaluate("v => ({t: v.currentTime, paused: v.paused, error: v.error && v.error.code})")
    assert state["paused"] is False and state["error"] is None
    assert lo - 0.25 <= played_from <= state["t"]
    expect(top.get_by_test_id("play")).to_be_hidden()
    assert tab.errors == []
    assert tab.foreign_requests() == []


def test_photo_result_shows_a_loaded_thumbnail_and_filters_apply(tab):
    cards = tab.open().search("a cat")
    top = cards.first
    expect(top).to_have_attribute("data-name", "chelsea.png")
    expect(top).to_have_attribute("data-modality", "image")
    thumb = top.get_by_test_id("thumb")
    expect(thumb).to_be_visible()
    tab.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    # uncheck photos: the search runs again without them
    tab.page.get_by_role("checkbox", name="Photos").uncheck()
    expect(cards.first).not_to_have_attribute("data-modality", "image")
    modalities = {c.get_attribute("data-modality") for c in cards.all()}
    assert modalities and "image" not in modalities
    assert tab.errors == []


def test_voice_memo_result_has_an_audio_player(tab, indexed):
    root, _, _, _ = indexed
    if not (root / "memos" / "shopping.wav").exists():
        pytest.skip("no speech synthesiser, so no voice memos (apt-get install festival festvox-kallpc16k)")
    top = tab.open().search("buy milk and eggs").first
    expect(top).to_have_attribute("data-name", "shopping.wav")
    audio = top.get_by_test_id("audio")
    expect(audio).to_have_count(1)
    tab.page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    expect(top.get_by_test_id("play")).to_be_visible()
    expect(top.get_by_test_id("snippet").locator("mark").first).to_have_text(re.compile("buy|milk|eggs"))


def test_snippets_are_highlighted_and_never_run_markup(tab):
    page = tab.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # the real server: the [matches] it marks become <mark>
    top = tab.open().search("tomato soup recipe").first
    expect(top).to_have_attribute("data-name", "tomato-soup.md")
    marks = top.get_by_test_id("snippet").locator("mark")
    assert {m.lower() for m in marks.all_inner_texts()} >= {"tomato", "soup"}
    # a hostile server answer (a note or file name full of markup) shows as text
    evil = {
        "id": 'x" onmouseover="window.__pwned=1',
        "uri": "/srv/<img src=x onerror=window.__pwned=2>.md",
        "name": "<img src=x onerror=window.__pwned=3>.md",
        "score": 1.0,
        "modality": "text",
        "start": None,
        "end": None,
        "snippet": "<script>window.__pwned=4;alert(1)</script> see [<b>bold</b>] <img src=x onerror=alert(2)>",
        "media": "javascript:alert(3)",
    }
    page.route(
        "**/search",
        lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps({"hits": [evil]})),
    )
    query = "<img src=x onerror=alert(4)>"
    box = page.get_by_label("Search words")
    box.fill(query)
    box.press("Enter")
    tab.wait_status(r"1 result for “<img src=x onerror=alert\(4\)>”")
    card = tab.cards().first
    expect(card.get_by_test_id("name")).to_have_text(evil["name"])
    snippet = card.get_by_test_id("snippet")
    expect(snippet).to_contain_text("<script>window.__pwned=4;alert(1)</script> see")
    expect(snippet.locator("mark")).to_have_text("<b>bold</b>")
    assert card.get_attribute("data-id") == evil["id"]
    assert page.locator("img[src=x], #results script, #results b, a[href^='javascript']").count() == 0
    card.hover()
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []


def test_empty_results_and_errors_have_clear_messages(tab):
    page = tab.open().page
    answers = iter(
        [
            {"status": 200, "body": {"hits": []}},
            {"status": 422, "body": {"detail": "limit: Input should be greater than or equal to 1"}},
            {"status": 500, "body": {"detail": "internal error (see the server log)"}},
            None,  # the server is gone
        ]
    )

    def answer(route):
        nxt = next(answers)
        if nxt is None:
            route.abort("connectionrefused")
        else:
            route.fulfill(status=nxt["status"], content_type="application/json", body=json.dumps(nxt["body"]))

    page.route("**/search", answer)
    box, error = page.get_by_label("Search words"), page.get_by_test_id("error")
    box.fill("nothing like this")
    box.press("Enter")
    tab.wait_status(r"^Nothing found for “nothing like this”")
    expect(error).to_be_hidden()
    box.press("Enter")
    expect(error).to_have_text("limit: Input should be greater than or equal to 1")
    box.press("Enter")
    expect(error).to_contain_text("The server hit an error")
    box.press("Enter")
    expect(error).to_contain_text("Cannot reach the search server")
    expect(tab.cards()).to_have_count(0)


def test_upload_an_image_finds_the_photo(tab, indexed, tmp_path):
    from PIL import Image

    root, _, _, _ = indexed
    photo = Image.open(root / "photos" / "coffee.png")
    w, h = photo.size
    crop = tmp_path / "my-coffee.jpg"
    photo.crop((w // 10, h // 10, w - w // 10, h - h // 10)).convert("RGB").save(crop, quality=85)
    page = tab.open().page
    page.get_by_test_id("file-input").set_input_files(str(crop))
    tab.wait_status(r"\d+ results? like my-coffee\.jpg")
    expect(tab.cards().first).to_have_attribute("data-name", "coffee.png")
    expect(page.locator("#example img")).to_be_visible()
    assert tab.errors == []
    assert tab.foreign_requests() == []


def test_more_like_this(tab):
    cards = tab.open().search("a cat")
    top = cards.first
    expect(top).to_have_attribute("data-name", "chelsea.png")
    cat_id = top.get_attribute("data-id")
    top.get_by_test_id("more-like-this").click()
    tab.wait_status(r"\d+ results? like chelsea\.png")
    found = [
        (c.get_attribute("data-id"), c.get_attribute("data-modality"), c.get_attribute("data-start"))
        for c in cards.all()
    ]
    assert found and cat_id not in {f[0] for f in found}
    # the cat slide of the video (4-8 s) is like the cat photo
    assert any(m == "video" and s is not None and float(s) < 8 for _, m, s in found)
    assert tab.errors == []


def test_api_key_is_asked_for_and_then_used(browser, keyed_server):
    context = browser.new_context()
    try:
        tab = Tab(context.new_page(), keyed_server).open()
        page = tab.page
        key_form = page.get_by_test_id("key-form")
        expect(key_form).to_be_visible()  # /ready answered 401
        box = page.get_by_label("Search words")
        box.fill("launch day")
        box.press("Enter")
        expect(key_form).to_be_visible()
        expect(tab.cards()).to_have_count(0)
        page.get_by_label("API key").fill("not-the-right-key-at-all")
        page.get_by_label("API key").press("Enter")
        expect(page.get_by_test_id("key-message")).to_contain_text("not accepted")
        page.get_by_label("API key").fill(API_KEY)
        page.get_by_test_id("key-submit").click()
        tab.wait_status(r"\d+ results? for “launch day”")  # the search ran again with the key
        expect(key_form).to_be_hidden()
        top = tab.cards().first
        expect(top).to_have_attribute("data-name", "slideshow.mp4")
        video = top.get_by_test_id("video")
        assert "sig=" in (video.get_attribute("src") or "")
        # the signed media link plays without the Authorization header
        page.wait_for_function("v => v.readyState >= 1 && v.duration > 0", arg=video.element_handle())
        assert page.evaluate("() => sessionStorage.getItem('polymodal.apiKey')") == API_KEY
        # a reload in the same tab keeps the key
        page.reload()
        expect(page.get_by_test_id("about")).to_contain_text("items indexed")
        expect(key_form).to_be_hidden()
        assert tab.foreign_requests() == []
    finally:
        context.close()
