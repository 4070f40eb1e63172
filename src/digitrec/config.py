"""Training configuration: plain values with defaults, presets as TOML files, every value overridable by a flag.

Resolution order: dataclass defaults < preset file < command-line flags.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DigitrecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass
class TrainConfig:
    # data
    dataset: str = "mnist"
    split: str = "paper"
    limit: int | None = None
    data_dir: str | None = None
    # model
    model: str = "paper-cnn"
    model_options: dict[str, Any] = field(default_factory=dict)
    # optimisation (the paper's recipe is the default)
    epochs: int = 25
    batch_size: int = 64
    lr: float = 1e-4
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov momentum)
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | onecycle (linear up, linear down) | cosine
    warmup: float = 0.0  # fraction of all steps spent warming up (onecycle, cosine)
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    # augmentation (the paper's rotation, shear and shift)
    augment: bool = True
    rotate: float = 10.0
    shear: float = 10.0
    shift: float = 0.1
    scale: float = 0.0
    # real-world augmentation (augment.py): strengths / probabilities, all off by default
    elastic: float = 0.0  # largest smooth displacement, pixels
    stroke: float = 0.0  # probability of a thicker or thinner stroke
    blur: float = 0.0  # probability of a gaussian blur
    contrast: float = 0.0  # fainter ink and gamma, strength
    noise: float = 0.0  # largest gaussian noise std
    # run
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = True  # autocast on CUDA only
    channels_last: bool = False
    compile: bool = False
    eval_batch_size: int = 1024
    tta: bool = False  # test-time augmentation at evaluation
    threads: int | None = None  # CPU threads; None = torch's default
    init_from: str | None = None  # start from this checkpoint's weights (fine-tuning; shapes must match)
    # transfer learning (transfer.py): pretrained ResNet-18 backbone, freezing, backbone learning rate
    backbone_weights: str = "none"  # none | imagenet | PATH (torchvision state_dict or digitrec checkpoint)
    freeze: str = "none"  # none | backbone
    backbone_lr: float | None = None  # None = --lr
    unfreeze_epoch: int | None = None  # gradual unfreezing: backbone frozen before this (1-based) epoch

    def validate(self) -> "TrainConfig":
        checks = [
            (self.epochs >= 1, f"--epochs must be ≥ 1, got {self.epochs}"),
            (self.batch_size >= 2, f"--batch-size must be ≥ 2, got {self.batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.optimizer in ("adam", "adamw", "sgd"), f"--optimizer must be adam, adamw or sgd, got {self.optimizer!r}"),
            (self.schedule in ("constant", "onecycle", "cosine"),
             f"--schedule must be constant, onecycle or cosine, got {self.schedule!r}"),
            (0 <= self.warmup < 1, f"--warmup must be in [0, 1), got {self.warmup}"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.ema < 1, f"--ema must be in [0, 1), got {self.ema}"),
            (self.weight_decay >= 0, f"--weight-decay must be ≥ 0, got {self.weight_decay}"),
            (min(self.rotate, self.shear, self.shift, self.scale) >= 0, "augmentation strengths must be ≥ 0"),
            (min(self.elastic, self.stroke, self.blur, self.contrast, self.noise) >= 0
             and max(self.stroke, self.blur, self.contrast) <= 1,
             "--elastic/--noise must be ≥ 0 and --stroke/--blur/--contrast in [0, 1]"),
            (self.eval_batch_size >= 1, f"--eval-batch-size must be ≥ 1, got {self.eval_batch_size}"),
            (self.threads is None or self.threads >= 1, f"--threads must be ≥ 1, got {self.threads}"),
            (self.freeze in ("none", "backbone"), f"--freeze must be none or backbone, got {self.freeze!r}"),
            (self.backbone_lr is None or self.backbone_lr > 0, f"--backbone-lr must be > 0, got {self.backbone_lr}"),
            (self.unfreeze_epoch is None or 2 <= self.unfreeze_epoch <= self.epochs,
             f"--unfreeze-epoch must be between 2 and --epochs ({self.epochs}), got {self.unfreeze_epoch}"),
            (bool(self.backbone_weights), "--backbone-weights must be imagenet, none or a file"),
        ]
        for ok, message in checks:
            if not ok:
                raise DigitrecError(message)
        return self


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (bundled) or a path to a TOML file of TrainConfig values."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.is_file()):  # a folder named like a preset is not one
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise DigitrecError(f"unknown preset {name_or_path!r}; choose one of {', '.join(preset_names())} or a .toml file")
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DigitrecError(f"preset file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DigitrecError(f"preset file {path}: not valid TOML ({e})") from None
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise DigitrecError(f"preset {path}: unknown setting(s) {', '.join(unknown)}")
    return values


def make_config(preset: str | None = "paper", **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = load_preset(preset) if preset else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise DigitrecError(f"unknown setting(s) {', '.join(unknown)}")
    return TrainConfig(**values).validate()
