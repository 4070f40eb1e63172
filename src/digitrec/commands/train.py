"""`digitrec train`: every TrainConfig field is a flag, generated from its type; a preset supplies the defaults.

Flags are generated once here for train, tune and sweep: `--name-with-dashes VALUE` typed like the field
(`config.parse_value`: 'none' unsets an optional one), `--flag/--no-flag` for booleans, the choices of a Literal in
the help. Only flags given on the command line override the preset (argparse.SUPPRESS keeps the others out of the
namespace), so that a resume can tell "given" from "defaulted".
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Iterable

from .. import config
from ..config import FIELDS, TrainConfig, preset_names
from ..errors import DigitrecError

DEFAULT_PRESET = "paper"


def _converter(name: str):
    def convert(text: str) -> Any:
        try:
            return config.parse_value(name, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = config.base_type(name).__name__ if not config.choices(name) else name
    return convert


def add_config_flags(p: argparse.ArgumentParser, skip: Iterable[str] = ()) -> None:
    """One flag per TrainConfig field (model options: --model-option KEY=VALUE and --dropout)."""
    for name, f in FIELDS.items():
        if name in skip or name == "model_options":
            continue
        default = f.default
        help_text = f.metadata.get("help", "") + (f" (default: {default})" if default is not None else "")
        if config.base_type(name) is bool:
            p.add_argument(config.flag(name), action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=help_text)
            continue
        options = config.choices(name)
        metavar = "{" + ",".join(options) + "}" if options else name.upper()
        p.add_argument(config.flag(name), type=_converter(name), default=argparse.SUPPRESS, help=help_text,
                       metavar=metavar)
    p.add_argument("--model-option", action="append", default=argparse.SUPPRESS, metavar="KEY=VALUE",
                   help="model option, e.g. width=48, dropout=0.3 or channels=16,32,64,64 (repeatable)")
    p.add_argument("--dropout", type=float, default=argparse.SUPPRESS, help="shorthand for --model-option dropout=F")


def given_settings(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings and model options given on the command line (nothing defaulted)."""
    settings = {name: getattr(args, name) for name in FIELDS if name != "model_options" and hasattr(args, name)}
    options = {}
    for item in getattr(args, "model_option", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DigitrecError(f"--model-option expects KEY=VALUE, got {item!r}")
        options[key.strip()] = config.parse_model_option(value.strip())
    if hasattr(args, "dropout"):
        if not 0 <= args.dropout < 1:
            raise DigitrecError(f"--dropout must be in [0, 1), got {args.dropout}")
        options["dropout"] = args.dropout
    return settings, options


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """defaults < --preset (paper when not given) < the flags given."""
    settings, options = given_settings(args)
    return config.resolve(getattr(args, "preset", None) or DEFAULT_PRESET, settings, options)


def resume_config_from_args(args: argparse.Namespace, last: Path) -> TrainConfig:
    """--resume: the run's own configuration (last.pt); the preset and flags given may only repeat it, apart from
    config.MAY_CHANGE_ON_RESUME."""
    from ..checkpoint import load

    saved = config.from_dict(load(last).get("config"), str(last))
    settings, options = given_settings(args)
    given = dict(config.load_preset(args.preset)) if getattr(args, "preset", None) else {}
    given.update(settings)
    if options or "model_options" in given:
        given["model_options"] = {**given.get("model_options", {}), **options}
    return config.for_resume(saved, given, str(last))


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model; writes model.pt, history.json, metrics.json and figures",
                       description="Train a model. A preset sets the defaults; every value can be overridden.")
    p.add_argument("--preset", default=None,
                   help=f"one of {', '.join(preset_names())}, or a .toml file (default: {DEFAULT_PRESET})")
    p.add_argument("--out", required=True, help="run folder to write into")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last finished epoch, with its own settings (flags may "
                        f"repeat them; only {', '.join(map(config.flag, config.MAY_CHANGE_ON_RESUME))} may change)")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="resume when --out holds last.pt, else start fresh (for torchrun --max-restarts, requeues)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import summary
    from ..train import train

    last = Path(args.out) / "last.pt"
    # --resume-if-exists: a restarted worker (torchrun --max-restarts, a requeued job) reruns the same command
    resume = args.resume or (args.resume_if_exists and last.is_file())
    if resume and not last.is_file():
        cfg = None  # train() says there is nothing to resume
    else:
        cfg = resume_config_from_args(args, last) if resume else config_from_args(args)
    metrics = train(cfg, args.out, resume=resume, progress=not args.no_progress)
    if "accuracy" in metrics:
        print(summary(metrics))
        print(f"training time {metrics['train_time_s']:.1f}s; wrote {args.out}/")
    return 0
