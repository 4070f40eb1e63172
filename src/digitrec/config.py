"""Training configuration: one typed dataclass is the single source of every setting.

Its fields (types, defaults, bounds, help) generate the command-line flags of train, tune and sweep
(`commands/train.py`), type-check presets, type the values of `sweep --param` and tune's search space, and travel
inside every checkpoint. Resolution order: dataclass defaults < preset file (TOML) < command-line flags.
"""
from __future__ import annotations

import dataclasses
import math
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from .errors import DigitrecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRESET_DIR = Path(__file__).parent / "presets"
# Settings a resumed run may change: where and how fast it runs, not what it computes.
MAY_CHANGE_ON_RESUME = ("device", "threads", "data_dir")
Split = Literal["paper", "canonical"]
Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["constant", "onecycle", "cosine"]
Freeze = Literal["none", "backbone"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]


def _setting(default: Any, help: str = "", lo: float | None = None, hi: float | None = None,
             lo_open: bool = False, hi_open: bool = False, must: str | None = None) -> Any:
    """A field with its help text and bounds (lo ≤ value ≤ hi; lo_open/hi_open make them strict)."""
    meta = {"help": help, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "must": must}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # data
    dataset: str = _setting("mnist", "mnist, emnist-digits or idx:DIR (any MNIST-format folder)")
    split: Split = _setting("paper", "paper (80/10/10 of train+test pooled) or canonical (official test set)")
    limit: int | None = _setting(None, "train on a stratified subset of N training samples", 1, 100_000_000,
                                 must="a positive number of training samples")
    data_dir: str | None = _setting(None, "folder with the dataset files (else $DIGITREC_DATA, the user cache, "
                                          "the bundled MNIST)")
    # model
    model: str = _setting("paper-cnn", "a model from the registry (digitrec models)")
    model_options: dict[str, Any] = _setting({}, "model options (flag: --model-option KEY=VALUE)")
    # optimisation (the paper's recipe is the default)
    epochs: int = _setting(25, "", 1, 10_000)
    batch_size: int = _setting(64, "per process", 2, 65_536)
    lr: float = _setting(1e-4, "learning rate", 0, 10, lo_open=True)
    optimizer: Optimizer = _setting("adam", "adam, adamw or sgd (Nesterov momentum)")
    momentum: float = _setting(0.9, "SGD momentum", 0, 1, hi_open=True)
    weight_decay: float = _setting(0.0, "", 0, 1, hi_open=True)
    schedule: Schedule = _setting("constant", "constant, onecycle (linear up, linear down) or cosine")
    warmup: float = _setting(0.0, "fraction of all steps spent warming up (onecycle, cosine)", 0, 1, hi_open=True)
    label_smoothing: float = _setting(0.0, "", 0, 1, hi_open=True)
    ema: float = _setting(0.0, "decay of an exponential moving average of the weights; 0 = off", 0, 1, hi_open=True)
    # augmentation (the paper's rotation, shear and shift)
    augment: bool = _setting(True, "random affine augmentation of every training batch")
    rotate: float = _setting(10.0, "largest rotation, degrees", 0, 180)
    shear: float = _setting(10.0, "largest shear, degrees", 0, 80)
    shift: float = _setting(0.1, "largest shift, fraction of the image side", 0, 1)
    scale: float = _setting(0.0, "largest relative zoom", 0, 1, hi_open=True)
    # real-world augmentation (augment.py): strengths / probabilities, all off by default
    elastic: float = _setting(0.0, "largest smooth displacement, pixels", 0, 28)
    stroke: float = _setting(0.0, "probability of a thicker or thinner stroke", 0, 1)
    blur: float = _setting(0.0, "probability of a gaussian blur", 0, 1)
    contrast: float = _setting(0.0, "fainter ink and gamma, strength", 0, 1)
    noise: float = _setting(0.0, "largest gaussian noise std", 0, 1)
    # run
    seed: int = _setting(0, "", 0, 2**32 - 1)
    device: str = _setting("auto", "auto, cpu, cuda or cuda:N")
    bf16: bool = _setting(True, "bfloat16 autocast on CUDA")
    bf16_cpu: bool = _setting(False, "bfloat16 autocast on the CPU too (oneDNN; fast on AVX512-BF16/AMX CPUs)")
    channels_last: bool = _setting(False, "channels-last memory format")
    compile: bool = _setting(False, "torch.compile the model")
    compile_mode: CompileMode = _setting("default", "torch.compile mode: default, reduce-overhead (CUDA graphs of "
                                                    "forward and backward) or max-autotune")
    cuda_graphs: bool = _setting(False, "capture the whole training step (forward, backward, optimizer) as one CUDA "
                                        "graph and replay it (CUDA only)")
    eval_batch_size: int = _setting(1024, "", 1, 1 << 20)
    tta: bool = _setting(False, "test-time augmentation at evaluation")
    threads: int | None = _setting(None, "CPU threads (default: torch's)", 1, 1024)
    init_from: str | None = _setting(None, "start from a digitrec checkpoint's weights (a new output layer if the "
                                           "class count differs)")
    # transfer learning (transfer.py): pretrained ResNet-18 backbone, freezing, backbone learning rate
    backbone_weights: str = _setting("none", "ResNet-18 backbone of a new resnet18/hybrid run: imagenet, none, a "
                                             "torchvision state_dict file or a digitrec resnet18/hybrid checkpoint")
    freeze: Freeze = _setting("none", "none or backbone (backbone: no gradients, BatchNorm statistics fixed)")
    backbone_lr: float | None = _setting(None, "learning rate of the backbone (default: --lr)", 0, 10, lo_open=True)
    unfreeze_epoch: int | None = _setting(None, "gradual unfreezing: backbone frozen until this epoch (1-based), "
                                                "then trained", 2, 10_000, must="between 2 and --epochs")

    def validate(self) -> "TrainConfig":
        """Check every value's type and bounds (floats converted from ints); raise one line naming the flag."""
        for name in FIELDS:
            setattr(self, name, check_value(name, getattr(self, name)))
        if self.unfreeze_epoch is not None and self.unfreeze_epoch > self.epochs:
            raise DigitrecError(f"--unfreeze-epoch must be between 2 and --epochs ({self.epochs}), "
                                f"got {self.unfreeze_epoch}")
        if self.cuda_graphs and self.device == "cpu":
            raise DigitrecError("--cuda-graphs needs a CUDA device, not --device cpu")
        if not re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?", self.device):
            raise DigitrecError(f"--device must be auto, cpu or cuda[:N], got {self.device!r}")
        from .models import check_options

        check_options(self.model, 10, self.model_options)  # the real class count is checked again at creation
        return self


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
TYPES = typing.get_type_hints(TrainConfig)


