"""benchmarks/accuracy.py on tiny real runs: every number in its record is recomputed from the runs it trained."""
from __future__ import annotations

import json
import statistics
import sys

import pytest

from benchmarks import accuracy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("accuracy")
    argv = ["accuracy.py", "--quick", "--work", str(tmp / "work"), "--threads", "1", "--jobs", "2"]
    mp = pytest.MonkeyPatch()
    mp.setattr(accuracy, "RESULTS", tmp / "results")
    mp.setattr(sys, "argv", argv)
    accuracy.main()
    mp.undo()
    (record_file,) = (tmp / "results").glob("accuracy-quick-*.json")
    return tmp, json.loads(record_file.read_text()), record_file


def test_record_holds_each_run_as_trained(bench):
    tmp, record, _ = bench
    assert record["kind"] == "accuracy" and record["quick"] and record["provenance"]["commit"]
    rows = {r["name"]: r for r in record["runs"]}
    assert set(rows) == {"seed0", "seed1", "no-elastic"}
    for name, row in rows.items():
        metrics = json.loads((tmp / "work" / name / "metrics.json").read_text())
        assert row["test_accuracy"] == metrics["accuracy"] and row["train_time_s"] == metrics["train_time_s"]
        # the run evaluated itself with TTA (the preset's tta = true): the same number as its TTA view here
        assert row["views"]["delivered+tta"]["test"] == pytest.approx(metrics["accuracy"], abs=1e-4)
        assert set(row["views"]) == {"delivered", "delivered+tta", "last_raw", "last_raw+tta", "last_ema",
                                     "last_ema+tta"}
        assert row["cpu_s"] > 0 and row["wall_s"] > 0 and not row["reused"]
    assert "--elastic" in rows["no-elastic"]["args"] and rows["no-elastic"]["role"] == "ablation"
    # one epoch: the best epoch is the last, so the delivered weights are the last EMA weights
    assert rows["seed0"]["views"]["delivered"] == rows["seed0"]["views"]["last_ema"]


def test_headline_and_ensemble_are_the_runs_numbers(bench):
    tmp, record, record_file = bench
    seeds = [r["test_accuracy"] for r in record["runs"] if r["role"] == "seed"]
    h = record["headline"]
    assert h["median"] == statistics.median(seeds) and h["best"] == max(seeds)
    assert h["met"]["median"] is False  # 300 training images do not reach 99.7 %
    ens = record["ensemble"]
    product = json.loads((tmp / "work" / "ensemble" / "metrics.json").read_text())
    assert ens["accuracy"] == product["accuracy"] and [m["tta"] for m in product["members"]] == [True, True]
    assert ens["variants"]["members with TTA"] == pytest.approx(product["accuracy"], abs=2e-4)
    md = record_file.with_suffix(".md").read_text()
    assert f"median **{h['median']:.2%}**" in md and "NOT met" in md and "| no TTA (same runs)" in md


def test_rerun_reuses_finished_runs_and_refuses_other_code(bench, monkeypatch):
    tmp, _, _ = bench
    run = accuracy.planned(str(tmp / "work" / "quick.toml"), [0], [], False, tmp / "work")[0]
    state = accuracy.run_state()
    assert accuracy.train(run, 1, state).timing == {"reused": True}
    with pytest.raises(SystemExit, match="was trained from other code"):
        accuracy.train(run, 1, {**state, "commit": "0" * 40})
    # another clean commit with the same package code (only benchmarks or documents changed) is the same training
    trees = {state["commit"]: "tree-a", "1" * 40: "tree-a", "2" * 40: "tree-b"}
    monkeypatch.setattr(accuracy, "package_tree", trees.get)
    if state["diff_sha256"] is None:  # a clean checkout (CI's)
        assert accuracy.train(run, 1, {**state, "commit": "1" * 40}).timing == {"reused": True}
    for other in ({**state, "commit": "2" * 40}, {**state, "commit": "1" * 40, "diff_sha256": "f" * 64}):
        with pytest.raises(SystemExit, match="was trained from other code"):
            accuracy.train(run, 1, other)


def test_one_job_scores_each_run_before_the_next_trains(monkeypatch):
    events = []
    monkeypatch.setattr(accuracy, "train", lambda run, threads, state: events.append(f"train {run}") or run)
    for run in accuracy.trained(["a", "b", "c"], 1, None, {}):
        events.append(f"score {run}")
    assert events == ["train a", "score a", "train b", "score b", "train c", "score c"]


def test_readme_shows_full_records_only(bench):
    """The README's section renders the record with this benchmark's own table, and never a quick one."""
    from benchmarks import readme

    _, record, _ = bench
    (heading, selected, render), = [s for s in readme.SECTIONS if "benchmarks.accuracy" in s[0]]
    assert not selected(record) and selected({**record, "quick": False})
    assert render(record)[:len(accuracy.results_table(record))] == accuracy.results_table(record)


def test_a_stale_run_folder_is_refused_before_any_training(bench, monkeypatch):
    """A folder trained from other code anywhere in the plan stops the benchmark before the first training starts."""
    tmp, _, _ = bench
    started = []
    monkeypatch.setattr(accuracy, "train", lambda run, *a: started.append(run.name))
    monkeypatch.setattr(accuracy, "provenance", lambda: {"commit": "0" * 40})
    monkeypatch.setattr(accuracy, "problem", lambda prov: None)
    monkeypatch.setattr(accuracy, "RESULTS", tmp / "stale-results")
    real_check = accuracy.check_reusable

    def check(run, state):
        if run.name == "no-elastic":  # the last run planned
            raise SystemExit(f"{run.out} was trained from other code")
        real_check(run, state)

    monkeypatch.setattr(accuracy, "check_reusable", check)
    monkeypatch.setattr(sys, "argv", ["accuracy.py", "--quick", "--work", str(tmp / "work"), "--threads", "1"])
    with pytest.raises(SystemExit, match="no-elastic was trained from other code"):
        accuracy.main()
    assert started == [] and not (tmp / "stale-results").exists()


def test_training_time_cell_names_what_trained_a_reused_run():
    fresh = {"train_time_s": 741.7, "reused": False, "wall_s": 790.2, "cpu_s": 1500.4}
    assert accuracy._time(fresh) == "742 s (command 790 s wall, 1500 s CPU)"
    assert accuracy._time({"train_time_s": 750.2, "reused": True, "trained_from": "7ebb817" + "0" * 33}) == \
        "750 s (reused: trained from 7ebb81700000)"
    assert accuracy._time({"train_time_s": 861.0, "reused": True}) == "861 s"  # records from before the commit field
