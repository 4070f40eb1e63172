"""Model registry: name → factory function. `create("paper-cnn", num_classes=10)`.

Factories take `num_classes` plus their own keyword options; checkpoints store the name and options,
so `create(name, **options)` rebuilds any saved model.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import DigitrecError
from .cnn import FastCNN, PaperCNN, SimpleCNN

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return deco


@register("paper-cnn")
def paper_cnn(num_classes: int = 10, dropout: float = 0.2, channels=(32, 64, 128, 256), hidden: int = 512) -> nn.Module:
    return PaperCNN(num_classes, dropout, channels, hidden)  # channels/hidden: set by structured pruning


@register("simple-cnn")
def simple_cnn(num_classes: int = 10, dropout: float = 0.2, channels=(32, 64), hidden: int = 128) -> nn.Module:
    return SimpleCNN(num_classes, dropout, channels, hidden)


@register("fast")
def fast(num_classes: int = 10, width: int = 32, dropout: float = 0.0, channels=None) -> nn.Module:
    return FastCNN(num_classes, width, dropout, channels)


def _input_size(value) -> int:
    from .resnet import INPUT_SIZES

    if value not in INPUT_SIZES:
        raise DigitrecError(f"input_size must be one of {', '.join(map(str, INPUT_SIZES))}, got {value!r}")
    return int(value)


@register("resnet18")
def resnet18(num_classes: int = 10, input_size: int = 64) -> nn.Module:
    from .resnet import ResNet18  # imported lazily: torchvision only when a ResNet is asked for

    return ResNet18(num_classes, _input_size(input_size))


@register("hybrid")
def hybrid(num_classes: int = 10, input_size: int = 64, dropout: float = 0.2) -> nn.Module:
    from .resnet import Hybrid

    return Hybrid(num_classes, _input_size(input_size), dropout)


def available() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, num_classes: int = 10, **options) -> nn.Module:
    if name not in _REGISTRY:
        raise DigitrecError(f"unknown model {name!r}; choose one of: {', '.join(available())}")
    try:
        return _REGISTRY[name](num_classes=num_classes, **options)
    except (TypeError, ValueError) as e:
        raise DigitrecError(f"model {name!r}: bad option ({e})") from None
