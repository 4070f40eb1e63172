"""Digits rendered from handwriting-style fonts: training handwriting in the styles MNIST lacks.

MNIST's writers were American: its 1s are bare strokes, its 4s mostly open, its 7s uncrossed. People elsewhere
write a 1 with a long lead-in stroke, a closed-top 4, a crossed 7, and a reader trained on MNIST alone calls the
first a 7. Handwriting fonts (Debian packages such as fonts-bwht, fonts-dkg-handwriting, fonts-humor-sans) carry
those shapes. Each font's digits are rendered once at several pen widths, then varied as a batch of tensors
(slant, rotation, width, wobble, stroke) and brought to MNIST's form (longest side 20 px, centred by mass in 28×28).

Fonts are found at run time: $DIGITREC_FONTS (files or folders, separated by os.pathsep), else fontconfig's list
(`fc-list`) filtered to HANDWRITING_FAMILIES.

    images, labels = render_digits(20_000, seed=0)   # uint8 N×28×28, uint8 N
"""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from ..errors import DigitrecError

FONTS_ENV = "DIGITREC_FONTS"
FONT_SUFFIXES = (".ttf", ".otf")
# fontconfig family names (prefixes) of handwriting-like fonts in Debian; outline fonts (Cabin Sketch, Femke Klaver)
# are left out: their digits are hollow
HANDWRITING_FAMILIES = ("Because We", "Comic Neue", "Dancing Script", "Kaushan Script", "Breip", "Ecolier",
                        "DkgHandwriting", "Humor Sans", "Kristi", "Leckerli One", "Delphine", "Steve",
                        "Tomson Talks", "Yusei Magic")
DEBIAN_PACKAGES = ("fonts-bwht", "fonts-comic-neue", "fonts-dancingscript", "fonts-kaushanscript", "fonts-breip",
                   "fonts-ecolier-court", "fonts-dkg-handwriting", "fonts-humor-sans", "fonts-kristi",
                   "fonts-leckerli-one", "fonts-sjfonts", "fonts-tomsontalks", "fonts-yusei-magic")
GLYPH = 64  # base glyphs and their variants are drawn on 64×64 before being reduced to MNIST's 28×28
PEN_WIDTHS = (0, 1, 3)  # extra outline in pixels at render size 56: the font's own pen, a marker, a felt tip


def _fontconfig_files() -> list[Path]:
    if shutil.which("fc-list") is None:
        return []
    out = subprocess.run(["fc-list", "--format", "%{file}\t%{family}\n"], capture_output=True, text=True,
                         timeout=30).stdout
    files = []
    for line in out.splitlines():
        path, _, family = line.partition("\t")
        if path.endswith(FONT_SUFFIXES) and any(f.startswith(HANDWRITING_FAMILIES) for f in family.split(",")):
            files.append(Path(path))
    return files


def font_files(setting: str | None = None) -> list[Path]:
    """The handwriting fonts to render, sorted (so a seed gives the same data on every machine with them)."""
    setting = setting if setting is not None else os.environ.get(FONTS_ENV, "")
    if setting:
        files = []
        for item in setting.split(os.pathsep):
            p = Path(item).expanduser()
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in FONT_SUFFIXES) if p.is_dir() else [p]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise DigitrecError(f"${FONTS_ENV}: font file(s) not found: {', '.join(missing)}")
    else:
        files = _fontconfig_files()
    if not files:
        raise DigitrecError(f"no handwriting fonts found (set ${FONTS_ENV} to font files or folders, or install "
                            f"Debian's {' '.join(DEBIAN_PACKAGES)})")
    return sorted(set(files), key=lambda p: (p.name, str(p)))


