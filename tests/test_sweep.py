"""`digitrec sweep` (many `digitrec train` processes, mean ± std over seeds) and `digitrec ensemble`."""
from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from digitrec.cli import main

# 3 seeds of a tiny but real run: simple-cnn, 300 MNIST images, 1 epoch, tested on the 10,000 canonical test images.
TRAIN = ["--model", "simple-cnn", "--split", "canonical", "--limit", "300", "--epochs", "1", "--lr", "0.003",
         "--device", "cpu"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    code = main(["sweep", "--seeds", "0..2", "--jobs", "2", *TRAIN, "--out", str(out)])  # runs inherit $DIGITREC_DATA
    assert code == 0
    return out


def test_sweep_writes_mean_and_std_over_seeds(swept):
    summary = json.loads((swept / "summary.json").read_text())
    runs = summary["runs"]
    assert [r["name"] for r in runs] == ["seed0", "seed1", "seed2"] and all(r["ok"] for r in runs)
    accs = [json.loads((swept / "runs" / r["name"] / "metrics.json").read_text())["accuracy"] for r in runs]
    assert len(set(accs)) > 1  # the seeds really differ
    (group,) = summary["groups"]
    assert group["finished"] == 3
    assert group["accuracy_mean"] == pytest.approx(statistics.fmean(accs))
    assert group["accuracy_std"] == pytest.approx(statistics.stdev(accs))
    assert summary["machine"]["torch"] and summary["machine"]["cpu_cores"]
    md = (swept / "summary.md").read_text()
    assert f"{statistics.fmean(accs):.4f} ± {statistics.stdev(accs):.4f}" in md
    # each run was a separate `digitrec train` with its own seed
    for r, seed in zip(runs, range(3)):
        history = json.loads((swept / "runs" / r["name"] / "history.json").read_text())
        assert history["config"]["seed"] == seed and history["config"]["limit"] == 300


def test_rerunning_a_sweep_skips_finished_runs(swept, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (swept / "runs").glob("*/model.pt")}
    code = main(["sweep", "--seeds", "0..2", *TRAIN, "--out", str(swept)])
    assert code == 0
    assert "3 runs (3 already finished)" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (swept / "runs").glob("*/model.pt")} == before


