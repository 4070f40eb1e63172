"""The training path's shape: short functions, and nothing imports the training loop that does not train."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "digitrec"
# the training path's modules (the inference path and the server check their own)
TRAINING = ["train.py", "config.py", "device.py", "prune.py", "runinfo.py", "checkpoint.py", "fileio.py", "tune.py",
            "sweep.py", "transfer.py", "augment.py", "models/__init__.py", "data/idx.py", "data/download.py",
            "data/splits.py", "data/datasets.py", "commands/train.py", "commands/tune.py", "commands/sweep.py",
            "commands/prune.py"]
# modules that evaluate, export or run other processes: they need the device, never the training loop
NOT_TRAINING = ["evaluate.py", "ensemble.py", "export.py", "sweep.py", "device.py", "config.py", "checkpoint.py",
                "predict.py", "commands/evaluate.py", "commands/ensemble.py", "commands/export.py"]


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


@pytest.mark.parametrize("name", TRAINING)
def test_no_function_over_60_lines(name):
    long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in _functions(SRC / name)
            if f.end_lineno - f.lineno + 1 > 60]
    assert not long, f"{name}: {', '.join(long)}"


def _imports(path: Path) -> set[str]:
    package = ".".join(("digitrec", *path.relative_to(SRC).parent.parts))
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            out.add(".".join([*base, node.module] if node.module else base))
            out.update(".".join([*base, *([node.module] if node.module else []), a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("name", NOT_TRAINING)
def test_does_not_import_the_training_loop(name):
    assert "digitrec.train" not in _imports(SRC / name)


def test_the_import_check_sees_relative_imports():
    assert "digitrec.train" in _imports(SRC / "tune.py") and "digitrec.device" in _imports(SRC / "sweep.py")
