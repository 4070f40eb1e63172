"""Decoding and preprocessing an upload — never a forward pass: the image header check (format allowlist, pixel
limit, decompression bombs) before any pixel is decoded, then the MNIST-form crop(s) and their PNGs.

This runs in the decode pool, or on the event loop for a small upload (small_header, then at most `--inline-pixels`
pixels; service.py): a 28×28 digit or a canvas drawing is preprocessed in less time than a hand-off to a thread
costs once the threads contend for the GIL.
Forward passes run on the model's own thread (batcher.py), so decoding and inference never wait on one pool.
"""
from __future__ import annotations

import base64
import functools
import inspect
import io
import struct
import warnings
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DigitrecError
from ..preprocess import load_digit, segment
from .asgi import ApiError

# What the service accepts; anything else (PostScript, PDF, exotic formats) is refused before a decoder runs.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
INLINE_BYTES = 16 * 1024  # uploads decoded on the event loop are at most this large (and have few pixels)
INLINE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG
PNG_INFLATED = (b"zTXt", b"iTXt", b"iCCP")  # PNG chunks Pillow decompresses while reading the header


@functools.lru_cache(maxsize=16)
def _takes_max_pixels(fn) -> bool:
    try:
        return "max_pixels" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _limited(fn, max_pixels: int) -> dict:
    """Preprocessing that takes a pixel limit gets the service's; otherwise its own default applies as well."""
    return {"max_pixels": max_pixels} if _takes_max_pixels(fn) else {}


def open_upload(data: bytes, max_pixels: int) -> Image.Image:
    """The upload opened with only its header read: unknown formats and decompression bombs (tiny file, huge
    size) are refused here, before any decoding."""
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)  # (its DecompressionBombWarning: quiet_bomb_warnings)
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its MAX_IMAGE_PIXELS
        raise ApiError(413, f"image has too many pixels (a decompression bomb?), more than the {max_pixels:,} "
                            "allowed; refused before decoding") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(422, f"upload is not a readable image ({', '.join(FORMATS)})") from None
    width, height = img.size
    if width * height > max_pixels:
        raise ApiError(413, f"image is {width}x{height} pixels, more than the {max_pixels:,} allowed")
    return img


def quiet_bomb_warnings() -> None:
    """Pillow warns of images between its bomb limits; the server refuses by its own --max-pixels, so the warning
    (one per upload, at a cost of a warnings context each) is silenced once per process."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def small_header(data: bytes, max_pixels: int) -> Image.Image | None:
    """A small upload opened (open_upload) — a PNG or JPEG of at most INLINE_BYTES, whose header is read in
    microseconds (no compressed PNG text, which Pillow would inflate) — so that the event loop can judge it by its
    pixels; None for any other upload (its header is read in the decode pool)."""
    if len(data) > INLINE_BYTES or not data.startswith(INLINE_MAGIC) or any(t in data for t in PNG_INFLATED):
        return None
    return open_upload(data, max_pixels)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=8)
def _png_head(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


PNG_END = _chunk(b"IEND", b"")


def png_base64(image: np.ndarray) -> str:
    """A float 0–1 grey image (28×28: what the model saw) as a base64 PNG. Written directly (8-bit grey, no
    filter, zlib level 1): three times faster than Pillow's encoder for an image this small."""
    h, w = image.shape
    rows = np.zeros((h, w + 1), np.uint8)  # each row: filter type 0, then its pixels
    rows[:, 1:] = np.clip(np.asarray(image) * 255 + 0.5, 0, 255)
    png = _png_head(w, h) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)) + PNG_END
    return base64.b64encode(png).decode("ascii")


def one_digit(upload: bytes | Image.Image, max_pixels: int) -> tuple[np.ndarray, str]:
    """An uploaded image of one digit (bytes, or opened by open_upload) → its MNIST-form 28×28 image and that
    image as a base64 PNG."""
    img = upload if isinstance(upload, Image.Image) else open_upload(upload, max_pixels)
    try:
        image = load_digit(img, "upload", **_limited(load_digit, max_pixels))
    except DigitrecError as e:
        raise ApiError(422, str(e)) from None
    return image, png_base64(image)


def digits_of_number(upload: bytes | Image.Image, max_pixels: int) -> list:
    """An uploaded photo of a number (bytes, or opened by open_upload) → its digits' crops
    (preprocess.DigitCrop), left to right."""
    img = upload if isinstance(upload, Image.Image) else open_upload(upload, max_pixels)
    try:
        return segment(img, "upload", **_limited(segment, max_pixels))
    except DigitrecError as e:
        raise ApiError(422, str(e)) from None
