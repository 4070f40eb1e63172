"""Shared fixtures. Data comes from $DIGITREC_DATA (CI: ../shared/data); MNIST falls back to the bundled copy."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    value = os.environ.get("DIGITREC_DATA")
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else (REPO / path).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path | None:
    """$DIGITREC_DATA as an absolute path (None when unset: MNIST then comes from the bundled copy)."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def emnist_sample(data_root):
    """The 600 real EMNIST Digits test images (IDX orientation: transposed), labels and their indices."""
    if data_root is None:
        pytest.skip("DIGITREC_DATA is not set: the EMNIST sample lives in the shared data folder")
    path = data_root / "emnist" / "emnist-digits-test-sample600.npz"
    assert path.exists(), f"DIGITREC_DATA is set but {path} is missing"
    with np.load(path) as d:
        return {k: d[k] for k in ("images", "labels", "index")}


@pytest.fixture(scope="session")
def mnist(data_root):
    from digitrec.data import load

    return load("mnist", data_root, download=False)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A small but real model: `fast` trained 2 epochs on 6,000 MNIST images (canonical split), ~97-98 % test."""
    from digitrec.config import make_config
    from digitrec.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = make_config(None, model="fast", dataset="mnist", split="canonical", limit=6000, epochs=2,
                      batch_size=128, lr=0.01, optimizer="adam", schedule="onecycle", warmup=0.2,
                      data_dir=str(shared_data_dir()) if shared_data_dir() else None, seed=0, threads=2)
    train(cfg, out, progress=False, log=lambda s: None)
    return out


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked `browser` skip (or, with DIGITREC_REQUIRE_BROWSER=1, fail) before any fixture trains a model."""
    if item.get_closest_marker("browser"):
        from _browser import chromium_or_skip

        chromium_or_skip()


# Fixtures that train a model (tens of seconds on 2 cores): a test that uses one belongs to the full suite, not to
# the contributors' fast subset (`pytest -m "not slow"`). Tests that train by themselves carry @pytest.mark.slow.
SLOW_FIXTURES = {"tiny_run", "tiny_compare", "compare_dir", "ddp_run", "swept"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
