"""One self-contained HTML report over comparison folders and training runs (no external assets).

    build_report([COMPARE_DIR | RUN_DIR, ...]) → HTML string: the Table 1 comparison beside the paper's numbers,
    and for each run: accuracy and loss vs. epochs (the paper's Figures 1–2), the confusion matrix, per-class
    metrics and the test digits the model got wrong with the highest confidence (found by re-running the
    checkpoint on the test split). Images are PNG data URIs; CSS is inline.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import DigitrecError

ACCENT, PAPER_GREY, BAD = "#2f6fdf", "#9aa3af", "#c0392b"


@dataclass
class Run:
    path: Path
    metrics: dict[str, Any]
    history: dict[str, Any] | None = None
    row: dict[str, Any] = field(default_factory=dict)  # its table row, when it came from a comparison

    @property
    def title(self) -> str:
        return f"{self.metrics.get('model', self.path.name)} on {self.metrics.get('dataset', self.row.get('dataset', '?'))}"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise DigitrecError(f"{path}: cannot read JSON ({e})") from None


def _read_run(path: Path, row: dict | None = None) -> Run:
    metrics = _read_json(path / "metrics.json")
    history = _read_json(path / "history.json") if (path / "history.json").is_file() else None
    return Run(path, metrics, history, row or {})


def collect(paths: list[str | os.PathLike]) -> tuple[list[dict], list[Run]]:
    """Comparison results (table.json) and runs (folders with metrics.json) named by `paths`."""
    if not paths:
        raise DigitrecError("report needs at least one comparison folder or run folder")
    tables, runs = [], []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DigitrecError(f"{p}: not a folder (expected a `digitrec compare` or `digitrec train` output folder)")
        if (p / "table.json").is_file():
            table = _read_json(p / "table.json")
            table["_dir"] = str(p)  # where its chart.png sits
            tables.append(table)
            for row in table.get("rows", []):
                if row.get("run_dir") and (p / row["run_dir"] / "metrics.json").is_file():
                    runs.append(_read_run(p / row["run_dir"], row))
        elif (p / "metrics.json").is_file():
            runs.append(_read_run(p))
        else:
            raise DigitrecError(f"{p}: has neither table.json (a comparison) nor metrics.json (a finished run)")
    return tables, runs


# --- figures (in memory, one look for all) -------------------------------------------------------------

def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.titleweight": "bold", "axes.titlesize": 10})
    return plt


def curves_png(history: list[dict]) -> str:
    """The paper's Figure 1 (accuracy vs. epochs) and Figure 2 (loss vs. epochs), side by side."""
    import matplotlib.ticker as mticker

    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.0))
    for ax, key, title in ((axes[0], "acc", "Fig. 1 — accuracy vs. epochs"), (axes[1], "loss", "Fig. 2 — loss vs. epochs")):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "-o", ms=3, color=ACCENT, label="training")
        ax.plot(ep, [h[f"val_{key}"] for h in history], "-s", ms=3, color="#e67e22", label="validation")
        ax.set_title(title, loc="left")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.25)
        if key == "acc":
            ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=1))
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
    axes[1].legend(frameon=False)
    fig.tight_layout()
    return _png(fig)


def confusion_png(cm: list[list[int]]) -> str:
    plt = _plt()
    cm = np.asarray(cm)
    n = len(cm)
    fig, ax = plt.subplots(figsize=(3.9, 3.5))
    off = cm.copy()
    np.fill_diagonal(off, 0)
    # Colour the errors only: the diagonal would swamp them.
    ax.imshow(np.log1p(off), cmap="Reds", vmin=0, vmax=max(1.0, np.log1p(off.max())))
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6.5,
                        color=ACCENT if i == j else ("white" if off[i, j] > off.max() / 2 else "#222"),
                        fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    fig.tight_layout()
    return _png(fig)


