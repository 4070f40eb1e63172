"""The line of digits in an ink mask: pieces of one digit joined, the page's edges and stray marks left out, touching
digits cut apart.

    line_pieces(labels, pieces) → [(piece mask within its box, (y0, y1, x0, x1)), ...] left to right

1. Pieces of ink (preprocess.ink_pieces: the largest MAX_COMPONENTS, specks dropped) that share most of their
   columns and nearly touch are one digit (a 5's cap, a 4 drawn in two strokes).
2. Shapes that run off the image and span most of it (a page edge, a shadow, the table) are background, when
   anything else is there.
3. The line: from the largest shape, neighbours of a similar height that overlap its rows are added, one after
   the other, so a slanted or uneven line is followed and a mark far off it is not.
4. Short pieces right beside a digit join it; dots and dashes are dropped; a shape too wide for one digit is cut
   at its emptiest columns.
All of it is O(pixels) plus O(k²) in the number of pieces k ≤ MAX_COMPONENTS.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .imageops import bounds


@dataclass
class Shape:
    ids: list[int]  # label ids of its pieces of ink
    box: tuple[int, int, int, int]  # y0, y1, x0, x1 in work pixels
    area: int

    @property
    def h(self) -> int:
        return self.box[1] - self.box[0]

    @property
    def w(self) -> int:
        return self.box[3] - self.box[2]


def _union(a: Shape, b: Shape) -> Shape:
    box = (min(a.box[0], b.box[0]), max(a.box[1], b.box[1]), min(a.box[2], b.box[2]), max(a.box[3], b.box[3]))
    return Shape(a.ids + b.ids, box, a.area + b.area)


def _components(link: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of a symmetric boolean matrix, numbered by their first member, as SciPy numbers them;
    a plain search for the few pieces of a line of digits (SciPy's sparse setup costs more than that)."""
    if len(link) > 32:
        return connected_components(csr_matrix(link), directed=False)
    group, n = np.full(len(link), -1), 0
    for first in range(len(link)):
        if group[first] >= 0:
            continue
        group[first], todo = n, [first]
        while todo:
            for j in np.flatnonzero(link[todo.pop()] & (group < 0)):
                group[j] = n
                todo.append(j)
        n += 1
    return n, group


def _stacked(pieces: list[tuple]) -> list[Shape]:
    """Pieces that share half of the narrower one's columns and are no further apart vertically than half the
    taller one's height are one shape."""
    box = np.array([p[2] for p in pieces], np.float64)  # y0, y1, x0, x1
    y0, y1, x0, x1 = box[:, 0], box[:, 1], box[:, 2], box[:, 3]
    cols = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])
    narrower = np.maximum(1, np.minimum((x1 - x0)[:, None], (x1 - x0)[None]))
    gap = np.maximum(y0[:, None], y0[None]) - np.minimum(y1[:, None], y1[None])
    taller = np.maximum((y1 - y0)[:, None], (y1 - y0)[None])
    link = (cols >= 0.5 * narrower) & (gap <= 0.5 * taller)
    n, group = _components(link)
    shapes: list[Shape | None] = [None] * n
    for (label, area, b), g in zip(pieces, group):
        s = Shape([label], b, area)
        shapes[g] = s if shapes[g] is None else _union(shapes[g], s)
    return [s for s in shapes if s is not None]


def _weight(s: Shape, shape: tuple[int, int], photo: bool) -> float:
    """How much a shape counts towards a line of writing: what runs off the image is likely the page's edge, a
    shadow or the table (in a photo, nothing at all when it also spans most of the image) — or a drawing that
    fills its canvas, which then wins for want of anything else."""
    H, W = shape
    y0, y1, x0, x1 = s.box
    if not (y0 == 0 or x0 == 0 or y1 == H or x1 == W):
        return 1.0
    return 0.0 if photo and (s.h > 0.6 * H or s.w > 0.6 * W) else 0.25


def _boxes(shapes: list[Shape]) -> tuple[np.ndarray, ...]:
    b = np.array([s.box for s in shapes], np.float64).reshape(-1, 4)
    return b[:, 0], b[:, 1], b[:, 2], b[:, 3]


def _neighbour_gaps(shapes: list[Shape]) -> np.ndarray:
    """k×k: how far shape i lies beside shape j along the line (inf unless i sits on j's rows, overlapping at least
    40 % of the lower one's height, is at most 3× taller, and is no further than 2.5 heights away)."""
    y0, y1, x0, x1 = _boxes(shapes)
    h = y1 - y0
    rows = np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None])
    gap = np.maximum(np.maximum(x0[:, None] - x1[None], x0[None] - x1[:, None]), 0)
    ok = (h[:, None] <= 3.0 * h[None]) & (rows >= 0.4 * np.minimum(h[:, None], h[None]))
    ok &= gap <= 2.5 * np.maximum(h[:, None], h[None])
    return np.where(ok, gap, np.inf)


def _follow_line(gaps: np.ndarray, seed: int) -> list[int]:
    """The seed and its neighbours that sit on its rows, added nearest first, one by one (indices)."""
    member = np.zeros(len(gaps), bool)
    member[seed] = True
    nearest = gaps[:, seed].copy()
    line = [seed]
    while True:
        nearest[member] = np.inf
        j = int(np.argmin(nearest))
        if not np.isfinite(nearest[j]):
            return line
        member[j] = True
        line.append(j)
        nearest = np.minimum(nearest, gaps[:, j])


