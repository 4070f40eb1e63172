"""The clean-image shortcut: a canvas drawing, a scan or a small crop needs no lighting analysis.

Preprocessing's polarity median (`preprocess._dark_ink`) and background opening (`preprocess._background`)
exist for photos: paper that is not one grey, shadows, ink that may be lighter or darker than its surroundings.
A clean image has none of that: its border is all paper at one level, and every pixel is either that paper or ink
departing from it one way only. Its polarity is that way and its lighting is even — what the full analysis
finds for such an image (checked on the development set and the test corpus: tests/test_preprocess.py), at a
fraction of the cost, since for a small image that analysis is most of the work. The ink map is then made
exactly as the full path makes it for an evenly lit image.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

TOLERANCE = 5  # grey levels (of 255) from the paper's level within which a pixel is paper


def grey_counts(gray: np.ndarray) -> np.ndarray:
    """The count of each of the 256 grey levels of an 8-bit image."""
    # Pillow's is twice NumPy's speed on a large image, NumPy's has less overhead on a small one
    return np.array(Image.fromarray(gray).histogram()) if gray.size > 20_000 else np.bincount(gray.ravel(), minlength=256)


def clean_polarity(gray: np.ndarray, counts: np.ndarray | None = None) -> tuple[bool, float] | None:
    """(whether the ink is dark, the paper's level 0–1) of a clean image; None when the image is not clean.

    gray: the 8-bit image (preprocess.ink_and_lighting's, after denoising), and its grey_counts when known.
    Everything is read off its histogram and its border: the paper's level is the median grey."""
    if min(gray.shape) < 3:
        return None
    counts = grey_counts(gray) if counts is None else counts
    below = np.cumsum(counts)
    n = int(below[-1])
    paper = (int(np.searchsorted(below, (n - 1) // 2, side="right"))
             + int(np.searchsorted(below, n // 2, side="right"))) / 2  # np.median of the grey levels
    edge = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if max(int(edge.max()) - paper, paper - int(edge.min())) > TOLERANCE:  # a gradient, a frame, ink at the edge
        return None
    has_dark = bool(counts[:max(0, math.ceil(paper - TOLERANCE))].any())
    has_light = bool(counts[math.floor(paper + TOLERANCE) + 1:].any())
    if has_dark == has_light:  # ink both ways (texture, shading, noise) — or no ink at all
        return None
    return has_dark, paper / 255
