"""The one checkpoint format, shared by the training and inference paths.

A checkpoint is a dict saved with torch.save and loaded only with `weights_only=True`:
  format, model_name, model_options, num_classes, model (state_dict), config (TrainConfig as dict),
  epoch, metrics — and, in a run's `last.pt`, the optimizer/scheduler/EMA/RNG state needed to resume.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import DigitrecError
from .fileio import save_torch
from .models import create

FORMAT = "digitrec-checkpoint-v1"


def save(path: str | os.PathLike, model: nn.Module, model_name: str, model_options: dict, num_classes: int,
         **extra: Any) -> None:
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    save_torch(path, {"format": FORMAT, "model_name": model_name, "model_options": dict(model_options),
                      "num_classes": num_classes, "model": state, **extra})


def load(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DigitrecError(f"{path}: checkpoint not found" if not path.exists() else f"{path}: not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DigitrecError(f"{path}: not a readable digitrec checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec checkpoint (no '{FORMAT}' marker)")
    return ckpt


def build_model(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """Rebuild the network a checkpoint describes, weights loaded strictly, in eval mode, on the CPU."""
    model = create(ckpt["model_name"], num_classes=ckpt["num_classes"], **ckpt.get("model_options", {}))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        raise DigitrecError(f"{path}: weights do not fit model {ckpt['model_name']!r} ({str(e).splitlines()[0]})") from None
    return model.eval()


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    ckpt = load(path)
    return build_model(ckpt, path), ckpt


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP / torch.compile / AveragedModel wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
