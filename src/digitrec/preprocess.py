"""Any image → MNIST's form: 28×28, light ink on black, digit scaled to 20 px and centred by centre of mass.

This is how MNIST itself was made (size-normalised to a 20×20 box, anti-aliased, centred by centre of mass in 28×28).
The path: open (imagefile.py: formats, limits, reduced decoding) → ink map (polarity, lighting, noise) → ink mask
(hysteresis threshold) → pieces of ink (labelled once, at most MAX_COMPONENTS) → the line of digits
(layout.py: grouping, cutting touching digits) → one MNIST-form crop per digit. Every step works on at most
WORK_SIDE² pixels and a bounded number of pieces, so no image costs more than a fixed amount of time and memory.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .clean import clean_polarity, grey_counts
from .imagefile import FORMATS, MAX_PIXELS, WORK_SIDE, Source, open_reduced
from .imageops import bounds, clip01, dilate, histogram, median, median3x3, percentiles

__all__ = ["FORMATS", "MAX_PIXELS", "WORK_SIDE", "DigitCrop", "open_image", "load_digit", "segment", "ink_map",
           "mnist_form", "otsu_threshold"]
MAX_COMPONENTS = 256  # pieces of ink looked at, the largest first: a dot grid or a page of text has thousands
MAX_DIGITS = 64  # digits read from one image
# lighting: a grey opening 1/6 of the image wide, smoothed over half that (chosen on one half of the real
# development set among 1/4, 1/6, 1/8 and smoothing 1 or 0.5 of the window; the other half confirmed it)
BG_WINDOW, BG_SMOOTH = 6, 0.5
EIGHT = np.ones((3, 3), bool)  # pieces of ink are 8-connected


@dataclass
class DigitCrop:
    """One digit of an image: its MNIST-form crop and where it was, in the original (upright) image's pixels."""
    image: np.ndarray  # float32 28×28, 0–1, light ink on black
    box: tuple[int, int, int, int]  # x, y, w, h


