"""The headless Chromium that the browser tests drive (the system's, never a downloaded one).

Without Chromium or the playwright package the browser tests are skipped, and the reason is printed in pytest's
summary (-rs). With DIGITREC_REQUIRE_BROWSER=1 — as CI sets it, having installed Chromium — their absence fails the
tests instead, so a broken browser set-up cannot pass unnoticed.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REQUIRED = os.environ.get("DIGITREC_REQUIRE_BROWSER") == "1"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """DIGITREC_CHROMIUM when set (a path that is not a file: no browser), else the one on PATH."""
    if "DIGITREC_CHROMIUM" in os.environ:
        return os.environ["DIGITREC_CHROMIUM"] if Path(os.environ["DIGITREC_CHROMIUM"]).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> list[str]:
    """What the browser tests lack on this machine, as install hints."""
    lacks = [] if chromium_path() else ["Chromium (apt-get install chromium)"]
    if importlib.util.find_spec("playwright") is None:
        lacks.append("the playwright package (pip install -e '.[test]')")
    return lacks


def chromium_or_skip() -> str:
    """The Chromium executable; or skip the test saying what is missing (fail instead when it is required)."""
    lacks = missing()
    if lacks:
        reason = "browser test: needs " + " and ".join(lacks)
        if REQUIRED:
            pytest.fail(reason + " (DIGITREC_REQUIRE_BROWSER=1)", pytrace=False)
        pytest.skip(reason)
    return chromium_path()
