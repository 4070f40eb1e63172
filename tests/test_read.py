"""Reading numbers: digitrec.reader.read_image, digitrec.Reader and `digitrec read`, with the bundled model."""
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


def test_bundled_model_learned_more_handwriting_and_is_accurate_on_mnist(predictor, mnist):
    ckpt = predictor.checkpoint
    assert ckpt["model_name"] == "fast" and ckpt["config"]["dataset"].startswith("mnist+fonts")
    x = mnist.test_images[:1000].astype(np.float32)[:, None] / 255
    # a sanity check (the shipped model: ≥ 99.6 % on all 10,000, see benchmarks/results/realworld-*.md)
    assert (predictor.predict_proba(x).argmax(1) == mnist.test_labels[:1000]).mean() > 0.99


def test_bundled_onnx_copy_agrees_with_the_checkpoint(predictor, mnist):
    from digitrec.reader import BUNDLED_DIR

    onnx = load_predictor(BUNDLED_DIR / "robust.onnx")
    x = mnist.test_images[:500].astype(np.float32)[:, None] / 255
    assert np.abs(onnx.predict_proba(x) - predictor.predict_proba(x)).max() < 1e-4


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


# --- real images, the Python API, batches ---------------------------------------------------------------------


def real_dir(data_root):
    """The real development set (shared data): a handful of its images are read here, the rest by the benchmark."""
    if data_root is None:
        pytest.skip("DIGITREC_DATA is not set: the real images live in the shared data folder")
    folder = data_root / "realworld-dev"
    assert (folder / "labels.csv").exists(), f"DIGITREC_DATA is set but {folder} is missing"
    return folder


@pytest.mark.parametrize("file, label", [
    ("images/dev_0074.png", "8"),  # a thick marker on a black canvas: the loops must stay paper
    ("images/dev_0111.png", "0"),  # transparent background
    ("images/dev_0059.jpg", "8008132"),  # a 12-MP phone photo with a shadow and the table at the bottom
    ("images/dev_0241.jpeg", "3446785512"),  # a phone's shadow across the page, 'ч'-style 4s
    ("images/dev_0184.jpg", "05221859"),  # a dark corner beside the number
])
def test_real_images(file, label, data_root):
    import digitrec

    folder = real_dir(data_root)
    assert digitrec.Reader().read(folder / file)["text"] == label


def test_reader_api_gives_the_cli_json_line(number_image, capsys):
    import digitrec

    path, _ = number_image
    result = digitrec.Reader(threads=1).read(str(path))
    assert main(["read", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result
    assert set(result) == {"file", "text", "digits"} and result["text"] == "409"
    assert digitrec.Reader().read(path.read_bytes())["file"] is None
    with pytest.raises(DigitrecError, match="file not found"):
        digitrec.Reader().read("nope.png")
    with pytest.raises(DigitrecError, match="model not found"):
        digitrec.Reader("absent.pt")


def test_import_digitrec_is_light():
    import subprocess
    import sys

    code = "import sys, digitrec; print(sorted(m for m in ('torch', 'PIL', 'numpy', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("img", [Image.new("L", (120, 80), 255), Image.new("RGBA", (50, 50), (0, 0, 0, 0)),
                                 Image.new("L", (1, 1), 0), Image.new("L", (200, 200), 0)])
def test_no_digit_is_an_answer(img, tmp_path, capsys):
    path = tmp_path / "blank.png"
    img.save(path)
    assert main(["read", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: (no digit found)\n"
    assert main(["read", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(path), "text": "", "digits": []}
    model = str(default_model_path())
    assert main(["predict", model, str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: no digit found\n"
    assert main(["predict", model, str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(path), "digit": None, "confidence": None,
                                                   "probabilities": None}


def test_eps_is_refused_by_the_commands(tmp_path, capsys):
    path = tmp_path / "loop.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n")
    for argv in (["predict", str(default_model_path()), str(path)], ["read", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "PostScript/EPS files are not accepted" in err


@pytest.fixture()
def batch_dir(tmp_path, number_image):
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    path, _ = number_image
    for name in ("a.png", "b.png", "sub/c.png"):
        (folder / name).write_bytes(path.read_bytes())
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not an image\n")  # not an image suffix: not part of the batch
    return folder


def test_batch_folder_streams_lines_and_reports_bad_files(batch_dir, capsys):
    assert main(["read", str(batch_dir), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(o["file"]).name for o in lines] == ["a.png", "b.png", "broken.png", "c.png"]
    assert [o.get("text") for o in lines] == ["409", "409", None, "409"]
    assert "cannot decode" in lines[2]["error"] or "not a readable image" in lines[2]["error"]
    assert main(["read", str(batch_dir / "sub" / "*.png")]) == 0  # a glob is a batch too
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("broken.png: error: " + lines[2]["error"]) and out[1].endswith("c.png: 409  (4 " + out[1].split("(4 ")[1])


def test_batch_out_file_resumes_and_repairs_a_cut_line(batch_dir, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    assert main(["read", str(batch_dir / "*.png"), "--out", str(out)]) == 0  # a.png, b.png
    first = out.read_text().splitlines()
    assert len(first) == 2
    with open(out, "a") as f:
        f.write('{"file": "half a li')  # a run killed mid-line
    assert main(["read", str(batch_dir), "--out", str(out), "--jobs", "2"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(o["file"]).name for o in lines] == ["a.png", "b.png", "broken.png", "c.png"]
    assert out.read_text().splitlines()[:2] == first  # the first run's lines untouched, nothing read twice
    assert "2 already there" in capsys.readouterr().err
    assert main(["read", str(batch_dir), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 4


def test_batch_rejects_bad_jobs(batch_dir):
    assert main(["read", str(batch_dir), "--jobs", "0"]) == 2
