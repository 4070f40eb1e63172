"""`digitrec report`: one self-contained HTML file with the table, the figures and the most confident mistakes."""
from __future__ import annotations

import re

import numpy as np
import pytest

from digitrec.cli import main
from digitrec.compare import CompareOptions, run_compare
from digitrec.report import Run, _read_run, confident_errors


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory, data_root):
    out = tmp_path_factory.mktemp("report") / "cmp"
    run_compare(CompareOptions(datasets=["mnist"], models=["knn", "fast"], out=out, limit=300, classical_limit=300,
                               epochs=2, threads=1, progress=False,
                               data_dir=str(data_root) if data_root else None), log=lambda s: None)
    return out


def test_report_is_one_self_contained_file(compare_dir, tmp_path, data_root):
    page = tmp_path / "report.html"
    args = ["report", str(compare_dir), "--out", str(page)] + (["--data-dir", str(data_root)] if data_root else [])
    assert main(args) == 0
    text = page.read_text()
    # nothing fetched from anywhere: no links, scripts, stylesheets or non-data images
    assert not re.search(r"https?://", text)
    assert not re.search(r"<(script|link)\b", text)
    srcs = re.findall(r'src="([^"]*)"', text)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    # the comparison table beside the paper, and per run: curves (neural only), confusion, per-class, mistakes
    assert "Table 1 — ours beside the paper" in text and "95.10%" in text and "k-NN" in text
    assert text.count('alt="confusion matrix"') == 2
    assert text.count('alt="accuracy and loss vs epochs"') == 1
    assert text.count('alt="bar chart"') == 1
    assert text.count('alt="test digit ') == 24  # 12 most confident mistakes for each of the 2 runs
    assert "Per-class metrics" in text and "test n = 7,000" in text


def test_report_over_a_single_training_run(compare_dir, tmp_path):
    page = tmp_path / "run.html"
    assert main(["report", str(compare_dir / "runs/mnist-fast"), "--out", str(page), "--examples", "0"]) == 0
    text = page.read_text()
    assert "fast on mnist" in text and "Table 1 — ours beside the paper" not in text
    assert 'alt="test digit' not in text


def test_most_confident_mistakes_are_mistakes_in_confidence_order(compare_dir, data_root):
    run = _read_run(compare_dir / "runs/mnist-fast")
    items, note = confident_errors(run, 8, str(data_root) if data_root else None)
    assert len(items) == 8 and "re-run on the paper split's 7,000 test images" in note
    assert all(e["true"] != e["pred"] for e in items)
    conf = [float(e["label"].split("%")[0]) for e in items]
    assert conf == sorted(conf, reverse=True)
    assert all(e["image"].startswith("data:image/png;base64,") for e in items)
    # the classical run's recorded mistakes resolve to the same test images
    knn: Run = _read_run(compare_dir / "runs/mnist-knn")
    items, note = confident_errors(knn, 5, str(data_root) if data_root else None)
    assert len(items) == 5 and all(e["true"] != e["pred"] for e in items)
    assert "vote share" in note
    n_wrong = int(np.sum(np.asarray(knn.metrics["confusion_matrix"])) - np.trace(knn.metrics["confusion_matrix"]))
    assert n_wrong >= 5


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "has neither table.json"),
])
def test_bad_report_inputs(make, message, tmp_path, capsys):
    target = make(tmp_path)
    code = main(["report", str(target), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_negative_examples_is_refused(compare_dir, tmp_path, capsys):
    code = main(["report", str(compare_dir), "--out", str(tmp_path / "r.html"), "--examples", "-1"])
    assert code == 2 and "--examples must be ≥ 0" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
