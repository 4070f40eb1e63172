"""Any image → MNIST's form: 28×28, light ink on black, digit scaled to 20 px and centred by centre of mass.

This is how MNIST itself was made (size-normalised to a 20×20 box, anti-aliased, centred by centre of mass in 28×28).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from .errors import DigitrecError

MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding them
WORK_SIDE = 1024  # huge photos are downscaled to this before any per-pixel work


def open_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """Open a file path, bytes or Pillow image as an upright grayscale image (EXIF applied, alpha flattened on
    white), downscaled to at most WORK_SIDE pixels on its longest side."""
    img = open_full(source, name)
    if max(img.size) > WORK_SIDE:
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    return img


def open_full(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """Like open_image, at full size: boxes are reported in these (upright, EXIF-applied) pixel coordinates."""
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    try:
        if isinstance(source, Image.Image):
            img = source
        elif isinstance(source, bytes):
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
    if img.width < 1 or img.height < 1:
        raise DigitrecError(f"{label}: empty image")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):  # 16-bit or float gray: L would clip, so rescale
        a = np.asarray(img, dtype=np.float64)
        top = 1.0 if a.max() <= 1.0 else 255.0 if a.max() <= 255 else 65535.0 if a.max() <= 65535 else a.max()
        img = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).astype(np.uint8))
    return img.convert("L")


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


def load_digit(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> np.ndarray:
    """One digit image → float32 28×28 in 0–1, MNIST form (all the image's ink, specks dropped, is the digit)."""
    ink = ink_map(np.asarray(open_image(source, name)))
    mask = _ink_mask(ink)
    if mask is None:
        return np.zeros((28, 28), dtype=np.float32)
    labels, groups = _components(mask)
    return _digit_form(ink, np.isin(labels, np.concatenate(groups))) if groups else np.zeros((28, 28), np.float32)


# --- real-world images: lighting, polarity, noise, threshold; then a line of digits cut into MNIST-form crops

@dataclass
class DigitCrop:
    """One digit of an image: its MNIST-form crop and where it was, in the original (upright) image's pixels."""
    image: np.ndarray  # float32 28×28, 0–1, light ink on black
    box: tuple[int, int, int, int]  # x, y, w, h


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the level that maximises the between-class variance of the histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    # every level in an empty gap between the populations scores the same: take the middle of that plateau
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float(edges[best[len(best) // 2] + 1])


def _resize_float(a: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BILINEAR) -> np.ndarray:
    """Resize a float array (size = width, height) through Pillow's 32-bit float mode."""
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, resample), dtype=np.float32)


def ink_map(gray: np.ndarray) -> np.ndarray:
    """Float 0–1 map of ink contrast over a flat black background, whatever the polarity, lighting or noise.

    Polarity: ink is what departs sharply from the local background (a wide median), and more of it departs one
    way (darker on paper, lighter on a black canvas) than lighting and texture do. Uneven lighting:
    the background is estimated by a grey opening much wider than any stroke (computed at low resolution, then
    smoothed and upsampled) and removed — divided out for dark ink on paper (a photo is reflectance × light).
    """
    a = gray.astype(np.float32) / 255.0
    if min(a.shape) >= 3:
        # sensor noise, estimated from neighbour differences (robustly: strokes are few); a clean drawing skips
        # the median filter, which would erase its 1-px lines
        noise = 1.4826 * float(np.median(np.abs(np.diff(a, axis=1)))) / np.sqrt(2)
        if noise > 0.01:
            a = ndimage.median_filter(a, size=3)
    h, w = a.shape
    f = max(1, round(max(h, w) / 128))  # background at ≤ ~128 px: cheap, and noise is averaged away
    small = _resize_float(a, (max(1, w // f), max(1, h // f)), Image.Resampling.BOX) if f > 1 else a
    # polarity: ink departs sharply from its local background, one way; lighting gradients depart both ways
    local = ndimage.median_filter(small, size=max(3, round(max(small.shape) / 8)), mode="nearest")
    residual = a - (_resize_float(local, (w, h)) if f > 1 else local)
    dark_ink = np.maximum(-residual - 0.05, 0).sum() > np.maximum(residual - 0.05, 0).sum()
    if dark_ink:
        a, small = 1.0 - a, 1.0 - small
    k = max(3, round(max(small.shape) / 4))
    bg = ndimage.uniform_filter(ndimage.grey_opening(small, size=(k, k)), size=k, mode="nearest")
    if np.percentile(bg, 95) - np.percentile(bg, 5) < 0.08:  # evenly lit: a constant level is the safer estimate
        bg = np.full_like(a, float(np.median(a)))
    elif f > 1:
        bg = _resize_float(bg, (w, h))
    ink = a - bg
    if dark_ink:  # reflectance: (I_bg - I) / I_bg, so a shadow does not hide the ink in it
        ink = ink / np.maximum(1.0 - bg, 0.05)
    return np.clip(ink, 0.0, 1.0)


def _ink_mask(ink: np.ndarray) -> np.ndarray | None:
    """Otsu's threshold of the ink map, kept between 20 % and 60 % of the peak; None when there is no ink."""
    peak = float(ink.max())
    if peak < 0.08:  # nothing darker (or lighter) than the paper by more than noise
        return None
    t = min(max(otsu_threshold(ink[ink > 0.02 * peak]), 0.2 * peak), 0.6 * peak)
    return ink > t


def _stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary shape: area over half the boundary length (2·A/P for long thin strokes)."""
    inner = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))
    boundary = int(mask.sum() - inner.sum())
    return 2.0 * mask.sum() / max(boundary, 1)


def _digit_form(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """One digit's ink (only the pixels near `mask`) → MNIST form, with contrast and stroke width normalised."""
    near = ndimage.binary_dilation(mask, iterations=2)
    ys, xs = np.nonzero(near)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = np.where(near[y0:y1, x0:x1], ink[y0:y1, x0:x1], 0.0)
    m = mask[y0:y1, x0:x1]
    crop = np.clip(crop / max(float(np.percentile(crop[m], 90)), 1e-3), 0, 1)  # pen or pencil: strokes saturate
    # MNIST strokes are ~2.5 px in a 20 px digit (0.12 of its size); a fine pen on a big photo would fade to grey
    side = max(m.shape)
    want = 0.12 * side
    sw = _stroke_width(m)
    if sw < 0.75 * want:
        grow = int(round(want - sw))
        if grow >= 1:
            crop = ndimage.maximum_filter(crop, size=grow + 1)
    return mnist_form(crop)


def _boxes_overlap_x(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Horizontal overlap of two column ranges, as a fraction of the narrower one."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    return inter / max(1, min(a[1] - a[0], b[1] - b[0]))


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labelled mask and digit candidates as arrays of label ids: specks dropped, pieces one above the other merged (a 5's cap)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        return labels, []
    areas = np.bincount(labels.ravel())[1:]
    slices = ndimage.find_objects(labels)
    keep = [i for i in range(n) if areas[i] >= max(6, 0.02 * areas.max())]
    # union-find over kept components that share most of their columns
    parent = {i: i for i in keep}

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    spans = {i: (slices[i][1].start, slices[i][1].stop) for i in keep}
    for a_i, i in enumerate(keep):
        for j in keep[a_i + 1:]:
            if _boxes_overlap_x(spans[i], spans[j]) >= 0.5:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in keep:
        groups.setdefault(root(i), []).append(i + 1)  # label ids start at 1
    return labels, [np.array(g) for g in groups.values()]


def _split_wide(mask: np.ndarray, box: tuple[int, int, int, int], line_h: float) -> list[tuple[int, int]]:
    """Column ranges of the digits in one component: touching digits are cut at column-projection minima.

    Only components wider than a digit are candidates; a cut is made where the column holds clearly less ink
    than the component's typical column (a wide 0 or 8 has two or three strokes everywhere), or anyway when the
    component is far too wide for one digit.
    """
    y0, y1, x0, x1 = box
    w, h = x1 - x0, max(y1 - y0, line_h)
    if w < 1.2 * h:
        return [(x0, x1)]
    n = max(2, int(round(w / (0.8 * h))))
    profile = ndimage.uniform_filter1d(mask[y0:y1, x0:x1].sum(0).astype(np.float32), size=3)
    typical = float(np.median(profile[profile > 0]))
    cuts = [x0]
    for k in range(1, n):
        centre, half = k * w / n, 0.3 * w / n
        lo, hi = int(centre - half), int(centre + half) + 1
        window = profile[lo:hi]
        dist = np.abs(np.arange(lo, hi) - centre)
        best = int(np.lexsort((dist, window))[0])  # the emptiest column; among equals, the nearest the middle
        # far too wide for one digit (< 1 % of MNIST digits are 1.3× wider than tall): cut even through ink
        if w >= 1.3 * h or window[best] <= 0.5 * typical:
            cuts.append(x0 + lo + best)
    cuts.append(x1)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _attach_fragments(parts: list[tuple[np.ndarray, tuple]], line_h: float) -> list[tuple[np.ndarray, tuple]]:
    """A short piece right next to a taller one is part of it (an open 4's stem, a 6's loose top, a 5's cap)."""
    parts = sorted(parts, key=lambda p: p[1][2])
    changed = True
    while changed and len(parts) > 1:
        changed = False
        for i, (m, b) in enumerate(parts):
            gaps = [(max(b[2] - o[1][3], o[1][2] - b[3], 0), j) for j, o in enumerate(parts) if j != i]
            gap, j = min(gaps)
            near_h = parts[j][1][1] - parts[j][1][0]
            if b[1] - b[0] < 0.6 * min(line_h, near_h) and gap <= 0.15 * near_h:
                mm = m | parts[j][0]
                bb = (min(b[0], parts[j][1][0]), max(b[1], parts[j][1][1]),
                      min(b[2], parts[j][1][2]), max(b[3], parts[j][1][3]))
                parts = [p for k, p in enumerate(parts) if k not in (i, j)] + [(mm, bb)]
                parts.sort(key=lambda p: p[1][2])
                changed = True
                break
    return parts


def segment(image: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> list[DigitCrop]:
    """A line of handwritten digits → one DigitCrop per digit, left to right (an empty list when there is no ink)."""
    full = open_full(image, name)
    work = full
    if max(full.size) > WORK_SIDE:  # huge photos: per-pixel work at ≤ WORK_SIDE, boxes scaled back
        work = full.copy()
        work.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    sx, sy = full.width / work.width, full.height / work.height
    ink = ink_map(np.asarray(work))
    mask = _ink_mask(ink)
    if mask is None:
        return []
    labels, groups = _components(mask)
    if not groups:
        return []
    parts = []  # (column range, pixel mask) per digit
    for ids in groups:
        gmask = np.isin(labels, ids)
        ys, xs = np.nonzero(gmask)
        parts.append((gmask, (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)))
    line_h = float(np.median([b[1] - b[0] for _, b in parts]))
    parts = _attach_fragments(parts, line_h)
    tallest = max(b[1] - b[0] for _, b in parts)
    line_h = float(np.median([b[1] - b[0] for _, b in parts if b[1] - b[0] >= 0.35 * tallest]))
    crops = []
    for gmask, box in parts:
        if box[1] - box[0] < 0.35 * tallest:  # dots, dashes, specks that merged into nothing bigger
            continue
        for c0, c1 in _split_wide(gmask, box, line_h):
            piece = np.zeros_like(gmask)
            piece[:, c0:c1] = gmask[:, c0:c1]
            ys, xs = np.nonzero(piece)
            if len(ys) < 6 or ys.max() + 1 - ys.min() < 0.35 * tallest:  # a sliver left by a cut
                continue
            x, y = xs.min(), ys.min()
            bw, bh = xs.max() + 1 - x, ys.max() + 1 - y
            box_full = (int(x * sx), int(y * sy), max(1, int(round(bw * sx))), max(1, int(round(bh * sy))))
            crops.append(DigitCrop(_digit_form(ink, piece), box_full))
    crops.sort(key=lambda c: c.box[0] + c.box[2] / 2)
    return crops
