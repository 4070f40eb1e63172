"""Opening untrusted images: the format allowlist, the pixel limit, bounded memory, reduced decoding, orientation."""
from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.errors import DigitrecError
from digitrec.imagefile import FORMATS, MAX_PIXELS, WORK_SIDE, open_reduced

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def drawing() -> Image.Image:
    img = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(img).line((100, 40, 200, 40, 140, 170), fill="black", width=10)
    return img


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"])
def test_every_allowed_format_opens_to_the_same_gray_image(fmt):
    img, size = open_reduced(encode(drawing(), fmt))
    reference, _ = open_reduced(encode(drawing(), "PNG"))
    assert img.mode == "L" and img.size == size == (300, 200)
    assert np.abs(np.asarray(img, np.int16) - np.asarray(reference, np.int16)).mean() < 4  # JPEG/WebP: lossy


@pytest.mark.parametrize("data, kind", [
    (EPS, "PostScript/EPS"),
    (b"%PDF-1.4\n1 0 obj << >> endobj\n%%EOF\n", "PDF"),
    (b"\xc5\xd0\xd3\xc6" + b"\x00" * 60, "EPS"),
])
def test_postscript_and_pdf_are_refused_before_any_decoder_runs(data, kind, monkeypatch):
    def no_decoder(*args, **kwargs):  # Pillow's EPS plugin would start Ghostscript (no time limit) here
        raise AssertionError("a decoder was asked to open the file")

    monkeypatch.setattr(Image, "open", no_decoder)
    t0 = time.perf_counter()
    with pytest.raises(DigitrecError, match=f"{kind} files are not accepted") as err:
        open_reduced(data, "loop.eps")
    assert time.perf_counter() - t0 < 1.0
    assert "\n" not in str(err.value) and str(err.value).startswith("loop.eps: ")


def test_formats_outside_the_allowlist_are_refused():
    with pytest.raises(DigitrecError, match="not a readable image .*accepted: PNG, JPEG"):
        open_reduced(encode(drawing(), "PPM"))  # a format Pillow reads, but not one we accept
    assert set(FORMATS) == {"PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"}


def test_gif_first_frame_only():
    frames = [Image.new("L", (64, 64), 255), Image.new("L", (64, 64), 0)]
    data = io.BytesIO()
    frames[0].save(data, "GIF", save_all=True, append_images=frames[1:])
    img, _ = open_reduced(data.getvalue())
    assert np.asarray(img).min() == 255  # the white first frame, not the black second


def test_pixel_limit_is_a_parameter_checked_before_decoding():
    data = encode(Image.new("1", (3000, 3000)), "PNG")  # 9 MP in a few KB
    with pytest.raises(DigitrecError, match="more than the 1,000,000 allowed"):
        open_reduced(data, max_pixels=1_000_000)
    img, size = open_reduced(data)  # the default limit (40 MP) accepts it
    assert size == (3000, 3000) and max(img.size) <= WORK_SIDE
    side = int(MAX_PIXELS ** 0.5) + 100
    with pytest.raises(DigitrecError, match="more than"):
        open_reduced(encode(Image.new("1", (side, side)), "PNG"))


def test_jpeg_is_decoded_reduced_and_size_is_the_original():
    big = Image.new("RGB", (4032, 3024), "white")
    ImageDraw.Draw(big).line((1000, 1000, 3000, 2000), fill="black", width=40)
    img, size = open_reduced(encode(big, "JPEG", quality=85))
    assert size == (4032, 3024) and img.size == (1008, 756)  # decoded at 1/4 (draft), no resize afterwards


def test_exif_rotation_swaps_the_reported_size():
    stored = Image.new("RGB", (400, 200), "white")
    exif = Image.Exif()
    exif[0x0112] = 6
    img, size = open_reduced(encode(stored, "JPEG", exif=exif.tobytes()))
    assert img.size == (200, 400) and size == (200, 400)


def test_tiny_and_transparent_images():
    img, size = open_reduced(encode(Image.new("L", (1, 1), 0), "PNG"))
    assert img.size == size == (1, 1)
    clear = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    assert np.asarray(open_reduced(encode(clear, "PNG"))[0]).min() == 255  # flattened on white


def test_sixteen_bit_gray_is_rescaled_at_reduced_size():
    a = np.zeros((2100, 2100), np.uint16)
    a[500:1600, 1000:1100] = 65535
    img, size = open_reduced(encode(Image.fromarray(a), "PNG"))
    g = np.asarray(img)
    assert size == (2100, 2100) and img.size == (700, 700) and g.max() == 255 and g.min() == 0


def test_sixteen_bit_6300_png_stays_under_300_mb_extra():
    """Peak memory of reading a 16-bit 6300×6300 PNG, in a fresh process: the peak is reset before the read."""
    script = textwrap.dedent("""
        import io, numpy as np
        from PIL import Image
        from digitrec.preprocess import segment
        a = np.zeros((6300, 6300), np.uint16); a[1500:4800, 3000:3200] = 60000
        buf = io.BytesIO(); Image.fromarray(a).save(buf, 'PNG'); data = buf.getvalue(); del a
        segment(Image.new('L', (64, 64), 255))
        def status(key):
            for line in open('/proc/self/status'):
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        open('/proc/self/clear_refs', 'w').write('5')  # reset the peak (VmHWM) to the current size
        before = status('VmRSS:')
        crops = segment(data)
        print(len(crops), status('VmHWM:') - before)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    n, extra_mb = out.stdout.split()
    assert int(n) == 1 and float(extra_mb) < 300, out.stdout
