"""Any image → MNIST's form: 28×28, light ink on black, digit scaled to 20 px and centred by centre of mass.

This is how MNIST itself was made (size-normalised to a 20×20 box, anti-aliased, centred by centre of mass in 28×28).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DigitrecError

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding them
WORK_SIDE = 1024  # huge photos are downscaled to this before any per-pixel work


def open_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Open a file path or bytes as an upright grayscale Pillow image (EXIF applied, alpha flattened on white)."""
    label = name or (str(source) if not isinstance(source, bytes) else "image")
    try:
        if isinstance(source, bytes):
            img = Image.open(io.BytesIO(source))
        else:
            if not Path(source).is_file():
                raise DigitrecError(f"{label}: file not found")
            img = Image.open(source)
        if img.width * img.height > MAX_PIXELS:
            raise DigitrecError(f"{label}: image is {img.width}x{img.height} pixels, more than the {MAX_PIXELS:,} allowed")
        img.load()
    except DigitrecError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DigitrecError(f"{label}: not a readable image ({str(e).splitlines()[0][:120]})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DigitrecError(f"{label}: cannot decode image ({str(e).splitlines()[0][:120]})") from None
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    img = img.convert("L")
    if max(img.size) > WORK_SIDE:
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    return img


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Float 0–1 array with ink bright on dark: dark ink on light paper is inverted (judged by the border)."""
    a = gray.astype(np.float32) / 255.0
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 0.5:
        a = 1.0 - a
    lo = np.percentile(a, 50)  # the paper's level becomes black
    a = np.clip((a - lo) / max(1e-6, a.max() - lo), 0, 1)
    return a


def mnist_form(ink: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    """Crop to the ink, scale the longest side to 20 px (anti-aliased), centre by centre of mass in 28×28 (float 0–1)."""
    mask = ink > threshold
    if not mask.any():
        return np.zeros((28, 28), dtype=np.float32)
    ys, xs = np.nonzero(mask)
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS)
    small_a = np.asarray(small, dtype=np.float32) / 255.0
    total = small_a.sum()
    cy, cx = ((np.indices(small_a.shape) * small_a).reshape(2, -1).sum(1) / total) if total > 0 else (nh / 2, nw / 2)
    top = int(round(14 - cy))
    left = int(round(14 - cx))
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
    out = np.zeros((28, 28), dtype=np.float32)
    out[top:top + nh, left:left + nw] = small_a
    return out


def load_digit(source: str | os.PathLike | bytes, name: str | None = None) -> np.ndarray:
    """One digit image → float32 28×28 in 0–1, MNIST form."""
    return mnist_form(to_ink(np.asarray(open_image(source, name))))
