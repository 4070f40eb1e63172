"""Preprocessing: any image → MNIST form, and a line of digits → one crop per digit (real MNIST test digits)."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitrec.errors import DigitrecError
from digitrec.preprocess import (MAX_PIXELS, DigitCrop, load_digit, mnist_form, open_image, otsu_threshold,
                                 segment)


def png(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def paper(digits: list[np.ndarray], height: int = 160, gap: float = 0.4, size=(900, 360), lighting: bool = False,
          seed: int = 0) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """MNIST digits written dark on light paper, scaled to `height` px, in a row; returns the image and true boxes."""
    rng = np.random.default_rng(seed)
    w_img, h_img = size
    ink = np.zeros((h_img, w_img), np.float32)
    x, boxes = 40.0, []
    for d in digits:
        ys, xs = np.nonzero(d > 30)
        crop = Image.fromarray(d[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
        s = height / crop.height
        crop = np.asarray(crop.resize((max(2, round(crop.width * s)), height), Image.Resampling.BICUBIC),
                          np.float32) / 255
        y = (h_img - height) // 2
        region = ink[y:y + height, int(x):int(x) + crop.shape[1]]
        np.maximum(region, crop, out=region)
        boxes.append((int(x), y, crop.shape[1], height))
        x += crop.shape[1] + gap * height
    light = np.ones_like(ink) * 0.9
    if lighting:  # a strong gradient and a shadow, as a phone photo of a page has
        yy, xx = np.mgrid[0:h_img, 0:w_img]
        light = 0.95 - 0.45 * xx / w_img - 0.3 * np.exp(-((xx - 0.3 * w_img) ** 2 + (yy - 0.2 * h_img) ** 2) / 2e4)
    gray = light * (1 - 0.8 * ink) + rng.normal(0, 0.02, ink.shape)
    return Image.fromarray((np.clip(gray, 0, 1) * 255).astype(np.uint8)), boxes


def by_label(mnist, label: int, nth: int = 0) -> np.ndarray:
    return mnist.test_images[np.nonzero(mnist.test_labels == label)[0][nth]]


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return float((ys * a).sum() / a.sum()), float((xs * a).sum() / a.sum())


def iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0, min(ax1, bx1) - max(a[0], b[0])) * max(0, min(ay1, by1) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


# --- single digits: polarity, centring, aspect ------------------------------------------------------------------

def test_polarity_light_and_dark_ink_give_the_same_crop(mnist):
    digit = by_label(mnist, 3)
    big = Image.fromarray(digit).resize((280, 280), Image.Resampling.BICUBIC)
    light_ink = load_digit(png(big))  # MNIST's own polarity (a canvas drawing)
    dark_ink = load_digit(png(Image.fromarray(255 - np.asarray(big))))  # pen on paper
    for a in (light_ink, dark_ink):
        assert a.shape == (28, 28) and a.dtype == np.float32
        assert a.max() == pytest.approx(1.0, abs=0.05) and a[:3].max() == 0 and a[:, :3].max() == 0  # ink bright
    assert np.abs(light_ink - dark_ink).mean() < 0.02


def test_mnist_digit_round_trips_close_to_itself(mnist):
    """An MNIST digit saved as a PNG comes back in (almost) the same form: the pipeline is MNIST's own."""
    digit = mnist.test_images[0]
    back = load_digit(png(Image.fromarray(digit)))
    original = digit.astype(np.float32) / 255
    assert np.corrcoef(back.ravel(), original.ravel())[0, 1] > 0.9


def test_off_centre_digit_is_centred_by_mass(mnist):
    canvas = Image.new("L", (600, 400), 250)
    digit = Image.fromarray(255 - by_label(mnist, 7)).resize((140, 140), Image.Resampling.BICUBIC)
    canvas.paste(digit, (420, 30))  # top-right corner
    out = load_digit(png(canvas))
    cy, cx = centre_of_mass(out)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    ys, xs = np.nonzero(out > 0.1)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (19, 20, 21)  # longest side scaled to 20 px


@pytest.mark.parametrize("bar, expect_tall", [((280, 50, 320, 350), True), ((100, 180, 500, 240), False)])
def test_aspect_ratio_is_kept(bar, expect_tall):
    canvas = Image.new("L", (600, 400), 255)
    ImageDraw.Draw(canvas).rectangle(bar, fill=0)  # a 40×300 stroke ("1") or a 400×60 bar
    out = load_digit(png(canvas))
    ys, xs = np.nonzero(out > 0.5)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    long_side, short_side = (h, w) if expect_tall else (w, h)
    assert long_side in (19, 20, 21) and 2 <= short_side <= 5  # 300:40 → 20:2.7, 400:60 → 20:3 (stroke widened)


