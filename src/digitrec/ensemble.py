"""Ensembles: the average of several checkpoints' softmax probabilities, scored on a test split.

    ensemble(["runs/seed0", "runs/seed1/model.pt", ...]) → metrics (compute_metrics) + each member's accuracy

Each member predicts the way its own run was evaluated: with test-time augmentation when it was trained with
`tta = true` (unless `tta` says otherwise for all members). A run's model.pt already holds its EMA weights when it
kept an EMA. Averaging probabilities weighs every member alike, so an ensemble gains only over members of similar
strength whose mistakes differ: a few much weaker members outvote a strong one. The result says how often the
members disagree and how many images at least one of them gets right (the most any vote could reach).
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


def trained_with_tta(ckpt: dict[str, Any]) -> bool:
    """Whether the run that wrote the checkpoint evaluates with test-time augmentation (its config's `tta`)."""
    cfg = ckpt.get("config")
    return bool(cfg.get("tta", False)) if isinstance(cfg, dict) else False


def member_probabilities(model: torch.nn.Module, images: torch.Tensor, device: torch.device,
                         tta: bool) -> torch.Tensor:
    """Softmax probabilities (CPU) of one member, over the image and its 1-pixel shifts when `tta`."""
    if not tta:
        return probabilities(model, images, device)
    from .predict import tta_logits

    return torch.softmax(tta_logits(model.to(device), images, 1024, device), dim=1)


def agreement(preds: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """How diverse the members are: images on which they disagree, and the share some member gets right."""
    disagree = (preds != preds[:1]).any(0)
    return {"members_disagree": int(disagree.sum()), "oracle_accuracy": float((preds == y).any(0).mean())}


def ensemble(paths: Sequence[str | os.PathLike], dataset: str | None = None, split: str | None = None, *,
             data_dir: str | None = None, device: torch.device | str = "cpu",
             tta: bool | None = None) -> dict[str, Any]:
    """Test metrics of the members' mean probabilities; `tta` None: each member as its run was evaluated."""
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
        member_tta = trained_with_tta(ckpt) if tta is None else tta
        p = member_probabilities(model.to(device), x, device, member_tta)
        probs.append(p)
        rows.append({"checkpoint": str(f), "model": ckpt["model_name"], "tta": member_tta,
                     "accuracy": float((p.argmax(1).numpy() == y).mean())})
    mean = torch.stack(probs).mean(0)
    metrics = compute_metrics(y, mean.argmax(1).numpy(), num_classes)
    best = max(r["accuracy"] for r in rows)
    return {"dataset": dataset, "split": split, "members": rows, "best_member_accuracy": best,
            "gain_over_best_member": metrics["accuracy"] - best,
            **agreement(np.stack([p.argmax(1).numpy() for p in probs]), y), **metrics}
