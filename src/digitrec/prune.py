"""Pruning: global unstructured magnitude pruning or structured channel pruning, then a short fine-tune.

- unstructured: torch.nn.utils.prune's global L1 pruning of every conv/linear weight, made permanent (plain zeros);
  `keep_zeros` keeps the pruned weights at zero while fine-tuning.
- structured: the least important conv channels and hidden units are removed and smaller Conv/BN/Linear layers
  rebuilt; the new sizes go into model_options (`channels`, `hidden`) so that checkpoint.build_model rebuilds the
  pruned network.
`prune_run` prunes a checkpoint and fine-tunes it on its own training split through train.train.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import checkpoint
from .errors import DigitrecError
from .fileio import atomic_path, write_json


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The weights magnitude pruning acts on: every Conv2d and Linear weight (not biases, not BatchNorm)."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def sparsity(model: nn.Module) -> float:
    """Share of exactly-zero values among the prunable weights."""
    weights = [getattr(m, name) for m, name in prunable(model)]
    return float(sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def prune_unstructured(model: nn.Module, amount: float) -> nn.Module:
    """Global L1 (magnitude) pruning of `amount` of all conv/linear weights, made permanent (plain zeros)."""
    from torch.nn.utils import prune

    params = prunable(model)
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for module, name in params:
        prune.remove(module, name)  # weight_orig × mask → a plain weight again, so the state_dict loads anywhere
    return model


def keep_zeros(model: nn.Module) -> None:
    """Zero the gradient of every weight that is exactly 0 now, so fine-tuning keeps the pruned weights at 0.

    With zero gradients from the first step, Adam/AdamW/SGD-momentum updates and weight decay are zero too."""
    for module, name in prunable(model):
        w = getattr(module, name)
        mask = (w != 0).to(w.dtype)
        w.register_hook(lambda grad, mask=mask: grad * mask)


def _channel_scale(layers: list[nn.Module], i: int) -> torch.Tensor | None:
    """|γ/σ| of the BatchNorm that normalizes conv i's channels (before the next conv/linear), if any."""
    for layer in layers[i + 1:]:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            return None
        if isinstance(layer, nn.BatchNorm2d):
            return (layer.weight / torch.sqrt(layer.running_var + layer.eps)).abs()
    return None


