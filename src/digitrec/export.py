"""Edge deployment: ONNX / TorchScript export, int8 static quantization, pruning.

Exported interface (ONNX and TorchScript alike, the same as `Predictor.predict_proba`):
  input  `images`        float32 N×1×28×28, pixel values 0–1, MNIST polarity (white digit on black); N is dynamic
  output `probabilities` float32 N×num_classes, softmax already applied (rows sum to 1)
The model is exported in eval mode (dropout off, BatchNorm running statistics frozen), wrapped with its softmax.

Quantization: ONNX Runtime's `quantize_static`, QDQ format, per-channel symmetric int8 weights, uint8 activations,
calibrated on official TRAINING images (the test set stays untouched). Why ONNX Runtime and not PyTorch's own
(torch.ao FX quantization): the int8 file then runs where the fp32 ONNX file runs, without torch, and
torch.ao.quantization's FX API is deprecated in torch 2.14 (it warns, pointing to torchao). benchmarks/edge.py
measures both side by side (accuracy, size, latency) so the choice can be checked.

Pruning: global unstructured magnitude pruning (torch.nn.utils.prune, made permanent), or structured channel
pruning that rebuilds smaller Conv/BN/Linear layers; the new sizes go into model_options (`channels`, `hidden`)
so that checkpoint.build_model rebuilds the pruned network.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .errors import DigitrecError
from .fileio import atomic_path

INPUT_NAME, OUTPUT_NAME = "images", "probabilities"
OPSET = 20
CHECK_MAX_ABS_DIFF = 1e-4  # probabilities, ONNX Runtime vs PyTorch
CHECK_MIN_AGREEMENT = 0.999  # identical predictions


class WithSoftmax(nn.Module):
    """The network plus its softmax, so exported files answer like Predictor (probabilities)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


def _float_images(images: np.ndarray) -> torch.Tensor:
    """uint8 N×28×28 digits → the exported interface's float N×1×28×28 in 0–1."""
    from .predict import to_float

    return to_float(torch.as_tensor(np.asarray(images)))


def torch_proba(model: nn.Module, images: np.ndarray) -> np.ndarray:
    from .evaluate import probabilities

    return probabilities(model, np.asarray(images), "cpu", 512).numpy()


def test_images(dataset: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's official test images (uint8 N×28×28) and labels."""
    from .data import load

    data = load(dataset, data_dir)
    return data.test_images, data.test_labels.astype(np.int64)


def calibration_images(dataset: str, n: int, data_dir: str | None = None) -> np.ndarray:
    """A stratified subset of n official TRAINING images (never test images) for int8 calibration."""
    from .data import load
    from .data.splits import stratified_subset

    data = load(dataset, data_dir)
    return data.train_images[stratified_subset(data.train_labels, n)]


# --- export -------------------------------------------------------------------------------------------------

def check_agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """How closely two N×C probability arrays agree: max abs difference and share of identical predictions."""
    return {"n": int(len(reference)), "max_abs_diff": float(np.abs(reference - other).max()),
            "same_prediction": float((reference.argmax(1) == other.argmax(1)).mean())}


def _passes(check: dict[str, Any]) -> bool:
    return check["max_abs_diff"] <= CHECK_MAX_ABS_DIFF and check["same_prediction"] >= CHECK_MIN_AGREEMENT


def export_onnx(model: nn.Module, path: str | os.PathLike, images: np.ndarray,
                metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Write `model` (+ softmax) as ONNX with a dynamic batch axis; verify it against PyTorch on `images` (real
    digits) before the file appears. Returns the check. Raises DigitrecError (and writes nothing) if it fails."""
    import onnx

    from .onnx_predictor import OnnxPredictor

    wrapped = WithSoftmax(model.eval()).eval()
    example = _float_images(images[:2])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (deprecations in its own dependencies)
        raw = Path(tmp) / "model.onnx"
        program = torch.onnx.export(wrapped, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    optimize=True, verbose=False)
        program.save(str(raw))
        proto = onnx.load(str(raw))
        meta = {"digitrec.output": OUTPUT_NAME, "digitrec.input": "float32 N×1×28×28 in 0–1", **(metadata or {})}
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(proto)
        with atomic_path(path) as out:
            onnx.save(proto, str(out))
            check = check_agreement(torch_proba(model, images), OnnxPredictor(out).predict_proba(images))
            if not _passes(check):
                raise DigitrecError(f"ONNX export check failed: ONNX Runtime and PyTorch disagree on {check['n']} "
                                    f"test images (max |Δp| {check['max_abs_diff']:.2e}, same prediction "
                                    f"{check['same_prediction']:.2%}); nothing written")
    return check


def export_torchscript(model: nn.Module, path: str | os.PathLike, images: np.ndarray) -> dict[str, Any]:
    """Write `model` (+ softmax) as a traced TorchScript file, verified like export_onnx.

    TorchScript is deprecated upstream (torch.jit warns); ONNX is the recommended edge format."""
    from .predict import forward_in_batches

    wrapped = WithSoftmax(model.eval()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(wrapped, _float_images(images[:2]))
        with atomic_path(path) as out:
            traced.save(str(out))
            loaded = torch.jit.load(str(out), map_location="cpu")  # its output is probabilities already
            x = torch.as_tensor(np.asarray(images))
            check = check_agreement(torch_proba(model, images), forward_in_batches(loaded, x, 512, "cpu").numpy())
            if not _passes(check):
                raise DigitrecError(f"TorchScript export check failed ({check}); nothing written")
    return check


# --- int8 quantization (ONNX Runtime) ---------------------------------------------------------------------------

class _Calibration:
    """ONNX Runtime CalibrationDataReader over float images, in batches."""

    def __init__(self, images: np.ndarray, batch_size: int = 64) -> None:
        x = _float_images(images).numpy()
        self._batches = iter([{INPUT_NAME: x[i:i + batch_size]} for i in range(0, len(x), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: np.ndarray,
                  calibrate_method: str = "minmax") -> None:
    """Static int8: QDQ format, per-channel int8 weights (symmetric), uint8 activations calibrated on `calibration`.

    Softmax stays float: a uint8 probability (steps of 1/255) would create ties in the argmax."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if calibrate_method not in methods:
        raise DigitrecError(f"calibration method must be one of {', '.join(methods)}, got {calibrate_method!r}")
    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        # ONNX shape inference + ORT graph optimization (folds BN into conv); the symbolic pass trips on ReduceMax
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepped), str(quantized), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv", "Gemm", "MatMul", "MaxPool", "Relu", "Reshape", "Flatten"],
                        calibrate_method=methods[calibrate_method],
                        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False})
        with atomic_path(out_path) as out:
            shutil.copyfile(quantized, out)


