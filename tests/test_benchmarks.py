"""Results records: the provenance block (commit, clean tree or the diff's hash), record_run, the Table 1 runner's
bookkeeping, and the README generated from the JSON records."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import provenance as prov_mod
from benchmarks import readme, record_run, table1

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A small git checkout standing in for the source tree."""
    monkeypatch.delenv("DIGITREC_GIT_COMMIT", raising=False)
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "src" / "code.py").write_text("x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    monkeypatch.setattr(prov_mod, "ROOT", root)
    return root


def test_a_clean_tree_has_no_diff_hash(repo):
    state = prov_mod.source_state()
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert state == {"commit": head, "dirty": False, "diff_sha256": None, "source": "git"}
    assert prov_mod.problem(state) is None


def test_uncommitted_changes_are_named_by_their_hash(repo):
    (repo / "src" / "code.py").write_text("x = 2\n")
    first = prov_mod.source_state()
    assert first["dirty"] is True and len(first["diff_sha256"]) == 64
    (repo / "src" / "code.py").write_text("x = 3\n")
    assert prov_mod.source_state()["diff_sha256"] != first["diff_sha256"]  # another change, another hash
    (repo / "src" / "code.py").write_text("x = 1\n")
    (repo / "src" / "new.py").write_text("y = 1\n")  # a new, untracked file counts too
    untracked = prov_mod.source_state()
    assert untracked["dirty"] is True and untracked["diff_sha256"] not in (None, first["diff_sha256"])


def test_results_being_written_do_not_make_the_tree_dirty(repo):
    (repo / "benchmarks" / "results" / "new-record.json").write_text("{}")
    assert prov_mod.source_state()["dirty"] is False


def test_a_tree_without_git_names_its_state_through_the_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(prov_mod, "ROOT", tmp_path)  # no .git here
    assert prov_mod.problem(prov_mod.source_state()) == "no commit recorded"
    monkeypatch.setenv("DIGITREC_GIT_COMMIT", "a" * 40)
    assert prov_mod.problem(prov_mod.source_state()) == "tree state unknown"
    monkeypatch.setenv("DIGITREC_GIT_DIRTY", "0")
    state = prov_mod.source_state()
    assert state == {"commit": "a" * 40, "dirty": False, "diff_sha256": None, "source": "environment"}
    monkeypatch.setenv("DIGITREC_GIT_DIRTY", "1")
    assert prov_mod.problem(prov_mod.source_state()) == "uncommitted changes without the diff's hash"


def test_provenance_block_has_the_exact_argv_and_hardware():
    p = prov_mod.provenance(["python", "-m", "benchmarks.run", "--note", "a remark"])
    assert p["argv"] == ["python", "-m", "benchmarks.run", "--note", "a remark"]
    assert {"commit", "dirty", "diff_sha256", "date", "hardware", "load_average"} <= set(p)
    assert {"cpu", "cpu_cores", "gpu", "torch"} <= set(p["hardware"])
    assert prov_mod.command(p, notes=False) == "python -m benchmarks.run"


def test_an_old_record_is_read_for_what_it_says():
    clean = {"machine": {"git_commit": "7ae9e1a", "command": "run.py --note it's quiet", "date": "d", "cpu": "c"}}
    dirty = {"machine": {"git_commit": "07f600f-dirty", "command": "run.py"}}
    assert prov_mod.problem(prov_mod.of_record(clean)) is None
    assert prov_mod.command(prov_mod.of_record(clean), notes=False) == "run.py"
    assert prov_mod.problem(prov_mod.of_record(dirty)) == "uncommitted changes without the diff's hash"
    assert prov_mod.of_record({"machine": {"git_commit": "unknown"}}) is None


# --- record_run ---------------------------------------------------------------------------------------------------

def _fake_run(folder: Path, provenance: dict | None) -> Path:
    folder.mkdir(parents=True)
    metrics = {"model": "fast", "dataset": "mnist", "split": "canonical", "n": 10000, "accuracy": 0.99,
               "precision_macro": 0.99, "recall_macro": 0.99, "f1_macro": 0.99, "train_time_s": 12.0,
               "sizes": {"train": 54000, "val": 6000, "test": 10000}, "best_epoch": 1, "epochs": 1}
    history = {"epochs": [{"epoch": 1, "train_loss": 0.1, "train_acc": 0.97, "val_loss": 0.05, "val_acc": 0.99,
                           "epoch_time_s": 12.0}], "train_time_s": 12.0,
               **({"provenance": provenance} if provenance else {})}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "history.json").write_text(json.dumps(history))
    return folder


