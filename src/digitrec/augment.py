"""Batched augmentation as tensor math: a random affine transform per image (rotation, shear, shift, scale), and
the "real world" extras — elastic distortion, stroke width, blur, contrast and noise.

No per-sample Python: random parameters are drawn as (B,) tensors on the batch's device and applied with one
`grid_sample` (geometry) and a few masked tensor ops (the rest). Input and output are float N×1×H×W in 0–1,
background 0 (MNIST polarity). `augment_batch(x, cfg, gen)` is what the training loop calls.
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
    # real-world extras, all off by default
    elastic: float = 0.0  # largest smooth displacement, in pixels
    stroke: float = 0.0  # probability of a thicker or thinner stroke
    blur: float = 0.0  # probability of a gaussian blur (sigma 0.5–1.2 px)
    contrast: float = 0.0  # ink intensity scaled by [1 - contrast, 1] and gamma in exp(±contrast)
    noise: float = 0.0  # gaussian noise, std drawn from [0, noise]

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in (self.rotate, self.shear, self.shift, self.scale))

    @property
    def extras(self) -> bool:
        return any(v > 0 for v in (self.elastic, self.stroke, self.blur, self.contrast, self.noise))

    @classmethod
    def from_config(cls, cfg) -> "AugmentConfig":
        """The augmentation a TrainConfig asks for (none at all when cfg.augment is false)."""
        if not cfg.augment:
            return cls(0, 0, 0, 0)
        names = [f for f in cls.__dataclass_fields__]
        return cls(**{n: getattr(cfg, n, 0.0) for n in names})


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


def _chance(n: int, p: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """(n, 1, 1, 1) boolean mask: True for a random subset of the batch, each with probability p."""
    return (torch.rand(n, device=like.device, generator=generator) < p).view(n, 1, 1, 1)


def _geometry(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Affine transform and elastic distortion, sampled together with one grid_sample."""
    n, _, h, w = x.shape
    theta = affine_matrices(n, cfg, x, generator).to(x.dtype)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    if cfg.elastic > 0:
        # smooth random field: 4×4 coarse noise, upsampled bicubically; per-image strength in [0, elastic] pixels
        coarse = torch.randn(n, 2, 4, 4, device=x.device, generator=generator, dtype=x.dtype)
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
        strength = torch.rand(n, 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype) * cfg.elastic
        grid = grid + field * strength * torch.tensor([2.0 / w, 2.0 / h], device=x.device, dtype=x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _stroke(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Thicker (3×3 dilation) or thinner (plus-shaped erosion) strokes for a random subset, blended by a random amount."""
    n = x.shape[0]
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    pad = F.pad(x, (1, 1, 1, 1))
    thin = torch.minimum(torch.minimum(x, torch.minimum(pad[..., :-2, 1:-1], pad[..., 2:, 1:-1])),
                         torch.minimum(pad[..., 1:-1, :-2], pad[..., 1:-1, 2:]))
    grow = _chance(n, 0.5, x, generator)
    amount = 0.5 + 0.5 * torch.rand(n, 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype)
    target = torch.where(grow, thick, thin)
    return torch.where(_chance(n, p, x, generator), x + amount * (target - x), x)


def _blur(x: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian blur with a per-image sigma for a random subset: one grouped convolution over the batch."""
    n, c, h, w = x.shape
    sigma = 0.5 + 0.7 * torch.rand(n, device=x.device, generator=generator, dtype=x.dtype)
    r = torch.arange(-2, 3, device=x.device, dtype=x.dtype)
    k1 = torch.exp(-(r.view(1, -1) ** 2) / (2 * sigma.view(-1, 1) ** 2))
    k1 = k1 / k1.sum(1, keepdim=True)
    kernel = (k1.view(n, 5, 1) * k1.view(n, 1, 5)).view(n, 1, 5, 5)
    blurred = F.conv2d(x.reshape(1, n * c, h, w), kernel.repeat_interleave(c, 0), padding=2, groups=n * c)
    return torch.where(_chance(n, p, x, generator), blurred.view(n, c, h, w), x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Everything `cfg` asks for, in the order a camera would see it: geometry, pen, optics, exposure, sensor."""
    if not cfg.extras:
        return random_affine(x, cfg, generator)  # the paper's augmentation alone (and its exact random stream)
    n = x.shape[0]
    x = _geometry(x, cfg, generator)
    if cfg.stroke > 0:
        x = _stroke(x, cfg.stroke, generator)
    if cfg.blur > 0:
        x = _blur(x, cfg.blur, generator)
    if cfg.contrast > 0:
        gain = 1 - cfg.contrast * torch.rand(n, 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype)
        gamma = torch.exp((torch.rand(n, 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype) * 2 - 1)
                          * cfg.contrast)
        x = gain * x.clamp(0, 1) ** gamma
    if cfg.noise > 0:
        std = cfg.noise * torch.rand(n, 1, 1, 1, device=x.device, generator=generator, dtype=x.dtype)
        x = x + std * torch.randn(x.shape, device=x.device, generator=generator, dtype=x.dtype)
    return x.clamp(0, 1)
