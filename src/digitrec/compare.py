"""The paper's Table 1, reproduced: classical and neural models trained on one split, side by side with the paper.

    run_compare(CompareOptions(...)) → DIR/{table.json, table.csv, table.md, chart.png, runs/<dataset>-<model>/}

Neural models train through digitrec.train.train with the paper preset; classical ones (svm, knn) fit
in-process; either can instead be taken from a finished run with `reuse` (recorded as such, with the commit that
run was trained at). Every model sees the same split. A dataset whose files are missing becomes a row saying so; an
unknown model name fails before anything trains. The table is rewritten after every model, so a long comparison
that dies keeps the rows it finished. (Measuring a comparison on a shared machine, or tabling runs still training,
is benchmark bookkeeping: benchmarks/table1.py.)
"""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import load, make_split
from .data.sources import SOURCES
from .errors import DigitrecError
from .fileio import write_json, write_text
from .runs import read_run

# Table 1 of the paper: accuracy on MNIST and EMNIST (digits) and one training time per model.
PAPER_TABLE: dict[str, dict[str, Any]] = {
    "svm": {"label": "SVM", "mnist": 0.934, "emnist-digits": 0.892, "train_time_s": 1200},
    "knn": {"label": "k-NN", "mnist": 0.951, "emnist-digits": 0.907, "train_time_s": 1100},
    "simple-cnn": {"label": "Simple CNN", "mnist": 0.985, "emnist-digits": 0.964, "train_time_s": 860},
    "proposed": {"label": "Proposed Model (CNN + Transfer Learning)", "mnist": 0.992, "emnist-digits": 0.978,
                 "train_time_s": 840},
}
# Which paper row each of our models stands beside. paper-cnn is the paper's 4-conv network without the
# ResNet-18 part; hybrid is the full CNN + ResNet-18 "proposed model".
PAPER_ROW = {"svm": "svm", "knn": "knn", "simple-cnn": "simple-cnn", "paper-cnn": "proposed", "hybrid": "proposed"}

QUICK = {"epochs": 2, "limit": 5000, "classical_limit": 5000}
DONE = ("trained", "reused", "unfinished")  # statuses whose row has our numbers ("unfinished": benchmarks/table1.py)
METRIC_KEYS = ("accuracy", "precision_macro", "recall_macro", "f1_macro")


@dataclass
class CompareOptions:
    datasets: list[str]
    models: list[str]
    out: Path
    split: str = "paper"
    quick: bool = False
    epochs: int | None = None  # None: the paper preset's 25 (2 with quick)
    limit: int | None = None  # neural training subset; None: all (5000 with quick)
    classical_limit: int | None = None  # svm/knn training subset; None: all (5000 with quick)
    reuse: dict[str, Path] = field(default_factory=dict)  # model → finished run folder to take instead of training
    data_dir: str | None = None
    download: bool = False
    threads: int | None = None
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def resolved(self, key: str) -> int | None:
        value = getattr(self, key)
        return QUICK[key] if value is None and self.quick else value


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise DigitrecError(f"--{what} needs at least one name")
    dupes = sorted({t for t in items if items.count(t) > 1})
    if dupes:
        raise DigitrecError(f"--{what}: {', '.join(dupes)} given twice")
    return items


def parse_reuse(items: list[str]) -> dict[str, Path]:
    reuse: dict[str, Path] = {}
    for item in items:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise DigitrecError(f"--reuse expects MODEL=RUN_DIR, got {item!r}")
        if model in reuse:
            raise DigitrecError(f"--reuse: {model} given twice")
        reuse[model] = Path(path)
    return reuse


