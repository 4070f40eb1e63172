"""The load test's three uploads, made from real MNIST test digits (no file is shipped for them)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def photo_of_number(digits: np.ndarray, size=(640, 480), seed: int = 0) -> bytes:
    """A phone-photo-like JPEG: dark ink digits on paper under uneven light, slightly blurred, sensor noise."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    page = np.clip(200 + 30 * xx / w - 20 * yy / h, 0, 255).astype(np.float32)
    x = 80
    for d in digits:
        ink = 1 - np.asarray(Image.fromarray(255 - d).resize((110, 110), Image.Resampling.BILINEAR), np.float32) / 255
        page[160:270, x:x + 110] *= 1 - 0.85 * ink
        x += 125
    blurred = np.asarray(Image.fromarray(page.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)), np.float32)
    a = blurred + np.random.default_rng(seed).normal(0, 4, (h, w))
    rgb = np.clip(np.stack([a, a * 0.97, a * 0.92], -1), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=88)
    return buf.getvalue()


def make_payloads(data_dir) -> dict:
    from digitrec.data import load

    mnist = load("mnist", data_dir, download=False)
    images, labels = np.asarray(mnist.test_images[:4]), np.asarray(mnist.test_labels[:4])
    digit, label = images[0], int(labels[0])
    canvas = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)  # dark ink on white
    return {
        "28x28": {"path": "/v1/predict", "filename": "digit.png", "content_type": "image/png",
                  "data": _png(Image.fromarray(digit)), "expected": label,
                  "what": "MNIST test digit 0 as a 28×28 PNG (light ink on black)"},
        "canvas": {"path": "/v1/predict", "filename": "drawing.png", "content_type": "image/png",
                   "data": _png(canvas), "expected": label,
                   "what": "the same digit as a 280×280 canvas drawing PNG (dark ink on white)"},
        "photo": {"path": "/v1/read", "filename": "number.jpg", "content_type": "image/jpeg",
                  "data": photo_of_number(images), "expected": "".join(map(str, labels)),
                  "what": "640×480 JPEG photo of the number made of MNIST test digits 0–3, uneven light, noise"},
    }


def slow_inline_uploads(side: int = 316) -> dict[str, bytes]:
    """The slowest uploads we found that still qualify for decoding on the event loop under the default limits
    (at most 16 KB and --inline-pixels = 100,000 pixels): textures of many pieces of ink, and noise as a
    low-quality JPEG (which is what gets that much entropy into 16 KB)."""
    grid = np.full((side, side), 255, np.uint8)
    grid[::6] = 0
    grid[:, ::6] = 0
    noise = np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG", quality=5)
    return {"6-px line grid (PNG)": _png(Image.fromarray(grid)), "noise (JPEG, quality 5)": buf.getvalue()}
