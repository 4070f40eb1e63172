"""No function over 60 lines (the brief's rule for src/), checked on the modules listed here; every module of
src/digitrec belongs in the list once its long functions are split."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["src/digitrec/compare.py", "src/digitrec/report.py", "src/digitrec/evaluate.py", "src/digitrec/runs.py",
           "src/digitrec/outputs.py", "src/digitrec/errors.py", "src/digitrec/ensemble.py", "src/digitrec/cli.py",
           *[f"src/digitrec/commands/{c}.py" for c in ("compare", "report", "evaluate", "ensemble", "export",
                                                      "quantize", "data", "models")],
           *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py"))]
MAX_LINES = 60


@pytest.mark.parametrize("path", CHECKED)
def test_no_function_over_60_lines(path):
    tree = ast.parse((ROOT / path).read_text())
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, f"{path}: {', '.join(long)}"
