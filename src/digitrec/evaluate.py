"""Metrics (accuracy, precision, recall, F1 — macro and per class — and the confusion matrix) and figures.

Figures follow the paper's: accuracy vs epochs (Fig. 1), loss vs epochs (Fig. 2), plus a confusion matrix. They are
drawn here once, for the run folders (PNG files) and for `digitrec report` (embedded in the HTML).
"""
from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from . import checkpoint
from .data import load, make_split
from .data.splits import Split
from .fileio import atomic_path

TRAINING, VALIDATION, ACCENT = "#2f6fdf", "#e67e22", "#2f6fdf"


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = 10) -> dict[str, Any]:
    labels = list(range(num_classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    pm, rm, fm, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "precision_macro": float(pm), "recall_macro": float(rm), "f1_macro": float(fm),
        "per_class": {str(c): {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f[c]),
                               "support": int(s[c])} for c in labels},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def confident_mistakes(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k wrong predictions with the highest score (confidence, vote share, ...), highest first."""
    wrong = np.flatnonzero(np.asarray(y_pred) != np.asarray(y_true))
    return wrong[np.argsort(-np.asarray(score)[wrong], kind="stable")][:k]


def evaluate_checkpoint(path: str | os.PathLike, dataset: str, split: str = "paper", *, data_dir: str | None = None,
                        device: torch.device | str = "cpu", tta: bool = False,
                        split_obj: Split | None = None) -> dict[str, Any]:
    """Test-set metrics of a checkpoint on `dataset`'s `split`."""
    from .predict import forward_in_batches, tta_logits

    model, ckpt = checkpoint.load_model(path)
    device = torch.device(device)
    model.to(device)
    if split_obj is None:
        split_obj = make_split(load(dataset, data_dir), split)
    x = torch.from_numpy(split_obj.test_images)
    y = split_obj.test_labels.astype(np.int64)
    logits = tta_logits(model, x, 1024, device) if tta else forward_in_batches(model, x, 1024, device)
    pred = logits.argmax(1).numpy()
    metrics = {"dataset": dataset, "split": split, "checkpoint": str(path),
               **compute_metrics(y, pred, int(ckpt["num_classes"]))}
    metrics["sizes"] = split_obj.sizes()
    metrics["tta"] = tta
    return metrics


# --- figures ---------------------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figure(history: Sequence[dict[str, Any]], keys: Sequence[str] = ("acc", "loss"),
                  titles: Sequence[str] | None = None):
    """Training and validation accuracy ("acc", the paper's Fig. 1) and/or loss ("loss", Fig. 2) vs. epochs."""
    import matplotlib.ticker as mticker

    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys) + 0.4, 3.3), squeeze=False)
    for ax, key, title in zip(axes[0], keys, titles or [""] * len(keys)):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "-o", ms=3, color=TRAINING, label="training")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "-s", ms=3, color=VALIDATION, label="validation")
        if key == "acc":
            best = max(history, key=lambda h: h["val_acc"])
            ax.annotate(f"best val {best['val_acc']:.2%}", (best["epoch"], best["val_acc"]), textcoords="offset points",
                        xytext=(-10, -25), ha="right", fontsize=8, arrowprops={"arrowstyle": "->", "color": "gray"})
            ax.yaxis.set_major_formatter(mticker.PercentFormatter(1.0, decimals=1))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "cross-entropy loss")
        ax.set_title(title, loc="left", fontsize=10)
        ax.grid(alpha=0.25)
        ax.legend(frameon=False)
        ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))  # whole epochs, never crowded
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def confusion_figure(cm: Sequence[Sequence[int]], title: str = ""):
    """The confusion matrix with every count written in; only the errors are coloured (the diagonal would swamp
    them), on a log scale so that single mistakes still show."""
    plt = _pyplot()
    cm = np.asarray(cm)
    n = len(cm)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.imshow(np.log1p(off), cmap="Reds", vmin=0, vmax=max(1.0, float(np.log1p(off.max(initial=0)))))
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6.5 if n > 10 else 7.5,
                        color=ACCENT if i == j else ("white" if off[i, j] > off.max() / 2 else "#222"),
                        fontweight="bold" if i == j else "normal")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title, loc="left", fontsize=9)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    return fig


def save_png(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write a figure as a PNG file (atomically) and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)


def png_data_uri(fig, dpi: int = 96) -> str:
    """A figure as a PNG data URI (for a self-contained HTML page), and free it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def plot_confusion(cm: Sequence[Sequence[int]], title: str, path: str | os.PathLike) -> None:
    save_png(confusion_figure(cm, title), path)


def write_figures(history: Sequence[dict[str, Any]], metrics: dict[str, Any], out: Path) -> None:
    name = f"{metrics.get('model', '')} on {metrics['dataset']}".strip()
    save_png(curves_figure(history, ("acc",), [f"Accuracy vs. epochs — {name}"]), out / "accuracy.png")
    save_png(curves_figure(history, ("loss",), [f"Loss vs. epochs — {name}"]), out / "loss.png")
    plot_confusion(metrics["confusion_matrix"],
                   f"Confusion matrix — {name}, test accuracy {metrics['accuracy']:.2%} (n={metrics['n']})",
                   out / "confusion.png")


def summary(metrics: dict[str, Any]) -> str:
    lines = [f"{metrics['dataset']} ({metrics['split']} split) test n={metrics['n']}: accuracy {metrics['accuracy']:.4f}  "
             f"precision {metrics['precision_macro']:.4f}  recall {metrics['recall_macro']:.4f}  "
             f"F1 {metrics['f1_macro']:.4f}"]
    worst = sorted(metrics["per_class"].items(), key=lambda kv: kv[1]["f1"])[:3]
    lines.append("weakest classes (F1): " + ", ".join(f"{k}: {v['f1']:.4f}" for k, v in worst))
    return "\n".join(lines)
