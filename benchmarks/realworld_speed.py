"""Speed and bounds of `Reader.read` on one core, for benchmarks/realworld.py.

- a 12-MP phone JPEG (4032×3024) end to end, decode included: the real ones of the development set and a
  synthetic one (budget 100 ms);
- a 280×280 canvas PNG (budget 5 ms);
- hostile images that Pillow opens (dot grids, checkerboards, noise, 1-px line grids, a page of text, a 40-MP
  image) — budget 1 s each — and how the cost grows with the side (capped: per-pixel work is on ≤ 1024 px);
- the extra memory of one 16-bit 6300×6300 PNG (budget 300 MB), measured in a fresh process (peak RSS);
- an 80-byte EPS is refused before any decoder runs.
"""
from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def dots(side: int, pitch: int = 6, r: int = 3) -> Image.Image:
    on = np.arange(side) % pitch < r
    return Image.fromarray(np.where(on[:, None] & on[None, :], 0, 255).astype(np.uint8))


def checkerboard(side: int, k: int = 1) -> Image.Image:
    yy, xx = np.indices((side, side))
    return Image.fromarray((((yy // k + xx // k) % 2) * 255).astype(np.uint8))


def noise(side: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side), dtype=np.uint8))


def line_grid(side: int, pitch: int = 4) -> Image.Image:
    a = np.full((side, side), 255, np.uint8)
    a[::pitch] = 0
    a[:, ::pitch] = 0
    return Image.fromarray(a)


def text_page(w: int = 4000, h: int = 3000) -> Image.Image:
    """A photographed page of text: 70 lines of small type, grey paper."""
    img = Image.new("L", (w, h), 225)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype("DejaVuSans.ttf", 28)
    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyz 0123456789 ")
    for y in range(20, h - 40, 40):
        draw.text((30, y), "".join(rng.choice(letters, 250)), font=font, fill=30)
    return img


def phone_jpeg(mnist_test: np.ndarray) -> bytes:
    """A synthetic 12-MP phone photo of a 6-digit number (make_realworld's renderer, at 4032×3024, q 90)."""
    from benchmarks.make_realworld import render

    rng = np.random.default_rng(12)
    photo, _ = render(mnist_test[rng.choice(len(mnist_test), 6, replace=False)], rng, 1200)
    big = photo.resize((4032, 3024), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 4, (3024, 4032, 1)).astype(np.float32)  # sensor grain: a real JPEG's decode cost
    big = Image.fromarray(np.clip(np.asarray(big, np.float32) + grain, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def canvas_png(mnist_test: np.ndarray) -> bytes:
    return _png(Image.fromarray(mnist_test[0]).resize((280, 280), Image.Resampling.BICUBIC))


def time_read(reader, source, repeat: int) -> dict:
    """Median and worst seconds of reader.read over `repeat` runs (after one warm-up)."""
    reader.read(source)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        reader.read(source)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "max_s": max(times), "runs": repeat}


def hostile_cases() -> dict[str, bytes]:
    return {
        "dot grid 550×550 (3-px dots every 6 px)": _png(dots(550)),
        "dot grid 1000×1000": _png(dots(1000)),
        "dot grid 4000×4000": _png(dots(4000)),
        "checkerboard 1024×1024 (1-px squares)": _png(checkerboard(1024)),
        "checkerboard 4000×4000 (3-px squares)": _png(checkerboard(4000, 3)),
        "noise 1024×1024": _png(noise(1024)),
        "noise 6000×6000 (36 MP)": _png(noise(6000)),
        "1-px line grid 2000×2000": _png(line_grid(2000)),
        "photographed page of text 4000×3000": _png(text_page()),
    }


def growth_cases() -> dict[str, bytes]:
    """Noise at growing sides: the cost should flatten once the side passes the work size (1024)."""
    return {f"noise {s}×{s}": _png(noise(s)) for s in (256, 512, 1024, 2048, 4096)}


MEMORY_SCRIPT = """
import sys, io
from PIL import Image
from digitrec.reader import Reader
reader = Reader(threads=1)
reader.read(Image.new('L', (300, 300), 255))
data = open(sys.argv[1], 'rb').read()
def status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
open('/proc/self/clear_refs', 'w').write('5')  # Linux: reset the peak (VmHWM) to the current size
before = status('VmRSS:')
reader.read(data)
print(status('VmHWM:') - before)
"""


def sixteen_bit_memory_mb(side: int = 6300) -> tuple[float, int]:
    """(peak extra MB of reading a 16-bit side×side PNG in a fresh process, the file's bytes)."""
    a = np.zeros((side, side), np.uint16)
    a[side // 4:3 * side // 4, side // 2 - side // 40:side // 2 + side // 40] = 60000  # a '1'
    img = Image.fromarray(a)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.png"
        img.save(path, "PNG")
        size = path.stat().st_size
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(path)], capture_output=True, text=True,
                             timeout=600, env=None)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "memory probe failed")
    return float(out.stdout.strip().splitlines()[-1]), size


def eps_refused(reader) -> dict:
    from digitrec.errors import DigitrecError

    t0 = time.perf_counter()
    try:
        reader.read(EPS)
        message = None
    except DigitrecError as e:
        message = str(e)
    return {"seconds": time.perf_counter() - t0, "refused": message is not None, "message": message}


def run_speed(reader, mnist_test: np.ndarray, real_phone: list[Path], repeat: int = 5) -> dict:
    """Every speed and bound figure: see the module docstring."""
    out = {"phone_real": {str(p.name): time_read(reader, p, repeat) for p in real_phone},
           "phone_synthetic": time_read(reader, phone_jpeg(mnist_test), repeat),
           "canvas": time_read(reader, canvas_png(mnist_test), max(repeat, 20))}
    out["hostile"] = {name: time_read(reader, data, 2) | {"bytes": len(data)} for name, data in hostile_cases().items()}
    out["growth"] = {name: time_read(reader, data, 2) for name, data in growth_cases().items()}
    mb, size = sixteen_bit_memory_mb()
    out["memory_16bit_6300"] = {"extra_mb": mb, "file_bytes": size}
    out["eps"] = eps_refused(reader)
    return json.loads(json.dumps(out))