def _best_line(shapes: list[Shape], shape: tuple[int, int], photo: bool, seeds: int = 8) -> list[Shape]:
    """The line of writing: grown from each of the largest shapes, the one with the most ink (weighted by
    _weight, so a shadow's edge does not win over the number)."""
    gaps = _neighbour_gaps(shapes)
    weight = np.array([_weight(s, shape, photo) for s in shapes])
    area = np.array([s.area for s in shapes], np.float64)
    best, best_score = [], -1.0
    for seed in np.argsort(-area, kind="stable")[:seeds]:
        line = _follow_line(gaps, int(seed))
        score = float((area[line] * weight[line]).sum())
        if score > best_score:
            best, best_score = line, score
    kept = [i for i in best if weight[i] > 0] or best
    return sorted((shapes[i] for i in kept), key=lambda s: s.box[2])


def _attach_fragments(shapes: list[Shape], line_h: float) -> list[Shape]:
    """A short shape right next to a taller one is part of it (an open 4's stem, a 6's loose top, a 5's cap)."""
    shapes = sorted(shapes, key=lambda s: s.box[2])
    while len(shapes) > 1:
        y0, y1, x0, x1 = _boxes(shapes)
        h = y1 - y0
        gap = np.maximum(np.maximum(x0[:, None] - x1[None], x0[None] - x1[:, None]), 0)
        np.fill_diagonal(gap, np.inf)
        j = np.argmin(gap, axis=1)  # each shape's nearest neighbour along the line
        near_h = h[j]
        short = (h < 0.6 * np.minimum(line_h, near_h)) & (gap[np.arange(len(h)), j] <= 0.15 * near_h)
        if not short.any():
            break
        i = int(np.argmax(short))
        merged = _union(shapes[i], shapes[j[i]])
        shapes = sorted([o for k, o in enumerate(shapes) if k not in (i, j[i])] + [merged], key=lambda o: o.box[2])
    return shapes


def _split_wide(mask: np.ndarray, line_h: float) -> list[tuple[int, int]]:
    """Column ranges of the digits in one shape's mask: touching digits are cut at column-projection minima.

    Only shapes wider than a digit are candidates; a cut is made where the column holds clearly less ink than
    the shape's typical column (a wide 0 or 8 has two or three strokes everywhere), or anyway when the shape is
    far too wide for one digit.
    """
    hgt, w = mask.shape
    h = max(hgt, line_h)
    if w < 1.2 * h:
        return [(0, w)]
    n = max(2, int(round(w / (0.8 * h))))
    profile = ndimage.uniform_filter1d(mask.sum(0).astype(np.float32), size=3)
    typical = float(np.median(profile[profile > 0]))
    cuts = [0]
    for k in range(1, n):
        centre, half = k * w / n, 0.3 * w / n
        lo, hi = int(centre - half), int(centre + half) + 1
        window = profile[lo:hi]
        dist = np.abs(np.arange(lo, hi) - centre)
        best = int(np.lexsort((dist, window))[0])  # the emptiest column; among equals, the nearest the middle
        # far too wide for one digit (< 1 % of MNIST digits are 1.3× wider than tall): cut even through ink
        if w >= 1.3 * h or window[best] <= 0.5 * typical:
            cuts.append(lo + best)
    cuts.append(w)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _shape_mask(labels: np.ndarray, s: Shape) -> np.ndarray:
    y0, y1, x0, x1 = s.box
    window = labels[y0:y1, x0:x1]
    return window == s.ids[0] if len(s.ids) == 1 else np.isin(window, s.ids)


def _tight(piece: np.ndarray, y0: int, x0: int) -> tuple[np.ndarray, tuple[int, int, int, int]] | None:
    box = bounds(piece)
    if box is None:
        return None
    a, b, c, d = box
    return piece[a:b, c:d], (y0 + a, y0 + b, x0 + c, x0 + d)


def line_pieces(labels: np.ndarray, pieces: list[tuple], photo: bool = True,
                whole: bool = False) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The digits of the image's line of writing, left to right: (mask within box, box = (y0, y1, x0, x1)), from
    preprocess.ink_pieces' labels and pieces.
    `photo`: the image is unevenly lit (a page's edges and shadows may be in it). With whole=True, the line's ink
    as one piece (a single-digit image: everything written is the digit)."""
    if not pieces:
        return []
    # a photo's background shapes (weight 0: a shadow's edge across the page) are never a digit's other half
    ink = [p for p in pieces if _weight(Shape([p[0]], p[2], p[1]), labels.shape, photo) > 0] or pieces
    if len(ink) == 1:  # one piece of ink (most drawings): it is the line
        line = [Shape([ink[0][0]], ink[0][2], ink[0][1])]
    else:
        line = _best_line(_stacked(ink), labels.shape, photo)
    line_h = float(statistics.median(s.h for s in line))
    line = _attach_fragments(line, line_h)
    tallest = max(s.h for s in line)
    line = [s for s in line if s.h >= 0.35 * tallest]  # dots, dashes, specks that merged into nothing bigger
    if whole:
        one = line[0]
        for s in line[1:]:
            one = _union(one, s)
        return [_tight(_shape_mask(labels, one), one.box[0], one.box[2])]
    line_h = float(statistics.median(s.h for s in line))
    out = []
    for s in line:
        m = _shape_mask(labels, s)
        for c0, c1 in _split_wide(m, line_h):
            cut = _tight(m[:, c0:c1], s.box[0], s.box[2] + c0)
            if cut is not None and cut[0].sum() >= 6 and cut[0].shape[0] >= 0.35 * tallest:
                out.append(cut)
    return out