def _draw(font: ImageFont.FreeTypeFont, text: str, pen: int) -> np.ndarray:
    img = Image.new("L", (3 * GLYPH, 3 * GLYPH), 0)
    ImageDraw.Draw(img).text((GLYPH // 2, GLYPH // 2), text, font=font, fill=255, stroke_width=pen, stroke_fill=255)
    a = np.asarray(img)
    ys, xs = np.nonzero(a > 40)
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1] if len(ys) else a[:0, :0]


def _fit(glyph: np.ndarray, side: int = 48) -> np.ndarray:
    """A glyph scaled (aspect kept) to `side` px on its longest side, centred on a GLYPH×GLYPH canvas (float 0–1)."""
    h, w = glyph.shape
    s = side / max(h, w)
    small = Image.fromarray(glyph).resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    out = np.zeros((GLYPH, GLYPH), np.float32)
    y, x = (GLYPH - small.height) // 2, (GLYPH - small.width) // 2
    out[y:y + small.height, x:x + small.width] = np.asarray(small, np.float32) / 255
    return out


@lru_cache(maxsize=4)
def base_glyphs(files: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every font's digits at every pen width: float32 N×64×64 and labels. Fonts without real digits (all ten
    drawn alike: the missing-glyph box) are skipped."""
    glyphs, labels = [], []
    for path in files:
        try:
            font = ImageFont.truetype(str(path), 56)
        except OSError as e:
            raise DigitrecError(f"{path}: not a readable font ({e})") from None
        drawn = [_draw(font, str(d), 0) for d in range(10)]
        if any(g.size == 0 for g in drawn) or all(np.array_equal(drawn[0], g) for g in drawn[1:]):
            continue
        for pen in PEN_WIDTHS:
            for d in range(10):
                glyphs.append(_fit(_draw(font, str(d), pen)))
                labels.append(d)
    if not glyphs:
        raise DigitrecError("none of the fonts found draws the digits 0-9")
    return np.stack(glyphs), np.array(labels, np.uint8)


def _distort(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Slant, rotation, width and a smooth wobble per glyph: one grid_sample over the batch."""
    n = x.shape[0]

    def u(bound: float) -> torch.Tensor:
        return (torch.rand(n, generator=gen) * 2 - 1) * bound

    angle, shear = u(0.2), torch.tan(u(0.35))  # ±11°, ±19°
    sx, sy = torch.exp(u(0.25)), torch.exp(u(0.1))  # narrower or wider hands
    theta = torch.zeros(n, 2, 3)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sx, (cos * shear - sin) * sx
    theta[:, 1, 0], theta[:, 1, 1] = sin * sy, (sin * shear + cos) * sy
    grid = F.affine_grid(theta, [n, 1, GLYPH, GLYPH], align_corners=False)
    coarse = torch.randn(n, 2, 4, 4, generator=gen)
    wobble = F.interpolate(coarse, size=(GLYPH, GLYPH), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    grid = grid + wobble * (torch.rand(n, 1, 1, 1, generator=gen) * 3.0 * 2 / GLYPH)  # up to ~3 px of 64
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _pen(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A quarter of the glyphs one pixel (of 64) thicker; then every glyph's ink scaled to peak at 1, as MNIST's
    strokes do (a fine pen reduced to 28×28 would otherwise fade to grey)."""
    n = x.shape[0]
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    return torch.where(torch.rand(n, generator=gen).view(n, 1, 1, 1) < 0.25, thick, x)


def mnist_form_batch(x: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """N×1×H×W ink (0–1) → N×1×28×28 in MNIST's form: longest side of the ink's box 20 px, centre of mass at the
    centre. One grid_sample to 56×56 around each centre of mass, then a 2×2 average (anti-aliasing)."""
    n, _, h, w = x.shape
    mask = x[:, 0] > threshold
    rows, cols = mask.any(2), mask.any(1)
    idx_h, idx_w = torch.arange(h).expand(n, h), torch.arange(w).expand(n, w)
    top = torch.where(rows, idx_h, h).min(1).values
    bottom = torch.where(rows, idx_h, -1).max(1).values + 1
    left = torch.where(cols, idx_w, w).min(1).values
    right = torch.where(cols, idx_w, -1).max(1).values + 1
    long_side = torch.maximum(bottom - top, right - left).clamp(min=1).float()
    mass = x[:, 0].sum((1, 2)).clamp(min=1e-6)
    cy = (x[:, 0] * (torch.arange(h).float() + 0.5).view(1, h, 1)).sum((1, 2)) / mass
    cx = (x[:, 0] * (torch.arange(w).float() + 0.5).view(1, 1, w)).sum((1, 2)) / mass
    # output pixel (56 px canvas, digit 40 px) → input pixel: in = centre + (out - 28) · long_side / 40
    scale = long_side / 40.0
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * 56 / w
    theta[:, 1, 1] = scale * 56 / h
    theta[:, 0, 2] = cx / w * 2 - 1
    theta[:, 1, 2] = cy / h * 2 - 1
    grid = F.affine_grid(theta, [n, 1, 56, 56], align_corners=False)
    return F.avg_pool2d(F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False), 2)


def vary(glyphs: np.ndarray, labels: np.ndarray, n: int, seed: int = 0,
         batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """n variations of base glyphs (float K×64×64), balanced over digits: each a glyph of its digit drawn at
    random, distorted, its pen changed, brought to MNIST form. uint8 N×28×28 and labels."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.from_numpy(glyphs).unsqueeze(1)
    want = np.arange(n) % 10
    idx = np.zeros(n, np.int64)
    rng = np.random.default_rng(seed)
    for d in range(10):
        idx[want == d] = rng.choice(np.flatnonzero(labels == d), size=int((want == d).sum()))
    out = []
    for i in range(0, n, batch):
        x = base[torch.from_numpy(idx[i:i + batch])]
        x = mnist_form_batch(_pen(_distort(x, gen), gen))
        x = x / x.amax((2, 3), keepdim=True).clamp(min=1e-6)
        out.append((x.clamp(0, 1) * 255).round().to(torch.uint8)[:, 0])
    images = torch.cat(out).numpy() if out else np.zeros((0, 28, 28), np.uint8)
    return images, labels[idx]


def render_digits(n: int, seed: int = 0, fonts: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """n digits drawn from the handwriting fonts, balanced over digits: uint8 N×28×28 (MNIST form) and labels."""
    glyphs, labels = base_glyphs(tuple(font_files(fonts)))
    return vary(glyphs, labels, n, seed)


def render_strokes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n digits drawn from stroke skeletons of many allographs (data/strokes.py), balanced over digits."""
    from .strokes import stroke_glyphs

    glyphs, labels, _ = stroke_glyphs(seed)
    return vary(glyphs, labels, n, seed + 1)
