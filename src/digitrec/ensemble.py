"""Ensembles: the average of several checkpoints' softmax probabilities, scored on a test split.

    ensemble(["runs/seed0", "runs/seed1/model.pt", ...]) → metrics (compute_metrics) + each member's accuracy
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import checkpoint
from .data import load, make_split
from .errors import DigitrecError
from .evaluate import compute_metrics
from .predict import probabilities


def resolve(path: str | os.PathLike) -> Path:
    """A run folder means its model.pt (the best epoch); anything else is a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "model.pt").is_file():
            raise DigitrecError(f"{path}: a folder without model.pt (not a finished run)")
        return path / "model.pt"
    return path


def _agreed(ckpts: list[dict[str, Any]], key: str, given: str | None, flag: str) -> str:
    if given:
        return given
    values = {c.get(key) for c in ckpts}
    if len(values) != 1 or None in values:
        raise DigitrecError(f"the checkpoints do not agree on the {key} ({', '.join(sorted(map(str, values)))}); "
                            f"pass {flag}")
    return values.pop()


def ensemble(paths: Sequence[str | os.PathLike], dataset: str | None = None, split: str | None = None, *,
             data_dir: str | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    if len(paths) < 2:
        raise DigitrecError(f"an ensemble needs at least 2 checkpoints, got {len(paths)}")
    files = [resolve(p) for p in paths]
    members = [checkpoint.load_model(f) for f in files]
    classes = {int(c["num_classes"]) for _, c in members}
    if len(classes) != 1:
        raise DigitrecError(f"the checkpoints predict different numbers of classes ({sorted(classes)})")
    num_classes = classes.pop()
    ckpts = [c for _, c in members]
    dataset = _agreed(ckpts, "dataset", dataset, "--dataset")
    split = _agreed(ckpts, "split", split, "--split")
    data = make_split(load(dataset, data_dir), split)
    x = torch.from_numpy(data.test_images)
    y = data.test_labels.astype(np.int64)
    if len(y) and y.max() >= num_classes:
        raise DigitrecError(f"{dataset} has labels up to {y.max()}, the checkpoints predict {num_classes} classes")
    device = torch.device(device)
    probs, rows = [], []
    for f, (model, ckpt) in zip(files, members):
        p = probabilities(model.to(device), x, device)
        probs.append(p)
        rows.append({"checkpoint": str(f), "model": ckpt["model_name"],
                     "accuracy": float((p.argmax(1).numpy() == y).mean())})
    mean = torch.stack(probs).mean(0)
    metrics = compute_metrics(y, mean.argmax(1).numpy(), num_classes)
    best = max(r["accuracy"] for r in rows)
    return {"dataset": dataset, "split": split, "members": rows, "best_member_accuracy": best,
            "gain_over_best_member": metrics["accuracy"] - best, **metrics}