def open_image(source: Source, name: str | None = None, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A path, bytes or Pillow image as an upright grayscale image (EXIF applied, alpha flattened on white),
    reduced to at most WORK_SIDE pixels on its longest side."""
    return open_reduced(source, name, max_pixels)[0]


def mnist_form(ink: np.ndarray, threshold: float = 0.25) -> np.ndarray:
    """Crop to the ink, scale the longest side to 20 px (anti-aliased), centre by centre of mass in 28×28 (float 0–1)."""
    box = bounds(ink > threshold)
    if box is None:
        return np.zeros((28, 28), dtype=np.float32)
    crop = ink[box[0]:box[1], box[2]:box[3]]
    h, w = crop.shape
    s = 20.0 / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS)
    small_a = np.asarray(small, dtype=np.float32) / 255.0
    total = float(small_a.sum())
    if total > 0:
        cy, cx = float(small_a.sum(1) @ np.arange(nh)) / total, float(small_a.sum(0) @ np.arange(nw)) / total
    else:
        cy, cx = nh / 2, nw / 2
    top = int(round(14 - cy))
    left = int(round(14 - cx))
    top, left = min(max(top, 0), 28 - nh), min(max(left, 0), 28 - nw)
    out = np.zeros((28, 28), dtype=np.float32)
    out[top:top + nh, left:left + nw] = small_a
    return out


def otsu_threshold(values: np.ndarray, bins: int = 256, weights: np.ndarray | None = None) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of the histogram (of `values`, each
    counted `weights` times when given)."""
    hist, edges = histogram(values, bins, weights)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = hist.cumsum(dtype=np.float64)
    w1 = w0[-1] - w0
    m0 = (hist * centers).cumsum()
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    # every level in an empty gap between the populations scores the same: take the middle of that plateau
    best = (between >= between.max() * (1 - 1e-9)).nonzero()[0]
    return float(edges[best[len(best) // 2] + 1])


def _resize_float(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BILINEAR) -> np.ndarray:
    """Resize a float array (size = width, height) through Pillow's 32-bit float mode."""
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, resample), dtype=np.float32)


def _tiny(small: np.ndarray) -> np.ndarray:
    """The image at polarity scale: ≤ ~32 px (from the background scale)."""
    h, w = small.shape
    g = max(1, round(max(h, w) / 32))
    return _resize_float(small, (max(1, w // g), max(1, h // g)), Image.Resampling.BOX) if g > 1 else small


def _dark_ink(small: np.ndarray, tiny: np.ndarray) -> bool:
    """Polarity: ink departs from the paper (or canvas) one way — darker on paper, lighter on a black canvas —
    more than lighting and texture do.

    The paper's level is a median over a third of the image (at 32 px: cheap): wide enough that the strokes of a
    thick marker do not pass for the background (and the paper in a digit's loops for its ink), local enough that
    a lighting gradient across the page does not pass for ink.
    """
    k = max(3, round(max(tiny.shape) / 3))  # a separable median (rows, then columns): ~k times cheaper, as robust
    level = ndimage.median_filter(ndimage.median_filter(tiny, size=(1, k), mode="nearest"), size=(k, 1), mode="nearest")
    residual = small - (_resize_float(level, small.shape[::-1]) if tiny is not small else level)
    return np.maximum(-residual - 0.05, 0).sum() > np.maximum(residual - 0.05, 0).sum()


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Float 0–1 map of ink contrast over a flat black background, whatever the polarity, lighting or noise."""
    return ink_and_lighting(gray)[0]


def _denoise(gray: np.ndarray) -> np.ndarray:
    """A 3×3 median for noisy photos; a clean drawing is left alone, since the median would erase its 1-px lines.
    Noise is estimated from neighbour differences (robustly: strokes are few): noisy when their median is over
    2 grey levels (noise > 0.01), which counting settles unless the median falls between two differences."""
    if min(gray.shape) < 3:
        return gray
    rows = gray[::2].astype(np.int16)
    diffs = np.abs(rows[:, 1:] - rows[:, :-1])
    n, calm = diffs.size, int(np.count_nonzero(diffs <= 2))
    if calm > n // 2:
        return gray
    if n % 2 == 0 and calm == n // 2 and 1.4826 * median(diffs) / np.sqrt(2) / 255.0 <= 0.01:
        return gray
    return median3x3(gray)


def _background(small: np.ndarray) -> tuple[np.ndarray, bool]:
    """The lighting behind light ink at ≤ ~128 px: a grey opening much wider than any stroke, smoothed; and whether
    it is uneven (its 5th and 95th percentiles 0.08 apart; a background flatter than that needs no sorting)."""
    k = max(3, round(max(small.shape) / BG_WINDOW))
    bg = ndimage.grey_opening(small, size=(k, k))
    bg = ndimage.uniform_filter(bg, size=max(1, round(k * BG_SMOOTH)), mode="nearest")
    if float(bg.max()) - float(bg.min()) < 0.08:
        return bg, False
    lo, hi = percentiles(bg, (5, 95))
    return bg, hi - lo >= 0.08


@functools.lru_cache(maxsize=64)
def _clean_ink(dark: bool, paper: float) -> np.ndarray:
    """A clean image's ink for each of the 256 grey levels, by the arithmetic of an evenly lit image (each pixel's
    ink depends on its grey level alone, so one lookup gives exactly what computing every pixel gives)."""
    a = np.arange(256, dtype=np.uint8).astype(np.float32) * np.float32(1 / 255.0)
    if dark:
        a, paper = np.subtract(1.0, a, out=a), 1.0 - paper
    lut = clip01(np.subtract(a, np.float32(paper), out=a))
    lut.flags.writeable = False  # shared by every call
    return lut


def ink_and_lighting(gray: np.ndarray) -> tuple[np.ndarray, bool]:
    """(ink map, whether the lighting is uneven — a photo rather than a drawing or a scan): see _ink_levels."""
    return _ink_levels(gray)[:2]


def _ink_levels(gray: np.ndarray) -> tuple[np.ndarray, bool, tuple[np.ndarray, np.ndarray] | None]:
    """(ink map, whether the lighting is uneven — a photo rather than a drawing or a scan, and for a clean image
    (ink value of each grey level, count of each grey level) — the ink map's histogram, for ink_pieces).

    Uneven lighting: the background is estimated by a grey opening much wider than any stroke (at ≤ ~128 px, then
    smoothed and upsampled) and removed — divided out for dark ink on paper (a photo is reflectance × light).
    A clean image (clean.py) needs neither the polarity median nor the opening: its paper is one grey.
    """
    g = _denoise(np.ascontiguousarray(gray, dtype=np.uint8))
    counts = grey_counts(g)
    clean = clean_polarity(g, counts)
    if clean is not None:  # evenly lit, one polarity: ink is the departure from the paper's level
        lut = _clean_ink(*clean)
        return np.take(lut, g), False, (lut, counts)  # (take: a plain gather, faster than lut[g])
    a = g.astype(np.float32) * np.float32(1 / 255.0)
    h, w = a.shape
    f = max(1, round(max(h, w) / 128))  # background at ≤ ~128 px: cheap, and noise is averaged away
    small = _resize_float(a, (max(1, w // f), max(1, h // f)), Image.Resampling.BOX) if f > 1 else a
    dark = _dark_ink(small, _tiny(small))
    if dark:
        small, a = 1.0 - small, np.subtract(1.0, a, out=a)
    bg, uneven = _background(small)
    if not uneven:  # evenly lit: a constant level is the safer estimate
        ink = np.subtract(a, np.float32(median(small)), out=a)
    else:
        bg = _resize_float(bg, (w, h)) if f > 1 else bg
        ink = a - bg
        if dark:  # reflectance: (I_bg - I) / I_bg, so a shadow does not hide the ink in it
            ink /= np.maximum(1.0 - bg, 0.05)
    return clip01(ink), bool(uneven), None


def _kept(labels: np.ndarray, n: int, strong: np.ndarray) -> np.ndarray:
    """Label ids of the largest MAX_COMPONENTS strong pieces, largest first, and their areas."""
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    areas[0] = 0
    areas[~strong] = 0
    order = np.argsort(-areas, kind="stable")[:MAX_COMPONENTS]
    order = order[areas[order] > 0]
    return order, areas[order]


def _labelled(ink: np.ndarray, high: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple]]:
    """Pieces above half of `high` that reach `high`, labelled within the box that holds them (most of a photo is
    paper): (labels at the image's size, the kept label ids, their areas, their boxes in the image's pixels)."""
    above = ink > 0.5 * high
    y0, y1, x0, x1 = bounds(above)  # never empty: the peak is above it
    window = ink[y0:y1, x0:x1]
    labels, n = ndimage.label(above[y0:y1, x0:x1], structure=EIGHT)
    if n == 1:  # one piece (most drawings): it holds the peak, so it reaches Otsu's level; its box is the window
        ids, sizes, boxes = np.array([1]), np.array([np.count_nonzero(labels)]), [(y0, y1, x0, x1)]
    else:
        ids, sizes = _kept(labels, n, np.bincount(labels[window > high], minlength=n + 1) > 0)
        if n > MAX_COMPONENTS:  # only the kept pieces, numbered 1.. by size, so find_objects sees no more than those
            lut = np.zeros(n + 1, np.int32)
            lut[ids] = np.arange(1, len(ids) + 1)
            labels, ids = lut[labels], np.arange(1, len(ids) + 1)
        slices = ndimage.find_objects(labels, max_label=int(ids.max()) if len(ids) else 0)
        boxes = [(y0 + s[0].start, y0 + s[0].stop, x0 + s[1].start, x0 + s[1].stop)
                 for s in (slices[i - 1] for i in ids)]
    full = np.zeros(ink.shape, np.int32)
    full[y0:y1, x0:x1] = labels
    return full, ids, sizes, boxes


def ink_pieces(ink: np.ndarray, levels: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, list[tuple]]:
    """The pieces of ink: a hysteresis threshold (pieces above half of Otsu's level that reach Otsu's level, kept
    between 20 % and 60 % of the peak, so a stroke that fades — pencil, a soft brush — stays whole), labelled
    once. Returns (labels, [(label id, area, (y0, y1, x0, x1)), ...]): the largest MAX_COMPONENTS pieces at most,
    largest first, specks dropped; ([], []) shaped alike when the image holds no ink.

    levels: (ink value of each grey level, count of each) when the ink map is a lookup of an 8-bit image
    (_ink_levels, a clean image): Otsu's histogram is then read off the 256 levels, not the pixels — the same
    histogram, for a fraction of the work."""
    peak = float(ink.max()) if ink.size else 0.0
    if peak < 0.08:  # nothing darker (or lighter) than the paper by more than noise
        return np.zeros(ink.shape, np.int32), []
    if levels is not None and ink.size <= 250_000:
        lut, counts = levels
        used = (counts > 0) & (lut > 0.02 * peak)
        level = otsu_threshold(lut[used], weights=counts[used])
    else:
        sample = ink[::2, ::2] if ink.size > 250_000 else ink  # Otsu's level from a quarter of a big image
        level = otsu_threshold(sample[sample > 0.02 * peak])
    high = min(max(level, 0.2 * peak), 0.6 * peak)
    labels, ids, sizes, boxes = _labelled(ink, high)
    h, w = ink.shape
    inside = [i for i, b in enumerate(boxes) if 0 < b[0] and b[1] < h and 0 < b[2] and b[3] < w]
    # specks: small against the largest piece — not counting what runs off the image (a shadow, the table)
    floor = max(6, 0.02 * sizes[inside[0] if inside else 0]) if len(ids) else 6
    return labels, [(int(ids[i]), int(sizes[i]), boxes[i]) for i in range(len(ids)) if sizes[i] >= floor]


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: area over half the boundary length (2·A/P for long thin strokes)."""
    m = mask  # a pixel on the mask's edge has a neighbour outside it: never inner
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    area = int(np.count_nonzero(mask))
    return 2.0 * area / max(area - int(np.count_nonzero(inner)), 1)


def digit_form(ink: np.ndarray, piece: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """One digit's ink (only the pixels near `piece`, its mask within box = (y0, y1, x0, x1)) → MNIST form, with
    contrast and stroke width normalised."""
    y0, y1, x0, x1 = box
    p = 2  # the ink's soft edges just outside the mask belong to the digit
    Y0, Y1, X0, X1 = max(0, y0 - p), min(ink.shape[0], y1 + p), max(0, x0 - p), min(ink.shape[1], x1 + p)
    m = np.zeros((Y1 - Y0, X1 - X0), bool)
    m[y0 - Y0:y1 - Y0, x0 - X0:x1 - X0] = piece
    near = dilate(m, p)
    crop = np.where(near, ink[Y0:Y1, X0:X1], 0.0)
    crop = clip01(crop / max(percentiles(crop[m], (90,))[0], 1e-3))  # pen or pencil: strokes saturate
    # MNIST strokes are ~2.5 px in a 20 px digit (0.12 of its size); a fine pen on a big photo would fade to grey
    want = 0.12 * max(piece.shape)
    sw = stroke_width(piece)
    if sw < 0.75 * want:
        grow = int(round(want - sw))
        if grow >= 1:
            crop = ndimage.maximum_filter(crop, size=grow + 1)
    return mnist_form(crop)


def prepare(source: Source, name: str | None = None, max_pixels: int = MAX_PIXELS):
    """(ink map, (labels, pieces) of ink_pieces, whether it is a photo (uneven light), (sx, sy): work pixels →
    the original's pixels) of one image."""
    work, full = open_reduced(source, name, max_pixels)
    ink, photo, levels = _ink_levels(np.asarray(work))
    return ink, ink_pieces(ink, levels), photo, (full[0] / work.width, full[1] / work.height)


def load_digit(source: Source, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One digit image → float32 28×28 in 0–1, MNIST form (the ink of the image's line of writing is the digit;
    all zeros when the image holds no ink)."""
    from .layout import line_pieces

    ink, (labels, pieces), photo, _ = prepare(source, name, max_pixels)
    piece = line_pieces(labels, pieces, photo, whole=True)
    return digit_form(ink, *piece[0]) if piece else np.zeros((28, 28), dtype=np.float32)


def segment(image: Source, name: str | None = None, max_pixels: int = MAX_PIXELS) -> list[DigitCrop]:
    """A line of handwritten digits → one DigitCrop per digit, left to right (an empty list when there is no ink)."""
    from .layout import line_pieces

    ink, (labels, pieces), photo, (sx, sy) = prepare(image, name, max_pixels)
    crops = []
    for piece, (y0, y1, x0, x1) in line_pieces(labels, pieces, photo)[:MAX_DIGITS]:
        box = (int(x0 * sx), int(y0 * sy), max(1, int(round((x1 - x0) * sx))), max(1, int(round((y1 - y0) * sy))))
        crops.append(DigitCrop(digit_form(ink, piece, (y0, y1, x0, x1)), box))
    crops.sort(key=lambda c: c.box[0] + c.box[2] / 2)
    return crops
