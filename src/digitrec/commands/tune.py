"""`digitrec tune`: hyper-parameter search with Optuna on the validation split; the winner becomes a preset."""
from __future__ import annotations

import argparse

from .train import add_config_flags, config_from_args


def register(sub) -> None:
    p = sub.add_parser(
        "tune", help="hyper-parameter search (Optuna) on the validation split; writes best.toml",
        description="Search learning rate, batch size, dropout, weight decay and augmentation strengths (or the "
                    "ranges in --space) with Optuna's TPE sampler and median pruning, selecting on the validation "
                    "split only. The study is kept in OUT/study.db: rerun the same command to continue it.")
    p.add_argument("--trials", type=int, required=True,
                   help="finished trials the study should hold (earlier runs of the same study count)")
    p.add_argument("--space", default=None, metavar="FILE", help="TOML file of ranges (default: built-in space)")
    p.add_argument("--jobs", type=int, default=1,
                   help="trials at once, in separate processes (one per GPU when there are several; on the CPU, "
                        "each its share of the cores unless --threads)")
    p.add_argument("--no-prune", action="store_true", help="never stop a trial early")
    p.add_argument("--preset", default=None, help="the base recipe the search starts from (default: paper)")
    p.add_argument("--out", required=True, help="study folder (study.db, trials.csv/md, history.png, best.toml)")
    add_config_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitrecError
    from ..tune import load_space, tune

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise DigitrecError("digitrec tune needs Optuna: pip install 'digitrec[tune]'") from None
    if args.trials < 1:  # before any file is touched
        raise DigitrecError(f"--trials must be ≥ 1, got {args.trials}")
    if args.jobs < 1:
        raise DigitrecError(f"--jobs must be ≥ 1, got {args.jobs}")
    base = config_from_args(args)
    space = load_space(args.space) if args.space else None
    best = tune(base, args.out, args.trials, space=space, jobs=args.jobs, prune=not args.no_prune)
    if best:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        print(f"best: trial {best['trial']}, validation accuracy {best['val_acc']:.4f} ({shown})")
        print(f"wrote {args.out}/trials.md, trials.csv, history.png, best.toml; "
              f"train it: digitrec train --preset {args.out}/best.toml --out RUN")
    else:
        print(f"no trial finished; wrote {args.out}/trials.md")
    return 0
