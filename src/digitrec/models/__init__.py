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
def paper_cnn(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
    return PaperCNN(num_classes, dropout)


@register("simple-cnn")
def simple_cnn(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
    return SimpleCNN(num_classes, dropout)


@register("fast")
def fast(num_classes: int = 10, width: int = 32, dropout: float = 0.0) -> nn.Module:
    return FastCNN(num_classes, width, dropout)


def available() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, num_classes: int = 10, **options) -> nn.Module:
    if name not in _REGISTRY:
        raise DigitrecError(f"unknown model {name!r}; choose one of: {', '.join(available())}")
    try:
        return _REGISTRY[name](num_classes=num_classes, **options)
    except TypeError as e:
        raise DigitrecError(f"model {name!r}: bad option ({e})") from None
