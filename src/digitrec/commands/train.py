"""`digitrec train`: every TrainConfig value is a flag; a preset supplies the defaults."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path

from ..config import FIELDS, TrainConfig, make_config, preset_names
from ..errors import DigitrecError

_OPTIONAL_TYPES = {"limit": int, "data_dir": str, "threads": int, "backbone_lr": float, "unfreeze_epoch": int}
_HELP = {
    "dataset": "mnist, emnist-digits or idx:DIR (any MNIST-format folder)",
    "model": "a model from the registry (digitrec models)",
    "split": "paper (80/10/10 of train+test pooled) or canonical (official test set)",
    "limit": "train on a stratified subset of N training samples",
    "data_dir": "folder with the dataset files (else $DIGITREC_DATA, the user cache, the bundled MNIST)",
    "device": "auto, cpu, cuda or cuda:N",
    "backbone_weights": "ResNet-18 backbone of a new resnet18/hybrid run: imagenet, none, a torchvision "
                        "state_dict file or a digitrec resnet18/hybrid checkpoint",
    "freeze": "none or backbone (backbone: no gradients, BatchNorm statistics fixed)",
    "backbone_lr": "learning rate of the backbone (default: --lr)",
    "unfreeze_epoch": "gradual unfreezing: backbone frozen until this epoch (1-based), then trained",
    "init_from": "start from a digitrec checkpoint's weights (a new output layer if the class count differs)",
}


def add_config_flags(p: argparse.ArgumentParser, skip: typing.Iterable[str] = ()) -> None:
    """One flag per TrainConfig field, defaulting to None so that only given flags override the preset."""
    for name, f in FIELDS.items():
        if name in skip or name == "model_options":
            continue
        flag = "--" + name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = _HELP.get(name, "") + (f" (default: {default})" if default is not None else "")
        if isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            kind = _OPTIONAL_TYPES.get(name, type(default) if default is not None else str)
            p.add_argument(flag, type=kind, default=None, help=help_text, metavar=name.upper())
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="model option, e.g. width=48 or dropout=0.3 (repeatable)")
    p.add_argument("--dropout", type=float, default=None, help="shorthand for --model-option dropout=F")


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {name: getattr(args, name) for name in FIELDS if name != "model_options" and hasattr(args, name)}
    options = {}
    for item in args.model_option:
        if "=" not in item:
            raise DigitrecError(f"--model-option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        options[key] = _parse_value(value)
    if args.dropout is not None:
        if not 0 <= args.dropout < 1:
            raise DigitrecError(f"--dropout must be in [0, 1), got {args.dropout}")
        options["dropout"] = args.dropout
    base = make_config(args.preset, **overrides)
    if options:
        base.model_options = {**base.model_options, **options}
    return base.validate()


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model; writes model.pt, history.json, metrics.json and figures",
                       description="Train a model. A preset sets the defaults; every value can be overridden.")
    p.add_argument("--preset", default="paper",
                   help=f"one of {', '.join(preset_names())}, or a .toml file (default: paper)")
    p.add_argument("--out", required=True, help="run folder to write into")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last finished epoch")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="resume when --out holds last.pt, else start fresh (for torchrun --max-restarts, requeues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import summary
    from ..train import train

    cfg = config_from_args(args)
    # --resume-if-exists: a restarted worker (torchrun --max-restarts, a requeued job) reruns the same command
    resume = args.resume or (args.resume_if_exists and (Path(args.out) / "last.pt").exists())
    metrics = train(cfg, args.out, resume=resume, progress=not args.no_progress)
    if metrics:
        print(summary(metrics))
        print(f"training time {metrics['train_time_s']:.1f}s; wrote {args.out}/")
    return 0
