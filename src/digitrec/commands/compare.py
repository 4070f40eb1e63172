"""`digitrec compare`: the paper's Table 1 — classical and neural models on one split, beside the paper's numbers."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("compare", help="Table 1: train and compare svm, knn and CNNs; writes table.{md,csv,json}",
                       description="Train and evaluate each model on each dataset (same split for all) and write "
                                   "table.md, table.csv, table.json and chart.png beside the paper's Table 1.")
    p.add_argument("--datasets", default="mnist", help="comma-separated: mnist, emnist-digits, idx:DIR (default: mnist)")
    p.add_argument("--models", default="svm,knn,simple-cnn,paper-cnn",
                   help="comma-separated: svm, knn and any neural model of `digitrec models` "
                        "(default: svm,knn,simple-cnn,paper-cnn)")
    p.add_argument("--out", required=True, help="folder for the tables, the chart and runs/<dataset>-<model>/")
    p.add_argument("--quick", action="store_true",
                   help="a fast check: 2 epochs, 5000 training images for neural and classical models")
    p.add_argument("--split", default="paper", choices=["paper", "canonical"],
                   help="paper (80/10/10 of train+test pooled) or canonical (official test set) (default: paper)")
    p.add_argument("--epochs", type=int, default=None, help="neural epochs (default: the paper's 25; 2 with --quick)")
    p.add_argument("--limit", type=int, default=None,
                   help="stratified subset of N training images for neural models (default: all; 5000 with --quick)")
    p.add_argument("--classical-limit", type=int, default=None,
                   help="stratified subset of N training images for svm/knn (default: all; 5000 with --quick)")
    p.add_argument("--reuse", action="append", default=[], metavar="MODEL=RUN_DIR",
                   help="take a finished run instead of training MODEL: a `digitrec train` folder (metrics.json, "
                        "history.json) or a comparison's runs/<dataset>-<model>; marked reused in the table "
                        "(repeatable)")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files")
    p.add_argument("--download", action="store_true", help="download missing dataset files (default: report them)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch and scikit-learn")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] for the neural models")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..compare import DONE, CompareOptions, parse_list, parse_reuse, run_compare

    opts = CompareOptions(
        datasets=parse_list(args.datasets, "datasets"), models=parse_list(args.models, "models"),
        out=Path(args.out), split=args.split, quick=args.quick, epochs=args.epochs, limit=args.limit,
        classical_limit=args.classical_limit, reuse=parse_reuse(args.reuse),
        data_dir=args.data_dir,
        download=args.download, threads=args.threads, device=args.device, seed=args.seed,
        progress=not args.no_progress)
    result = run_compare(opts)
    done = sum(r["status"] in DONE for r in result["rows"])
    print(f"{done}/{len(result['rows'])} rows done; wrote {opts.out}/table.md, table.csv, table.json, chart.png")
    return 0
