"""`digitrec ensemble`: members predict as their runs were evaluated (TTA when trained with it), diversity reported."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import shared_data_dir
from digitrec.cli import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two small real runs on 600 MNIST images (canonical split): seed 0 evaluated with TTA, seed 1 without."""
    from digitrec.config import make_config
    from digitrec.train import train

    out = []
    for seed, tta in ((0, True), (1, False)):
        run = tmp_path_factory.mktemp(f"seed{seed}")
        cfg = make_config("fast", limit=600, epochs=1, model_options={"width": 8}, seed=seed, tta=tta, threads=2,
                          data_dir=str(shared_data_dir()) if shared_data_dir() else None)
        train(cfg, run, progress=False, log=lambda s: None)
        out.append(run)
    return out


@pytest.mark.slow  # trains by itself
def test_members_are_scored_as_their_runs_were(runs, tmp_path, capsys):
    """A member trained with tta=true is scored with TTA, as its own metrics.json was (not without, as before)."""
    assert main(["ensemble", *map(str, runs), "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    own = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert [o["tta"] for o in own] == [True, False]
    assert [m["tta"] for m in metrics["members"]] == [True, False]
    assert [m["accuracy"] for m in metrics["members"]] == [o["accuracy"] for o in own]
    assert "(fast, TTA): accuracy" in capsys.readouterr().out


@pytest.mark.slow  # trains by itself
def test_tta_flag_overrides_every_member(runs, tmp_path):
    from digitrec.evaluate import evaluate_checkpoint

    for flag, expected in (("--tta", True), ("--no-tta", False)):
        out = tmp_path / flag
        assert main(["ensemble", *map(str, runs), flag, "--out", str(out)]) == 0
        members = json.loads((out / "metrics.json").read_text())["members"]
        assert [m["tta"] for m in members] == [expected, expected]
        direct = evaluate_checkpoint(runs[0] / "model.pt", "mnist", "canonical", tta=expected,
                                     data_dir=str(shared_data_dir()) if shared_data_dir() else None)
        assert members[0]["accuracy"] == direct["accuracy"]


@pytest.mark.slow  # trains by itself
def test_mean_probabilities_and_diversity_recomputed_independently(runs):
    """The ensemble's vote, disagreement and oracle from the members' own probabilities (TTA by hand)."""
    from digitrec.data import load, make_split
    from digitrec.ensemble import ensemble
    from digitrec.predict import Predictor

    metrics = ensemble(runs, data_dir=str(shared_data_dir()) if shared_data_dir() else None)
    split = make_split(load("mnist", shared_data_dir()), "canonical")
    x = torch.from_numpy(split.test_images).float().div(255).unsqueeze(1)
    views = [x] + [torch.roll(x, s, d) for s in (-1, 1) for d in (2, 3)]
    with torch.no_grad():
        tta_model = Predictor(runs[0] / "model.pt").model
        p0 = torch.softmax(sum(tta_model(v) for v in views) / 5, 1).numpy()
    p1 = Predictor(runs[1] / "model.pt").predict_proba(split.test_images)
    y = split.test_labels
    assert metrics["accuracy"] == pytest.approx(float((((p0 + p1) / 2).argmax(1) == y).mean()), abs=2e-4)
    preds = np.stack([p0.argmax(1), p1.argmax(1)])
    assert metrics["members_disagree"] == pytest.approx(int((preds[0] != preds[1]).sum()), abs=2)
    assert metrics["members_disagree"] > 0  # two different seeds on 600 images: not the same model
    assert metrics["oracle_accuracy"] == pytest.approx(float((preds == y).any(0).mean()), abs=2e-4)
    assert metrics["oracle_accuracy"] >= max(metrics["accuracy"], metrics["best_member_accuracy"])