# --- pruning ----------------------------------------------------------------------------------------------------

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


def file_size(path: str | os.PathLike) -> int:
    return Path(path).stat().st_size


def prune_run(source: str | os.PathLike, out_dir: str | os.PathLike, amount: float, structured: bool = False,
              finetune_epochs: int = 1, lr: float | None = None, threads: int | None = None, device: str = "cpu",
              data_dir: str | None = None, limit: int | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Prune a checkpoint, fine-tune it on its own training split (train.train, test set untouched until the final
    evaluation), write RUN/{model.pt, metrics.json, ...}. Returns the metrics.

    Fine-tuning reuses the source's config (data, split, augmentation) with `finetune_epochs` epochs of cosine decay
    from `lr` (default: a tenth of the source's learning rate) on the source's training split, or on a stratified
    `limit` of it; unstructured runs keep their zeros (keep_zeros)."""
    import dataclasses

    from . import checkpoint
    from .config import FIELDS, TrainConfig
    from .evaluate import evaluate_checkpoint
    from .fileio import write_json
    from .train import train  # here, not at the top: export and quantize need no training machinery

    if not 0 < amount < 1:
        raise DigitrecError(f"--amount must be in (0, 1), got {amount}")
    if finetune_epochs < 0:
        raise DigitrecError(f"--finetune-epochs must be ≥ 0, got {finetune_epochs}")
    if limit is not None and limit < 1:
        raise DigitrecError(f"--limit must be a positive number of training images, got {limit}")
    if threads is not None and threads < 1:
        raise DigitrecError(f"--threads must be ≥ 1, got {threads}")
    if lr is not None and lr <= 0:
        raise DigitrecError(f"--lr must be > 0, got {lr}")
    out = Path(out_dir)
    if (out / "model.pt").exists():
        raise DigitrecError(f"{out} already holds a run (model.pt); choose another --out")
    model, ckpt = checkpoint.load_model(source)
    if not isinstance(ckpt.get("config"), dict):
        raise DigitrecError(f"{source}: checkpoint has no training config to fine-tune with")
    base = {k: v for k, v in ckpt["config"].items() if k in FIELDS}
    name, num_classes = ckpt["model_name"], int(ckpt["num_classes"])
    dataset, split = ckpt.get("dataset", base.get("dataset", "mnist")), ckpt.get("split", base.get("split", "paper"))
    if threads:
        torch.set_num_threads(threads)
    before = {"params": count_params(model), "sparsity": sparsity(model)}

    if structured:
        pruned, options = prune_structured(model, name, ckpt.get("model_options", {}), num_classes, amount)
    else:
        pruned, options = prune_unstructured(model, amount), dict(ckpt.get("model_options", {}))
    meta = {k: ckpt[k] for k in ("config", "dataset", "split", "sizes") if k in ckpt}
    out.mkdir(parents=True, exist_ok=True)
    # the pruned, not yet fine-tuned network: the fine-tune's starting point (--init-from), kept for the record
    checkpoint.save(out / "pruned.pt", pruned, name, options, num_classes, epoch=0, **meta)
    kw = {"data_dir": data_dir} if data_dir else {}
    ft = {**kw, **({"limit": limit} if limit else {})}
    before_ft = evaluate_checkpoint(out / "pruned.pt", dataset, split, **kw)["accuracy"]
    log(f"pruned {name} ({'structured' if structured else 'unstructured'}, amount {amount}): params "
        f"{before['params']:,} → {count_params(pruned):,}, sparsity {sparsity(pruned):.1%}, "
        f"test accuracy before fine-tuning {before_ft:.2%}")

    if finetune_epochs > 0:
        cfg = TrainConfig(**{**base, "model_options": options, "epochs": finetune_epochs,
                             "lr": lr or base.get("lr", 1e-3) / 10, "schedule": "cosine", "warmup": 0.0,
                             "init_from": str(out / "pruned.pt"), "device": device, "compile": False,
                             "threads": threads or base.get("threads"), **ft})
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
        "file_bytes": file_size(out / "model.pt"),
    }
    write_json(out / "metrics.json", metrics)
    return metrics