def _check_names(opts: CompareOptions, neural: set[str], classical: set[str]) -> None:
    for m in opts.models:
        if m not in classical and m not in neural:
            raise DigitrecError(f"unknown model {m!r} (not registered in this build); choose from: "
                                f"{', '.join(sorted(classical) + sorted(neural))}")
    for d in opts.datasets:
        if not (d in SOURCES or d.startswith("idx:")):
            raise DigitrecError(f"unknown dataset {d!r}; choose from: {', '.join(SOURCES)}, idx:DIR")
    if opts.split not in ("paper", "canonical"):
        raise DigitrecError(f"--split must be paper or canonical, got {opts.split!r}")
    for key in ("epochs", "limit", "classical_limit"):
        value = getattr(opts, key)
        if value is not None and value < 1:
            raise DigitrecError(f"--{key.replace('_', '-')} must be ≥ 1, got {value}")


def _check_reuse(opts: CompareOptions, classical: set[str]) -> None:
    for m, run_dir in opts.reuse.items():
        if m not in opts.models:
            raise DigitrecError(f"--reuse {m}=...: {m} is not in --models")
        if not run_dir.is_dir():
            raise DigitrecError(f"--reuse: {run_dir} is not a folder")
        if not (run_dir / "metrics.json").is_file():
            raise DigitrecError(f"--reuse: {run_dir} has no metrics.json (training not finished?)")
        run = read_run(run_dir, need_history=m not in classical)
        metrics, history = run.metrics, run.history
        if metrics.get("model") != m:
            raise DigitrecError(f"--reuse {m}={run_dir}: that run trained {metrics.get('model')!r}, not {m!r}")
        if metrics.get("dataset") not in opts.datasets:
            raise DigitrecError(f"--reuse {m}={run_dir}: that run is on {metrics.get('dataset')!r}, "
                                f"which is not in --datasets")
        if metrics.get("split") != opts.split:
            raise DigitrecError(f"--reuse {m}={run_dir}: that run used the {metrics.get('split')!r} split, "
                                f"this comparison the {opts.split!r} split")
        if "train_time_s" not in (history if history is not None else metrics):
            raise DigitrecError(f"--reuse {m}={run_dir}: no train_time_s recorded")


def check(opts: CompareOptions) -> None:
    """Every input problem, found before anything trains."""
    from .config import make_config
    from .models import available
    from .models.classical import CLASSICAL

    neural = set(available())
    _check_names(opts, neural, set(CLASSICAL))
    for m in opts.models:
        if m in neural:  # raises on a bad preset value (threads, device, ...) now rather than mid-comparison
            make_config("paper", model=m, split=opts.split, epochs=opts.resolved("epochs"),
                        limit=opts.resolved("limit"), threads=opts.threads, seed=opts.seed)
    if any(m in neural for m in opts.models):
        from .device import resolve_device

        resolve_device(opts.device)
    _check_reuse(opts, set(CLASSICAL))
    for d in opts.datasets:
        for m in opts.models:
            run_dir = opts.out / "runs" / f"{_slug(d)}-{m}"
            reused_here = m in opts.reuse and opts.reuse[m].resolve() == run_dir.resolve()
            # an earlier comparison's copy of a reused run may be replaced by a fresh copy
            replaceable = m in opts.reuse and _is_copy(run_dir)
            if run_dir.exists() and any(run_dir.iterdir()) and not (reused_here or replaceable):
                raise DigitrecError(f"{run_dir} already exists; use another --out (or --reuse {m}={run_dir})")