def test_ensemble_of_the_sweep(swept, tmp_path, capsys):
    from digitrec.predict import Predictor

    runs = sorted((swept / "runs").iterdir())
    assert main(["ensemble", *map(str, runs), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    members = [json.loads((r / "metrics.json").read_text())["accuracy"] for r in runs]
    assert [m["accuracy"] for m in metrics["members"]] == pytest.approx(members)
    assert metrics["n"] == 10_000 and "ensemble of 3" in printed
    # the same average computed through the inference path
    from digitrec.data import load, make_split

    split = make_split(load("mnist"), "canonical")
    probs = np.mean([Predictor(r / "model.pt").predict_proba(split.test_images) for r in runs], axis=0)
    assert metrics["accuracy"] == pytest.approx(float((probs.argmax(1) == split.test_labels).mean()), abs=2e-4)
    assert (tmp_path / "confusion.png").exists()


def test_ensemble_of_one_model_twice_is_that_model(swept, capsys):
    run = swept / "runs" / "seed0"
    assert main(["ensemble", str(run), str(run / "model.pt")]) == 0
    out = capsys.readouterr().out
    acc = json.loads((run / "metrics.json").read_text())["accuracy"]
    assert f"accuracy {acc:.4f}" in out.splitlines()[2] and "+0.0000" in out


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0..x"], "--seeds expects A..B"),
    (["--seeds", "3..1"], "is empty"),
    (["--seeds", "1,1"], "distinct"),
    (["--seeds", "0..2", "--param", "lr"], "--param expects NAME=V1,V2"),
    (["--seeds", "0..2", "--param", "lr=fast"], "--param lr: invalid float value: 'fast'"),
    (["--seeds", "0..2", "--param", "split=paper,random"], "--param split: unknown split 'random'"),
    (["--seeds", "0..2", "--param", "lr=none"], "--param lr: invalid float value: 'none'"),
    (["--seeds", "0..2", "--param", "lr=inf"], "--lr must be a finite number"),
    (["--seeds", "0..2", "--param", "limit=none,None"], "repeated value"),
    (["--seeds", "0..2", "--param", "color=1,2"], "unknown setting 'color'"),
    (["--seeds", "0..2", "--param", "seed=1,2"], "use --seeds"),
    (["--seeds", "0..2", "--param", "lr=0.1", "--param", "lr=0.2"], "given twice"),
    (["--seeds", "0..2", "--param", "batch_size=64,1"], "--batch-size must be ≥ 2"),
    (["--seeds", "0..2", "--model", "nope"], "unknown model 'nope'"),
    (["--seeds", "0..2", "--jobs", "0"], "--jobs must be ≥ 1"),
])
def test_bad_sweep_flags(tmp_path, capsys, args, message):
    out = tmp_path / "s"
    assert main(["sweep", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    ([], "the following arguments are required"),
    (["{run}"], "at least 2 checkpoints"),
    (["{run}", "{tmp}/missing.pt"], "checkpoint not found"),
    (["{run}", "{tmp}"], "without model.pt"),
    (["{run}", "{run}", "--dataset", "nope"], "unknown dataset"),
])
def test_bad_ensemble_input(swept, tmp_path, capsys, args, message):
    run = swept / "runs" / "seed0"
    args = [a.format(run=run, tmp=tmp_path) for a in args]
    assert main(["ensemble", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err


# Every optional setting can be swept, 'none' included: the value reaches the run's `digitrec train` command line
# and, parsed there, gives the config the plan validated (this used to end in "NoneType takes no arguments").
OPTIONAL = {"limit": ("none,500", [None, 500]), "data_dir": ("none,/data/x", [None, "/data/x"]),
            "threads": ("none,1", [None, 1]), "init_from": ("none,/runs/a b/model.pt", [None, "/runs/a b/model.pt"]),
            "backbone_lr": ("none,0.001", [None, 0.001]), "unfreeze_epoch": ("none,3", [None, 3])}


def test_every_optional_setting_is_covered():
    from digitrec import config

    assert set(OPTIONAL) == {name for name in config.FIELDS if config.optional(name)}


@pytest.mark.parametrize("name", sorted(OPTIONAL))
def test_param_sweeps_every_optional_setting(name):
    from digitrec.cli import build_parser
    from digitrec.commands.sweep import train_argv
    from digitrec.commands.train import config_from_args
    from digitrec.sweep import parse_param, plan

    text, expected = OPTIONAL[name]
    args = build_parser().parse_args(["sweep", "--seeds", "0", "--out", "s", "--model", "resnet18", "--epochs", "4",
                                      "--preset", "paper", "--model-option", "input_size=28"])
    base = config_from_args(args)
    param = parse_param(f"{name}={text}")
    assert param == (name, expected)
    runs = plan(train_argv(args), base, [0], [param])
    assert [r.values[name] for r in runs] == expected
    assert len({r.name for r in runs}) == 2 and all("/" not in r.name and " " not in r.name for r in runs)
    for run in runs:  # what the run's `digitrec train` process will be configured with
        cfg = config_from_args(build_parser().parse_args(["train", *run.argv, "--out", "r"]))
        assert getattr(cfg, name) == run.values[name]
        assert cfg.model == "resnet18" and cfg.epochs == 4 and cfg.model_options == {"input_size": 28}


@pytest.mark.parametrize("text, values", [
    ("augment=true,false", [True, False]), ("optimizer=adam,sgd", ["adam", "sgd"]),
                                          ("dropout=0.1,0.3", [0.1, 0.3]), ("device=cpu", ["cpu"])])
def test_param_types_come_from_the_config(text, values):
    from digitrec.sweep import parse_param

    assert parse_param(text)[1] == values
