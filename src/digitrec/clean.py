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

import numpy as np

from .imageops import median

TOLERANCE = 0.02  # how far from the paper's level a pixel may lie and still be paper (5 grey levels of 255)


def clean_polarity(small: np.ndarray) -> bool | None:
    """Whether the ink of a clean image is dark (True) or light (False); None when the image is not clean.

    small: the image at background scale, 0–1 (preprocess.ink_and_lighting)."""
    if min(small.shape) < 3:
        return None
    paper, t = median(small), TOLERANCE
    edge = np.concatenate([small[0], small[-1], small[1:-1, 0], small[1:-1, -1]])
    if float(np.abs(edge - paper).max()) > t:  # the border is not all paper: a gradient, a frame, ink at the edge
        return None
    has_dark, has_light = bool((small < paper - t).any()), bool((small > paper + t).any())
    if has_dark == has_light:  # ink both ways (texture, shading, noise) — or no ink at all
        return None
    return has_dark
