"""The `digitrec` command end to end: user errors are one line on stderr with exit code 2, nothing half-written."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "digitrec", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def _one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitrec: error:"), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", [
    (["train", "--dataset", "mnist", "--out", "{out}", "--epochs", "0"], "--epochs must be"),
    (["train", "--dataset", "cifar10", "--out", "{out}"], "unknown dataset 'cifar10'"),
    (["train", "--model", "vgg", "--out", "{out}", "--limit", "100"], "unknown model 'vgg'"),
    (["train", "--split", "random", "--out", "{out}", "--limit", "100"], "unknown split 'random'"),
    (["train", "--lr", "abc", "--out", "{out}"], "invalid float value: 'abc'"),
    (["train", "--preset", "nope", "--out", "{out}"], "unknown preset 'nope'"),
    (["train", "--out", "{out}", "--resume"], "nothing to resume"),
    (["train", "--out", "{out}", "--model-option", "width"], "KEY=VALUE"),
    (["train", "--out", "{out}", "--limit", "-3"], "--limit must be a positive"),
    (["train", "--dataset", "idx:/nonexistent/dir", "--out", "{out}"], "is not a folder"),
    (["train"], "the following arguments are required: --out"),
    (["evaluate", "{out}/missing.pt"], "checkpoint not found"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, fragment, capsys):
    args = [a.replace("{out}", str(tmp_path / "run")) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("digitrec: error:") and fragment in err[0], err
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_bad_preset_file(tmp_path, capsys):
    bad = tmp_path / "p.toml"
    bad.write_text("epochs = 3\nlearning_rate = 1\n")
    assert main(["train", "--preset", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "unknown setting(s) learning_rate" in capsys.readouterr().err
    bad.write_text("epochs = [\n")
    assert main(["train", "--preset", str(bad), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.slow  # two fresh interpreters
def test_corrupt_checkpoint(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint at all")
    _one_line_error(run_cli("evaluate", tmp_path / "bad.pt"), "not a readable digitrec checkpoint")
    import torch

    torch.save({"model": {}}, tmp_path / "foreign.pt")
    _one_line_error(run_cli("evaluate", tmp_path / "foreign.pt"), "not a digitrec checkpoint")


def test_evaluate_and_predict_on_trained_model(tiny_run, tmp_path, mnist):
    r = run_cli("evaluate", tiny_run / "model.pt", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["n"] == 10000 and metrics["split"] == "canonical" and metrics["accuracy"] > 0.9
    assert (tmp_path / "ev" / "confusion.png").stat().st_size > 1000

    # Real MNIST test digits as image files, dark ink on white paper as a person would scan them.
    paths = []
    for i in range(5):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - mnist.test_images[i]).resize((112, 112)).save(p)
        paths.append(p)
    r = run_cli("predict", tiny_run / "model.pt", *paths, "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["digit"] for row in rows] == mnist.test_labels[:5].tolist()
    assert all(abs(sum(row["probabilities"]) - 1) < 1e-4 for row in rows)


def test_predict_bad_image(tiny_run, tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    r = run_cli("predict", tiny_run / "model.pt", tmp_path / "x.png")
    _one_line_error(r, "x.png")
    assert r.stdout == ""
    _one_line_error(run_cli("predict", tiny_run / "model.pt", tmp_path / "none.png"), "file not found")


@pytest.mark.slow  # fresh interpreters, and the sha256 of every MNIST file
def test_data_info_and_verify(data_root):
    env = None
    r = run_cli("data", "verify", "--dataset", "mnist", *(["--data-dir", data_root] if data_root else []))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("sha256 ok") == 4
    r = run_cli("data", "verify", "--dataset", "emnist-digits", "--data-dir", "/nonexistent")
    # EMNIST images are not on this machine: verify must say so and fail, listing the missing files.
    if "missing" in r.stdout:
        assert r.returncode == 2 and "missing or corrupt" in r.stderr


@pytest.mark.parametrize("argv, expect", [
    (["read", "m.pt", "--json", "a.png", "b.png"], {"paths": ["m.pt", "a.png", "b.png"], "json": True}),
    (["read", "--min-confidence", "0.5", "a.png", "--json", "b.png"],
     {"paths": ["a.png", "b.png"], "json": True, "min_confidence": 0.5}),
    (["predict", "--json", "m.pt", "a.png", "b.png"], {"checkpoint": "m.pt", "images": ["a.png", "b.png"]}),
    (["report", "r1", "--out", "o.html", "r2"], {"out": "o.html"}),
    (["ensemble", "r1", "--split", "canonical", "r2"], {"split": "canonical"}),
    (["export", "--out", "m.onnx", "m.pt", "--format", "onnx"], {"checkpoint": "m.pt", "out": "m.onnx"}),
])
def test_options_anywhere(argv, expect):
    """Options may stand before, between or after the positionals of every subcommand."""
    from digitrec.cli import build_parser

    args = build_parser().parse_args(argv)
    for key, value in expect.items():
        assert getattr(args, key) == value, (key, getattr(args, key))
