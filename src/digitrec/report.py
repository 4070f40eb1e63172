"""One self-contained HTML report over comparison folders and training runs (no external assets).

    build_report([COMPARE_DIR | RUN_DIR, ...]) → HTML string: the Table 1 comparison beside the paper's numbers,
    and for each run: accuracy and loss vs. epochs (the paper's Figures 1–2), the confusion matrix, per-class
    metrics and the test digits the model got wrong with the highest confidence (found by re-running the
    checkpoint on the test split). Images are PNG data URIs; CSS is inline.

The page is rendered from templates/report.html.j2 with autoescaping on: every value read from a run's files
arrives as text, never as markup.
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import DigitrecError
from .runs import OPTIONAL_NUMBER, OPTIONAL_TEXT, Run, read_json, read_run

TEMPLATES = Path(__file__).parent / "templates"
# table.json, as far as the page reads it
TABLE = {"split": str, "quick": bool, "notes": [str],
         "settings": {"epochs": (int, str), "limit": OPTIONAL_NUMBER, "classical_limit": OPTIONAL_NUMBER},
         "machine": {"date": str, "cpu": str, "cpu_cores": OPTIONAL_NUMBER, "gpu": OPTIONAL_TEXT, "torch": str,
                     "git_commit": str},
         "datasets": {"*": {"available": bool, "error": str, "split_sizes": {"*": int}}},
         "rows": [{"dataset": str, "model": str, "status": str, "paper_model": OPTIONAL_TEXT,
                   "paper_accuracy": OPTIONAL_NUMBER, "paper_train_time_s": OPTIONAL_NUMBER,
                   "accuracy": OPTIONAL_NUMBER, "f1_macro": OPTIONAL_NUMBER, "train_time_s": OPTIONAL_NUMBER,
                   "cpu_time_s": OPTIONAL_NUMBER, "n_train": OPTIONAL_NUMBER, "epochs": OPTIONAL_NUMBER,
                   "run_dir": OPTIONAL_TEXT, "reused_from": OPTIONAL_TEXT, "note": str, "commit": OPTIONAL_TEXT}]}
TABLE_REQUIRED = ("split", "settings", "machine", "rows")
MACHINE_REQUIRED = ("date", "cpu", "cpu_cores", "torch", "git_commit")


def _read_table(folder: Path) -> dict[str, Any]:
    table = read_json(folder / "table.json", TABLE)
    missing = [k for k in TABLE_REQUIRED if k not in table] + [f"machine.{k}" for k in MACHINE_REQUIRED
                                                                if k not in table.get("machine", {})]
    if missing:
        raise DigitrecError(f"{folder / 'table.json'}: no {', '.join(missing)} (not written by digitrec compare?)")
    return table


def collect(paths: list[str | os.PathLike]) -> tuple[list[dict], list[tuple[Run, dict]]]:
    """Comparison results (table.json, with the folder in "_dir") and runs (with their table row, if any)."""
    if not paths:
        raise DigitrecError("report needs at least one comparison folder or run folder")
    tables, runs = [], []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DigitrecError(f"{p}: not a folder (expected a `digitrec compare` or `digitrec train` output folder)")
        if (p / "table.json").is_file():
            table = {**_read_table(p), "_dir": str(p)}
            tables.append(table)
            runs += [(read_run(p / row["run_dir"]), row) for row in table["rows"]
                     if row.get("run_dir") and (p / row["run_dir"] / "metrics.json").is_file()]
        elif (p / "metrics.json").is_file():
            runs.append((read_run(p), {}))
        else:
            raise DigitrecError(f"{p}: has neither table.json (a comparison) nor metrics.json (a finished run)")
    return tables, runs


# --- most confident mistakes ----------------------------------------------------------------------------------

def digit_png(image: np.ndarray, scale: int = 3) -> str:
    """A 28×28 uint8 digit, dark ink on white, enlarged without smoothing, as a PNG data URI."""
    from PIL import Image

    img = Image.fromarray(255 - np.asarray(image, dtype=np.uint8)).resize((28 * scale, 28 * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _NoTestData(DigitrecError):
    """The run's test images are not on this machine: the report says so instead of showing mistakes."""


def _test_split(dataset: str, split_name: str, data_dir: str | None):
    from .data import load, make_split

    try:
        return make_split(load(dataset, data_dir, download=False), split_name)
    except DigitrecError as e:
        raise _NoTestData(str(e)) from None


