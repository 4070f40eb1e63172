"""`digitrec prune CHECKPOINT --amount F [--structured] --finetune-epochs N --out RUN`: magnitude pruning
(global unstructured, or structured channels that really shrink the layers), then a short fine-tune."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("prune", help="prune a checkpoint (unstructured or structured channels) and fine-tune it",
                       description=__doc__)
    p.add_argument("checkpoint")
    p.add_argument("--amount", type=float, required=True, help="share of weights (or of channels) to remove, in (0, 1)")
    p.add_argument("--structured", action="store_true",
                   help="remove whole conv channels / hidden units: a smaller, faster network (else: sparse weights)")
    p.add_argument("--finetune-epochs", type=int, default=1, help="epochs of fine-tuning after pruning (default: 1)")
    p.add_argument("--lr", type=float, default=None, help="fine-tune learning rate (default: the source's / 10)")
    p.add_argument("--out", required=True, help="run folder to write (model.pt, metrics.json, ...)")
    p.add_argument("--limit", type=int, default=None, help="fine-tune on a stratified subset of N training images")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..prune import prune_run

    m = prune_run(args.checkpoint, args.out, args.amount, args.structured, args.finetune_epochs, args.lr,
                  args.threads, args.device, args.data_dir, args.limit, progress=not args.no_progress)["pruning"]
    print(f"params {m['params_before']:,} → {m['params_after']:,}, sparsity {m['sparsity_after']:.1%}; test accuracy "
          f"{m['accuracy_before_finetune']:.2%} after pruning → {m['accuracy_after_finetune']:.2%} after "
          f"{m['finetune_epochs']} fine-tune epoch(s); wrote {args.out}/")
    return 0
