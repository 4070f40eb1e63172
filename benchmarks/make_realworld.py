"""A synthetic "real-world" test set: MNIST *test* digits as a phone photo would show them.

Each image: 1–6 digits in a row (uneven spacing, some touching, some broken by a gap in a stroke, the row
slanted), scaled up onto a 400–1200 px sheet of paper (sometimes a small number in a large photo) with a
lighting gradient and texture, dark ink, stray marks off the line, slight rotation and baseline jitter, blur,
sensor noise and JPEG compression. Deterministic: image i depends only on (--seed, i). Only test digits are
used, so no model trained on MNIST's training set has seen them.

    python3 benchmarks/make_realworld.py --out /tmp/digitrec-realworld --n 500
    → OUT/00000.jpg ... and OUT/labels.json {"images": {"00000.jpg": "4096", ...}, "boxes": {...}, ...}
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from digitrec.data import load  # noqa: E402
from digitrec.fileio import write_bytes, write_json  # noqa: E402


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC), np.float32)


def _digit_piece(d: np.ndarray, h_digit: float, slant: float, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit scaled to h_digit px, slanted, with a finer or bolder pen, sometimes broken by a gap."""
    ys, xs = np.nonzero(d > 30)
    crop = Image.fromarray(d[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    if slant:  # italic writing: x shifts with height
        pad = int(abs(slant) * crop.height) + 1
        crop = crop.transform((crop.width + pad, crop.height), Image.Transform.AFFINE,
                              (1, slant, -pad if slant > 0 else 0, 0, 1, 0), Image.Resampling.BILINEAR)
    scale = h_digit / crop.height
    img = crop.resize((max(2, round(crop.width * scale)), max(2, round(h_digit))), Image.Resampling.BICUBIC)
    lo = rng.uniform(0.0, 0.5)  # a finer or bolder pen: raising the level thins the stroke
    a = np.clip((np.asarray(img, np.float32) / 255.0 - lo) / (1 - lo), 0, 1)
    if rng.random() < 0.15:  # a broken stroke: the pen skipped across a thin band
        y = int(rng.uniform(0.3, 0.7) * a.shape[0])
        a[y:y + max(1, int(0.04 * a.shape[0]))] = 0
    return a


def _stray_marks(ink: np.ndarray, rng: np.random.Generator, line: tuple[float, float]) -> None:
    """A few dots and short strokes away from the line of digits (y0, y1)."""
    height, width = ink.shape
    img = Image.fromarray(ink, mode="F")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 4))):
        y = rng.uniform(0, height)
        if line[0] - 0.1 * height < y < line[1] + 0.1 * height:
            continue
        x, r = rng.uniform(0, width), rng.uniform(0.003, 0.02) * width
        if rng.random() < 0.5:
            draw.ellipse((x - r / 3, y - r / 3, x + r / 3, y + r / 3), fill=1.0)
        else:
            draw.line((x, y, x + r * rng.uniform(-2, 2), y + r * rng.uniform(-1, 1)), fill=1.0,
                      width=max(1, int(r / 4)))
    ink[:] = np.asarray(img, np.float32)


def render(digits: np.ndarray, rng: np.random.Generator, max_side: int = 1200) -> tuple[Image.Image, list]:
    """MNIST digits (k×28×28 uint8) → an RGB 'photo' of them written in a row, and each digit's box (x, y, w, h)."""
    k = len(digits)
    width = int(rng.uniform(400, max_side))
    height = int(width * rng.uniform(0.45, 0.9))
    size = rng.uniform(0.06, 0.12) if rng.random() < 0.2 else rng.uniform(0.25, 0.6)  # sometimes small in the frame
    h_digit = min(size * height, 0.85 * width / (k * 0.95))
    slant = rng.uniform(-0.3, 0.3) if rng.random() < 0.4 else 0.0
    ink = np.zeros((height, width), np.float32)
    pieces, total = [], 0.0
    for d in digits:
        a = _digit_piece(d, h_digit, slant, rng)
        spacing = rng.uniform(0.05, 0.45) if rng.random() < 0.8 else rng.uniform(0.45, 1.0)  # uneven spacing
        gap = h_digit * (rng.uniform(-0.12, 0.0) if rng.random() < 0.15 else spacing)
        pieces.append((a, gap))
        total += a.shape[1] + gap
    x = (width - total + pieces[-1][1]) / 2
    y_base = (height - h_digit) / 2 + rng.uniform(-0.15, 0.15) * height
    boxes = []
    for p, gap in pieces:
        y = int(np.clip(y_base + rng.uniform(-0.08, 0.08) * h_digit, 0, height - p.shape[0]))
        xi = int(np.clip(x, 0, width - p.shape[1]))
        region = ink[y:y + p.shape[0], xi:xi + p.shape[1]]
        np.maximum(region, p, out=region)
        boxes.append([xi, y, p.shape[1], p.shape[0]])
        x += p.shape[1] + gap
    if rng.random() < 0.3:
        _stray_marks(ink, rng, (y_base - 0.08 * h_digit, y_base + 1.08 * h_digit))
    angle = rng.uniform(-6, 6)  # the camera is not quite level (boxes stay those of the unrotated layout)
    ink = np.asarray(Image.fromarray(ink, mode="F").rotate(angle, Image.Resampling.BILINEAR), np.float32)
    # light × (paper reflectance blended with ink reflectance)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(theta) * xx / width + np.sin(theta) * yy / height)
    light = rng.uniform(0.75, 1.0) - rng.uniform(0.1, 0.4) * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
    if rng.random() < 0.3:  # a soft shadow blob (a hand or phone over the page)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.2, 0.5) * max(height, width)
        light = light * (1 - rng.uniform(0.15, 0.35) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
    paper = rng.uniform(0.8, 0.95) + 0.03 * _smooth_noise(rng, height, width, 24)
    ink_reflect = rng.uniform(0.05, 0.4)
    gray = light * (paper * (1 - ink) + ink_reflect * ink)
    tint = np.array([rng.uniform(0.95, 1.05), 1.0, rng.uniform(0.85, 1.0)], np.float32)  # warm paper light
    rgb = np.clip(gray[..., None] * tint, 0, 1)
    photo = Image.fromarray((rgb * 255).astype(np.uint8), "RGB")
    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 2.0)))
    noisy = np.asarray(photo, np.float32) + rng.normal(0, rng.uniform(2, 9), (height, width, 1))
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    return photo, boxes


def make(out: Path, n: int, seed: int = 0, data_dir: str | None = None, max_side: int = 1200) -> dict:
    test = load("mnist", data_dir)
    images, labels = test.test_images, test.test_labels
    meta = {"source": "MNIST test set", "seed": seed, "n": n, "max_side": max_side, "images": {}, "boxes": {}}
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        k = int(rng.integers(1, 7))
        idx = rng.choice(len(images), size=k, replace=False)
        photo, boxes = render(images[idx], rng, max_side)
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=int(rng.integers(40, 91)))
        name = f"{i:05d}.jpg"
        write_bytes(out / name, buf.getvalue())
        meta["images"][name] = "".join(str(int(v)) for v in labels[idx])
        meta["boxes"][name] = boxes
    write_json(out / "labels.json", meta)
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/digitrec-realworld")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=1200, help="largest sheet width in pixels (≥ 400)")
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: $DIGITREC_DATA or the bundled copy)")
    args = ap.parse_args()
    meta = make(Path(args.out), args.n, args.seed, args.data_dir, max(401, args.max_side))
    print(f"wrote {args.n} images and labels.json to {args.out} "
          f"({sum(len(t) for t in meta['images'].values())} digits)")


if __name__ == "__main__":
    main()
