"""Nothing imports the training loop that does not train (function length: test_code_shape.py)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "digitrec"
# modules that evaluate, export or run other processes: they need the device, never the training loop
NOT_TRAINING = ["evaluate.py", "ensemble.py", "export.py", "sweep.py", "device.py", "config.py", "checkpoint.py",
                "predict.py", "commands/evaluate.py", "commands/ensemble.py", "commands/export.py"]


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
