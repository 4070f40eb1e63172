"""No function over 60 lines (the brief's rule) in any module of src/digitrec or benchmarks/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKED = sorted(str(p.relative_to(ROOT)) for folder in ("src/digitrec", "benchmarks") for p in (ROOT / folder).rglob("*.py"))
MAX_LINES = 60


def long_functions(source: str) -> list[str]:
    return [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES]


@pytest.mark.parametrize("path", CHECKED)
def test_no_function_over_60_lines(path):
    long = long_functions((ROOT / path).read_text())
    assert not long, f"{path}: {', '.join(long)}"


def test_the_check_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    assert long_functions(f"def f():\n{body}\n") == ["f (62 lines, line 1)"]
    assert len(CHECKED) > 40 and "src/digitrec/train.py" in CHECKED and "src/digitrec/serve/app.py" in CHECKED
