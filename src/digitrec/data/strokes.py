"""Digits drawn stroke by stroke from skeletons of the ways people write them (allographs), for training.

MNIST's writers wrote a bare 1, a mostly open 4, an uncrossed 7. Elsewhere people write a 1 with a long lead-in
stroke, a closed 4 or one like 'ч', a crossed 7, a 3 with a flat top, a 9 with a curved tail. Each allograph is a
few strokes through points of a unit box (x right, y down); every drawing jitters the points, picks a pen width
and is then varied as a batch like the font digits (data/fonts.py: slant, rotation, width, wobble, MNIST form).

    glyphs, labels = stroke_glyphs(seed=0)   # float32 N×64×64 skeleton drawings, uint8 labels
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .fonts import GLYPH


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 14) -> list[tuple]:
    """Points along an ellipse from `start` to `end` degrees (0° = right, 90° = down: image coordinates)."""
    t = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# digit → allographs → strokes → points
ALLOGRAPHS: dict[int, list[list[list[tuple]]]] = {
    0: [[arc(0.5, 0.5, 0.38, 0.5, -90, 275)], [arc(0.5, 0.5, 0.28, 0.5, -100, 265)]],
    1: [[[(0.55, 0.0), (0.5, 1.0)]],
        [[(0.3, 0.22), (0.55, 0.0), (0.52, 1.0)]],  # a short flag
        [[(0.12, 0.48), (0.55, 0.0), (0.5, 1.0)]],  # the continental 1: a long lead-in stroke
        [[(0.3, 0.2), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]]],  # flag and foot
    2: [[arc(0.5, 0.3, 0.35, 0.3, 195, 380) + [(0.12, 1.0), (0.9, 1.0)]],
        [arc(0.5, 0.28, 0.33, 0.28, 200, 370) + [(0.2, 0.9)] + arc(0.28, 0.88, 0.12, 0.1, 240, 20)[1:] + [(0.9, 1.0)]]],
    3: [[arc(0.48, 0.26, 0.32, 0.26, 200, 450)[:-2] + [(0.42, 0.5)] + arc(0.48, 0.74, 0.36, 0.26, -90, 160)],
        [[(0.15, 0.0), (0.85, 0.0), (0.42, 0.42)] + arc(0.48, 0.7, 0.36, 0.29, -80, 160)]],  # a flat top
    4: [[[(0.68, 1.0), (0.68, 0.0), (0.08, 0.66), (0.92, 0.66)]],  # closed
        [[(0.3, 0.0), (0.12, 0.62), (0.9, 0.62)], [(0.68, 0.2), (0.68, 1.0)]],  # open
        [[(0.15, 0.0), (0.15, 0.42)] + arc(0.45, 0.42, 0.3, 0.14, 180, 90)[1:] + [(0.8, 0.5)],
         [(0.8, 0.0), (0.8, 1.0)]]],  # like 'ч'
    5: [[[(0.85, 0.0), (0.25, 0.0), (0.2, 0.45)] + arc(0.48, 0.7, 0.35, 0.3, -115, 150)],
        [[(0.25, 0.02), (0.2, 0.45)] + arc(0.48, 0.7, 0.35, 0.3, -115, 150), [(0.27, 0.0), (0.85, 0.02)]]],
    6: [[[(0.75, 0.0), (0.42, 0.18), (0.22, 0.5)] + arc(0.5, 0.72, 0.3, 0.28, 180, 530)],
        [[(0.7, 0.0), (0.3, 0.45)] + arc(0.5, 0.74, 0.3, 0.26, 200, 560)]],
    7: [[[(0.1, 0.0), (0.9, 0.0), (0.38, 1.0)]],
        [[(0.1, 0.0), (0.9, 0.0), (0.38, 1.0)], [(0.3, 0.52), (0.82, 0.5)]],  # crossed
        [[(0.08, 0.2), (0.12, 0.0), (0.9, 0.02), (0.5, 1.0)]]],  # a hook on the bar
    8: [[arc(0.5, 0.26, 0.28, 0.25, 90, 450) + arc(0.5, 0.74, 0.34, 0.26, -90, 270)],
        [arc(0.5, 0.26, 0.26, 0.26, 0, 360), arc(0.5, 0.74, 0.32, 0.26, 0, 360)]],
    9: [[arc(0.45, 0.3, 0.32, 0.3, 0, 362), [(0.77, 0.3), (0.72, 1.0)]],
        [arc(0.45, 0.3, 0.32, 0.3, 0, 362), [(0.77, 0.3), (0.72, 0.8)] + arc(0.5, 0.8, 0.22, 0.2, 0, 120)[1:]]],
}
VARIANTS = 48  # jittered drawings per allograph


def _draw(strokes: list[list[tuple]], rng: np.random.Generator) -> np.ndarray:
    """One drawing: points jittered, a pen width, round joins and ends, on a GLYPH×GLYPH canvas (float 0–1)."""
    img = Image.new("L", (GLYPH, GLYPH), 0)
    draw = ImageDraw.Draw(img)
    height, width = 44.0, 44.0 * rng.uniform(0.55, 0.9)
    x0, y0 = (GLYPH - width) / 2, (GLYPH - height) / 2
    pen = int(rng.integers(3, 8))
    for stroke in strokes:
        pts = np.asarray(stroke, np.float64) + rng.normal(0, 0.025, (len(stroke), 2)) + rng.normal(0, 0.02, 2)
        xy = [(x0 + x * width, y0 + y * height) for x, y in pts]
        draw.line(xy, fill=255, width=pen, joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return np.asarray(img, np.float32) / 255.0


def stroke_glyphs(seed: int = 0, variants: int = VARIANTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float32 N×64×64 drawings, uint8 labels, int allograph index within its digit)."""
    rng = np.random.default_rng(seed)
    glyphs, labels, styles = [], [], []
    for digit, forms in ALLOGRAPHS.items():
        for k, strokes in enumerate(forms):
            for _ in range(variants):
                glyphs.append(_draw(strokes, rng))
                labels.append(digit)
                styles.append(k)
    return np.stack(glyphs), np.array(labels, np.uint8), np.array(styles, np.int64)