def flag(name: str) -> str:
    """A setting's command-line flag (model options have their own: --model-option KEY=VALUE)."""
    return "model_options" if name == "model_options" else "--" + name.replace("_", "-")


def base_type(name: str) -> Any:
    """The type of a setting with Optional removed: int, float, bool, str, a Literal, or dict."""
    hint = TYPES[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is not Literal and type(None) in typing.get_args(hint):
        return args[0]
    return dict if typing.get_origin(hint) is dict else hint


def optional(name: str) -> bool:
    return type(None) in typing.get_args(TYPES[name])


def choices(name: str) -> tuple[str, ...] | None:
    kind = base_type(name)
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else None


def _kind_name(name: str) -> str:
    kind = base_type(name)
    words = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
             dict: "a table of NAME = VALUE"}
    return f"one of {', '.join(choices(name))}" if choices(name) else words[kind]


def check_value(name: str, value: Any, label: str | None = None) -> Any:
    """`value` checked against the setting's type and bounds; returns it (an int converted to float if need be).
    Errors name the setting as `label` (default: its flag)."""
    kind, shown = base_type(name), label or flag(name)
    if value is None and optional(name):
        return None
    if choices(name):
        if value not in choices(name):
            raise DigitrecError(f"{shown}: unknown {name} {value!r}; choose one of: {', '.join(choices(name))}")
        return value
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise DigitrecError(f"{shown} must be {_kind_name(name)}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise DigitrecError(f"{shown} must be a finite number, got {value}")
    if kind is str and not value:
        raise DigitrecError(f"{shown} must not be empty")
    _check_bounds(name, value, shown)
    return value


def _check_bounds(name: str, value: Any, shown: str) -> None:
    m = FIELDS[name].metadata
    lo, hi = m.get("lo"), m.get("hi")
    if lo is None or not isinstance(value, (int, float)):
        return
    inside = (value > lo if m["lo_open"] else value >= lo) and (value < hi if m["hi_open"] else value <= hi)
    if not inside:
        fmt = "{:g}".format
        low, high = (">" if m["lo_open"] else "≥"), ("<" if m["hi_open"] else "≤")
        text = m["must"] or f"{low} {fmt(lo)} and {high} {fmt(hi)}"
        raise DigitrecError(f"{shown} must be {text}, got {value}")


def parse_value(name: str, text: str) -> Any:
    """A flag's or a `sweep --param` value from text, typed like the setting ('none' unsets an optional one)."""
    kind = base_type(name)
    text = text.strip()
    if optional(name) and text.lower() == "none":
        return None
    if kind is bool:
        value = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}.get(text.lower())
        if value is None:
            raise ValueError(f"invalid bool value: {text!r} (true or false)")
        return value
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"invalid {kind.__name__} value: {text!r}") from None
    if choices(name) and text not in choices(name):
        raise ValueError(f"unknown {name} {text!r}; choose one of: {', '.join(choices(name))}")
    return text