def _rerun_checkpoint(run: Run, k: int, data_dir: str | None) -> tuple[list[dict], str, Any]:
    """A neural run: its checkpoint re-run on its test split; mistakes ranked by softmax probability."""
    from . import checkpoint
    from .evaluate import confident_mistakes
    from .predict import probabilities

    model, ckpt = checkpoint.load_model(run.path / "model.pt")
    cfg = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    dataset, split_name = ckpt.get("dataset", cfg.get("dataset", "mnist")), ckpt.get("split", cfg.get("split", "paper"))
    split = _test_split(dataset, split_name, data_dir or cfg.get("data_dir"))
    probs = probabilities(model, split.test_images).numpy()
    pred, conf = probs.argmax(1), probs.max(1)
    order = confident_mistakes(split.test_labels, pred, conf, k)
    n_wrong = int((pred != split.test_labels).sum())
    note = (f"model.pt re-run on the {split_name} split's {len(pred):,} test images: accuracy "
            f"{float((pred == split.test_labels).mean()):.2%}, {n_wrong:,} wrong; the {len(order)} it was "
            f"surest of (softmax probability)")
    items = [{"index": int(i), "true": int(split.test_labels[i]), "pred": int(pred[i]),
              "label": f"{conf[i]:.1%} sure"} for i in order]
    return items, note, split


def _recorded_mistakes(run: Run, k: int, data_dir: str | None) -> tuple[list[dict], str, Any]:
    """A classical run (no checkpoint): the mistakes `digitrec compare` recorded, on the same split."""
    m = run.metrics
    rec = m["confident_errors"]
    if "dataset" not in m or "split" not in m:
        raise DigitrecError(f"{run.path / 'metrics.json'}: recorded mistakes without their dataset and split")
    split = _test_split(m["dataset"], m["split"], data_dir or m.get("data_dir"))
    fmt = (lambda v: f"{v:.0%} of votes") if rec["score"] == "vote share" else (lambda v: f"score {v:.2f}")
    items = [{**e, "label": fmt(e["score"])} for e in rec["items"][:k]]
    for e in items:  # the split must be the one the indices were recorded on
        if not 0 <= e["index"] < len(split.test_labels) or int(split.test_labels[e["index"]]) != e["true"]:
            return [], "the test split here differs from the one the comparison recorded", split
    note = (f"the {len(items)} mistakes with the highest {rec['score']} among the {m['n']:,} test images "
            f"(recorded by digitrec compare)")
    return items, note, split


def confident_errors(run: Run, k: int = 12, data_dir: str | None = None) -> tuple[list[dict], str]:
    """The k test digits the model got wrong with the highest confidence, and a note on how they were found."""
    if (run.path / "model.pt").is_file():
        find = _rerun_checkpoint
    elif run.metrics.get("confident_errors"):
        find = _recorded_mistakes
    else:
        return [], "no checkpoint and no recorded mistakes in this run"
    try:
        items, note, split = find(run, k, data_dir)
    except _NoTestData as e:
        return [], f"test data not available ({e})"
    for e in items:
        e["image"] = digit_png(split.test_images[e["index"]])
    return items, note


# --- the page ---------------------------------------------------------------------------------------------------

def _run_view(run: Run, row: dict, examples: int, data_dir: str | None, log: Callable[[str], None]) -> dict:
    from .evaluate import confusion_figure, curves_figure, png_data_uri

    epochs = (run.history or {}).get("epochs") or []
    view = {"run": run, "m": run.metrics, "row": row, "epochs": epochs,
            "train_time_s": run.metrics.get("train_time_s", (run.history or {}).get("train_time_s")),
            "best": max(epochs, key=lambda h: h["val_acc"]) if epochs else None,
            "curves": png_data_uri(curves_figure(epochs, ("acc", "loss"), ("Fig. 1 — accuracy vs. epochs",
                                                                          "Fig. 2 — loss vs. epochs")))
            if epochs else None,
            "confusion": png_data_uri(confusion_figure(run.metrics["confusion_matrix"])),
            "mistakes": None, "mistakes_note": None}
    if examples > 0:
        if (run.path / "model.pt").is_file():
            log(f"report: re-running {run.path / 'model.pt'} on its test split")
        view["mistakes"], view["mistakes_note"] = confident_errors(run, examples, data_dir)
    return view


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _secs(v: float | None) -> str:
    return "—" if v is None else (f"{v:,.0f} s" if v >= 100 else f"{v:.1f} s")


def _count(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "?" if v is None else str(v)


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, secs=_secs, count=_count, basename=lambda p: Path(p).name if p else "")
    return env


def _file_png(path: Path) -> str | None:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def build_report(paths: list[str | os.PathLike], examples: int = 12, data_dir: str | None = None,
                 log: Callable[[str], None] = print) -> str:
    from .machine import machine_info

    tables, runs = collect(paths)
    now = machine_info()
    machine = tables[0]["machine"] if tables else now
    datasets = sorted({r.metrics.get("dataset", "?") for r, _ in runs} | {r["dataset"] for t in tables for r in t["rows"]})
    for t in tables:
        t["_chart"] = _file_png(Path(t["_dir"]) / "chart.png")
        t["_datasets"] = list(dict.fromkeys(r["dataset"] for r in t["rows"]))
    return _environment().get_template("report.html.j2").render(
        machine=machine, generated=now["date"], datasets=datasets, tables=tables,
        runs=[_run_view(run, row, examples, data_dir, log) for run, row in runs])
