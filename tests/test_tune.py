"""`digitrec tune`: Optuna search on the validation split of a real MNIST subset, resumable, parallel, → a preset."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from digitrec.cli import main  # noqa: E402
from digitrec.config import make_config  # noqa: E402
from digitrec.errors import DigitrecError  # noqa: E402
from digitrec.tune import DEFAULT_SPACE_TOML, parse_space, preset_toml  # noqa: E402

# Tiny trials: simple-cnn, 400 training images, 2 epochs; validation is the canonical 6,000 images.
BASE = ["--model", "simple-cnn", "--split", "canonical", "--limit", "400", "--epochs", "2", "--device", "cpu",
        "--threads", "1"]


def _tune(out: Path, trials: int, *extra: str) -> int:
    return main(["tune", "--trials", str(trials), *BASE, *extra, "--out", str(out)])


def _study(out: Path):
    return optuna.load_study(study_name="digitrec-tune", storage=f"sqlite:///{out / 'study.db'}")


def _finished(study) -> list:
    return [t for t in study.get_trials() if t.state.is_finished() and t.state.name != "FAIL"]


@pytest.mark.slow  # trains several epochs
def test_tune_resumes_in_parallel_and_its_preset_trains(tmp_path, capsys):
    out = tmp_path / "study"
    assert _tune(out, 2) == 0
    assert len(_finished(_study(out))) == 2
    # the same command with a larger budget continues the same study, now with 2 worker processes
    assert _tune(out, 4, "--jobs", "2") == 0
    study = _study(out)
    trials = study.get_trials()
    assert len(trials) == 4 and sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert study.best_value == max(t.value for t in trials if t.state.name == "COMPLETE")
    # every trial saw validation data only: no test metrics, and its reported values are validation accuracies
    for t in trials:
        run = Path(t.user_attrs["run_dir"])
        history = json.loads((run / "history.json").read_text())["epochs"]
        assert [r["val_acc"] for r in history] == [t.intermediate_values[e] for e in sorted(t.intermediate_values)]
        assert not (run / "metrics.json").exists() and not (run / "last.pt").exists()
        assert (run / "model.pt").exists()
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    assert {"lr", "batch_size", "dropout", "weight_decay", "rotate", "shear", "shift", "scale"} <= set(rows[0])
    assert (out / "trials.md").read_text().count("\n| ") >= 5
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == study.best_trial.number and best["val_acc"] == study.best_value
    # a third run with the budget already met runs nothing
    assert _tune(out, 4) == 0
    assert len(_study(out).get_trials()) == 4
    # best.toml is a preset: its values are the best trial's, and `digitrec train` accepts it
    cfg = make_config(str(out / "best.toml"))
    assert cfg.lr == pytest.approx(study.best_params["lr"]) and cfg.batch_size == study.best_params["batch_size"]
    assert cfg.model_options["dropout"] == pytest.approx(study.best_params["dropout"])
    assert cfg.model == "simple-cnn" and cfg.limit is None  # limit is not part of the preset
    capsys.readouterr()
    run = tmp_path / "best_run"
    assert main(["train", "--preset", str(out / "best.toml"), "--limit", "400", "--epochs", "1", "--device", "cpu",
                 "--threads", "1", "--no-progress", "--out", str(run)]) == 0
    from digitrec.checkpoint import load

    trained = load(run / "model.pt")["config"]
    assert trained["lr"] == cfg.lr and trained["model_options"] == cfg.model_options and trained["epochs"] == 1
    assert "test n=10000" in capsys.readouterr().out


@pytest.mark.slow  # trains several epochs
def test_killed_tune_continues_the_same_study(tmp_path, data_root):
    """SIGKILL during trial 1; the rerun marks it failed, retries its values and completes the budget."""
    out = tmp_path / "study"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if data_root is not None:
        env["DIGITREC_DATA"] = str(data_root)
    cmd = [sys.executable, "-m", "digitrec", "tune", "--trials", "3", *BASE, "--no-prune", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "trials" / "0001").exists():  # trial 0 finished, trial 1 started
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = _study(out).get_trials()
    assert [t.state.name for t in killed][:2] == ["COMPLETE", "RUNNING"]
    assert subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600).returncode == 0
    trials = _study(out).get_trials()
    assert trials[1].state.name == "FAIL"
    assert len(_finished(_study(out))) == 3
    assert trials[2].params == trials[1].params  # the interrupted values were tried again first
    assert trials[0].value == killed[0].value  # the finished trial was kept, not rerun


@pytest.mark.slow  # trains several epochs
def test_on_epoch_hook_stops_training_after_the_epoch_is_saved(tmp_path):
    from digitrec.train import train

    cfg = make_config(None, model="simple-cnn", split="canonical", limit=400, epochs=3, device="cpu", threads=1)
    seen = []

    def stop(epoch, row):
        seen.append((epoch, row["val_acc"]))
        raise optuna.TrialPruned("enough")

    with pytest.raises(optuna.TrialPruned):
        train(cfg, tmp_path / "run", progress=False, log=lambda s: None, on_epoch=stop, evaluate_test=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())["epochs"]
    assert seen == [(1, history[0]["val_acc"])] and len(history) == 1
    assert (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "metrics.json").exists()


def test_space_format_and_preset_round_trip(tmp_path):
    space = parse_space(DEFAULT_SPACE_TOML)
    assert space["lr"] == {"low": 3e-4, "high": 3e-2, "log": True} and space["batch_size"]["choices"][0] == 32
    cfg = make_config(None, model="fast", lr=1.5e-05, batch_size=96, rotate=7.25, augment=False, limit=500)
    cfg.model_options = {"dropout": 0.125, "width": 16}
    path = tmp_path / "p.toml"
    path.write_text(preset_toml(cfg))
    again = make_config(str(path))
    assert again.lr == 1.5e-05 and again.batch_size == 96 and again.rotate == 7.25 and again.augment is False
    assert again.model_options == {"dropout": 0.125, "width": 16} and again.limit is None


@pytest.mark.parametrize("text, message", [
    ("lr = [1, 2", "not valid TOML"),
    ("lr = 0.1", "expected { low = A, high = B"),
    ("lr = { low = 0.1, high = 0.01 }", "low < high"),
    ("lr = { low = 0.0, high = 0.1, log = true }", "log range needs low > 0"),
    ("batch_size = { choices = [] }", "non-empty list"),
    ("lr = { low = 0.001, high = 0.1, spread = 2 }", "expected { low = A, high = B"),
    ("epochs = { low = 1, high = 5 }", "not searchable"),
    ("", "no settings"),
])
def test_bad_space_file(tmp_path, capsys, text, message):
    space = tmp_path / "space.toml"
    space.write_text(text)
    out = tmp_path / "study"
    assert _tune(out, 2, "--space", str(space)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "--trials must be ≥ 1"),
    (["--trials", "2", "--jobs", "0"], "--jobs must be ≥ 1"),
    (["--trials", "2", "--model", "nope"], "unknown model 'nope'"),
    (["--trials", "2", "--lr", "-1"], "--lr must be > 0"),
    (["--trials", "2", "--space", "/no/such/space.toml"], "not found"),
    (["--trials", "two"], "invalid int value"),
])
def test_bad_tune_flags(tmp_path, capsys, args, message):
    out = tmp_path / "study"
    assert main(["tune", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_space_values_are_checked_against_the_model(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text("batch_size = { choices = [1, 64] }\n")
    assert _tune(tmp_path / "a", 2, "--space", str(space)) == 2
    assert "space: batch_size = 1: --batch-size must be ≥ 2" in capsys.readouterr().err
    space.write_text("depth = { low = 1, high = 3 }\n")  # simple-cnn has no such option
    assert _tune(tmp_path / "b", 2, "--space", str(space)) == 2
    assert "space: depth = 1" in capsys.readouterr().err
    with pytest.raises(DigitrecError, match="another study"):
        from digitrec.tune import tune

        (tmp_path / "c").mkdir()
        optuna.create_study(study_name="digitrec-tune", storage=f"sqlite:///{tmp_path / 'c' / 'study.db'}") \
            .set_user_attr("key", {"base": {"epochs": 99}, "space": {}})
        tune(make_config(None, model="simple-cnn", limit=400, epochs=2, device="cpu"), tmp_path / "c", 1)
