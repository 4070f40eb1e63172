"""Where an upload is decoded: on the event loop (a small PNG or JPEG of at most --inline-pixels pixels, its header
read once) or in the decode pool (everything else, with the client watched). No model and no server needed: the
decision is Service.decode's and decode.small_header's alone."""
from __future__ import annotations

import asyncio
import io
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from digitrec.serve.asgi import ApiError
from digitrec.serve.decode import INLINE_BYTES, small_header
from digitrec.serve.limits import ServeLimits
from digitrec.serve.service import Service


def encoded(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels (its data is not needed to read the header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


DIGIT = np.zeros((28, 28))
DIGIT[6:22, 12:16] = 255


def test_small_png_and_jpeg_are_opened_for_the_loop():
    for data in (encoded(DIGIT), encoded(DIGIT, "JPEG")):
        img = small_header(data, 10_000)
        assert isinstance(img, Image.Image) and img.size == (28, 28)


def test_large_other_format_or_compressed_text_uploads_go_to_the_pool():
    noise = np.random.default_rng(0).integers(0, 256, (150, 150))
    big = encoded(noise)
    assert len(big) > INLINE_BYTES and small_header(big, 10**6) is None
    assert small_header(encoded(DIGIT, "BMP"), 10**6) is None  # only PNG and JPEG are judged on the loop
    info = PngImagePlugin.PngInfo()
    info.add_itxt("comment", "x" * 100, zip=True)  # Pillow would inflate it while reading the header
    with_text = encoded(DIGIT, pnginfo=info)
    assert b"iTXt" in with_text and small_header(with_text, 10**6) is None


def test_small_header_refuses_bombs_and_garbage_at_once():
    with pytest.raises(ApiError) as bomb:
        small_header(png_claiming(2000, 2000), 10**6)
    assert bomb.value.status == 413
    with pytest.raises(ApiError) as garbage:
        small_header(b"\x89PNG\r\n\x1a\n" + b"not a png at all", 10**6)
    assert garbage.value.status == 422


class Watched:
    """A request stand-in: records whether the service started watching the client (it does so only for the pool)."""

    def __init__(self) -> None:
        self.watched = False

    def watch_client(self) -> None:
        self.watched = True


def where_decoded(data: bytes, inline_pixels: int) -> tuple[str, type, bool]:
    """(thread name, type of the upload handed to fn, client watched) for one Service.decode call."""
    service = object.__new__(Service)  # the decision needs only limits and the pool, not a model
    service.limits = ServeLimits(inline_pixels=inline_pixels)
    service.decoder = ThreadPoolExecutor(1, thread_name_prefix="digitrec-decode")
    request = Watched()

    def fn(upload, max_pixels):
        assert max_pixels == service.limits.max_pixels
        return threading.current_thread().name, type(upload)

    try:
        name, kind = asyncio.run(service.decode(request, fn, data))
    finally:
        service.decoder.shutdown()
    return name, kind, request.watched


def test_uploads_up_to_inline_pixels_are_decoded_on_the_loop_once_opened():
    loop_thread = threading.current_thread().name  # asyncio.run runs the loop in this thread
    assert where_decoded(encoded(DIGIT), 28 * 28) == (loop_thread, PngImagePlugin.PngImageFile, False)


def test_larger_uploads_and_inline_off_go_to_the_pool_with_the_client_watched():
    name, kind, watched = where_decoded(encoded(np.zeros((29, 29))), 28 * 28)
    assert name.startswith("digitrec-decode") and watched
    assert issubclass(kind, Image.Image)  # its header already read on the loop: not read twice
    name, kind, watched = where_decoded(encoded(DIGIT), 0)
    assert name.startswith("digitrec-decode") and watched
    name, kind, watched = where_decoded(encoded(DIGIT, "BMP"), 10**6)
    assert name.startswith("digitrec-decode") and watched and kind is bytes


def test_a_canvas_drawing_is_decoded_on_the_loop_by_default():
    canvas = np.full((280, 280), 255)
    canvas[60:220, 120:150] = 0
    data = encoded(canvas)
    assert len(data) <= INLINE_BYTES and ServeLimits().inline_pixels >= 280 * 280
    name, kind, watched = where_decoded(data, ServeLimits().inline_pixels)
    assert name == threading.current_thread().name and not watched


def test_the_slowest_uploads_the_loop_takes_cost_bounded_time():
    """The worst uploads we found that still qualify for the event loop (textures, noise squeezed into a 16 KB
    JPEG) hold it some 10–30 ms (benchmarks/loadtest.py records it); a generous bound here, and nothing larger
    qualifies."""
    import time

    from benchmarks.loadtest_payloads import slow_inline_uploads
    from digitrec.serve.decode import digits_of_number, one_digit

    limits = ServeLimits()
    for name, data in slow_inline_uploads().items():
        header = small_header(data, limits.max_pixels)
        assert header is not None and header.width * header.height <= limits.inline_pixels, name
        for fn in (one_digit, digits_of_number):
            fn(data, limits.max_pixels)
            t0 = time.perf_counter()
            fn(data, limits.max_pixels)
            assert time.perf_counter() - t0 < 1.0, (name, fn.__name__)
    side = int(np.sqrt(limits.inline_pixels)) + 1  # one pixel over the limit: the pool's
    name, _, watched = where_decoded(encoded(np.zeros((side, side))), limits.inline_pixels)
    assert name.startswith("digitrec-decode") and watched
