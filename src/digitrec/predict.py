"""Inference: batched forward passes over uint8 image tensors, and `Predictor` over a checkpoint.

The server and the CLI use `Predictor`; neither imports training code.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 N×28×28 (or N×1×28×28) → float N×1×28×28 in 0–1."""
    x = images_u8.float().div_(255)
    return x.unsqueeze(1) if x.dim() == 3 else x


@torch.no_grad()
def forward_in_batches(model: nn.Module, images: torch.Tensor, batch_size: int = 1024,
                       device: torch.device | str | None = None, autocast: bool = False) -> torch.Tensor:
    """Logits (float32, on CPU) for uint8 or float images, in batches."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        xb = images[i:i + batch_size].to(device, non_blocking=True)
        xb = to_float(xb) if xb.dtype == torch.uint8 else (xb.unsqueeze(1) if xb.dim() == 3 else xb)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast and device.type == "cuda"):
            out.append(model(xb).float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 0)


def tta_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 1024,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Test-time augmentation: logits averaged over the image and its four 1-pixel shifts (deterministic)."""
    x = to_float(images) if images.dtype == torch.uint8 else images
    views = [x] + [torch.roll(x, shifts=s, dims=d) for s in (-1, 1) for d in (2, 3)]
    return sum(forward_in_batches(model, v, batch_size, device) for v in views) / len(views)


def probabilities(model: nn.Module, images: torch.Tensor | np.ndarray, device: torch.device | str = "cpu",
                  batch_size: int = 1024) -> torch.Tensor:
    """Softmax probabilities (float32, CPU) of a network over uint8 or float images, in batches."""
    return torch.softmax(forward_in_batches(model, torch.as_tensor(images), batch_size, device), dim=1)


class Predictor:
    """Digit probabilities from a digitrec checkpoint; input: float N×1×28×28 (0–1, MNIST polarity) or uint8."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu") -> None:
        self.path = Path(path)
        self.model, self.checkpoint = checkpoint.load_model(path)
        self.device = torch.device(device)
        self.model.to(self.device).eval()  # once: switching modes per call walks every module (~ms on a CPU)

    @property
    def num_classes(self) -> int:
        return int(self.checkpoint["num_classes"])

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        x = torch.as_tensor(images)
        x = to_float(x) if x.dtype == torch.uint8 else (x.unsqueeze(1) if x.dim() == 3 else x.float())
        logits = [self.model(x[i:i + 256].to(self.device)).float().cpu() for i in range(0, len(x), 256)]
        return torch.softmax(torch.cat(logits), dim=1).numpy() if logits else np.zeros((0, self.num_classes), np.float32)

    def predict(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.predict_proba(images).argmax(axis=1)


def load_predictor(path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
    """A Predictor for a digitrec checkpoint (.pt) or an exported ONNX model (.onnx, run by ONNX Runtime).
    threads: CPU threads for the model (torch's setting is process-wide); None leaves the library's default."""
    if threads is not None and threads < 1:
        from .errors import DigitrecError

        raise DigitrecError(f"threads must be ≥ 1, got {threads}")
    if str(path).endswith(".onnx"):
        from .onnx_predictor import OnnxPredictor  # needs only onnxruntime, not torch training code

        return OnnxPredictor(path, threads)
    if threads is not None:
        torch.set_num_threads(threads)
    return Predictor(path, device)