def _fit_classical(name: str, dataset: str, split, opts: CompareOptions, run_dir: Path,
                   log: Callable[[str], None]) -> dict:
    from threadpoolctl import threadpool_limits

    from .evaluate import compute_metrics, confident_mistakes, plot_confusion
    from .models.classical import confidence, create, describe, score_name

    x, y = split.train_images, split.train_labels
    limit = opts.resolved("classical_limit")
    if limit is not None and limit < len(y):
        from .data.splits import stratified_subset

        keep = stratified_subset(y, limit)
        x, y = x[keep], y[keep]
    pipe = create(name, seed=opts.seed)
    log(f"fitting {name} on {len(y)} images ({describe(name, pipe)})")
    with threadpool_limits(opts.threads):  # None: no limit
        t0, c0 = time.perf_counter(), time.process_time()
        pipe.fit(x, y)
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        pred = pipe.predict(split.test_images)
        predict_s = time.perf_counter() - t0
        score = confidence(pipe, split.test_images)
    metrics = compute_metrics(split.test_labels.astype(np.int64), pred, 10)
    worst = confident_mistakes(split.test_labels, pred, score, 24)
    metrics.update({"model": name, "dataset": dataset, "split": opts.split, "data_dir": opts.data_dir,
                    "description": describe(name, pipe), "train_time_s": fit_s, "train_cpu_s": fit_cpu,
                    "predict_time_s": predict_s, "trained_at": _own_commit(),
                    "sizes": {**split.sizes(), "train": int(len(y))},
                    # for the report's "most confident mistakes": indices into the test split
                    "confident_errors": {"score": score_name(name), "items": [
                        {"index": int(i), "true": int(split.test_labels[i]), "pred": int(pred[i]),
                         "score": float(score[i])} for i in worst]}})
    write_json(run_dir / "metrics.json", metrics)
    plot_confusion(metrics["confusion_matrix"], f"Confusion matrix — {name}, test accuracy "
                   f"{metrics['accuracy']:.2%} (n={metrics['n']})", run_dir / "confusion.png")
    return metrics


def _train_neural(name: str, dataset: str, opts: CompareOptions, run_dir: Path, log: Callable[[str], None]) -> dict:
    from .config import make_config
    from .train import train

    cfg = make_config("paper", model=name, dataset=dataset, split=opts.split, epochs=opts.resolved("epochs"),
                      limit=opts.resolved("limit"), data_dir=opts.data_dir, threads=opts.threads,
                      device=opts.device, seed=opts.seed)
    c0 = time.process_time()
    metrics = train(cfg, run_dir, progress=opts.progress, log=log)
    metrics["train_cpu_s"] = time.process_time() - c0  # includes validation and the test evaluation
    metrics["description"] = f"paper preset: Adam lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs, " \
                             f"augmentation {'on' if cfg.augment else 'off'}"
    return metrics


def _describe_history(history: dict) -> str:
    cfg = history.get("config", {})
    return (f"reused run: {cfg.get('epochs', '?')} epochs on {history.get('device', '?')}, "
            f"{cfg.get('optimizer', 'adam')} lr {cfg.get('lr', '?')}, batch {cfg.get('batch_size', '?')}, "
            f"augmentation {'on' if cfg.get('augment') else 'off'}")


def _reuse(name: str, src: Path, run_dir: Path) -> tuple[dict, str | None]:
    """A finished run's results (and weights) taken into this comparison, so DIR stands on its own; with the
    commit the run was trained at, where its records say."""
    from .models.classical import CLASSICAL

    run = read_run(src, need_history=name not in CLASSICAL)
    if src.resolve() != run_dir.resolve():
        if run_dir.exists():  # check() made sure it is an earlier copy
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        for f in ("history.json", "model.pt", "accuracy.png", "loss.png", "confusion.png"):
            if (src / f).is_file():
                shutil.copy2(src / f, run_dir / f)
    metrics = {"reused_from": str(src), **run.metrics}  # a copy of a copy keeps the original source
    if run.history is not None:  # a `digitrec train` run: its training time and recipe live in history.json
        metrics["train_time_s"] = run.history["train_time_s"]
        metrics.setdefault("description", _describe_history(run.history))
    if src.resolve() != run_dir.resolve():
        write_json(run_dir / "metrics.json", metrics)  # says where it came from
    return metrics, commit_of(run.provenance) or run.metrics.get("trained_at")


def _own_commit() -> str:
    from .machine import git_commit

    return git_commit()


