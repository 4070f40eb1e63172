"""`digitrec ensemble RUN_or_CHECKPOINT...`: average several models' probabilities; score members and ensemble."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("ensemble", help="test-set metrics of the average of several checkpoints' probabilities",
                       description="Average the softmax probabilities of several checkpoints (run folders mean "
                                   "their model.pt, which holds the run's EMA weights when it kept an EMA) on a "
                                   "test split; print each member's accuracy and the ensemble's metrics. Members "
                                   "of similar strength gain; a few much weaker members outvote a strong one.")
    p.add_argument("checkpoints", nargs="+", metavar="RUN_or_CHECKPOINT")
    p.add_argument("--dataset", default=None, help="default: the dataset the checkpoints were trained on")
    p.add_argument("--split", default=None, choices=["paper", "canonical"], help="default: the checkpoints' split")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time augmentation (average over small shifts) for every member; default: each member "
                        "as its run was evaluated (its preset's tta)")
    p.add_argument("--out", default=None,
                   help="folder for metrics.json and confusion.png (not a training run's folder: its records stay)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ensemble import ensemble
    from ..evaluate import plot_confusion, summary
    from ..fileio import write_json
    from ..device import resolve_device
    from ..outputs import check_output_folder

    if args.out:
        check_output_folder(args.out)
    metrics = ensemble(args.checkpoints, args.dataset, args.split, data_dir=args.data_dir,
                       device=resolve_device(args.device), tta=args.tta)
    for m in metrics["members"]:
        print(f"member {m['checkpoint']} ({m['model']}{', TTA' if m['tta'] else ''}): accuracy {m['accuracy']:.4f}")
    print(f"ensemble of {len(metrics['members'])}: " + summary(metrics))
    print(f"ensemble - best member: {metrics['gain_over_best_member']:+.4f}  (members disagree on "
          f"{metrics['members_disagree']} images; some member is right on {metrics['oracle_accuracy']:.4f})")
    if args.out:
        out = Path(args.out)
        write_json(out / "metrics.json", metrics)
        plot_confusion(metrics["confusion_matrix"], f"Confusion matrix — ensemble of {len(metrics['members'])} on "
                       f"{metrics['dataset']}, accuracy {metrics['accuracy']:.2%} (n={metrics['n']})",
                       out / "confusion.png")
        print(f"wrote {out}/metrics.json and confusion.png")
    return 0
