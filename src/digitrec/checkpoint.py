"""The one checkpoint format, shared by the training and inference paths.

A checkpoint is a dict saved with torch.save and loaded only with `weights_only=True`:
  format, model_name, model_options, num_classes, model (state_dict), config (TrainConfig as dict),
  epoch, metrics — and, in a run's `last.pt`, the optimizer/scheduler/EMA/RNG state needed to resume.
`load` checks all of it (types, finite weights) so that a damaged or foreign file is one clear error.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import DigitrecError
from .fileio import save_torch
from .models import check_options, create

FORMAT = "digitrec-checkpoint-v1"


def save(path: str | os.PathLike, model: nn.Module, model_name: str, model_options: dict, num_classes: int,
         **extra: Any) -> None:
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    save_torch(path, {"format": FORMAT, "model_name": model_name, "model_options": dict(model_options),
                      "num_classes": num_classes, "model": state, **extra})


def _unreadable(path: Path, e: BaseException) -> DigitrecError:
    """One line on why torch could not read the file, without torch's advice to load it unsafely."""
    text = str(e)
    if isinstance(e, pickle.UnpicklingError):
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            return DigitrecError(f"{path}: not a digitrec checkpoint: it holds Python objects ({found.group(1)}) that "
                                 "a safe (weights-only) load refuses")
        return DigitrecError(f"{path}: not a readable digitrec checkpoint (not a PyTorch file, or a damaged one)")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    return DigitrecError(f"{path}: not a readable digitrec checkpoint ({(lines or [type(e).__name__])[0][:200]})")


def load(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DigitrecError(f"{path}: checkpoint not found" if not path.exists() else f"{path}: not a file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as e:
        raise _unreadable(path, e) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec checkpoint (no '{FORMAT}' marker)")
    check(ckpt, path)
    return ckpt


def check(ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    """The fields every reader relies on, with the right types, and weights that are all finite numbers."""
    for key, kind in (("model_name", str), ("num_classes", int), ("model", dict)):
        if not isinstance(ckpt.get(key), kind):
            what = "missing" if key not in ckpt else f"a {type(ckpt[key]).__name__}, not a {kind.__name__}"
            raise DigitrecError(f"{path}: damaged digitrec checkpoint ({key} is {what})")
    options = ckpt.setdefault("model_options", {})
    try:
        check_options(ckpt["model_name"], ckpt["num_classes"], options)
    except DigitrecError as e:
        raise DigitrecError(f"{path}: damaged digitrec checkpoint ({e})") from None
    if "config" in ckpt and not isinstance(ckpt["config"], dict):
        raise DigitrecError(f"{path}: damaged digitrec checkpoint (config is a {type(ckpt['config']).__name__})")
    for name, t in ckpt["model"].items():
        if not torch.is_tensor(t):
            raise DigitrecError(f"{path}: damaged digitrec checkpoint (weight {name!r} is not a tensor)")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise DigitrecError(f"{path}: weight {name!r} holds NaN or infinite values (the run that wrote it "
                                "diverged); it cannot predict anything")


def build_model(ckpt: dict[str, Any], path: str | os.PathLike = "checkpoint") -> nn.Module:
    """Rebuild the network a checkpoint describes, weights loaded strictly, in eval mode, on the CPU."""
    model = create(ckpt["model_name"], num_classes=ckpt["num_classes"], **ckpt.get("model_options", {}))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = (lines[1:] or lines or ["?"])[0][:200]  # line 0 only says "Error(s) in loading state_dict"
        raise DigitrecError(f"{path}: weights do not fit model {ckpt['model_name']!r} ({detail})") from None
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