def commit_of(provenance: dict | None) -> str | None:
    """A run's commit as a table shows it: short hash, '-dirty' (+ the diff's hash) for uncommitted changes."""
    if provenance and provenance.get("mixed"):
        return "mixed: resumed at different code states"
    if not provenance or not isinstance(provenance.get("commit"), str):
        return None
    commit = provenance["commit"][:12]
    if provenance.get("dirty") is None:
        return f"{commit} (tree state unknown)"
    if provenance["dirty"]:
        diff = provenance.get("diff_sha256")
        return f"{commit}-dirty" + (f", diff sha256 {diff[:12]}" if isinstance(diff, str) else "")
    return commit


def _is_copy(run_dir: Path) -> bool:
    """Whether run_dir holds a comparison's copy of a reused run (its metrics.json says reused_from)."""
    try:
        return "reused_from" in json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError, TypeError):
        return False


def _reuse_dataset(src: Path) -> str | None:
    try:
        return json.loads((src / "metrics.json").read_text()).get("dataset")
    except (OSError, ValueError, AttributeError):
        return None


def _row(dataset: str, model: str, status: str, metrics: dict | None = None, wall_s: float | None = None,
         note: str = "", run_dir: Path | None = None, out: Path | None = None, commit: str | None = None) -> dict:
    paper = PAPER_TABLE.get(PAPER_ROW.get(model, ""), {})
    row: dict[str, Any] = {"dataset": dataset, "model": model, "status": status,
                           "paper_model": paper.get("label"), "paper_accuracy": paper.get(dataset),
                           "paper_train_time_s": paper.get("train_time_s")}
    m = metrics or {}
    row.update({k: m.get(k) for k in METRIC_KEYS})
    row.update({"train_time_s": m.get("train_time_s"), "wall_time_s": wall_s, "cpu_time_s": m.get("train_cpu_s"),
                "n_train": m.get("sizes", {}).get("train"), "n_test": m.get("n"), "epochs": m.get("epochs"),
                "description": m.get("description", ""),
                "run_dir": str(run_dir.relative_to(out)) if run_dir is not None and out is not None else None,
                "reused_from": m.get("reused_from"), "commit": commit, "note": note})
    return row


def paper_notes(rows: list[dict]) -> list[str]:
    """Say which of the paper's rows have nothing of ours beside them, and whether hybrid exists at all."""
    from .models import available

    notes = []
    for key, paper in PAPER_TABLE.items():
        if not any(PAPER_ROW.get(r["model"]) == key and r["status"] in DONE for r in rows):
            notes.append(f"paper row '{paper['label']}': nothing of ours beside it in this comparison")
    if "hybrid" in available() and not any(r["model"] == "hybrid" for r in rows):
        notes.append("hybrid (CNN + ResNet-18 transfer learning, the paper's full 'Proposed Model') was not run in "
                     "this comparison; paper-cnn is the paper's 4-conv CNN without the ResNet-18 part")
    if "hybrid" not in available():
        notes.append("hybrid (CNN + ResNet-18 transfer learning, the paper's full 'Proposed Model') is not "
                     "available in this build — digitrec.models.available() lacks it — so it was not run; "
                     "paper-cnn is the paper's 4-conv CNN without the ResNet-18 part")
    return notes


def _compare_model(dataset: str, model: str, split, opts: CompareOptions, result: dict,
                   log: Callable[[str], None]) -> dict:
    """One row: the model reused, fitted or trained on the dataset's split."""
    from .models.classical import CLASSICAL

    run_dir = opts.out / "runs" / f"{_slug(dataset)}-{model}"
    t0 = time.perf_counter()
    commit = _own_commit()
    if model in opts.reuse and _reuse_dataset(opts.reuse[model]) == dataset:
        (metrics, commit), status = _reuse(model, opts.reuse[model], run_dir), "reused"
    elif model in CLASSICAL:
        metrics, status = _fit_classical(model, dataset, split, opts, run_dir, log), "trained"
    else:
        metrics, status = _train_neural(model, dataset, opts, run_dir, log), "trained"
    wall = time.perf_counter() - t0 if status == "trained" else None
    log(f"{dataset} {model}: accuracy {metrics['accuracy']:.4f}, training {metrics['train_time_s']:.1f}s"
        + (f" (reused run from {opts.reuse[model]})" if status == "reused" else ""))
    return _row(dataset, model, status, metrics, wall, run_dir=run_dir, out=opts.out, commit=commit)


