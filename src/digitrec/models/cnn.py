"""The paper's CNN, the 'Simple CNN' baseline of its Table 1, and digitrec's fast network.

All models take N×1×28×28 float input in 0–1 and return logits; softmax is applied by the loss
(cross-entropy on logits is softmax + categorical cross-entropy, computed stably) and by predictors.
"""
from __future__ import annotations

import torch
from torch import nn


class PaperCNN(nn.Module):
    """The stack of the paper's Section II-B, layer by layer.

    Interpretations (the paper lists layers, not code):
    - 3×3 convolutions with 'valid' padding and stride 1 (Keras' Conv2D default, which the layer list reads like):
      28 → 26 → 24 → pool 12 → 10 → 8 → pool 4, so the flattened feature is 4·4·256 = 4096.
    - Layer 1 order as listed: Conv → ReLU → BatchNorm → Dropout(0.2). BN and Dropout appear only in layer 1,
      because only layer 1 lists them.
    - Max-pooling 2×2 (stride 2) after conv 2 and conv 4, as listed.
    - FC 512 with ReLU, then the 10-way output layer; its softmax lives in the loss / predictor.
    """

    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True), nn.BatchNorm2d(32), nn.Dropout(dropout),
            nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3), nn.ReLU(inplace=True),
            nn.Conv2d(128, 256, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.feature_dim = 256 * 4 * 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(self.feature_dim, 512), nn.ReLU(inplace=True), nn.Linear(512, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SimpleCNN(nn.Module):
    """Table 1's 'Simple CNN': two conv/pool stages and a small dense head (the classic Keras MNIST example)."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 26 → 13
            nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 11 → 5
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 5 * 5, 128), nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())


class FastCNN(nn.Module):
    """digitrec's network for time-to-accuracy: pool early so most compute runs at 14×14 and 7×7.

    conv(w) 28² → pool → conv(2w) 14² → pool → conv(4w) 7² → pool → conv(4w) 3² → global max → linear.
    BN everywhere lets it train at high learning rates; max-pooling early keeps CPU FLOPs small.
    """

    def __init__(self, num_classes: int = 10, width: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _conv_bn(1, w), nn.MaxPool2d(2),
            _conv_bn(w, 2 * w), nn.MaxPool2d(2),
            _conv_bn(2 * w, 4 * w), nn.MaxPool2d(2),
            _conv_bn(4 * w, 4 * w),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