def test_exif_orientation_is_applied():
    upright = Image.new("L", (200, 400), 255)  # portrait, a tall stroke
    ImageDraw.Draw(upright).rectangle((90, 60, 110, 340), fill=0)
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a camera stores it: landscape + orientation tag
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = png(stored.convert("RGB"), "JPEG", exif=exif.tobytes(), quality=95)
    img = open_image(data)
    assert img.size == (200, 400)
    crops = segment(data)
    assert len(crops) == 1
    x, y, w, h = crops[0].box
    assert h > 4 * w and abs(x - 90) <= 3 and abs(y - 60) <= 3  # box in the upright image's coordinates


def test_rgba_is_flattened_on_white(mnist):
    digit = by_label(mnist, 2)
    alpha = np.asarray(Image.fromarray(digit).resize((224, 224), Image.Resampling.BICUBIC))
    rgba = np.zeros((224, 224, 4), np.uint8)
    rgba[..., 3] = alpha  # black ink, everything else fully transparent (a canvas export)
    out = load_digit(png(Image.fromarray(rgba, "RGBA")))
    assert np.asarray(open_image(png(Image.fromarray(rgba, "RGBA"))))[0, 0] == 255
    reference = load_digit(png(Image.fromarray(255 - alpha)))
    assert out.max() > 0.9 and np.abs(out - reference).mean() < 0.02


def test_blank_image_has_no_digits():
    flat = Image.new("L", (300, 200), 200)
    assert segment(png(flat)) == []
    assert load_digit(png(flat)).max() == 0


# --- bad input ---------------------------------------------------------------------------------------------------

def test_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_PIXELS ** 0.5) + 100
    data = png(Image.new("1", (side, side)))  # tiny file, huge image
    with pytest.raises(DigitrecError, match="more than"):
        segment(data)


@pytest.mark.parametrize("data, message", [
    (b"this is not an image", "not a readable image"),
    (png(Image.new("L", (64, 64), 128))[:60], "cannot decode"),  # a truncated PNG
])
def test_unreadable_bytes_raise_digitrec_error(data, message):
    with pytest.raises(DigitrecError, match=message):
        segment(data)
    with pytest.raises(DigitrecError, match=message):
        load_digit(data)


def test_missing_file_raises(tmp_path):
    with pytest.raises(DigitrecError, match="file not found"):
        segment(tmp_path / "nope.png")


# --- thresholds and segmentation ---------------------------------------------------------------------------------

def test_otsu_splits_two_populations():
    values = np.concatenate([np.random.default_rng(0).normal(0.1, 0.03, 5000),
                             np.random.default_rng(1).normal(0.8, 0.05, 500)])
    assert 0.3 < otsu_threshold(values) < 0.6


def test_three_digits_give_three_boxes_left_to_right(mnist):
    digits = [by_label(mnist, 4), by_label(mnist, 0), by_label(mnist, 9)]
    img, truth = paper(digits)
    crops = segment(img)
    assert len(crops) == 3 and all(isinstance(c, DigitCrop) for c in crops)
    assert [c.box[0] for c in crops] == sorted(c.box[0] for c in crops)
    for c, t in zip(crops, truth):
        assert c.image.shape == (28, 28) and c.image.dtype == np.float32 and 0 <= c.image.min() <= c.image.max() <= 1
        assert iou(c.box, t) > 0.7


def test_uneven_lighting_and_shadow(mnist):
    digits = [by_label(mnist, 2, 1), by_label(mnist, 5, 1), by_label(mnist, 8, 1), by_label(mnist, 6, 1)]
    img, truth = paper(digits, height=120, lighting=True, size=(900, 300))
    crops = segment(img)
    assert len(crops) == 4 and all(iou(c.box, t) > 0.7 for c, t in zip(crops, truth))


def test_huge_image_is_downscaled_and_boxes_scaled_back(mnist):
    img, truth = paper([by_label(mnist, 1), by_label(mnist, 7)], height=900, size=(3600, 1800), gap=0.5)
    crops = segment(img)
    assert len(crops) == 2
    for c, t in zip(crops, truth):
        assert iou(c.box, t) > 0.7  # in the 3600×1800 original's pixels