def run_compare(opts: CompareOptions, log: Callable[[str], None] = print) -> dict:
    from .machine import machine_info

    check(opts)
    opts.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "machine": machine_info(), "split": opts.split, "quick": opts.quick,
        "settings": {"epochs": opts.resolved("epochs") or "paper preset (25)", "limit": opts.resolved("limit"),
                     "classical_limit": opts.resolved("classical_limit"), "threads": opts.threads,
                     "seed": opts.seed, "device": opts.device},
        "datasets": {}, "rows": [], "notes": [], "paper_table": PAPER_TABLE,
    }
    for dataset in opts.datasets:
        try:
            data = load(dataset, opts.data_dir, download=opts.download)
        except DigitrecError as e:
            log(f"{dataset}: not available — {e}")
            result["datasets"][dataset] = {"available": False, "error": str(e)}
            result["rows"] += [_row(dataset, m, "not available", note=f"dataset not available — {e}")
                               for m in opts.models]
            write_tables(result, opts.out)
            continue
        split = make_split(data, opts.split)
        result["datasets"][dataset] = {"available": True, "location": data.location, "split_sizes": split.sizes()}
        for model in opts.models:
            result["rows"].append(_compare_model(dataset, model, split, opts, result, log))
            write_tables(result, opts.out)
    result["notes"] = paper_notes(result["rows"])
    write_tables(result, opts.out, chart=True)
    return result


# --- output ---------------------------------------------------------------------------------------------

def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _secs(v: float | None) -> str:
    return "—" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.1f}")


CSV_COLUMNS = ("dataset", "model", "status", "accuracy", "precision_macro", "recall_macro", "f1_macro",
               "train_time_s", "wall_time_s", "cpu_time_s", "n_train", "n_test", "epochs", "paper_model", "paper_accuracy",
               "paper_train_time_s", "reused_from", "commit", "run_dir", "note")


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_COLUMNS})
    return buf.getvalue()


