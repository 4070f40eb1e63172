"""The web page in a real headless Chromium: draw digits with the mouse and by touch, read a photo of a number.

Needs the Debian package `chromium` and `pip install playwright` — but never `playwright install`: the browser is
the system's. Without them these tests are skipped with the reason; DIGITREC_REQUIRE_BROWSER=1 (CI) makes that a
failure (tests/_browser.py).
Set DIGITREC_SCREENSHOT=path.png to save a screenshot of the page after it recognised a drawn digit.
"""
from __future__ import annotations

import io
import math
import os

import httpx
import numpy as np
import pytest
from PIL import Image

from _browser import ARGS, REQUIRED, chromium_or_skip
from _live_server import LiveServer
from digitrec.fileio import write_bytes
from digitrec.serve import create_app

if REQUIRED:
    from playwright.sync_api import expect, sync_playwright
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser test: needs the playwright package "
                                                                 "(pip install -e '.[test]')")
    expect, sync_playwright = sync_api.expect, sync_api.sync_playwright
pytestmark = [pytest.mark.slow, pytest.mark.browser]

# Stroke paths in canvas units (the canvas is 280×280), drawn like a person would.
STROKES = {
    "1": [[(140, 45), (140, 240)]],
    "7": [[(75, 55), (205, 55), (120, 240)]],
    "0": [[(140 + 65 * math.sin(t / 24 * 2 * math.pi), 140 - 95 * math.cos(t / 24 * 2 * math.pi)) for t in range(25)]],
}


@pytest.fixture(scope="module")
def server(tiny_run):
    with LiveServer(create_app(tiny_run / "model.pt")) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    chromium = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1100, "height": 1000}, has_touch=True)
    page = context.new_page()
    problems, foreign = [], []
    expected = "Failed to load resource: the server responded with a status of 4"  # API errors the page shows
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" and expected not in m.text else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: foreign.append(r.url)
            if not r.url.startswith((server.url + "/", "data:", "blob:")) else None)
    page.goto(server.url + "/")
    yield page
    context.close()
    assert not problems, problems  # no script errors, no CSP violations
    assert not foreign, foreign  # the page works offline: nothing fetched from other hosts


def pad_to_page(page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#pad").bounding_box()
    return box["x"] + x * box["width"] / 280, box["y"] + y * box["height"] / 280


def draw_with_mouse(page, digit: str) -> None:
    for path in STROKES[digit]:
        page.mouse.move(*pad_to_page(page, *path[0]))
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(path, path[1:]):
            for i in range(1, 9):  # intermediate points, as a real hand produces
                page.mouse.move(*pad_to_page(page, x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8))
        page.mouse.up()


def draw_with_touch(page, digit: str) -> None:
    cdp = page.context.new_cdp_session(page)
    for path in STROKES[digit]:
        points = [pad_to_page(page, x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8)
                  for (x0, y0), (x1, y1) in zip(path, path[1:]) for i in range(9)]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": points[0][0], "y": points[0][1]}]})
        for x, y in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def shown_probabilities(page) -> list[float]:
    return [float(t.rstrip("%")) / 100 for t in page.locator("#bars .pct").all_text_contents()]


@pytest.mark.parametrize("digit", ["1", "7", "0"])
def test_draw_a_digit_with_the_mouse(page, digit):
    expect(page.locator("#digit")).to_have_text("–")
    draw_with_mouse(page, digit)
    expect(page.locator("#digit")).to_have_text(digit, timeout=20_000)
    probs = shown_probabilities(page)
    assert len(probs) == 10 and abs(sum(probs) - 1) < 0.02 and int(np.argmax(probs)) == int(digit)
    expect(page.locator("#bars li.top")).to_have_count(1)
    expect(page.locator("#seen")).to_be_visible()
    page.click("#clear")
    expect(page.locator("#digit")).to_have_text("–")
    assert page.locator("#bars .pct").all_text_contents() == [""] * 10  # bars emptied


def test_draw_by_touch(page):
    draw_with_touch(page, "1")
    expect(page.locator("#digit")).to_have_text("1", timeout=20_000)


def test_read_a_photo_and_screenshot(page, server, mnist):
    images, labels = np.asarray(mnist.test_images[:3]), np.asarray(mnist.test_labels[:3])
    photo = Image.new("RGB", (3 * 110 + 40, 150), (246, 244, 238))  # off-white paper
    for i, image in enumerate(images):
        ink = Image.fromarray(255 - image).resize((100, 100), Image.Resampling.BILINEAR).convert("RGB")
        photo.paste(ink, (20 + 110 * i, 25), Image.fromarray(image).resize((100, 100)))  # ink only, paper shows
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    api = httpx.post(server.url + "/v1/read", files={"file": ("n.jpg", buf.getvalue(), "image/jpeg")}).json()
    assert api["text"] == "".join(map(str, labels))

    page.set_input_files("#photo", files=[{"name": "number.jpg", "mimeType": "image/jpeg", "buffer": buf.getvalue()}])
    expect(page.locator("#read-text")).to_have_text(api["text"], timeout=20_000)
    expect(page.locator("#read-digits img")).to_have_count(3)
    expect(page.locator("#photo-wrap .box")).to_have_count(3)
    shown = page.locator("#read-digits img").evaluate_all("els => els.map(e => e.src.split(',')[1])")
    assert shown == api["crops"]  # the page shows exactly the 28×28 crops the model saw

    draw_with_mouse(page, "7")  # both panels filled for the screenshot
    expect(page.locator("#digit")).to_have_text("7", timeout=20_000)
    if os.environ.get("DIGITREC_SCREENSHOT"):
        write_bytes(os.environ["DIGITREC_SCREENSHOT"], page.screenshot(full_page=True))


def test_upload_of_a_non_image_shows_the_servers_error(page):
    page.set_input_files("#photo", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    expect(page.locator("#read-error")).to_be_visible(timeout=20_000)
    expect(page.locator("#read-error")).to_contain_text("not a readable image")


def test_no_digit_answer_is_shown_as_such(page):
    """An image without ink gets `digit: null` from the server; the page says so instead of showing a guess."""
    answer = '{"digit": null, "confidence": null, "probabilities": null, "crop": ""}'
    page.route("**/v1/predict", lambda route: route.fulfill(status=200, content_type="application/json", body=answer))
    draw_with_mouse(page, "1")
    expect(page.locator("#confidence")).to_have_text("no digit found", timeout=20_000)
    expect(page.locator("#digit")).to_have_text("–")
    assert page.locator("#bars .pct").all_text_contents() == [""] * 10
