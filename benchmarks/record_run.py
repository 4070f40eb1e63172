"""Record a finished training run in benchmarks/results/: metrics, per-epoch history, figures, hardware.

    digitrec train --preset paper --dataset mnist --out runs/paper
    python -m benchmarks.record_run runs/paper --name paper-preset-mnist
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
from pathlib import Path

from benchmarks.machine import machine_info, machine_slug
from digitrec.fileio import write_json, write_text

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    run = Path(args.run)
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    stem = f"{args.name}-{machine_slug()}-{datetime.date.today().isoformat()}"
    out = RESULTS / stem
    out.mkdir(parents=True, exist_ok=True)
    figures = [f for f in ("accuracy.png", "loss.png", "confusion.png") if (run / f).is_file()]  # unfinished: none
    for fig in figures:
        shutil.copyfile(run / fig, out / fig)
    info = machine_info()
    info["command"] = "digitrec train " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in history["config"].items()
        if k in ("dataset", "model", "split", "limit", "epochs", "batch_size", "lr", "optimizer", "seed")
        and v is not None)
    record = {"machine": info, "note": args.note, "metrics": metrics, "history": history}
    write_json(out / "result.json", record)
    epochs = history["epochs"]
    lines = [f"# {args.name}: {metrics['model']} on {metrics['dataset']} ({metrics['split']} split)", "",
             f"Recorded {info['date']} from run `{run}`; training command: `{info['command']}`.",
             f"Hardware: {info['cpu']}, {info['cpu_cores']} cores, GPU: {info['gpu'] or 'none'}; torch {info['torch']}.",
             *( [args.note] if args.note else []), "",
             f"Split sizes: {metrics['sizes']}. Best validation epoch: {metrics['best_epoch']} of {metrics['epochs']}.", "",
             "| test n | accuracy | precision (macro) | recall (macro) | F1 (macro) | training time |",
             "|---|---|---|---|---|---|",
             f"| {metrics['n']} | {metrics['accuracy']:.2%} | {metrics['precision_macro']:.2%} | "
             f"{metrics['recall_macro']:.2%} | {metrics['f1_macro']:.2%} | {metrics['train_time_s']:.0f} s |", "",
             "| epoch | train loss | train acc | val loss | val acc | epoch time |", "|---|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['train_loss']:.4f} | {e['train_acc']:.2%} | {e['val_loss']:.4f} | "
              f"{e['val_acc']:.2%} | {e['epoch_time_s']:.0f} s |" for e in epochs]
    lines += ["", " ".join(f"![{f[:-4]}]({f})" for f in figures), ""]
    write_text(out / "README.md", "\n".join(lines))
    print(f"wrote {out}/")


if __name__ == "__main__":
    main()
