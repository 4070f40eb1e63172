"""Edge deployment: ONNX / TorchScript export and int8 static quantization (pruning: prune.py).

Exported interface (ONNX and TorchScript alike, the same as `Predictor.predict_proba`):
  input  `images`        float32 N×1×28×28, pixel values 0–1, MNIST polarity (white digit on black); N is dynamic
  output `probabilities` float32 N×num_classes, softmax already applied (rows sum to 1)
The model is exported in eval mode (dropout off, BatchNorm running statistics frozen), wrapped with its softmax.

Quantization: ONNX Runtime's `quantize_static`, QDQ format, per-channel symmetric int8 weights, uint8 activations,
calibrated on official TRAINING images (the test set stays untouched); format, granularity and types can be chosen. Why ONNX Runtime and not PyTorch's own
(torch.ao FX quantization): the int8 file then runs where the fp32 ONNX file runs, without torch, and
torch.ao.quantization's FX API is deprecated in torch 2.14 (it warns, pointing to torchao). benchmarks/edge.py
measures both side by side (accuracy, size, latency) so the choice can be checked.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

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
    from .predict import probabilities

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


QUANT_FORMATS = ("qdq", "qoperator")
# (activations, weights): the pairs ONNX Runtime's CPU kernels run; u8s8 is the one VNNI's vpdpbusd multiplies
QUANT_TYPES = (("uint8", "int8"), ("uint8", "uint8"), ("int8", "int8"))


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, calibration: np.ndarray,
                  calibrate_method: str = "minmax", quant_format: str = "qdq", per_channel: bool = True,
                  activations: str = "uint8", weights: str = "int8", reduce_range: bool = False) -> None:
    """Static int8, calibrated on `calibration`. Default: QDQ format, per-channel symmetric int8 weights, uint8
    activations. `quant_format="qoperator"` writes QLinearConv/QGemm nodes directly instead of Q/DQ pairs that ONNX
    Runtime fuses into them; `reduce_range` uses 7-bit weights (for CPUs without VNNI, whose 8-bit multiply-add can
    saturate). Softmax stays float: a uint8 probability (steps of 1/255) would create ties in the argmax."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if calibrate_method not in methods:
        raise DigitrecError(f"calibration method must be one of {', '.join(methods)}, got {calibrate_method!r}")
    if quant_format not in QUANT_FORMATS:
        raise DigitrecError(f"quantization format must be one of {', '.join(QUANT_FORMATS)}, got {quant_format!r}")
    if (activations, weights) not in QUANT_TYPES:
        pairs = ", ".join(f"{a}/{w}" for a, w in QUANT_TYPES)
        raise DigitrecError(f"activations/weights {activations}/{weights} is not supported; choose one of {pairs}")
    types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        # ONNX shape inference + ORT graph optimization (folds BN into conv); the symbolic pass trips on ReduceMax
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepped), str(quantized), _Calibration(calibration),
                        quant_format=QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator,
                        per_channel=per_channel, reduce_range=reduce_range, activation_type=types[activations],
                        weight_type=types[weights],
                        op_types_to_quantize=["Conv", "Gemm", "MatMul", "MaxPool", "Relu", "Reshape", "Flatten"],
                        calibrate_method=methods[calibrate_method],
                        extra_options={"WeightSymmetric": weights == "int8",
                                       "ActivationSymmetric": activations == "int8"})
        with atomic_path(out_path) as out:
            shutil.copyfile(quantized, out)


def file_size(path: str | os.PathLike) -> int:
    return Path(path).stat().st_size
