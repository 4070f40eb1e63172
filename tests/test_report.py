"""`digitrec report`: one self-contained HTML file with the table, the figures and the most confident mistakes."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from digitrec.cli import main
from digitrec.compare import CompareOptions, run_compare
from digitrec.report import build_report, confident_errors
from digitrec.runs import Run, read_run


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
    run = read_run(compare_dir / "runs/mnist-fast")
    items, note = confident_errors(run, 8, str(data_root) if data_root else None)
    assert len(items) == 8 and "re-run on the paper split's 7,000 test images" in note
    assert all(e["true"] != e["pred"] for e in items)
    conf = [float(e["label"].split("%")[0]) for e in items]
    assert conf == sorted(conf, reverse=True)
    assert all(e["image"].startswith("data:image/png;base64,") for e in items)
    # the classical run's recorded mistakes resolve to the same test images
    knn: Run = read_run(compare_dir / "runs/mnist-knn")
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


@pytest.fixture
def run_copy(tmp_path):
    """A training run's records as `digitrec train` writes them (made up here: no training), free to be damaged."""
    from digitrec.evaluate import compute_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.9, y, rng.integers(0, 10, 500))
    metrics = {**compute_metrics(y, pred), "dataset": "mnist", "split": "canonical", "model": "fast",
               "sizes": {"train": 900, "val": 100, "test": 500}, "train_time_s": 3.5, "epochs": 3, "best_epoch": 3,
               "device": "cpu"}
    history = {"dataset": "mnist", "split": "canonical", "device": "cpu", "train_time_s": 3.5,
               "config": {"epochs": 3, "optimizer": "adam", "lr": 0.001, "batch_size": 64, "augment": True},
               "epochs": [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.8 + e / 50, "val_loss": 1.1 / e,
                           "val_acc": 0.79 + e / 50, "epoch_time_s": 1.2} for e in (1, 2, 3)]}
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "history.json").write_text(json.dumps(history))
    return run


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_values_from_run_files_arrive_escaped(run_copy, tmp_path):
    """Markup in a run's files is shown as text: the page is rendered with autoescaping."""
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'

    def inject(history):
        history["device"] = attack
        history["config"]["optimizer"] = attack

    _edit_json(run_copy / "history.json", inject)
    _edit_json(run_copy / "metrics.json", lambda m: m.update(model=attack, description=attack, device=attack))
    page = build_report([run_copy], examples=0, log=lambda s: None)
    assert 'alt="accuracy and loss vs epochs"' in page and 'alt="confusion matrix"' in page
    assert "<script" not in page and "onerror=" not in page.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") == 3  # the title, the device, the description


def test_values_from_a_comparison_arrive_escaped(compare_dir, tmp_path):
    cmp = tmp_path / "cmp"
    shutil.copytree(compare_dir, cmp)

    def inject(table):
        table["notes"].append("<b>bold</b>")
        table["rows"][0]["model"] = "<i>svm</i>"
        table["machine"]["cpu"] = "<marquee>"

    _edit_json(cmp / "table.json", inject)
    page = build_report([cmp], examples=0, log=lambda s: None)
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<i>svm</i>" not in page and "&lt;i&gt;svm&lt;/i&gt;" in page
    assert "<marquee>" not in page and "&lt;marquee&gt;" in page


@pytest.mark.parametrize("file, change, message", [
    ("metrics.json", lambda m: m["sizes"].update(val="abc"), 'metrics.json.sizes.val must be an integer, got "abc"'),
    ("metrics.json", lambda m: m.update(accuracy="99%"), 'metrics.json.accuracy must be a number, got "99%"'),
    ("metrics.json", lambda m: m.update(confusion_matrix=[[1, 2], "x"]), "confusion_matrix[1] must be a list"),
    ("metrics.json", lambda m: m["per_class"]["3"].update(f1=None), "per_class.3.f1 must be a number, got null"),
    ("metrics.json", lambda m: m.pop("per_class"), "metrics.json: no per_class"),
    ("history.json", lambda h: h["epochs"][0].update(val_acc=True), "epochs[0].val_acc must be a number, got true"),
    ("history.json", lambda h: h.update(epochs={"1": {}}), "history.json.epochs must be a list, got dict"),
])
def test_ill_typed_run_files_are_one_line_errors(run_copy, tmp_path, capsys, file, change, message):
    _edit_json(run_copy / file, change)
    code = main(["report", str(run_copy), "--out", str(tmp_path / "r.html"), "--examples", "0"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and str(run_copy / file) in err
    assert not (tmp_path / "r.html").exists()


def test_ill_typed_table_is_a_one_line_error(compare_dir, tmp_path, capsys):
    cmp = tmp_path / "cmp"
    shutil.copytree(compare_dir, cmp)
    _edit_json(cmp / "table.json", lambda t: t["rows"][1].update(accuracy="high"))
    code = main(["report", str(cmp), "--out", str(tmp_path / "r.html"), "--examples", "0"])
    err = capsys.readouterr().err
    assert code == 2 and 'table.json.rows[1].accuracy must be a number or null, got "high"' in err
    assert err.count("\n") == 1 and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("target", ["model.pt", "metrics.json", "history.json", "."])
def test_report_never_writes_over_its_inputs(run_copy, capsys, target):
    before = {f.name: f.read_bytes() for f in run_copy.iterdir()}
    code = main(["report", str(run_copy), "--out", str(run_copy / target), "--examples", "0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and ("is a run's own record" in err or "is a folder" in err)
    assert {f.name: f.read_bytes() for f in run_copy.iterdir()} == before
    # beside the run's records, a report is fine
    assert main(["report", str(run_copy), "--out", str(run_copy / "report.html"), "--examples", "0"]) == 0


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_in_a_browser_with_no_script_running(run_copy, tmp_path):
    """The page in headless Chromium: markup injected through a run's files shows as text, and nothing runs."""
    from _browser import ARGS, chromium_or_skip

    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    attack = '<script>window.__ran = 1; alert("x")</script><img src=x onerror="window.__ran = 2">'
    _edit_json(run_copy / "metrics.json", lambda m: m.update(model=attack, description=attack))
    page_file = tmp_path / "report.html"
    assert main(["report", str(run_copy), "--out", str(page_file), "--examples", "0"]) == 0
    dialogs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        ran = page.evaluate("window.__ran === undefined ? null : window.__ran")
        scripts = page.evaluate("document.scripts.length")
        title = page.locator("section.card h2").first.inner_text()
        figures = page.evaluate("[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        browser.close()
    assert ran is None and dialogs == [] and scripts == 0
    assert title == f"{attack} on mnist"  # the injected markup, shown as text
    assert figures == 2  # the curves and the confusion matrix render (embedded PNGs)
