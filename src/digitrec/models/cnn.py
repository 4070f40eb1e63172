"""The paper's CNN, the 'Simple CNN' baseline of its Table 1, and digitrec's fast network.

All models take N×1×28×28 float input in 0–1 and return logits; softmax is applied by the loss
(cross-entropy on logits is softmax + categorical cross-entropy, computed stably) and by predictors.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _channels(channels: Sequence[int], n: int) -> list[int]:
    """Per-conv output channels (a model option, set by structured pruning): n positive integers."""
    values = list(channels)
    if len(values) != n or not all(isinstance(c, int) and c >= 1 for c in values):
        raise ValueError(f"channels must be {n} positive integers, got {values!r}")
    return values


def keras_init(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases: the Keras defaults the paper's layer list implies.

    Measured (paper recipe, 94 steps on 6,000 MNIST images): 93.7 % test accuracy vs 91.8 % with PyTorch's default.
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class PaperCNN(nn.Module):
    """The stack of the paper's Section II-B, layer by layer.

    Interpretations (the paper lists layers, not code):
    - 3×3 convolutions with 'valid' padding and stride 1 (Keras' Conv2D default, which the layer list reads like):
      28 → 26 → 24 → pool 12 → 10 → 8 → pool 4, so the flattened feature is 4·4·256 = 4096.
    - Layer 1 order as listed: Conv → ReLU → BatchNorm → Dropout(0.2). BN and Dropout appear only in layer 1,
      because only layer 1 lists them.
    - Max-pooling 2×2 (stride 2) after conv 2 and conv 4, as listed.
    - FC 512 with ReLU, then the 10-way output layer; its softmax lives in the loss / predictor.
    - Keras' default initialisation (Glorot-uniform weights, zero biases), see `keras_init`.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.2, channels: Sequence[int] = (32, 64, 128, 256),
                 hidden: int = 512) -> None:
        super().__init__()
        c1, c2, c3, c4 = _channels(channels, 4)  # other than the paper's only in structurally pruned models
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3), nn.ReLU(inplace=True), nn.BatchNorm2d(c1), nn.Dropout(dropout),
            nn.Conv2d(c1, c2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(c2, c3, 3), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.feature_dim = c4 * 4 * 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(self.feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )
        self.apply(keras_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """Table 1's 'Simple CNN': two conv/pool stages and a small dense head (the classic Keras MNIST example)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.2, channels: Sequence[int] = (32, 64),
                 hidden: int = 128) -> None:
        super().__init__()
        c1, c2 = _channels(channels, 2)
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 26 → 13
            nn.Conv2d(c1, c2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 11 → 5
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(c2 * 5 * 5, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        self.apply(keras_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _block(cin: int, cout: int, pool: bool, stride: int = 1, order: str = "conv-pool-bn") -> nn.Sequential:
    # conv-pool-bn: pool before BN and ReLU: the same function for ReLU (max-pool commutes with monotone maps) up to
    # BN's sign, with 4× less elementwise work, which dominates on CPU at these widths (measured 2–3× faster
    # training). conv-bn-pool: the usual order, in which BN folds into the convolution when exporting, so an int8
    # graph runs conv → pool → conv in int8 throughout (after a pool, BN stays a float op between two quantized ones).
    conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
    pooling = nn.MaxPool2d(2) if pool else nn.Identity()
    if order == "conv-bn-pool":
        return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True), pooling)
    return nn.Sequential(conv, pooling, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


STEMS = ("pool", "stride")
ORDERS = ("conv-pool-bn", "conv-bn-pool")


class FastCNN(nn.Module):
    """digitrec's network for time-to-accuracy: pool early so most compute runs at 14×14 and 7×7.

    conv(w) 28² → pool → conv(2w) 14² → pool → conv(4w) 7² → pool → conv(4w) 3² → global max → linear.
    Each block is conv → max-pool → BatchNorm → ReLU. BN everywhere lets it train at high learning rates;
    pooling right after each convolution keeps CPU work small. Train it channels_last (the fast preset does).
    `stem="stride"` replaces the first conv + pool by one stride-2 conv: 4× less work in the first layer and no
    pooling at 28², the costliest elementwise step of a training step on CPU (the speedrun preset's network).
    `order="conv-bn-pool"` puts BatchNorm before the pooling (see `_block`): for int8 export.
    """

    def __init__(self, num_classes: int = 10, width: int = 32, dropout: float = 0.0,
                 channels: Sequence[int] | None = None, stem: str = "pool", order: str = "conv-pool-bn") -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
        w = width
        c1, c2, c3, c4 = _channels(channels or (w, 2 * w, 4 * w, 4 * w), 4)  # explicit: structurally pruned
        first = _block(1, c1, True, 1, order) if stem == "pool" else _block(1, c1, False, 2, order)
        self.net = nn.Sequential(
            first, _block(c1, c2, True, 1, order), _block(c2, c3, True, 1, order), _block(c3, c4, False, 1, order),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c4, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DeepCNN(nn.Module):
    """The fast network's deeper sibling, for accuracy: two convolutions at 14×14 and at 7×7 instead of one.

    conv(w) 28² → pool → conv(2w), conv(2w) 14² → pool → conv(4w), conv(4w) 7² → pool → conv(4w) 3² → global max
    → linear. Blocks as in FastCNN (conv → [max-pool] → BatchNorm → ReLU); about 1.6× its training cost at equal width.
    """

    def __init__(self, num_classes: int = 10, width: int = 24, dropout: float = 0.0) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _block(1, w, True),
            _block(w, 2 * w, False), _block(2 * w, 2 * w, True),
            _block(2 * w, 4 * w, False), _block(4 * w, 4 * w, True),
            _block(4 * w, 4 * w, False),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
