"""Metrics (accuracy, precision, recall, F1 — macro and per class — and the confusion matrix) and figures.

Figures follow the paper's: accuracy vs epochs (Fig. 1), loss vs epochs (Fig. 2), plus a confusion heatmap.
"""
from __future__ import annotations

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


def evaluate_checkpoint(path: str | os.PathLike, dataset: str, split: str = "paper", *, data_dir: str | None = None,
                        device: torch.device | str = "cpu", tta: bool = False, limit: int | None = None,
                        split_obj: Split | None = None) -> dict[str, Any]:
    """Test-set metrics of a checkpoint on `dataset`'s `split`."""
    from .predict import forward_in_batches, tta_logits

    model, ckpt = checkpoint.load_model(path)
    device = torch.device(device)
    model.to(device)
    if split_obj is None:
        split_obj = make_split(load(dataset, data_dir), split, limit)
    x = torch.from_numpy(split_obj.test_images)
    y = split_obj.test_labels.astype(np.int64)
    logits = tta_logits(model, x, 1024, device) if tta else forward_in_batches(model, x, 1024, device)
    pred = logits.argmax(1).numpy()
    metrics = {"dataset": dataset, "split": split, "checkpoint": str(path),
               **compute_metrics(y, pred, int(ckpt["num_classes"]))}
    metrics["sizes"] = split_obj.sizes()
    metrics["tta"] = tta
    return metrics


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_curves(history: Sequence[dict[str, Any]], key: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="training", color="#1f77b4")
    ax.plot(epochs, [h[f"val_{key}"] for h in history], "s-", label="validation", color="#ff7f0e")
    if key == "acc":
        best = max(history, key=lambda h: h["val_acc"])
        ax.annotate(f"best val {best['val_acc']:.2%}", (best["epoch"], best["val_acc"]),
                    textcoords="offset points", xytext=(-10, -25), ha="right",
                    arrowprops={"arrowstyle": "->", "color": "gray"})
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if key == "acc" else "cross-entropy loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # whole epochs, never crowded
    _save_figure(fig, path)
    plt.close(fig)


def plot_confusion(cm: Sequence[Sequence[int]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    n = len(cm)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Log-ish colour scale so the few errors stand out next to the large diagonal.
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7 if n > 10 else 8,
                        color="white" if np.log1p(cm[i, j]) > np.log1p(cm.max()) / 2 else ("#b00" if i != j else "k"))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    _save_figure(fig, path)
    plt.close(fig)


def write_figures(history: Sequence[dict[str, Any]], metrics: dict[str, Any], out: Path) -> None:
    name = f"{metrics.get('model', '')} on {metrics['dataset']}".strip()
    plot_curves(history, "acc", f"Training accuracy vs. epochs — {name}", out / "accuracy.png")
    plot_curves(history, "loss", f"Loss vs. epochs — {name}", out / "loss.png")
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