def test_record_run_copies_the_runs_own_argv_and_commit(tmp_path):
    trained = {"argv": ["digitrec", "train", "--preset", "fast", "--out", "R"], "commit": "d" * 40, "dirty": False,
               "diff_sha256": None, "date": "2026-01-01 00:00 UTC", "hardware": {"cpu": "x", "cpu_cores": 2}}
    run = _fake_run(tmp_path / "run", trained)
    out = record_run.record(run, "fast-check", "", None, results=tmp_path / "results")
    rec = json.loads((out / "result.json").read_text())
    assert rec["kind"] == "training-run" and rec["trained"] == trained  # training's own, not the recording's
    assert rec["provenance"]["argv"] != trained["argv"]  # the recording command is kept separately
    md = (out / "README.md").read_text()
    assert "digitrec train --preset fast --out R" in md and "dddddddddddd" in md and "clean tree" in md


def test_record_run_takes_the_launch_table1_kept(tmp_path):
    launch = {"argv": ["python", "-m", "digitrec", "train", "--preset", "paper"], "commit": "7" * 40, "dirty": False,
              "diff_sha256": None, "date": "d", "hardware": {}}
    run = _fake_run(tmp_path / "paper-cnn-mnist", None)
    launches = tmp_path / "paper-cnn-mnist.launches.json"
    launches.write_text(json.dumps([launch, {**launch, "argv": [*launch["argv"], "--resume"]}]))
    out = record_run.record(run, "paper-preset-mnist", "", None, results=tmp_path / "results")
    trained = json.loads((out / "result.json").read_text())["trained"]
    assert trained["commit"] == "7" * 40 and trained["argv"] == launch["argv"] and trained["launches"] == 2
    launches.write_text(json.dumps([launch, {**launch, "commit": "8" * 40}]))  # resumed at another commit
    with pytest.raises(SystemExit, match="different code states"):
        record_run.record(run, "paper-preset-mnist", "", None, results=tmp_path / "results2")


@pytest.mark.parametrize("provenance, message", [
    (None, "no provenance"),
    ({"argv": ["digitrec", "train"], "commit": "e" * 40, "dirty": True}, "code state is unknown"),
])
def test_record_run_refuses_a_run_whose_code_is_unknown(tmp_path, provenance, message):
    run = _fake_run(tmp_path / "run", provenance)
    with pytest.raises(SystemExit, match=message):
        record_run.record(run, "x", "", None, results=tmp_path / "results")
    assert not (tmp_path / "results").exists()


# --- the Table 1 runner's bookkeeping -----------------------------------------------------------------------------

def test_uneven_epoch_times_are_pointed_out(tmp_path):
    def run(times):
        d = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        (d / "history.json").write_text(json.dumps({"epochs": [{"epoch_time_s": t} for t in times]}))
        return d

    note = table1.epoch_time_note("mnist", "hybrid", run([10.0, 11.0, 30.0, 10.5]))
    assert note is not None and "epoch 3 took over 1.5×" in note and "(10 s) = 42 s" in note and "62 s recorded" in note
    assert table1.epoch_time_note("mnist", "hybrid", run([10.0, 11.0, 12.0])) is None  # a quiet machine: no note
    assert table1.epoch_time_note("mnist", "hybrid", tmp_path / "missing") is None


def test_a_shared_machine_is_pointed_out():
    assert table1.shared_machine_note([0.5, 0.4, 0.3], [1.2, 0.9, 0.5], 2) is None
    assert "load average up to 7.6 on 2 cores" in table1.shared_machine_note([7.6, 5.0, 3.0], [1.0, 1.0, 1.0], 2)


