"""`digitrec compare`: classical baselines, the Table 1 files, missing datasets, EMNIST-format data, bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from digitrec.cli import main
from digitrec.compare import PAPER_TABLE, CompareOptions, run_compare
from digitrec.data import write_idx
from digitrec.data.splits import stratified_subset
from digitrec.models.classical import CLASSICAL, create

TINY = dict(limit=300, classical_limit=300, epochs=1, threads=1, progress=False)


@pytest.fixture
def no_emnist(tmp_path, monkeypatch):
    """Data roots with no EMNIST anywhere: MNIST then comes from the copy bundled with the package."""
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))


@pytest.fixture(scope="module")
def tiny_compare(tmp_path_factory):
    """mnist (bundled copy) + emnist-digits (files missing) × svm, knn, fast: tiny, but every code path runs."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("cmp")
    mp.setenv("DIGITREC_DATA", str(root / "no-data"))
    mp.setenv("XDG_CACHE_HOME", str(root / "no-cache"))
    try:
        result = run_compare(CompareOptions(datasets=["mnist", "emnist-digits"], models=["svm", "knn", "fast"],
                                            out=root / "out", **TINY), log=lambda s: None)
    finally:
        mp.undo()
    return root / "out", result


@pytest.mark.parametrize("name", sorted(CLASSICAL))
def test_classical_fit_predict_on_real_mnist(mnist, name):
    train = stratified_subset(mnist.train_labels, 2000)
    test = stratified_subset(mnist.test_labels, 500)
    model = create(name).fit(mnist.train_images[train], mnist.train_labels[train])
    pred = model.predict(mnist.test_images[test])
    assert pred.shape == (500,)
    assert (pred == mnist.test_labels[test]).mean() > 0.85  # chance is 0.10