def test_touching_digits_are_split(mnist):
    from scipy import ndimage

    digits = [by_label(mnist, 0, 2), by_label(mnist, 3, 2)]
    img, truth = paper(digits, gap=-0.02)  # the second digit starts where the first ends
    draw = ImageDraw.Draw(img)
    cx = truth[1][0]
    draw.line((cx - 25, 180, cx + 25, 180), fill=40, width=4)  # and a stroke joins them
    _, n = ndimage.label(np.asarray(img) < 128, structure=np.ones((3, 3)))
    assert n == 1  # one blob of ink: only a cut can separate them
    crops = segment(img)
    assert len(crops) == 2
    assert all(iou(c.box, t) > 0.6 for c, t in zip(crops, truth))


def test_broken_five_is_merged():
    img = Image.new("L", (500, 400), 245)
    d = ImageDraw.Draw(img)
    d.line((200, 100, 320, 100), fill=20, width=14)  # the cap, drawn as a separate stroke ...
    d.line((200, 125, 195, 200), fill=20, width=14)  # ... a gap, then the stem
    d.arc((170, 170, 320, 320), start=-100, end=140, fill=20, width=14)  # and the belly
    crops = segment(png(img))
    assert len(crops) == 1
    x, y, w, h = crops[0].box
    assert y <= 95 and y + h >= 315  # the one box holds cap and belly


def test_specks_are_dropped(mnist):
    img, truth = paper([by_label(mnist, 6)], size=(500, 300))
    d = ImageDraw.Draw(img)
    for x, y in [(30, 30), (450, 250), (60, 260)]:
        d.ellipse((x, y, x + 4, y + 4), fill=30)  # dust
    crops = segment(img)
    assert len(crops) == 1 and iou(crops[0].box, truth[0]) > 0.7


def test_mnist_form_of_empty_ink_is_blank():
    assert mnist_form(np.zeros((50, 50), np.float32)).max() == 0


def test_thin_one_pixel_drawing_survives_and_is_widened():
    img = Image.new("L", (300, 200), 230)
    ImageDraw.Draw(img).line((120, 60, 160, 60, 135, 130), fill=0, width=1)  # a 1-px "7", no noise
    for polarity in (img, Image.fromarray(255 - np.asarray(img))):
        crops = segment(png(polarity))
        assert len(crops) == 1 and abs(crops[0].box[0] - 120) <= 2 and abs(crops[0].box[1] - 60) <= 2
        assert (crops[0].image > 0.5).sum() > 40  # strokes ~2 px wide in 28×28, as in MNIST, not a faint trace


def test_sixteen_bit_gray_is_rescaled_not_clipped():
    img = Image.new("L", (300, 200), 230)
    ImageDraw.Draw(img).line((100, 40, 200, 40, 140, 170), fill=10, width=10)
    wide = Image.fromarray(np.asarray(img).astype(np.uint16) * 257)  # 16-bit PNG of the same drawing
    assert wide.mode.startswith("I")
    assert np.abs(load_digit(png(wide)) - load_digit(png(img))).max() < 0.05


# --- polarity, clutter, blanks and bounds -------------------------------------------------------------------------

def test_thick_strokes_keep_their_polarity():
    """A marker stroke a sixth of the image wide is ink, not background: the 0's hole stays empty."""
    for ink, paper_level in ((20, 250), (250, 10)):
        img = Image.new("L", (300, 300), paper_level)
        ImageDraw.Draw(img).ellipse((60, 30, 240, 270), outline=ink, width=50)
        out = load_digit(png(img))
        assert out[14, 14] < 0.1 and out[14, 5:9].max() > 0.9  # the hole dark, the ring bright


@pytest.mark.parametrize("img", [Image.new("L", (300, 200), 255), Image.new("L", (300, 200), 0),
                                 Image.new("L", (300, 200), 128), Image.new("RGBA", (300, 200), (0, 0, 0, 0)),
                                 Image.new("L", (1, 1), 0), Image.new("RGB", (2, 2), "red")])
def test_ink_less_images_have_no_digit(img):
    assert segment(png(img)) == []
    assert load_digit(png(img)).max() == 0


