"""Outputs never replace inputs or a run's training records; a missing optional dependency is a one-line error
naming the extra to install, for every command that needs one."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from digitrec import checkpoint
from digitrec.cli import main
from digitrec.models import create

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as training leaves it (an untrained `fast` network: these checks come before any work)."""
    run = tmp_path / "run"
    run.mkdir()
    checkpoint.save(run / "model.pt", create("fast"), "fast", {}, 10, epoch=1, dataset="mnist", split="canonical")
    (run / "history.json").write_text(json.dumps({"epochs": [], "train_time_s": 1.0}))
    (run / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "train_time_s": 1.0}))
    return run


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


def _refused(capsys, argv: list[str], fragment: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error:") and err.count("\n") == 1 and fragment in err, err


@pytest.mark.parametrize("argv, fragment", [
    (["export", "{run}/model.pt", "--out", "{run}/model.pt"], "is this command's input"),
    (["export", "{run}/model.pt", "--format", "torchscript", "--out", "{run}/model.pt"], "is this command's input"),
    (["export", "{run}/model.pt", "--out", "{run}/metrics.json"], "would replace the metrics.json of a run"),
    (["export", "{run}/model.pt", "--out", "{run}"], "is a folder"),
    (["quantize", "{run}/model.pt", "--out", "{run}/model.pt"], "is this command's input"),
    (["quantize", "{run}/model.pt", "--out", "{run}/history.json"], "would replace the history.json of a run"),
    (["evaluate", "{run}/model.pt", "--out", "{run}"], "holds a training run (model.pt)"),
    (["evaluate", "{run}/model.pt", "--out", "{run}/metrics.json"], "is a file"),
    (["ensemble", "{run}", "{run}/model.pt", "--out", "{run}"], "holds a training run (model.pt)"),
    (["report", "{run}", "--out", "{run}/model.pt"], "would replace the model.pt of a run"),
    (["report", "{run}", "--out", "{run}"], "is a folder"),
])
def test_outputs_never_replace_inputs_or_training_records(run_dir, capsys, argv, fragment):
    before = _snapshot(run_dir)
    _refused(capsys, [a.replace("{run}", str(run_dir)) for a in argv], fragment)
    assert _snapshot(run_dir) == before


def test_a_classical_run_counts_as_a_training_run(tmp_path, capsys, run_dir):
    """A compare run of svm/knn has no checkpoint, only training metrics: evaluate must not replace them."""
    svm = tmp_path / "mnist-svm"
    svm.mkdir()
    (svm / "metrics.json").write_text(json.dumps({"model": "svm", "accuracy": 0.98, "train_time_s": 13.0}))
    before = _snapshot(svm)
    _refused(capsys, ["evaluate", str(run_dir / "model.pt"), "--out", str(svm)], "holds a training run (metrics.json)")
    assert _snapshot(svm) == before


def test_an_earlier_evaluation_may_be_rewritten(tmp_path):
    from digitrec.outputs import check_output_folder

    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"accuracy": 0.9, "checkpoint": "m.pt"}))
    assert check_output_folder(folder) == folder  # evaluate's own output: no training record in it


def _cli_without(modules: list[str], argv: list[str]) -> subprocess.CompletedProcess:
    """`digitrec ARGV` in a fresh interpreter in which `modules` cannot be imported (as if not installed)."""
    code = (f"import sys\nfor m in {modules!r}:\n    sys.modules[m] = None\n"
            f"from digitrec.cli import main\nsys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("missing, argv, extra", [
    (["onnx"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxscript"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxruntime"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxruntime"], ["quantize", "{run}/model.pt", "--out", "{tmp}/q.onnx"], "onnx"),
    (["onnx"], ["quantize", "{tmp}/m.onnx", "--out", "{tmp}/q.onnx"], "onnx"),
    (["onnxruntime"], ["predict", "{tmp}/m.onnx", "{tmp}/digit.png"], "onnx"),
    (["onnxruntime"], ["read", "{tmp}/m.onnx", "{tmp}/digit.png"], "onnx"),
    (["onnxruntime"], ["serve", "--model", "{tmp}/m.onnx", "--port", "0"], "onnx"),
    (["fastapi"], ["serve", "--port", "0"], "serve"),
    (["uvicorn"], ["serve", "--port", "0"], "serve"),
    (["optuna"], ["tune", "--out", "{tmp}/t", "--trials", "1"], "tune"),
])
def test_a_missing_extra_is_a_one_line_error(run_dir, tmp_path, missing, argv, extra):
    from PIL import Image

    Image.new("L", (28, 28), 255).save(tmp_path / "digit.png")
    (tmp_path / "m.onnx").write_bytes(b"not read: the missing module is found first")
    argv = [a.replace("{run}", str(run_dir)).replace("{tmp}", str(tmp_path)) for a in argv]
    result = _cli_without(missing, argv)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("digitrec: error:") and f"pip install 'digitrec[{extra}]'" in lines[0], lines[0]
    assert not (tmp_path / "t").exists() and not (tmp_path / "q.onnx").exists()
