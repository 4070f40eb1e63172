"""Opening untrusted image files: an allowlist of formats, a pixel limit, bounded memory, reduced decoding.

    img, size = open_reduced("photo.jpg")   # grayscale, upright, ≤ WORK_SIDE px; size = the upright original's (w, h)

- Formats: PNG, JPEG, BMP, GIF (first frame), TIFF, WebP, passed to Pillow as an explicit list, so no other
  decoder ever runs; PostScript, EPS and PDF (which Pillow hands to Ghostscript) are refused from their first bytes.
- Size: an image over `max_pixels` is refused from its header, before any pixel is decoded.
- Memory and time: JPEGs are decoded at 1/2–1/8 scale when that still leaves ≥ `side` pixels (draft mode), and
  every image is reduced by an integer box filter right after decoding, so all later work is on ≤ side² pixels.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DigitrecError

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
MAX_PIXELS = 40_000_000  # the one default; callers (the server's --max-pixels) pass their own
WORK_SIDE = 1024  # longest side of the image all per-pixel work sees
# EXIF orientation → the transpose that shows the image upright (as browsers and ImageOps.exif_transpose do)
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}
EXIF_KEYS = ("exif", "Raw profile type exif", "XML:com.adobe.xmp", "xmp")  # where Image.getexif looks
REFUSED_MAGIC = {b"%!PS": "PostScript/EPS", b"\xc5\xd0\xd3\xc6": "EPS", b"%PDF": "PDF"}
Source = str | os.PathLike | bytes | Image.Image


def _label(source: Source, name: str | None) -> str:
    return name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")


def _open_stream(source: Source, label: str) -> BinaryIO:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source)
    path = Path(source)
    if not path.is_file():
        raise DigitrecError(f"{label}: file not found" if not path.exists() else f"{label}: not a file")
    return open(path, "rb")


def _check_magic(fp: BinaryIO, label: str) -> None:
    head = fp.read(16)
    fp.seek(0)
    for magic, kind in REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise DigitrecError(f"{label}: {kind} files are not accepted (use {', '.join(FORMATS)})")


def _decode(fp: BinaryIO, label: str, max_pixels: int, side: int) -> tuple[Image.Image, tuple[int, int]]:
    """The file's first frame, decoded (JPEG: at the smallest draft scale that keeps ≥ side px on the long side)."""
    try:
        img = Image.open(fp, formats=FORMATS)
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DigitrecError(f"{label}: not a readable image ({first}; accepted: {', '.join(FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DigitrecError(f"{label}: cannot decode image ({first})") from None
    size = img.size  # before a JPEG draft reduces it
    return _load(img, label, max_pixels, side), size


def _load(img: Image.Image, label: str, max_pixels: int, side: int) -> Image.Image:
    """An opened image's pixels, decoded once its size is checked (a no-op for an image already in memory)."""
    w, h = img.size
    if w * h > max_pixels:
        raise DigitrecError(f"{label}: image is {w}x{h} pixels, more than the {max_pixels:,} allowed")
    try:
        if img.format == "JPEG" and max(w, h) > side:
            factor = math.ceil(max(w, h) / side)  # the reduction _reduce would make; draft does ≤ it for free
            img.draft("L" if img.mode in ("L", "RGB") else img.mode, (math.ceil(w / factor), math.ceil(h / factor)))
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        first = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise DigitrecError(f"{label}: cannot decode image ({first})") from None
    if img.width < 1 or img.height < 1:
        raise DigitrecError(f"{label}: empty image")
    return img


def _reduce(img: Image.Image, side: int) -> Image.Image:
    """An integer box reduction to ≤ side px on the long side, in whichever mode the decoder gave."""
    factor = math.ceil(max(img.size) / side)
    if factor <= 1:
        return img
    size = (max(1, img.width // factor), max(1, img.height // factor))
    if img.mode in ("1", "P"):  # palette indices cannot be averaged
        img = img.convert("RGBA" if img.mode == "P" and "transparency" in img.info else "L")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return img.resize(size, Image.Resampling.BOX)  # 16-bit, 32-bit and float gray
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or "a" in img.mode else "RGB")  # CMYK, YCbCr, ...
    return img.reduce(factor)


def _to_gray(img: Image.Image) -> Image.Image:
    """8-bit grayscale: transparency flattened on white, 16-bit and float gray rescaled rather than clipped."""
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif img.mode in ("I", "F") or img.mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float32)
        peak = float(a.max()) if a.size else 0.0
        top = 1.0 if peak <= 1.0 else 255.0 if peak <= 255 else 65535.0 if peak <= 65535 else peak
        img = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    return img if img.mode == "L" else img.convert("L")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation; 1 without reading when the image carries none of the metadata Pillow takes it from."""
    if not hasattr(img, "tag_v2") and not any(k in img.info for k in EXIF_KEYS):
        return 1
    return img.getexif().get(0x0112, 1)


def open_reduced(source: Source, name: str | None = None, max_pixels: int = MAX_PIXELS,
                 side: int = WORK_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """(grayscale upright image with ≤ side px on its long side, the upright original's (width, height)).

    `source`: a path, bytes or a Pillow image. Boxes found on the reduced image scale back by size / img.size.
    """
    label = _label(source, name)
    if isinstance(source, Image.Image):  # in memory, or opened and not yet decoded (the server reads headers first)
        full = source.size  # before a JPEG draft reduces it
        img = _load(source, label, max_pixels, side)
    else:
        fp = _open_stream(source, label)
        try:
            _check_magic(fp, label)
            img, full = _decode(fp, label, max_pixels, side)
        finally:
            fp.close()
    orientation = _orientation(img)
    img = _to_gray(_reduce(img, side))
    if orientation in UPRIGHT:
        img = img.transpose(UPRIGHT[orientation])
        if orientation >= 5:
            full = (full[1], full[0])
    return img, full