def test_the_number_is_found_among_shadow_page_edge_and_stray_marks(mnist):
    digits = [by_label(mnist, 3, 3), by_label(mnist, 1, 3), by_label(mnist, 7, 3)]
    img, truth = paper(digits, height=60, size=(1200, 900), gap=0.3)
    d = ImageDraw.Draw(img)
    d.rectangle((0, 760, 1200, 900), fill=60)  # a shadow along the bottom edge
    d.line((1150, 0, 1190, 900), fill=90, width=6)  # the page's edge
    d.ellipse((300, 150, 306, 156), fill=40)  # a stray dot
    d.line((900, 600, 930, 610), fill=40, width=3)  # a stray dash
    crops = segment(png(img, "JPEG", quality=90))
    assert len(crops) == 3 and all(iou(c.box, t) > 0.6 for c, t in zip(crops, truth))


def test_a_small_number_in_a_large_photo(mnist):
    img, truth = paper([by_label(mnist, 5, 4), by_label(mnist, 2, 4)], height=110, size=(4000, 3000))
    crops = segment(png(img, "JPEG", quality=90))
    assert len(crops) == 2 and all(iou(c.box, t) > 0.6 for c, t in zip(crops, truth))


def _hostile() -> dict[str, Image.Image]:
    on = np.arange(1000) % 6 < 3
    yy, xx = np.indices((1024, 1024))
    lines = np.full((2000, 2000), 255, np.uint8)
    lines[::4] = 0
    lines[:, ::4] = 0
    page = Image.new("L", (3000, 2000), 225)
    draw = ImageDraw.Draw(page)
    for y in range(10, 1980, 20):
        draw.text((10, y), "the quick brown fox 0123456789 jumps " * 12, fill=20)
    return {"dot grid": Image.fromarray(np.where(on[:, None] & on[None], 0, 255).astype(np.uint8)),
            "checkerboard": Image.fromarray((((yy + xx) % 2) * 255).astype(np.uint8)),
            "noise": Image.fromarray(np.random.default_rng(0).integers(0, 256, (1500, 1500), dtype=np.uint8)),
            "line grid": Image.fromarray(lines), "page of text": page}


@pytest.mark.parametrize("name", list(_hostile()))
def test_hostile_images_cost_bounded_time(name):
    """Textures with thousands of pieces of ink: a generous bound here (benchmarks/realworld.py: < 1 s each)."""
    from digitrec.preprocess import MAX_DIGITS

    data = png(_hostile()[name])
    segment(data)  # warm-up (imports)
    t0 = time.perf_counter()
    crops = segment(data)
    assert time.perf_counter() - t0 < 8.0
    assert len(crops) <= MAX_DIGITS
    assert load_digit(data).shape == (28, 28)


# --- imageops: the cheaper calls give the library's values -------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 3), (4, 7), (28, 28), (97, 131), (2, 50)])
def test_median3x3_is_pillows_median_filter(shape):
    from PIL import ImageFilter

    from digitrec.imageops import median3x3

    rng = np.random.default_rng(sum(shape))
    for gray in (rng.integers(0, 256, shape, dtype=np.uint8), (rng.integers(0, 4, shape) * 85).astype(np.uint8)):
        want = np.asarray(Image.fromarray(gray).filter(ImageFilter.MedianFilter(3)))
        assert np.array_equal(median3x3(gray), want)


def test_percentiles_histogram_and_bounds_match_numpy():
    from digitrec.imageops import bounds, histogram, median, percentiles

    rng = np.random.default_rng(1)
    for values in (rng.random(1001, dtype=np.float32), rng.random((28, 28)), np.full(7, 0.5), np.arange(4.0)):
        assert percentiles(values, (5, 50, 90, 95)) == pytest.approx(np.percentile(values, [5, 50, 90, 95]), abs=1e-6)
        assert median(values) == pytest.approx(float(np.median(values)), abs=1e-6)
        hist, edges = histogram(values, 256)
        want_hist, want_edges = np.histogram(values, bins=256)
        assert np.allclose(edges, want_edges) and np.array_equal(hist, want_hist)
    mask = np.zeros((10, 12), bool)
    assert bounds(mask) is None
    mask[3:5, 2] = mask[7, 9] = True
    assert bounds(mask) == (3, 8, 2, 10)


# --- the clean-image shortcut (clean.py) --------------------------------------------------------------------------