def test_table_files_have_one_row_per_model_and_dataset(tiny_compare):
    out, result = tiny_compare
    table = json.loads((out / "table.json").read_text())
    assert [(r["dataset"], r["model"]) for r in table["rows"]] == [
        (d, m) for d in ("mnist", "emnist-digits") for m in ("svm", "knn", "fast")]
    for r in table["rows"][:3]:
        assert r["status"] == "trained"
        assert 0 <= r["accuracy"] <= 1 and r["train_time_s"] > 0 and r["n_test"] == 7000
    # classical models learn from 300 images; the 1-epoch `fast` run at the paper's lr 1e-4 need not
    assert min(r["accuracy"] for r in table["rows"][:2]) > 0.7
    assert all((out / r["run_dir"] / "metrics.json").is_file() for r in table["rows"][:3])
    assert table["rows"][0]["n_train"] == 300 and table["rows"][0]["paper_accuracy"] == PAPER_TABLE["svm"]["mnist"]
    assert (out / "runs/mnist-fast/history.json").is_file() and (out / "runs/mnist-fast/model.pt").is_file()
    with open(out / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["svm", "knn", "fast"] * 2
    assert float(rows[1]["accuracy"]) == pytest.approx(table["rows"][1]["accuracy"])
    md = (out / "table.md").read_text()
    assert "| svm | SVM | 93.40% |" in md and "| knn | k-NN | 95.10% |" in md
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_dataset_is_a_row_not_a_crash(tiny_compare):
    out, result = tiny_compare
    emnist = [r for r in result["rows"] if r["dataset"] == "emnist-digits"]
    assert len(emnist) == 3
    assert all(r["status"] == "not available" and r["accuracy"] is None for r in emnist)
    assert all("files missing" in r["note"] for r in emnist)
    assert result["datasets"]["emnist-digits"]["available"] is False
    assert "emnist-digits: not available" in (out / "table.md").read_text()


def test_reuse_takes_a_finished_run_instead_of_training(tiny_compare, tmp_path, no_emnist):
    out, result = tiny_compare
    src = out / "runs/mnist-fast"
    code = main(["compare", "--datasets", "mnist", "--models", "fast", "--reuse", f"fast={src}",
                 "--out", str(tmp_path / "c"), "--no-progress"])
    assert code == 0
    row = json.loads((tmp_path / "c/table.json").read_text())["rows"][0]
    history = json.loads((src / "history.json").read_text())
    assert row["status"] == "reused" and row["reused_from"] == str(src)
    assert row["accuracy"] == json.loads((src / "metrics.json").read_text())["accuracy"]
    assert row["train_time_s"] == history["train_time_s"]
    assert (tmp_path / "c/runs/mnist-fast/model.pt").is_file()
    md = (tmp_path / "c/table.md").read_text()
    assert f"reused run: {history['config']['epochs']} epochs on {history['device']}," in md
    # the table's source cell names the run folder, not its machine-specific path
    assert "| reused run `mnist-fast` (" in md and f"`{src}`" not in md
    # the table can be re-made: the earlier copy is replaced, the source named stays the original
    assert main(["compare", "--datasets", "mnist", "--models", "fast", "--reuse", f"fast={src}",
                 "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    copied = json.loads((tmp_path / "c/runs/mnist-fast/metrics.json").read_text())
    assert copied["reused_from"] == str(src) and copied["accuracy"] == row["accuracy"]


def test_reuse_of_classical_results_and_in_place(tiny_compare, tmp_path, no_emnist):
    out, result = tiny_compare
    code = main(["compare", "--models", "svm,knn", "--reuse", f"svm={out / 'runs/mnist-svm'}",
                 "--reuse", f"knn={out / 'runs/mnist-knn'}", "--out", str(tmp_path / "c")])
    assert code == 0
    rows = json.loads((tmp_path / "c/table.json").read_text())["rows"]
    assert [r["status"] for r in rows] == ["reused", "reused"]
    assert [r["accuracy"] for r in rows] == [r["accuracy"] for r in result["rows"][:2]]
    # a comparison's own run folder can be reused where it is (re-making the table without retraining)
    code = main(["compare", "--models", "svm", "--reuse", f"svm={tmp_path / 'c/runs/mnist-svm'}",
                 "--out", str(tmp_path / "c")])
    assert code == 0
    assert json.loads((tmp_path / "c/table.json").read_text())["rows"][0]["status"] == "reused"


def _emnist_folder(mnist, root: Path) -> dict:
    """A small EMNIST-format folder: MNIST subsets stored transposed, under the emnist-digits file names."""
    parts = {}
    for kind, images, labels, n in (("train", mnist.train_images, mnist.train_labels, 600),
                                    ("test", mnist.test_images, mnist.test_labels, 200)):
        keep = stratified_subset(labels, n)
        parts[kind] = images[keep]
        write_idx(root / "emnist" / f"emnist-digits-{kind}-images-idx3-ubyte.gz", images[keep].transpose(0, 2, 1))
        write_idx(root / "emnist" / f"emnist-digits-{kind}-labels-idx1-ubyte.gz", labels[keep])
    return parts


def test_compare_runs_end_to_end_on_emnist_format_data(mnist, tmp_path, no_emnist):
    from digitrec.data import load

    parts = _emnist_folder(mnist, tmp_path / "data")
    loaded = load("emnist-digits", tmp_path / "data", download=False)
    assert np.array_equal(loaded.train_images, parts["train"])  # read back upright
    code = main(["compare", "--datasets", "emnist-digits", "--models", "knn,fast", "--data-dir",
                 str(tmp_path / "data"), "--epochs", "1", "--limit", "200", "--threads", "1", "--out",
                 str(tmp_path / "c"), "--no-progress"])
    assert code == 0
    rows = json.loads((tmp_path / "c/table.json").read_text())["rows"]
    assert [(r["dataset"], r["model"], r["status"]) for r in rows] == [
        ("emnist-digits", "knn", "trained"), ("emnist-digits", "fast", "trained")]
    assert rows[0]["n_test"] == 80 and rows[0]["paper_accuracy"] == PAPER_TABLE["knn"]["emnist-digits"]
    assert rows[0]["accuracy"] > 0.7  # upright digits, 480 training images
    assert (tmp_path / "c/runs/emnist-digits-fast/model.pt").is_file()


@pytest.mark.parametrize("args, message", [
    (["--models", "svm,no-such-model"], "unknown model 'no-such-model'"),
    (["--models", "svm,svm"], "svm given twice"),
    (["--datasets", "mnistt"], "unknown dataset 'mnistt'"),
    (["--epochs", "0", "--models", "fast"], "--epochs must be ≥ 1"),
    (["--classical-limit", "-5"], "--classical-limit must be ≥ 1"),
    (["--models", "fast", "--reuse", "fast"], "--reuse expects MODEL=RUN_DIR"),
    (["--models", "fast", "--reuse", "fast=/no/such/run"], "is not a folder"),
    (["--models", "svm", "--reuse", "fast=."], "fast is not in --models"),
    (["--models", "svm", "--reuse", "svm=."], "has no metrics.json"),
    (["--models", "fast", "--threads", "0"], "--threads must be ≥ 1"),
])
def test_bad_input_fails_before_training(args, message, tmp_path, capsys, no_emnist):
    code = main(["compare", "--out", str(tmp_path / "c"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("digitrec: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "c").exists()  # nothing trained, nothing written


def test_reuse_of_an_unfinished_or_mismatched_run(tiny_compare, tmp_path, capsys, no_emnist):
    """A run still training (no metrics.json) is refused here; benchmarks/table1.py tables such runs."""
    out, _ = tiny_compare
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "history.json").write_text("{}")
    for reuse, message in ((f"fast={unfinished}", "no metrics.json (training not finished?"),
                           (f"paper-cnn={out / 'runs/mnist-fast'}", "that run trained 'fast', not 'paper-cnn'")):
        model = reuse.split("=")[0]
        code = main(["compare", "--models", model, "--reuse", reuse, "--out", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "c").exists()


def test_existing_run_folder_is_not_overwritten(tiny_compare, capsys, no_emnist):
    out, _ = tiny_compare
    before = (out / "runs/mnist-svm/metrics.json").read_bytes()
    code = main(["compare", "--models", "svm", "--out", str(out)])
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert (out / "runs/mnist-svm/metrics.json").read_bytes() == before


def test_results_name_the_commit_given_when_the_tree_travels_without_its_git(monkeypatch):
    from digitrec.machine import git_commit, machine_info

    monkeypatch.setenv("DIGITREC_GIT_COMMIT", "c0ffee1")
    assert git_commit() == "c0ffee1" and machine_info()["git_commit"] == "c0ffee1"
    monkeypatch.delenv("DIGITREC_GIT_COMMIT")
    assert git_commit() != "c0ffee1"


def test_each_row_names_the_commit_its_run_was_trained_at(tiny_compare, tmp_path, no_emnist):
    """Rows reused from runs trained at different commits each name their own (from the run's provenance block)."""
    import shutil

    out, _ = tiny_compare
    runs = {}
    session = {"argv": ["digitrec", "train"], "commit": "1" * 40, "dirty": False, "diff_sha256": None}
    for name, record in (("clean", {"provenance": {"commit": "a" * 40, "dirty": False}}),
                         ("dirty", {"provenance": {"commit": "b" * 40, "dirty": True, "diff_sha256": "c" * 64}}),
                         ("sessions", {"sessions": [session, {**session, "argv": ["digitrec", "train", "--resume"]}]}),
                         ("resumed", {"sessions": [session, {**session, "commit": "2" * 40}]}),
                         ("unknown", {})):
        runs[name] = tmp_path / name
        shutil.copytree(out / "runs/mnist-fast", runs[name])
        for records in ("history.json", "metrics.json"):  # training writes its sessions into both
            data = json.loads((runs[name] / records).read_text())
            data.pop("provenance", None)
            data.pop("sessions", None)
            (runs[name] / records).write_text(json.dumps({**data, **record} if records == "history.json" else data))
    expected = {"clean": "a" * 12, "dirty": "b" * 12 + "-dirty, diff sha256 cccccccccccc", "sessions": "1" * 12,
                "resumed": "mixed: resumed at different code states", "unknown": None}
    for name, commit in expected.items():
        assert main(["compare", "--models", "fast", "--reuse", f"fast={runs[name]}", "--out", str(tmp_path / f"c-{name}"),
                     "--no-progress"]) == 0
        row = json.loads((tmp_path / f"c-{name}/table.json").read_text())["rows"][0]
        assert row["commit"] == commit
        md = (tmp_path / f"c-{name}/table.md").read_text()
        assert (f"(trained at {commit})" if commit else "(commit unknown)") in md
    # classical rows fitted here name the commit of this comparison's code
    svm = json.loads((out / "runs/mnist-svm/metrics.json").read_text())
    table = json.loads((out / "table.json").read_text())
    assert svm["trained_at"] == table["rows"][0]["commit"] == table["machine"]["git_commit"]
