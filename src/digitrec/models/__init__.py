"""Model registry: name → factory function. `create("paper-cnn", num_classes=10)`.

Factories take `num_classes` plus their own keyword options; checkpoints store the name and options,
so `create(name, **options)` rebuilds any saved model. Options come from users (flags, presets) and from
checkpoint files, so `check_options` bounds them before anything is allocated: each value is checked against the
factory's annotations, and the network is first built on PyTorch's "meta" device (shapes only, no memory, no random
draws) to count its parameters.
"""
from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import DigitrecError
from .cnn import DeepCNN, FastCNN, PaperCNN, SimpleCNN

MAX_PARAMS = 100_000_000  # 9× ResNet-18; a width of 200,000 would be ~10^13 (terabytes before the first step)
MAX_CLASSES = 1024
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        return fn

    return deco


@register("paper-cnn")
def paper_cnn(num_classes: int = 10, dropout: float = 0.2, channels: Sequence[int] = (32, 64, 128, 256),
              hidden: int = 512) -> nn.Module:
    return PaperCNN(num_classes, dropout, channels, hidden)  # channels/hidden: set by structured pruning


@register("simple-cnn")
def simple_cnn(num_classes: int = 10, dropout: float = 0.2, channels: Sequence[int] = (32, 64),
               hidden: int = 128) -> nn.Module:
    return SimpleCNN(num_classes, dropout, channels, hidden)


@register("fast")
def fast(num_classes: int = 10, width: int = 32, dropout: float = 0.0,
         channels: Sequence[int] | None = None, stem: str = "pool", order: str = "conv-pool-bn") -> nn.Module:
    return FastCNN(num_classes, width, dropout, channels, stem, order)


@register("deep")
def deep(num_classes: int = 10, width: int = 24, dropout: float = 0.0) -> nn.Module:
    return DeepCNN(num_classes, width, dropout)


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


def default_options(name: str) -> dict[str, Any]:
    """The options a model gets when none are given (its factory's defaults)."""
    params = inspect.signature(_REGISTRY[name]).parameters if name in _REGISTRY else {}
    return {k: p.default for k, p in params.items() if k != "num_classes" and p.default is not inspect.Parameter.empty}


def _type_error(hint: Any, value: Any) -> str | None:
    """Why `value` does not fit the annotation `hint` (int, float, Sequence[int], X | None), or None if it does."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _type_error(args[0], value)
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else "a finite number"
    if typing.get_origin(hint) is collections.abc.Sequence:
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return None if ok else "a list of integers"
    return None


def check_options(name: str, num_classes: int, options: Any) -> None:
    """Refuse (one line) unknown or mistyped options, and any that would build more than MAX_PARAMS parameters."""
    if name not in _REGISTRY:
        raise DigitrecError(f"unknown model {name!r}; choose one of: {', '.join(available())}")
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise DigitrecError(f"model {name!r}: options must be a table of NAME = VALUE, got {type(options).__name__}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or not 2 <= num_classes <= MAX_CLASSES:
        raise DigitrecError(f"model {name!r}: num_classes must be an integer in 2..{MAX_CLASSES}, got {num_classes!r}")
    fn = _REGISTRY[name]
    params = inspect.signature(fn).parameters
    hints = typing.get_type_hints(fn)
    for key, value in options.items():
        if key not in params or key == "num_classes":
            known = ", ".join(p for p in params if p != "num_classes")
            raise DigitrecError(f"model {name!r}: unknown option {key!r} (it has {known})")
        wanted = _type_error(hints.get(key), value)
        if wanted:
            raise DigitrecError(f"model {name!r}: option {key} must be {wanted}, got {value!r}")
    try:
        with torch.device("meta"):  # shapes only: nothing allocated, no random numbers drawn
            n = sum(p.numel() for p in fn(num_classes=num_classes, **options).parameters())
    except (TypeError, ValueError, RuntimeError) as e:
        raise DigitrecError(f"model {name!r}: bad option ({str(e).strip().splitlines()[0][:200]})") from None
    if n > MAX_PARAMS:
        shown = ", ".join(f"{k}={v}" for k, v in options.items())
        raise DigitrecError(f"model {name!r} with {shown or 'these options'} would have {n:.3g} parameters, "
                            f"more than the limit of {MAX_PARAMS:.0e}")


def create(name: str, num_classes: int = 10, **options) -> nn.Module:
    check_options(name, num_classes, options)
    try:
        return _REGISTRY[name](num_classes=num_classes, **options)
    except (TypeError, ValueError) as e:
        raise DigitrecError(f"model {name!r}: bad option ({str(e).strip().splitlines()[0][:200]})") from None