def parse_model_option(text: str) -> Any:
    """A model option's value: int, float, true/false, a comma-separated list of integers, else the text."""
    if "," in text:
        try:
            return [int(v) for v in text.split(",")]
        except ValueError:
            pass
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


# --- presets -----------------------------------------------------------------------------------------------------


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _preset_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        raise DigitrecError(f"preset {name_or_path}: is a folder, not a TOML file")
    if path.suffix == ".toml" or path.is_file():
        return path
    bundled = PRESET_DIR / f"{name_or_path}.toml"
    if "/" in name_or_path or not bundled.is_file():
        raise DigitrecError(f"unknown preset {name_or_path!r}; choose one of {', '.join(preset_names())} "
                            "or a .toml file")
    return bundled


def load_preset(name_or_path: str) -> dict[str, Any]:
    """A preset by name (bundled) or a path to a TOML file of TrainConfig values, each type-checked."""
    path = _preset_path(name_or_path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DigitrecError(f"preset file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise DigitrecError(f"preset file {path}: not valid TOML ({' '.join(str(e).split())})") from None
    except OSError as e:
        raise DigitrecError(f"preset file {path}: cannot read ({e.strerror or e})") from None
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise DigitrecError(f"preset {path}: unknown setting(s) {', '.join(unknown)}")
    return {name: check_value(name, value, f"preset {path}: {name}") for name, value in values.items()}


def preset_toml(cfg: TrainConfig, skip: tuple[str, ...] = ()) -> str:
    """`cfg` as a preset file (tomli-w): every setting except `skip` and unset (None) ones, which TOML cannot hold."""
    import tomli_w

    values = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in skip and v is not None}
    return tomli_w.dumps(values)


# --- resolution ----------------------------------------------------------------------------------------------------


def resolve(preset: str | None, overrides: Mapping[str, Any] | None = None,
            model_options: Mapping[str, Any] | None = None) -> TrainConfig:
    """defaults < preset < overrides (None is a value here: it unsets an optional setting); model options merged."""
    values: dict[str, Any] = load_preset(preset) if preset else {}
    unknown = sorted(set(overrides or {}) - set(FIELDS))
    if unknown:
        raise DigitrecError(f"unknown setting(s) {', '.join(unknown)}")
    values.update(overrides or {})
    if model_options and isinstance(values.get("model_options", {}), dict):
        values["model_options"] = {**values.get("model_options", {}), **model_options}
    return TrainConfig(**values).validate()


def make_config(preset: str | None = "paper", **overrides: Any) -> TrainConfig:
    """The Python entry point: keyword overrides, where None means 'not given' (the preset's value stays)."""
    return resolve(preset, {k: v for k, v in overrides.items() if v is not None})


def from_dict(saved: Mapping[str, Any], where: str) -> TrainConfig:
    """The TrainConfig stored in a checkpoint (settings added since it was written take their defaults)."""
    if not isinstance(saved, Mapping):
        raise DigitrecError(f"{where}: holds no training configuration")
    try:
        return TrainConfig(**{k: v for k, v in saved.items() if k in FIELDS}).validate()
    except DigitrecError as e:
        raise DigitrecError(f"{where}: its configuration is not valid ({e})") from None


def contradictions(saved: TrainConfig, given: Mapping[str, Any]) -> list[str]:
    """Settings in `given` that differ from a run's `saved` configuration (those a resume may change aside)."""
    out = []
    for name, value in given.items():
        if name in MAY_CHANGE_ON_RESUME:
            continue
        if name == "model_options":  # an option left out has the model's default value
            from .models import default_options

            old = {**default_options(saved.model), **saved.model_options}
            out += [f"--model-option {k}={v} (the run has {k}={old.get(k, 'unset')})"
                    for k, v in value.items() if k not in old or _as_list(old[k]) != _as_list(v)]
        elif getattr(saved, name) != value:
            out.append(f"{flag(name)} {value} (the run has {getattr(saved, name)})")
    return out


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # TOML and flags give lists, defaults tuples


def for_resume(saved: TrainConfig, given: Mapping[str, Any], where: str) -> TrainConfig:
    """The run's own configuration with the allowed changes from `given`; any contradiction is refused."""
    wrong = contradictions(saved, given)
    if wrong:
        raise DigitrecError(f"--resume: {where} was trained with other settings: {'; '.join(wrong[:3])}"
                            f"{' …' if len(wrong) > 3 else ''}; resume without them, or start a new run "
                            f"(only {', '.join(flag(n) for n in MAY_CHANGE_ON_RESUME)} may change on resume)")
    allowed = {k: v for k, v in given.items() if k in MAY_CHANGE_ON_RESUME}
    return dataclasses.replace(saved, **allowed).validate()
