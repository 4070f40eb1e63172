"""`digitrec sweep --seeds 0..4 [--param lr=0.001,0.003] --out DIR [train flags]`: many runs, mean ± std."""
from __future__ import annotations

import argparse

from .train import DEFAULT_PRESET, add_config_flags, config_from_args, given_settings


def register(sub) -> None:
    p = sub.add_parser(
        "sweep", help="many training runs (seeds × parameter values), several at once; summary.md/json",
        description="Train once per seed and per combination of --param values, each run its own "
                    "`digitrec train` process (JOBS at a time, one GPU each when there are several), then write "
                    "DIR/summary.{md,json}: test accuracy mean ± std over seeds, training time. Rerunning the "
                    "same command skips finished runs and resumes interrupted ones.")
    p.add_argument("--seeds", required=True, help="A..B (both included), A,B,C, or one seed")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="a training setting to sweep, e.g. lr=0.001,0.003, dropout=0.1,0.3 or limit=none,1000 "
                        "(repeatable: grid)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default: 1)")
    p.add_argument("--preset", default=None, help=f"the recipe every run starts from (default: {DEFAULT_PRESET})")
    p.add_argument("--out", required=True, help="sweep folder: runs/NAME/ and summary.{md,json}")
    add_config_flags(p, skip=("seed",))
    p.set_defaults(func=run)


def train_argv(args: argparse.Namespace) -> list[str]:
    """The `digitrec train` flags this command was given (seed and --out aside)."""
    from ..sweep import flag_args

    settings, options = given_settings(args)
    argv = ["--preset", args.preset or DEFAULT_PRESET]
    for name, value in settings.items():
        argv += flag_args(name, value)
    for key, value in options.items():
        shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        argv += ["--model-option", f"{key}={shown}"]
    return argv


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitrecError
    from ..sweep import parse_param, parse_seeds, plan, summary_markdown, sweep

    if args.jobs < 1:
        raise DigitrecError(f"--jobs must be ≥ 1, got {args.jobs}")
    seeds = parse_seeds(args.seeds)
    params = [parse_param(p) for p in args.param]
    base = config_from_args(args)
    runs = plan(train_argv(args), base, seeds, params)
    summary = sweep(runs, base, args.out, args.jobs)
    print(summary_markdown(summary).split("\n\n| run |")[0].split("\n\n", 2)[-1])  # the per-setting table
    print(f"wrote {args.out}/summary.md and summary.json")
    failed = [r["name"] for r in summary["runs"] if not r["ok"]]
    if failed:
        print(f"digitrec: {len(failed)} run(s) failed: {', '.join(failed)} (see their train.log)")
        return 1
    return 0