def _analysed(gray: np.ndarray):
    """(polarity and evenness from the full analysis, from the clean shortcut) of one grey image."""
    from digitrec import preprocess as pp
    from digitrec.clean import clean_polarity

    g = pp._denoise(gray)
    a = g.astype(np.float32) / 255
    h, w = a.shape
    f = max(1, round(max(h, w) / 128))
    small = pp._resize_float(a, (max(1, w // f), max(1, h // f)), Image.Resampling.BOX) if f > 1 else a
    dark = pp._dark_ink(small, pp._tiny(small))
    clean = clean_polarity(g)
    return (dark, not pp._background(1 - small if dark else small)[1]), clean and clean[0]


def test_clean_shortcut_decides_as_the_full_analysis_on_real_images(data_root):
    """Every real image that takes the shortcut (canvas drawings, clean crops) gets the polarity and the even
    lighting the full analysis finds for it; photos do not take it."""
    import csv

    from digitrec.imagefile import open_reduced

    if data_root is None:
        pytest.skip("DIGITREC_DATA is not set: the real images live in the shared data folder")
    folder = data_root / "realworld-dev"
    rows = list(csv.DictReader(open(folder / "labels.csv")))
    taken = {"canvas": 0, "photo": 0}
    for row in rows:
        full, clean = _analysed(np.asarray(open_reduced(folder / row["file"])[0]))
        if clean is not None:
            assert (clean, True) == full, row["file"]
            taken[row["kind"]] = taken.get(row["kind"], 0) + 1
    assert taken["canvas"] >= 150 and taken["photo"] <= 2, taken


def test_clean_shortcut_keeps_bold_strokes_whole():
    """A bold digit on a clean canvas: strokes wider than the background window used to pass for lighting and
    were hollowed; the shortcut sees a clean image and keeps them solid."""
    from digitrec.clean import clean_polarity

    canvas = Image.new("L", (28, 28), 0)
    ImageDraw.Draw(canvas).ellipse((5, 3, 22, 24), outline=255, width=7)  # a bold "0"
    assert clean_polarity(np.asarray(canvas)) == (False, 0.0)  # light ink on a black canvas
    out = load_digit(png(canvas))
    assert out.max() == pytest.approx(1.0, abs=0.02)
    ring = out > 0.5
    assert np.count_nonzero(out[ring] > 0.9) > 0.8 * np.count_nonzero(ring)  # solid, not an outline


def test_photos_and_noise_do_not_take_the_clean_shortcut(mnist):
    from digitrec.clean import clean_polarity

    img, _ = paper([by_label(mnist, 4)], height=120, size=(400, 200), lighting=True)  # a gradient and a shadow
    assert _analysed(np.asarray(img))[1] is None
    assert clean_polarity(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)) is None
    assert clean_polarity(np.full((30, 30), 128, np.uint8)) is None  # no ink at all: the full path decides


@pytest.mark.parametrize("paper, ink", [(255, 0), (230, 40), (12, 200), (0, 255)])
def test_clean_image_ink_lookup_is_the_per_pixel_arithmetic(paper, ink):
    """A clean image's ink comes from a 256-level lookup: exactly (bit for bit) the per-pixel arithmetic."""
    from digitrec.preprocess import ink_and_lighting

    g = np.full((40, 40), paper, np.uint8)
    g[8:32, 15:24] = np.linspace(paper, ink, 24, dtype=np.float32).astype(np.uint8)[:, None]
    got, photo = ink_and_lighting(g)
    a = g.astype(np.float32) * np.float32(1 / 255.0)
    level = paper / 255
    if ink < paper:
        a, level = 1.0 - a, 1.0 - level
    want = np.clip(a - np.float32(level), 0, 1)
    assert not photo and got.dtype == np.float32 and np.array_equal(got, want)


def test_otsu_from_grey_levels_is_otsu_of_the_pixels(mnist):
    """A clean image's Otsu level is read off its 256 grey levels (weighted), not its pixels: the same pieces."""
    from digitrec.preprocess import _ink_levels, ink_pieces

    for i in range(5):
        drawing = 255 - np.asarray(Image.fromarray(np.asarray(mnist.test_images[i])).resize((200, 200),
                                                                                          Image.Resampling.BILINEAR))
        ink, photo, levels = _ink_levels(drawing)
        assert levels is not None and not photo
        lut, counts = levels
        used = (counts > 0) & (lut > 0.02 * float(ink.max()))
        assert otsu_threshold(lut[used], weights=counts[used]) == otsu_threshold(ink[ink > 0.02 * float(ink.max())])
        (a, pieces_a), (b, pieces_b) = ink_pieces(ink, levels), ink_pieces(ink)
        assert np.array_equal(a, b) and pieces_a == pieces_b