@torch.no_grad()
def prune_structured(model: nn.Module, model_name: str, options: dict[str, Any], num_classes: int,
                     amount: float) -> tuple[nn.Module, dict[str, Any]]:
    """Remove `amount` of the channels of every conv (and of the hidden units of every hidden linear layer),
    least important first; returns a smaller network of the same family and its model options.

    Importance of a conv channel: L1 norm of its filter × |γ/σ| of the BatchNorm on that channel, if there is one
    (the effective size of the channel after normalization; a ReLU between them does not change it, being
    positively homogeneous). Of a hidden unit: L1 norm of its incoming weights. The output layer is kept whole.
    """
    from .models import create

    layers = [m for m in model.modules() if not list(m.children())]
    keep: dict[int, torch.Tensor] = {}
    for i, layer in enumerate(layers):
        is_hidden_linear = isinstance(layer, nn.Linear) and layer.out_features != num_classes
        if isinstance(layer, nn.Conv2d) or is_hidden_linear:
            score = layer.weight.abs().flatten(1).sum(1)
            scale = _channel_scale(layers, i) if isinstance(layer, nn.Conv2d) else None
            if scale is not None:
                score = score * scale
            n_keep = max(1, round(len(score) * (1 - amount)))
            keep[i] = score.topk(n_keep).indices.sort().values
    convs = [len(keep[i]) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    hidden = [len(keep[i]) for i, m in enumerate(layers) if isinstance(m, nn.Linear) and i in keep]
    new_options = {**options, "channels": convs, **({"hidden": hidden[0]} if hidden else {})}
    small = create(model_name, num_classes=num_classes, **new_options).eval()
    small_layers = [m for m in small.modules() if not list(m.children())]
    if [type(m) for m in small_layers] != [type(m) for m in layers] or len(hidden) > 1:
        raise DigitrecError(f"structured pruning does not know how to shrink model {model_name!r}")

    prev, prev_full = torch.arange(1), 1  # kept / original channels of the tensor flowing in (the image: 1)
    for i, (old, new) in enumerate(zip(layers, small_layers)):
        if isinstance(old, (nn.Conv2d, nn.Linear)):
            rows = keep.get(i, torch.arange(old.weight.shape[0]))
            cols = prev
            if isinstance(old, nn.Linear) and old.in_features != prev_full:  # after a flatten of C×H×W:
                per_channel = old.in_features // prev_full  # channel c is a block of H·W columns
                cols = (prev[:, None] * per_channel + torch.arange(per_channel)).flatten()
            new.weight.copy_(old.weight[rows][:, cols])
            if old.bias is not None:
                new.bias.copy_(old.bias[rows])
            prev, prev_full = rows, old.weight.shape[0]
        elif isinstance(old, nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(new, name).copy_(getattr(old, name)[prev])
            new.num_batches_tracked.copy_(old.num_batches_tracked)
    return small, new_options


def _check_args(amount: float, finetune_epochs: int, lr: float | None, threads: int | None,
                limit: int | None) -> None:
    checks = [(0 < amount < 1, f"--amount must be in (0, 1), got {amount}"),
              (finetune_epochs >= 0, f"--finetune-epochs must be ≥ 0, got {finetune_epochs}"),
              (limit is None or limit >= 1, f"--limit must be a positive number of training images, got {limit}"),
              (threads is None or threads >= 1, f"--threads must be ≥ 1, got {threads}"),
              (lr is None or lr > 0, f"--lr must be > 0, got {lr}")]
    for ok, message in checks:
        if not ok:
            raise DigitrecError(message)


def _finetune_config(ckpt: dict[str, Any], source, options: dict[str, Any], init_from: Path, epochs: int,
                     lr: float | None, threads: int | None, device: str, data_dir: str | None, limit: int | None):
    """The source's own recipe (data, split, augmentation), `epochs` of cosine decay from `lr` (default: a tenth of
    the source's learning rate), starting from the pruned weights."""
    from .config import from_dict

    base = from_dict(ckpt.get("config"), str(source))
    changes = {"model_options": options, "epochs": epochs, "lr": lr or base.lr / 10, "schedule": "cosine",
               "warmup": 0.0, "init_from": str(init_from), "device": device, "compile": False,
               "threads": threads or base.threads, "unfreeze_epoch": None, "backbone_weights": "none"}
    changes.update({k: v for k, v in (("data_dir", data_dir), ("limit", limit)) if v})
    return dataclasses.replace(base, **changes).validate()


def prune_run(source: str | os.PathLike, out_dir: str | os.PathLike, amount: float, structured: bool = False,
              finetune_epochs: int = 1, lr: float | None = None, threads: int | None = None, device: str = "cpu",
              data_dir: str | None = None, limit: int | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Prune a checkpoint, fine-tune it on its own training split (the test set untouched until the final
    evaluation), write RUN/{pruned.pt, model.pt, metrics.json, ...}. Returns the metrics (with a "pruning" part)."""
    from .evaluate import evaluate_checkpoint
    from .train import check_folder, train

    _check_args(amount, finetune_epochs, lr, threads, limit)
    out = Path(out_dir)
    check_folder(out, resume=False)  # a file, or a folder holding a run (the source's own, say): refused
    model, ckpt = checkpoint.load_model(source)
    name, num_classes = ckpt["model_name"], int(ckpt["num_classes"])
    if finetune_epochs > 0:  # the recipe is checked before anything is written
        _finetune_config(ckpt, source, {}, out / "pruned.pt", finetune_epochs, lr, threads, device, data_dir, limit)
    dataset, split = ckpt.get("dataset", "mnist"), ckpt.get("split", "paper")
    if threads:
        torch.set_num_threads(threads)
    before = {"params": count_params(model), "sparsity": sparsity(model)}
    if structured:
        pruned, options = prune_structured(model, name, ckpt.get("model_options", {}), num_classes, amount)
    else:
        pruned, options = prune_unstructured(model, amount), dict(ckpt.get("model_options", {}))
    # the pruned, not yet fine-tuned network: the fine-tune's starting point (--init-from), kept for the record
    meta = {k: ckpt[k] for k in ("config", "dataset", "split", "sizes") if k in ckpt}
    checkpoint.save(out / "pruned.pt", pruned, name, options, num_classes, epoch=0, **meta)
    kw = {"data_dir": data_dir} if data_dir else {}
    before_ft = evaluate_checkpoint(out / "pruned.pt", dataset, split, **kw)["accuracy"]
    log(f"pruned {name} ({'structured' if structured else 'unstructured'}, amount {amount}): params "
        f"{before['params']:,} → {count_params(pruned):,}, sparsity {sparsity(pruned):.1%}, "
        f"test accuracy before fine-tuning {before_ft:.2%}")
    if finetune_epochs > 0:
        cfg = _finetune_config(ckpt, source, options, out / "pruned.pt", finetune_epochs, lr, threads, device,
                               data_dir, limit)
        metrics = train(cfg, out, progress=progress, log=log, setup=None if structured else keep_zeros)
    else:  # no fine-tune: the pruned network is the result
        with atomic_path(out / "model.pt") as tmp:
            shutil.copyfile(out / "pruned.pt", tmp)
        metrics = evaluate_checkpoint(out / "model.pt", dataset, split, **kw)
    final, _ = checkpoint.load_model(out / "model.pt")
    metrics["pruning"] = {
        "source": str(source), "method": "structured-channels" if structured else "global-unstructured-l1",
        "amount": amount, "finetune_epochs": finetune_epochs, "model_options": options,
        "params_before": before["params"], "params_after": count_params(final),
        "sparsity_before": before["sparsity"], "sparsity_after": sparsity(final),
        "accuracy_before_finetune": before_ft, "accuracy_after_finetune": metrics["accuracy"],
        "file_bytes": (out / "model.pt").stat().st_size}
    write_json(out / "metrics.json", metrics)
    return metrics