def dataset_table(rows: list[dict], dataset: str) -> list[str]:
    """Markdown rows: one dataset's models beside the paper's, each with where it came from and its commit."""
    lines = ["| model | paper's model | paper accuracy | our accuracy | precision | recall | F1 | "
             "paper training (s) | our training (s) | train / test n | source |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in (r for r in rows if r["dataset"] == dataset):
        # The run folder's name only: its full path is in the command above, and a machine's paths mean
        # nothing to a reader of the table.
        run = Path(r["reused_from"]).name if r.get("reused_from") else ""
        trained_at = f"trained at {r['commit']}" if r.get("commit") else "commit unknown"
        source = {"trained": f"trained here ({trained_at})", "reused": f"reused run `{run}` ({trained_at})",
                  "unfinished": f"**unfinished** run `{run}` ({r['note']})"}.get(r["status"], r["status"])
        n = f"{r['n_train']:,} / {r['n_test']:,}" if r["n_train"] is not None else "—"
        ours = _secs(r["train_time_s"]) + ("" if r.get("cpu_time_s") is None else f" (CPU {_secs(r['cpu_time_s'])})")
        lines.append(f"| {r['model']} | {r['paper_model'] or '—'} | {_pct(r['paper_accuracy'])} | "
                     f"{_pct(r['accuracy'])} | {_pct(r['precision_macro'])} | {_pct(r['recall_macro'])} | "
                     f"{_pct(r['f1_macro'])} | {_secs(r['paper_train_time_s'])} | {ours} | {n} | {source} |")
    return lines


def to_markdown(result: dict) -> str:
    m = result["machine"]
    s = result["settings"]
    lines = ["# Table 1 reproduced: SVM, k-NN, Simple CNN and the proposed model", "",
             f"{m['date']} · compared at commit {m['git_commit']} · {m['cpu']} ({m['cpu_cores']} cores)"
             + (f" · GPU {m['gpu']}" if m.get("gpu") else "") + f" · torch {m['torch']}", "",
             f"Command: `{m['command']}`", "",
             f"Split: {result['split']}{' · quick' if result['quick'] else ''} · neural epochs: {s['epochs']} · "
             f"neural training limit: {s['limit'] or 'all'} · classical training limit: "
             f"{s['classical_limit'] or 'all'} · threads: {s['threads'] or 'default'}", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in result["rows"]):
        info = result["datasets"].get(dataset, {})
        lines += [f"## {dataset}", ""]
        if not info.get("available", True):
            lines += [f"**{dataset}: not available** — {info['error']}", ""]
        lines += [*dataset_table(result["rows"], dataset), ""]
        for r in (r for r in result["rows"] if r["dataset"] == dataset and r["description"]):
            lines.append(f"- {r['model']}: {r['description']}")
        lines.append("")
    lines += ["Training time: classical = fit time; neural = sum of the training epochs (per-epoch validation and "
              "the final test evaluation excluded; `wall_time_s` in table.json includes them). CPU: this process's CPU "
              "time for the same work (neural: including validation and evaluation). The paper does not "
              "say what hardware its times come from.", ""]
    if result["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    return "\n".join(lines)


def plot_chart(result: dict, path: Path) -> None:
    """Accuracy and training time per model: ours beside the paper's, one group per dataset/model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .fileio import atomic_path

    rows = result["rows"]
    if not rows:
        return
    labels = [f"{r['model']}\n{r['dataset']}" if len({x['dataset'] for x in rows}) > 1 else r["model"] for r in rows]
    x = np.arange(len(rows))
    w = 0.38
    fig, axes = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(rows) + 3), 4.2))
    for ax, key, paper_key, title in ((axes[0], "accuracy", "paper_accuracy", "Test accuracy"),
                                      (axes[1], "train_time_s", "paper_train_time_s", "Training time (s, log)")):
        ours = [r[key] if r[key] is not None else np.nan for r in rows]
        paper = [r[paper_key] if r[paper_key] is not None else np.nan for r in rows]
        b1 = ax.bar(x - w / 2, paper, w, label="paper (Table 1)", color="#c7cdd6")
        b2 = ax.bar(x + w / 2, ours, w, label="ours", color="#2f6fdf")
        fmt = (lambda v: f"{v:.1%}") if key == "accuracy" else (lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}")
        for bars, vals in ((b1, paper), (b2, ours)):
            for b, v in zip(bars, vals):
                if not np.isnan(v):
                    ax.annotate(fmt(v), (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom",
                                fontsize=7, xytext=(0, 2), textcoords="offset points")
        for i, r in enumerate(rows):
            if r[key] is None:
                ax.annotate("n/a", (x[i] + w / 2, 0), ha="center", va="bottom", fontsize=7, color="#b00",
                            xytext=(0, 2), textcoords="offset points", xycoords=("data", "axes fraction"))
        if key == "accuracy":
            vals = [v for v in ours + paper if not np.isnan(v)]
            ax.set_ylim(max(0.0, min(vals, default=0.9) - 0.03), 1.0)
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        else:
            ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    fig.legend(handles=[b1, b2], loc="upper right", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Table 1: ours vs. the paper ({result['split']} split"
                 f"{', quick' if result['quick'] else ''}; {result['machine']['cpu_cores']}-core "
                 f"{'GPU' if result['machine'].get('gpu') else 'CPU'})", fontsize=10, x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_tables(result: dict, out: Path, chart: bool = False) -> None:
    write_json(out / "table.json", result)
    write_text(out / "table.csv", to_csv(result["rows"]))
    write_text(out / "table.md", to_markdown(result))
    if chart:
        plot_chart(result, out / "chart.png")
