"""Extra training handwriting: digits rendered from handwriting fonts and drawn from stroke skeletons (allographs),
and the BASE+fonts+strokes datasets whose test set stays the official one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digitrec.data import datasets
from digitrec.data.fonts import FONTS_ENV, font_files, mnist_form_batch, render_digits, render_strokes
from digitrec.data.strokes import ALLOGRAPHS, stroke_glyphs
from digitrec.errors import DigitrecError


def matplotlib_font() -> Path:
    """A font every install has (matplotlib, a dependency, ships DejaVu Sans)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"


def check_mnist_form(images: np.ndarray) -> None:
    assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
    assert (images.max(axis=(1, 2)) == 255).all()  # strokes saturate, as MNIST's do
    # the digit fits its 20 px box, centred by mass: the outer rows and columns hold at most a faint edge
    assert max(images[:, 0].max(), images[:, -1].max(), images[:, :, 0].max(), images[:, :, -1].max()) < 64


def test_fonts_from_the_setting(monkeypatch):
    monkeypatch.setenv(FONTS_ENV, str(matplotlib_font()))
    assert font_files() == [matplotlib_font()]
    images, labels = render_digits(50, seed=3)
    check_mnist_form(images)
    assert np.bincount(labels, minlength=10).tolist() == [5] * 10
    again, _ = render_digits(50, seed=3)
    assert np.array_equal(images, again)  # deterministic: a dataset name means the same data everywhere


def test_missing_fonts_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(FONTS_ENV, str(tmp_path / "none.ttf"))
    with pytest.raises(DigitrecError, match="font file"):
        font_files()
    monkeypatch.setenv(FONTS_ENV, "")
    monkeypatch.setattr("digitrec.data.fonts._fontconfig_files", lambda: [])
    with pytest.raises(DigitrecError, match="no handwriting fonts found .*fonts-bwht"):
        font_files()


def test_installed_handwriting_fonts_are_found():
    """CI installs Debian's handwriting font packages (.ci/run); fontconfig finds them at run time."""
    files = font_files("")
    assert len(files) >= 10 and all(f.suffix in (".ttf", ".otf") for f in files)


def test_stroke_allographs_cover_the_styles_mnist_lacks():
    glyphs, labels, styles = stroke_glyphs(seed=0, variants=2)
    assert glyphs.shape[1:] == (64, 64) and glyphs.max() == 1.0
    assert len(ALLOGRAPHS[1]) >= 3 and len(ALLOGRAPHS[4]) >= 3 and len(ALLOGRAPHS[7]) >= 2
    assert sorted(set(labels.tolist())) == list(range(10))
    images, labels = render_strokes(40, seed=1)
    check_mnist_form(images)


def test_mnist_form_batch_scales_to_20_px_and_centres_by_mass():
    x = np.zeros((2, 1, 64, 64), np.float32)
    x[0, 0, 10:50, 30:34] = 1  # a tall bar off centre
    x[1, 0, 5:15, 5:45] = 1  # a wide bar in a corner
    import torch

    out = mnist_form_batch(torch.from_numpy(x)).numpy()[:, 0]
    for a, long_axis in ((out[0], 0), (out[1], 1)):
        ys, xs = np.nonzero(a > 0.3)
        extent = (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        assert extent[long_axis] in (19, 20, 21)
        cy, cx = (np.indices(a.shape) * a).reshape(2, -1).sum(1) / a.sum()
        assert abs(cy - 14) < 1 and abs(cx - 14) < 1


def test_extras_dataset_keeps_the_official_test_set(monkeypatch, mnist):
    monkeypatch.setitem(datasets.EXTRAS, "fonts", 600)  # 100 font digits and 100 drawn ones: a quick check
    monkeypatch.setitem(datasets.EXTRAS, "strokes", 600)
    monkeypatch.setenv(FONTS_ENV, str(matplotlib_font()))
    data = datasets._with_extras("mnist+fonts+strokes", None, False)
    assert len(data.train_labels) == len(mnist.train_labels) + 200
    assert np.array_equal(data.train_images[:len(mnist.train_labels)], mnist.train_images)
    assert np.array_equal(data.test_images, mnist.test_images) and np.array_equal(data.test_labels, mnist.test_labels)
    assert "100 fonts, 100 strokes" in data.location


@pytest.mark.parametrize("name", ["mnist+letters", "mnist+fonts+fonts", "+fonts"])
def test_unknown_extras_are_refused(name):
    with pytest.raises(DigitrecError, match="unknown dataset"):
        datasets.split_extras(name)