@pytest.mark.slow
def test_table1_runner_records_each_rows_commit_and_tables_an_unfinished_run(tmp_path):
    """Two tiny models end to end; then a run still training (no metrics.json) is tabled only when allowed."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "DIGITREC_GIT_COMMIT": "f" * 40,
           "DIGITREC_GIT_DIRTY": "0", "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "benchmarks.table1", "--models", "knn,fast", "--epochs", "1", "--limit", "300",
            "--classical-limit", "300", "--threads", "1", "--results", str(tmp_path / "results")]
    subprocess.run([*base, "--work", str(tmp_path / "w")], check=True, env=env, capture_output=True, timeout=900)
    [path] = (tmp_path / "results").glob("table1-small-mnist-*.json")
    rec = json.loads(path.read_text())
    assert rec["kind"] == "table1" and rec["provenance"]["commit"] == "f" * 40
    assert [r["commit"] for r in rec["table"]["rows"]] == ["f" * 12, "f" * 12]
    assert readme.unusable(rec) is None
    launches = json.loads((tmp_path / "w/fast-mnist.launches.json").read_text())
    assert launches[0]["argv"][-2:] == ["--limit", "300"] and launches[0]["commit"] == "f" * 40

    unfinished = tmp_path / "w2" / "fast-mnist"
    unfinished.mkdir(parents=True)
    for f in ("history.json", "model.pt"):  # what a run has after its first epochs, before metrics.json
        shutil.copy2(tmp_path / "w/fast-mnist" / f, unfinished / f)
    refused = subprocess.run([*base, "--work", str(tmp_path / "w2"), "--no-train"], env=env, capture_output=True,
                             text=True, timeout=900)
    assert refused.returncode != 0 and "--allow-unfinished" in refused.stderr
    subprocess.run([*base, "--work", str(tmp_path / "w2"), "--no-train", "--allow-unfinished", "--name", "t"],
                   check=True, env=env, capture_output=True, timeout=900)
    rows = json.loads(next((tmp_path / "results").glob("t-*.json")).read_text())["table"]["rows"]
    assert rows[1]["status"] == "unfinished" and "1 of 1 epochs done" in rows[1]["note"]
    assert rows[1]["accuracy"] == pytest.approx(rec["table"]["rows"][1]["accuracy"])  # same checkpoint, afresh


# --- the README from the records ----------------------------------------------------------------------------------

def _speed_record(commit: str, dirty: bool | None, date: str, accuracy: float) -> dict:
    runs = [{"seed": 0, "test_accuracy": accuracy, "train_time_s": 5.0, "command_wall_s": 9.0}]
    return {"kind": "speed", "provenance": {"argv": ["python", "-m", "benchmarks.run"], "commit": commit,
                                            "dirty": dirty, "diff_sha256": "9" * 64 if dirty else None, "date": date,
                                            "hardware": {"cpu": "cpu", "cpu_cores": 2, "gpu": None, "torch": "t"}},
            "fast": {"runs": runs, "accuracy_mean": accuracy, "accuracy_std": 0.0, "train_time_mean_s": 5.0,
                     "command_wall_mean_s": 9.0}}


def test_readme_takes_the_newest_usable_record_and_never_the_archive(tmp_path, monkeypatch):
    results = tmp_path / "benchmarks" / "results"
    (results / "archive").mkdir(parents=True)
    monkeypatch.setattr(readme, "ROOT", tmp_path)
    (results / "old.json").write_text(json.dumps(_speed_record("a" * 40, False, "2026-01-01 00:00 UTC", 0.9811)))
    (results / "new.json").write_text(json.dumps(_speed_record("b" * 40, True, "2026-02-01 00:00 UTC", 0.9822)))
    unknown = _speed_record("c" * 40, None, "2026-03-01 00:00 UTC", 0.9833)
    (results / "unknown.json").write_text(json.dumps(unknown))
    (results / "archive" / "newest.json").write_text(json.dumps(_speed_record("d" * 40, False, "2026-04-01 00:00 UTC",
                                                                             0.9844)))
    notes = []
    text = readme.section(results, log=notes.append)
    assert "98.22%" in text and "98.11%" not in text and "98.33%" not in text and "98.44%" not in text
    assert "bbbbbbbbbbbb` (uncommitted changes, diff sha256 9999999999999999)" in text
    assert any("unknown.json: not used (tree state unknown)" in n for n in notes)
    assert "Record: [benchmarks/results/new.json](benchmarks/results/new.json)" in text


def test_the_readme_is_what_the_records_give():
    """README.md's results section is exactly the generator's output from the records in the repository."""
    text = (ROOT / "README.md").read_text()
    assert readme.render_readme(text) == text, "run: python -m benchmarks.readme"
