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
    (["export", "{run}/model.pt", "--out", "{run}/metrics.json"], "metrics.json is a run's own record"),
    (["export", "{run}/model.pt", "--out", "{run}"], "is a folder"),
    (["quantize", "{run}/model.pt", "--out", "{run}/model.pt"], "is this command's input"),
    (["quantize", "{run}/model.pt", "--out", "{run}/history.json"], "history.json is a run's own record"),
    (["evaluate", "{run}/model.pt", "--out", "{run}"], "holds a training run (model.pt)"),
    (["evaluate", "{run}/model.pt", "--out", "{run}/metrics.json"], "is a file"),
    (["ensemble", "{run}", "{run}/model.pt", "--out", "{run}"], "holds a training run (model.pt)"),
    (["report", "{run}", "--out", "{run}/model.pt"], "model.pt is a run's own record"),
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


# Each case: the modules that are "not installed", the command. Cases run one after another in ONE fresh
# interpreter (cheaper than one each): before each, digitrec's modules are dropped so that every import is
# made again, and the missing modules are set to None in sys.modules (import then raises ImportError).
MISSING_EXTRA_CASES = [
    (["fastapi"], ["serve", "--port", "0"], "serve"),
    (["uvicorn"], ["serve", "--port", "0"], "serve"),
    (["onnxruntime"], ["serve", "--model", "{tmp}/m.onnx", "--port", "0"], "onnx"),
    (["onnx"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxscript"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxruntime"], ["export", "{run}/model.pt", "--out", "{tmp}/m.onnx"], "onnx"),
    (["onnxruntime"], ["quantize", "{run}/model.pt", "--out", "{tmp}/q.onnx"], "onnx"),
    (["onnx"], ["quantize", "{tmp}/m.onnx", "--out", "{tmp}/q.onnx"], "onnx"),
    (["onnxruntime"], ["predict", "{tmp}/m.onnx", "{tmp}/digit.png"], "onnx"),
    (["onnxruntime"], ["read", "{tmp}/m.onnx", "{tmp}/digit.png"], "onnx"),
    (["optuna"], ["tune", "--out", "{tmp}/t", "--trials", "1"], "tune"),
]
RUNNER = """
import contextlib, io, json, sys
results = []
for missing, argv in json.loads(sys.argv[1]):
    for name in [m for m in sys.modules if m == "digitrec" or m.startswith("digitrec.")]:
        del sys.modules[name]
    saved = {m: sys.modules.get(m) for m in missing}
    sys.modules.update({m: None for m in missing})
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        from digitrec.cli import main
        code = main(argv)
    for m, module in saved.items():
        if module is None:
            del sys.modules[m]
        else:
            sys.modules[m] = module
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def missing_extra_results(tmp_path_factory):
    from PIL import Image

    tmp = tmp_path_factory.mktemp("extras")
    run = tmp / "run"
    run.mkdir()
    checkpoint.save(run / "model.pt", create("fast"), "fast", {}, 10, epoch=1, dataset="mnist", split="canonical")
    Image.new("L", (28, 28), 255).save(tmp / "digit.png")
    (tmp / "m.onnx").write_bytes(b"not read: the missing module is found first")
    cases = [[missing, [a.replace("{run}", str(run)).replace("{tmp}", str(tmp)) for a in argv]]
             for missing, argv, _ in MISSING_EXTRA_CASES]
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], capture_output=True, text=True,
                          timeout=600, env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", range(len(MISSING_EXTRA_CASES)),
                         ids=[f"{'+'.join(m)}-{a[0]}" for m, a, _ in MISSING_EXTRA_CASES])
def test_a_missing_extra_is_a_one_line_error(missing_extra_results, case):
    tmp, results = missing_extra_results
    code, err = results[case]
    extra = MISSING_EXTRA_CASES[case][2]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err[-2000:]
    assert lines[0].startswith("digitrec: error:") and f"pip install 'digitrec[{extra}]'" in lines[0], lines[0]
    assert not (tmp / "t").exists() and not (tmp / "q.onnx").exists()
