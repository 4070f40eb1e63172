"""Without Chromium the browser tests are skipped with a visible reason; DIGITREC_REQUIRE_BROWSER=1 (CI) makes that
a failure — both checked by running them in a pytest of their own, with the browser hidden."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_web_e2e.py::test_draw_by_touch", "tests/test_report.py::test_report_renders_in_a_browser_with_no_script_running"]


def _pytest_without_chromium(**env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "DIGITREC_CHROMIUM": "/no/chromium/here", **env}
    environ.pop("DIGITREC_REQUIRE_BROWSER", None)
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *TESTS], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # a pytest of its own
def test_browser_tests_skip_with_the_reason_when_chromium_is_absent():
    result = _pytest_without_chromium()
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 skipped" in result.stdout and "browser test: needs Chromium (apt-get install chromium)" in result.stdout


@pytest.mark.slow  # a pytest of its own
def test_browser_tests_fail_without_chromium_when_required():
    result = _pytest_without_chromium(DIGITREC_REQUIRE_BROWSER="1")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "2 error" in result.stdout and "passed" not in result.stdout and "skipped" not in result.stdout
    assert result.stdout.count("needs Chromium (apt-get install chromium) (DIGITREC_REQUIRE_BROWSER=1)") == 2
