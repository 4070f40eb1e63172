"""Batched augmentation: one random affine transform per batch (rotation, shear, shift, scale), as tensor math.

No per-sample Python: random parameters are drawn as (B,) tensors on the batch's device and applied with a single
`affine_grid` + `grid_sample`. Input and output are float N×1×H×W in 0–1, background 0 (MNIST polarity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    rotate: float = 10.0  # degrees, ±
    shear: float = 10.0  # degrees, ±
    shift: float = 0.1  # fraction of the image side, ±
    scale: float = 0.0  # relative zoom, ±

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in (self.rotate, self.shear, self.shift, self.scale))


def _uniform(n: int, bound: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(n, device=like.device, generator=generator) * 2 - 1) * bound


def affine_matrices(n: int, cfg: AugmentConfig, like: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2, 3) matrices for `affine_grid`: rotation @ shear / scale, plus a shift in normalised coordinates."""
    angle = _uniform(n, math.radians(cfg.rotate), like, generator)
    shear = torch.tan(_uniform(n, math.radians(cfg.shear), like, generator))
    shift = _uniform(2 * n, 2 * cfg.shift, like, generator).view(n, 2)  # [-1, 1] spans the image: fraction f → 2f
    scale = 1 + _uniform(n, cfg.scale, like, generator)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.empty(n, 2, 3, device=like.device, dtype=torch.float32)
    # [[c, -s], [s, c]] @ [[1, k], [0, 1]]
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = cos * shear - sin
    theta[:, 1, 0] = sin
    theta[:, 1, 1] = sin * shear + cos
    theta[:, :, :2] /= scale.view(n, 1, 1)
    theta[:, :, 2] = shift
    return theta


def random_affine(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply an independent random affine transform to every image of the batch."""
    if not cfg.enabled:
        return x
    theta = affine_matrices(x.shape[0], cfg, x, generator).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
