"""`digitrec evaluate CHECKPOINT`: test-set metrics (and the confusion heatmap) of a trained model."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="test-set metrics of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on")
    p.add_argument("--split", default=None, choices=["paper", "canonical"],
                   help="default: the checkpoint's split")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tta", action="store_true", help="test-time augmentation (average over small shifts)")
    p.add_argument("--out", default=None,
                   help="folder for metrics.json and confusion.png (not a training run's folder: its records stay)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import checkpoint
    from ..evaluate import evaluate_checkpoint, plot_confusion, summary
    from ..fileio import write_json
    from ..device import resolve_device
    from ..outputs import check_output_folder

    if args.out:
        check_output_folder(args.out)
    ckpt = checkpoint.load(args.checkpoint)
    dataset = args.dataset or ckpt.get("dataset", "mnist")
    split = args.split or ckpt.get("split", "paper")
    metrics = evaluate_checkpoint(args.checkpoint, dataset, split, data_dir=args.data_dir,
                                  device=resolve_device(args.device), tta=args.tta)
    metrics["model"] = ckpt["model_name"]
    print(summary(metrics))
    if args.out:
        out = Path(args.out)
        write_json(out / "metrics.json", metrics)
        plot_confusion(metrics["confusion_matrix"], f"Confusion matrix — {ckpt['model_name']} on {dataset}, "
                       f"accuracy {metrics['accuracy']:.2%} (n={metrics['n']})", out / "confusion.png")
        print(f"wrote {out}/metrics.json and confusion.png")
    return 0
