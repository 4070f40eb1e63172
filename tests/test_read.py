"""Reading numbers: digitrec.reader.read_image and `digitrec read`, with the bundled robust model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.errors import DigitrecError
from digitrec.predict import load_predictor
from digitrec.reader import default_model_path, read_image
from test_preprocess import by_label, paper, png

FIXTURES = Path(__file__).parent / "data" / "realworld"


@pytest.fixture(scope="module")
def predictor():
    return load_predictor(default_model_path())


@pytest.fixture(scope="module")
def number_image(tmp_path_factory, mnist):
    """'409' written with real MNIST test digits, dark on light paper."""
    img, boxes = paper([by_label(mnist, 4), by_label(mnist, 0), by_label(mnist, 9)])
    path = tmp_path_factory.mktemp("read") / "409.png"
    img.save(path)
    return path, boxes


class Fixed:
    """A predictor with known answers: digit 7 at confidence 0.9, then digit 1 at 0.4, ..."""

    def __init__(self, answers):
        self.answers = answers

    def predict_proba(self, x):
        assert x.shape[1:] == (1, 28, 28) and x.dtype == np.float32
        out = np.zeros((len(x), 10), np.float32)
        for i, (digit, conf) in enumerate(self.answers[:len(x)]):
            out[i] = (1 - conf) / 9
            out[i, digit] = conf
        return out


def test_bundled_model_is_robust_and_accurate_on_mnist(predictor, mnist):
    ckpt = predictor.checkpoint
    assert ckpt["model_name"] == "fast" and ckpt["config"]["elastic"] > 0 and ckpt["config"]["stroke"] > 0
    x = mnist.test_images[:1000].astype(np.float32)[:, None] / 255
    # a sanity check (the shipped model: 98.71 % on all 10,000, 97.6 % on these harder first 1,000)
    assert (predictor.predict_proba(x).argmax(1) == mnist.test_labels[:1000]).mean() > 0.97


def test_read_image_reads_a_number(predictor, number_image):
    path, truth = number_image
    r = read_image(predictor, path)
    assert r["text"] == "409"
    assert [d["digit"] for d in r["digits"]] == [4, 0, 9]
    assert r["crops"].shape == (3, 28, 28) and r["crops"].dtype == np.float32
    for d, t in zip(r["digits"], truth):
        assert 0 < d["confidence"] <= 1 and d["doubtful"] is False
        assert all(abs(a - b) <= 0.1 * t[3] for a, b in zip(d["box"], t))
    json.dumps({k: v for k, v in r.items() if k != "crops"})  # the rest is plain JSON
    # bytes and PIL images are read the same way as paths
    assert read_image(predictor, path.read_bytes())["text"] == "409"
    assert read_image(predictor, Image.open(path))["text"] == "409"


def test_doubtful_digits_become_question_marks(number_image):
    path, _ = number_image
    r = read_image(Fixed([(7, 0.9), (1, 0.4), (3, 0.55)]), path, min_confidence=0.5)
    assert r["text"] == "7?3"
    assert [d["doubtful"] for d in r["digits"]] == [False, True, False]
    assert read_image(Fixed([(7, 0.9), (1, 0.4), (3, 0.55)]), path)["text"] == "713"  # default: no doubt
    with pytest.raises(DigitrecError, match="min_confidence"):
        read_image(Fixed([]), path, min_confidence=1.5)


def test_blank_image_reads_as_empty(predictor, tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (200, 100), 240).save(path)
    r = read_image(predictor, path)
    assert r["text"] == "" and r["digits"] == [] and r["crops"].shape == (0, 28, 28)


def test_realworld_fixtures(predictor):
    """Phone-photo-like images of MNIST test digits (benchmarks/make_realworld.py --seed 7 --max-side 600)."""
    truth = json.loads((FIXTURES / "labels.json").read_text())["images"]
    texts = {f: read_image(predictor, FIXTURES / f)["text"] for f in truth}
    assert sum(texts[f] == t for f, t in truth.items()) >= len(truth) - 2, texts


# --- the command ---------------------------------------------------------------------------------------------------

def test_cli_json(number_image, capsys):
    path, _ = number_image
    assert main(["read", "default", str(path), str(path), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    obj = json.loads(lines[0])
    assert set(obj) == {"file", "text", "digits"} and obj["file"] == str(path) and obj["text"] == "409"
    assert [d["digit"] for d in obj["digits"]] == [4, 0, 9]
    for d in obj["digits"]:
        assert {"digit", "confidence", "box"} <= set(d) and len(d["box"]) == 4 and 0 < d["confidence"] <= 1


def test_cli_text_and_model_defaults(number_image, capsys, tmp_path):
    path, _ = number_image
    assert main(["read", str(path)]) == 0  # MODEL omitted: the bundled one
    omitted = capsys.readouterr().out
    assert omitted.startswith(f"{path}: 409  (4 ")
    assert main(["read", str(default_model_path()), str(path)]) == 0
    assert capsys.readouterr().out == omitted
    assert main(["read", str(path), "--min-confidence", "1"]) == 0  # nothing is certain: all doubtful
    assert capsys.readouterr().out.startswith(f"{path}: ???")


@pytest.mark.parametrize("make_args, message", [
    (lambda good, tmp: ["read", str(good), str(tmp / "notes.txt")], "not a readable image"),
    (lambda good, tmp: ["read", str(good), str(tmp / "missing.png")], "file not found"),
    (lambda good, tmp: ["read", str(good), str(tmp / "cut.png")], "cannot decode"),
    (lambda good, tmp: ["read", str(good), "--min-confidence", "1.5"], "--min-confidence"),
    (lambda good, tmp: ["read", str(tmp / "garbage.pt"), str(good)], "not a readable digitrec checkpoint"),
    (lambda good, tmp: ["read", str(tmp / "absent.pt"), str(good)], "model not found"),
    (lambda good, tmp: ["read", "default"], "no image files"),
])
def test_cli_bad_input_exits_2_with_one_line_and_no_output(make_args, message, number_image, tmp_path, capsys):
    good, _ = number_image
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "cut.png").write_bytes(png(Image.new("L", (64, 64), 128))[:60])
    (tmp_path / "garbage.pt").write_bytes(b"\x00" * 100)
    assert main(make_args(good, tmp_path)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # fail fast: the good image before the bad one printed nothing
    assert captured.err.count("\n") == 1 and captured.err.startswith("digitrec: error: ") and message in captured.err
