"""The work that runs in the decode pool: image header check, decoding and preprocessing — never a forward pass.

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


@functools.lru_cache(maxsize=16)
def _takes_max_pixels(fn) -> bool:
    try:
        return "max_pixels" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _limited(fn, max_pixels: int) -> dict:
    """Preprocessing that takes a pixel limit gets the service's; otherwise its own default applies as well."""
    return {"max_pixels": max_pixels} if _takes_max_pixels(fn) else {}


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Read only the header: refuse unknown formats and decompression bombs (tiny file, huge size) before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                width, height = img.size
    except Image.DecompressionBombError:  # Pillow's own guard, at twice its MAX_IMAGE_PIXELS
        raise ApiError(413, f"image has too many pixels (a decompression bomb?), more than the {max_pixels:,} "
                            "allowed; refused before decoding") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(422, f"upload is not a readable image ({', '.join(FORMATS)})") from None
    if width * height > max_pixels:
        raise ApiError(413, f"image is {width}x{height} pixels, more than the {max_pixels:,} allowed")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_base64(image: np.ndarray) -> str:
    """A float 0–1 grey image (28×28: what the model saw) as a base64 PNG. Written directly (8-bit grey, no
    filter, zlib level 1): three times faster than Pillow's encoder for an image this small."""
    pixels = np.clip(np.asarray(image) * 255 + 0.5, 0, 255).astype(np.uint8)
    h, w = pixels.shape
    rows = np.hstack([np.zeros((h, 1), np.uint8), pixels]).tobytes()  # each row: filter type 0, then its pixels
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + _chunk(b"IDAT", zlib.compress(rows, 1)) + _chunk(b"IEND", b""))
    return base64.b64encode(png).decode("ascii")


def one_digit(data: bytes, max_pixels: int) -> tuple[np.ndarray, str]:
    """An uploaded image of one digit → its MNIST-form 28×28 image and that image as a base64 PNG."""
    check_pixels(data, max_pixels)
    try:
        image = load_digit(data, "upload", **_limited(load_digit, max_pixels))
    except DigitrecError as e:
        raise ApiError(422, str(e)) from None
    return image, png_base64(image)


def digits_of_number(data: bytes, max_pixels: int) -> list:
    """An uploaded photo of a number → its digits' crops (preprocess.DigitCrop), left to right."""
    check_pixels(data, max_pixels)
    try:
        return segment(data, "upload", **_limited(segment, max_pixels))
    except DigitrecError as e:
        raise ApiError(422, str(e)) from None