def digit_png(image: np.ndarray, scale: int = 3) -> str:
    """A 28×28 uint8 digit, dark ink on white, enlarged without smoothing."""
    from PIL import Image

    img = Image.fromarray(255 - np.asarray(image, dtype=np.uint8)).resize((28 * scale, 28 * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_png(path: Path) -> str | None:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


# --- most-confused examples -------------------------------------------------------------------------------

def _test_split(dataset: str, split_name: str, data_dir: str | None):
    from .data import load, make_split

    return make_split(load(dataset, data_dir, download=False), split_name)


def confident_errors(run: Run, k: int = 12, data_dir: str | None = None) -> tuple[list[dict], str]:
    """The k test digits the model got wrong with the highest confidence, and a note on how they were found.

    Neural runs: the checkpoint is re-run on its test split. Classical runs (no checkpoint): `digitrec compare`
    recorded the indices and scores of their most confident mistakes; the images come from the same split.
    """
    import torch

    from . import checkpoint
    from .predict import forward_in_batches

    m = run.metrics
    ckpt_path = run.path / "model.pt"
    if ckpt_path.is_file():
        model, ckpt = checkpoint.load_model(ckpt_path)
        cfg = ckpt.get("config", {})
        dataset, split_name = ckpt.get("dataset", cfg.get("dataset", "mnist")), ckpt.get("split", cfg.get("split", "paper"))
        try:
            split = _test_split(dataset, split_name, data_dir or cfg.get("data_dir"))
        except DigitrecError as e:
            return [], f"test data not available ({e})"
        logits = forward_in_batches(model, torch.from_numpy(split.test_images), 1024, "cpu")
        probs = torch.softmax(logits, 1).numpy()
        pred, conf = probs.argmax(1), probs.max(1)
        wrong = np.flatnonzero(pred != split.test_labels)
        order = wrong[np.argsort(-conf[wrong], kind="stable")][:k]
        note = (f"model.pt re-run on the {split_name} split's {len(pred):,} test images: accuracy "
                f"{float((pred == split.test_labels).mean()):.2%}, {len(wrong):,} wrong; the {len(order)} it was "
                f"surest of (softmax probability)")
        items = [{"index": int(i), "true": int(split.test_labels[i]), "pred": int(pred[i]),
                  "label": f"{conf[i]:.1%} sure"} for i in order]
    elif m.get("confident_errors"):
        rec = m["confident_errors"]
        try:
            split = _test_split(m["dataset"], m["split"], data_dir or m.get("data_dir"))
        except DigitrecError as e:
            return [], f"test data not available ({e})"
        fmt = (lambda v: f"{v:.0%} of votes") if rec["score"] == "vote share" else (lambda v: f"score {v:.2f}")
        items = [{**e, "label": fmt(e["score"])} for e in rec["items"][:k]]
        for e in items:  # the split must be the one the indices were recorded on
            if int(split.test_labels[e["index"]]) != e["true"]:
                return [], "the test split here differs from the one the comparison recorded"
        note = (f"the {len(items)} mistakes with the highest {rec['score']} among the {m['n']:,} test images "
                f"(recorded by digitrec compare)")
    else:
        return [], "no checkpoint and no recorded mistakes in this run"
    for e in items:
        e["image"] = digit_png(split.test_images[e["index"]])
    return items, note


# --- HTML ------------------------------------------------------------------------------------------------

CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f6f7f9;--card:#fff;--accent:%s;--bad:%s}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:32px 28px 60px}
header{padding:28px 28px 22px;background:linear-gradient(120deg,#1e3a8a,#2f6fdf);color:#fff;border-radius:14px;margin-bottom:22px}
header h1{margin:0 0 6px;font-size:26px;letter-spacing:-.01em}header p{margin:2px 0;opacity:.9}
.chips{display:flex;flex-wrap:wrap;gap:8px;margin-top:14px}
.chip{background:rgba(255,255,255,.16);border-radius:999px;padding:3px 11px;font-size:12.5px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 22px;margin:0 0 20px;
box-shadow:0 1px 2px rgba(0,0,0,.03)}
h2{font-size:19px;margin:0 0 4px}h3{font-size:14px;margin:18px 0 8px;color:var(--muted);text-transform:uppercase;letter-spacing:.06em}
.sub{color:var(--muted);margin:0 0 14px}
table{border-collapse:collapse;width:100%%;font-variant-numeric:tabular-nums}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{font-size:12px;color:var(--muted);font-weight:600;background:#fafbfc}th:first-child,td:first-child,.l{text-align:left}
td.ours{font-weight:700;color:var(--accent)}td.paper{color:var(--muted)}
.up{color:#15803d;font-size:12px}.down{color:var(--bad);font-size:12px}
.na{color:var(--bad);font-style:italic;white-space:normal;text-align:left}
td.l{white-space:normal}.scroll{overflow-x:auto}  /* long names wrap; a table too wide scrolls in its card */
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(140px,1fr));gap:12px;margin:4px 0 14px}
.kpi{background:#f8fafc;border:1px solid var(--line);border-radius:10px;padding:10px 14px}
.kpi b{display:block;font-size:21px;color:var(--ink)}.kpi span{color:var(--muted);font-size:12px}
.grid{display:grid;grid-template-columns:minmax(0,1.75fr) minmax(0,1fr);gap:18px;align-items:start}
img.fig{width:100%%;height:auto;display:block}
.bar{display:inline-block;height:8px;border-radius:4px;background:var(--accent);vertical-align:middle;margin-left:6px}
.digits{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:10px}
.digit{border:1px solid var(--line);border-radius:10px;padding:6px;text-align:center;font-size:12px;background:#fff}
.digit img{width:84px;height:84px;image-rendering:pixelated;display:block;margin:0 auto 4px}
.digit .p{color:var(--bad);font-weight:700}.digit .c{color:var(--muted)}
ul.notes{margin:8px 0 0;padding-left:18px;color:var(--muted)}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:26px}
.pct{width:140px}
""" % (ACCENT, BAD)


def _e(x: Any) -> str:
    return html.escape(str(x))


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _secs(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f} s" if v >= 100 else f"{v:.1f} s"


def _delta(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None:
        return ""
    d = (ours - paper) * 100
    return f' <span class="{"up" if d >= 0 else "down"}">{d:+.1f} pt</span>'


def comparison_html(table: dict) -> str:
    m, s = table["machine"], table["settings"]
    parts = ['<section class="card"><h2>Table 1 — ours beside the paper</h2>',
             f'<p class="sub">{_e(table["split"])} split{" · quick" if table.get("quick") else ""} · neural epochs '
             f'{_e(s["epochs"])} · neural training images {_e(s["limit"] or "all")} · classical training images '
             f'{_e(s["classical_limit"] or "all")} · measured {_e(m["date"])} on {_e(m["cpu"])} '
             f'({_e(m["cpu_cores"])} cores{", GPU " + _e(m["gpu"]) if m.get("gpu") else ""}), torch {_e(m["torch"])}'
             f'</p>']
    for dataset in dict.fromkeys(r["dataset"] for r in table["rows"]):
        info = table.get("datasets", {}).get(dataset, {})
        rows = [r for r in table["rows"] if r["dataset"] == dataset]
        size = info.get("split_sizes")
        parts.append(f'<h3>{_e(dataset)}' + (f' · test n = {size["test"]:,}' if size else "") + "</h3>")
        if not info.get("available", True):
            parts.append(f'<p class="na">{_e(dataset)}: not available — {_e(info.get("error", ""))}</p>')
        parts.append("<div class=scroll><table><tr><th>model</th><th class=l>paper's row</th><th>paper accuracy</th><th>our accuracy</th>"
                     "<th>macro F1</th><th>paper training</th><th>our training</th><th>train images</th>"
                     "<th class=l>source</th></tr>")
        for r in rows:
            if r["status"] == "unfinished":
                src = (f'<td class="na">unfinished run <code>{_e(Path(r["reused_from"]).name)}</code>: '
                       f'{_e(r["epochs"])} of {_e(r.get("epochs_planned") or "?")} epochs</td>')
            elif r["status"] not in ("trained", "reused"):
                src = f'<td class="na">{_e(r["status"])}</td>'
            elif r["status"] == "reused":
                src = f'<td class=l>reused run <code>{_e(Path(r["reused_from"]).name)}</code></td>'
            else:
                src = "<td class=l>trained here</td>"
            parts.append(
                f'<tr><td>{_e(r["model"])}</td><td class=l>{_e(r["paper_model"] or "—")}</td>'
                f'<td class="paper">{_pct(r["paper_accuracy"])}</td>'
                f'<td class="ours">{_pct(r["accuracy"])}{_delta(r["accuracy"], r["paper_accuracy"])}</td>'
                f'<td>{_pct(r["f1_macro"])}</td><td class="paper">{_secs(r["paper_train_time_s"])}</td>'
                f'<td class="ours">{_secs(r["train_time_s"])}'
                + (f'<br><small>CPU {_secs(r["cpu_time_s"])}</small>' if r.get("cpu_time_s") is not None else "")
                + '</td>'
                f'<td>{"—" if r["n_train"] is None else format(r["n_train"], ",")}</td>{src}</tr>')
        parts.append("</table></div>")
    notes = list(table.get("notes", [])) + [
        "Training time: classical = fit; neural = the training epochs (validation and test evaluation excluded). "
        "The paper does not state its hardware, so times compare only roughly."]
    parts.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul></section>")
    return "".join(parts)


def per_class_html(metrics: dict) -> str:
    rows = ["<table><tr><th>digit</th><th>precision</th><th>recall</th><th class=pct>F1</th><th>support</th></tr>"]
    for c, v in metrics["per_class"].items():
        width = max(0.0, (v["f1"] - 0.9) / 0.1) * 70  # bar spans F1 90–100 %, where the differences are
        rows.append(f'<tr><td>{_e(c)}</td><td>{_pct(v["precision"])}</td><td>{_pct(v["recall"])}</td>'
                    f'<td>{_pct(v["f1"])}<span class="bar" style="width:{width:.0f}px"></span></td>'
                    f'<td>{v["support"]:,}</td></tr>')
    return "".join(rows) + "</table>"


def run_html(run: Run, examples: int, data_dir: str | None, log: Callable[[str], None]) -> str:
    m = run.metrics
    sizes = m.get("sizes", {})
    hist = (run.history or {}).get("epochs") or []
    kpis = [("test accuracy", _pct(m.get("accuracy"))), ("macro F1", _pct(m.get("f1_macro"))),
            ("training time", _secs(m.get("train_time_s") if m.get("train_time_s") is not None
                                    else (run.history or {}).get("train_time_s")))]
    if hist:
        best = max(hist, key=lambda h: h["val_acc"])
        kpis += [("epochs", str(len(hist))), ("best val accuracy", f'{_pct(best["val_acc"])} (ep {best["epoch"]})')]
    sub = (f'{_e(m.get("split", run.row.get("split", "")) or "")} split · train {sizes.get("train", "?"):,} · '
           f'val {sizes.get("val", "?"):,} · test {sizes.get("test", m.get("n", "?")):,}'
           if isinstance(sizes.get("train"), int) else f'test n = {m.get("n")}')
    if m.get("device"):
        sub += f' · trained on {_e(m["device"])}'
    if m.get("unfinished"):
        u = m["unfinished"]
        sub += (f' · <b>unfinished</b>: {u["epochs_done"]} of {u["epochs_planned"]} epochs done when compared; '
                f'best checkpoint so far (epoch {_e(m.get("best_epoch"))}) evaluated')
    if m.get("reused_from"):
        sub += f' · reused from <code>{_e(m["reused_from"])}</code>'
    if m.get("description"):
        sub += f'<br>{_e(m["description"])}'
    parts = [f'<section class="card"><h2>{_e(run.title)}</h2><p class="sub">{sub}</p><div class="kpis">'
             + "".join(f"<div class=kpi><b>{v}</b><span>{_e(k)}</span></div>" for k, v in kpis) + "</div>"]
    left = (f'<h3>Accuracy and loss vs. epochs</h3><img class="fig" alt="accuracy and loss vs epochs" '
            f'src="{curves_png(hist)}">' if hist else "<h3>Training curves</h3><p class=sub>none: fitted in one go</p>")
    left += "<h3>Per-class metrics</h3>" + per_class_html(m)
    right = f'<h3>Confusion matrix</h3><img class="fig" alt="confusion matrix" src="{confusion_png(m["confusion_matrix"])}">'
    parts.append(f'<div class="grid"><div>{left}</div><div>{right}</div></div>')
    if examples > 0:
        if (run.path / "model.pt").is_file():
            log(f"report: re-running {run.path / 'model.pt'} on its test split")
        errs, note = confident_errors(run, examples, data_dir)
        parts.append(f"<h3>Most confident mistakes</h3><p class=sub>{_e(note)}</p>")
        if errs:
            parts.append('<div class="digits">' + "".join(
                f'<div class="digit"><img alt="test digit {e["index"]}" src="{e["image"]}">true {e["true"]} → '
                f'<span class="p">{e["pred"]}</span><br><span class="c">{e["label"]} · #{e["index"]}'
                f"</span></div>" for e in errs) + "</div>")
    parts.append("</section>")
    return "".join(parts)


def build_report(paths: list[str | os.PathLike], examples: int = 12, data_dir: str | None = None,
                 log: Callable[[str], None] = print) -> str:
    from .machine import machine_info

    tables, runs = collect(paths)
    machine = tables[0]["machine"] if tables else machine_info()
    datasets = sorted({r.metrics.get("dataset", "?") for r in runs} | {r["dataset"] for t in tables for r in t["rows"]})
    head = (f'<header><h1>Handwritten digit recognition — results</h1>'
            f'<p>Tonape &amp; Satarkar, “Handwritten Digit Recognition Using CNN: A Transfer Learning Approach” — '
            f'Table 1 and Figures 1–2 reproduced with digitrec</p><div class="chips">'
            + "".join(f'<span class="chip">{_e(c)}</span>' for c in (
                f"datasets: {', '.join(datasets)}", f"{len(runs)} run{'s' * (len(runs) != 1)}",
                f"{machine['cpu']} · {machine['cpu_cores']} cores" + (f" · {machine['gpu']}" if machine.get("gpu") else ""),
                f"torch {machine['torch']}", f"commit {machine['git_commit']}", machine["date"]))
            + "</div></header>")
    body = [head]
    for t in tables:
        body.append(comparison_html(t))
        chart = file_png(Path(t["_dir"]) / "chart.png")
        if chart:
            body.append(f'<section class="card"><h2>Accuracy and training time, ours vs. the paper</h2>'
                        f'<img class="fig" alt="bar chart" src="{chart}"></section>')
    for run in runs:
        body.append(run_html(run, examples, data_dir, log))
    body.append(f"<footer>Generated by <code>digitrec report</code> · {_e(machine_info()['date'])} · "
                "self-contained: every figure is embedded in this file</footer>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            "content='width=device-width,initial-scale=1'><title>digitrec — Table 1 and Figures 1–2</title>"
            f"<style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>")
