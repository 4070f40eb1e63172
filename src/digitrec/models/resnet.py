"""ResNet-18 for 28×28 grayscale digits, and the paper's hybrid: its CNN and a ResNet-18 side by side.

The paper's model is "multiple convolutional layers followed by a Transfer Learning mechanism using ResNet-18
for feature extraction". Both networks here keep torchvision's ResNet-18 intact (same module and parameter
names, so torchvision / ImageNet state_dicts load strictly) with two changes for digits:

- grayscale: conv1 takes 1 channel. Pretrained RGB filters are folded into one by summing over the colour
  axis, W_gray = W[:, 0] + W[:, 1] + W[:, 2] (see `adapt_conv1`): exactly what the RGB filter computes on
  a gray image fed as R = G = B (without ImageNet's per-channel mean/std normalisation; the BatchNorm after
  conv1 re-centres, and fine-tuning adapts the rest).
- input size (model option `input_size`):
    28       native resolution with a digit-sized stem: 3×3 stride-1 conv1, no max-pool (28→28→14→7→4).
             A pretrained 7×7 conv1 cannot be reused in a 3×3 stem, so conv1 stays freshly initialised.
    64/112/224  bilinear upsampling inside forward(), then torchvision's own 7×7/2 stem + 3×3/2 max-pool,
             so every pretrained weight, conv1 included, is used.
  Cost per image (forward): ≈0.56 GMAC at 28, ≈0.15 at 64, ≈0.56 at 112, ≈1.8 at 224 (the stem divides
  the resolution by 4 before layer1).
  The default is 64: every pretrained weight fits (conv1 included), and it is the cheapest (3.7× fewer
  operations than 28, whose layer1 runs at 28×28) — which matters on a CPU.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18 as tv_resnet18

from .cnn import PaperCNN

INPUT_SIZES = (28, 64, 112, 224)


def adapt_conv1(weight: torch.Tensor) -> torch.Tensor:
    """RGB conv1 filters (64×3×k×k) → grayscale (64×1×k×k): the sum over the colour channels."""
    return weight.sum(dim=1, keepdim=True)


class ResNet18Backbone(nn.Module):
    """torchvision's resnet18 without its classifier: N×1×28×28 in 0–1 → N×512 pooled features.

    The torchvision network lives in `self.net` (its `fc` is an Identity), so `net.state_dict()` has exactly
    torchvision's key names minus `fc.*`.
    """

    def __init__(self, input_size: int = 64) -> None:
        super().__init__()
        if input_size not in INPUT_SIZES:
            raise ValueError(f"input_size must be one of {INPUT_SIZES}, got {input_size}")
        self.input_size = input_size
        net = tv_resnet18(weights=None)
        if input_size == 28:
            net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:
            net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Identity()
        self.net = net
        self.feature_dim = 512

    @property
    def native_stem(self) -> bool:
        return self.input_size == 28

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self.net(x)


class ResNet18(nn.Module):
    """ResNet-18 classifier for digits: `backbone` (transferable) + `fc` (the task's head)."""

    def __init__(self, num_classes: int = 10, input_size: int = 64) -> None:
        super().__init__()
        self.backbone = ResNet18Backbone(input_size)
        self.fc = nn.Linear(self.backbone.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone(x))


class Hybrid(nn.Module):
    """The paper's "CNN + Transfer Learning" as two branches on the same digit, fused before the classifier.

        digit ─► PaperCNN.features (its 4 convs, 256×4×4) ─► global average pool ─► 256 ─┐
              └► ResNet-18 backbone (pretrainable, see module doc)        ─► 512 ─────────┴► concat 768
              ─► FC 512 ─► ReLU ─► FC num_classes

    Why side by side rather than stacked: the paper's CNN ends at 4×4 — too small to feed ResNet-18 — and a
    stacked design could not reuse pretrained ResNet weights from its first layer. Average pooling (rather than
    flattening the CNN's 4096 values) keeps the two branches' contributions comparable in size. The head is
    the paper's FC 512 + ReLU + softmax output (softmax in the loss); `dropout` is the paper's, in CNN layer 1.
    `backbone` is the ResNet branch only: it is what `--backbone-weights` loads and `--freeze backbone`
    freezes; the CNN branch always trains.
    """

    def __init__(self, num_classes: int = 10, input_size: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.cnn = PaperCNN(num_classes, dropout).features
        self.backbone = ResNet18Backbone(input_size)
        self.head = nn.Sequential(
            nn.Linear(256 + self.backbone.feature_dim, 512), nn.ReLU(inplace=True), nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cnn = F.adaptive_avg_pool2d(self.cnn(x), 1).flatten(1)
        return self.head(torch.cat([cnn, self.backbone(x)], dim=1))
