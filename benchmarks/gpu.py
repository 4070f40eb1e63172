"""The GPU speed record: one call on a lent GPU machine, one record naming the card, rewritten after every run.

    eval "$(python -m benchmarks.provenance --env)"   # where the checkout is: names the code the copy runs
    DIGITREC_DATA=DIR python -m benchmarks.gpu [--parts speed,paper] [--out DIR] [--quick]
    (benchmarks/gpu.sh runs this, then Table 1)

Parts (each run is `digitrec train` as a user runs it, a fresh process; times from its metrics.json):
  speed  the speedrun and fast presets, eager and with --cuda-graphs (the whole training step as one CUDA graph),
         3 seeds each: test accuracy and training time (target: 99.2 % in 0.5 s of training)
  paper  the paper preset (paper-cnn, batch 64, 25 epochs, paper split) with --cuda-graphs, and 2 eager epochs
         for the per-epoch ratio in the same run (target: 25 epochs in 30 s)
Refuses to start (exit 2, nothing written) without a CUDA GPU or when the code state is unknown.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.provenance import describe, machine_slug, of_record, problem, provenance

PARTS = ("speed", "paper")
SEEDS = (0, 1, 2)


def refusal() -> str | None:
    """Why this machine cannot make the GPU record, or None."""
    import torch

    if not torch.cuda.is_available():
        return ("no CUDA GPU visible (torch.cuda.is_available() is False): run this on a machine with an NVIDIA GPU "
                "and a CUDA build of torch")
    why = problem(provenance())
    if why:
        return (f"the code state is unknown ({why}): where the checkout is, run eval \"$(python -m "
                "benchmarks.provenance --env)\" and pass those variables to this machine")
    return None


def plan(parts: list[str], quick: bool) -> list[dict[str, Any]]:
    """The runs, in order: (part, preset, mode, seed, extra flags)."""
    small = ["--limit", "2000", "--epochs", "1"] if quick else []
    runs = []
    if "speed" in parts:
        for preset in ("speedrun", "fast"):
            for mode, flags in (("eager", []), ("cuda-graphs", ["--cuda-graphs"])):
                runs += [{"part": "speed", "preset": preset, "mode": mode, "seed": s, "extra": [*flags, *small]}
                         for s in (SEEDS[:1] if quick else SEEDS)]
    if "paper" in parts:
        runs.append({"part": "paper", "preset": "paper", "mode": "cuda-graphs", "seed": 0,
                     "extra": ["--cuda-graphs", *(small or [])]})
        runs.append({"part": "paper", "preset": "paper", "mode": "eager", "seed": 0,
                     "extra": small or ["--epochs", "2"]})
    return runs


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (preset, mode): median test accuracy, training time and time per epoch over its seeds."""
    import numpy as np

    groups: dict[tuple[str, str], list] = {}
    for r in runs:
        groups.setdefault((r["preset"], r["mode"]), []).append(r)
    return [{"preset": p, "mode": m, "seeds": len(rs),
             "accuracy_median": float(np.median([r["test_accuracy"] for r in rs])),
             "train_time_median_s": float(np.median([r["train_time_s"] for r in rs])),
             "epoch_time_median_s": float(np.median([r["train_time_s"] / r["epochs"] for r in rs])),
             "epochs": rs[0]["epochs"], "command_wall_median_s": float(np.median([r["command_wall_s"] for r in rs]))}
            for (p, m), rs in groups.items()]


def summary_table(summary: list[dict[str, Any]]) -> list[str]:
    """Markdown rows: per preset and mode, median accuracy and times."""
    out = ["| preset | mode | seeds | epochs | test accuracy (median) | training time (median) | per epoch | "
           "whole command |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    return out + [f"| {s['preset']} | {s['mode']} | {s['seeds']} | {s['epochs']} | {s['accuracy_median']:.2%} | "
                  f"{s['train_time_median_s']:.2f} s | {s['epoch_time_median_s']:.2f} s | "
                  f"{s['command_wall_median_s']:.1f} s |" for s in summary]


def markdown(r: dict[str, Any]) -> str:
    prov = of_record(r) or {}
    out = [f"# digitrec on a GPU: {prov.get('hardware', {}).get('gpu')} ({prov.get('date')})", "",
           describe(prov) + ".", ""]
    if not r.get("complete"):
        out += ["**Partial results: the call ended before every run had finished.**", ""]
    out += summary_table(r["summary"])
    out += ["", "Every run: `" + "`, `".join(x["command"] for x in r["runs"]) + "`."] if r["runs"] else []
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    ap.add_argument("--work", default="/tmp/digitrec-gpu/runs")
    ap.add_argument("--quick", action="store_true", help="tiny runs: checks the script, numbers mean nothing")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise SystemExit(f"benchmarks.gpu: unknown part(s) {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(PARTS)}")
    why = refusal()
    if why:
        print(f"benchmarks.gpu: {why}", file=sys.stderr)
        raise SystemExit(2)
    run_all(plan(parts, args.quick), Path(args.out), Path(args.work), args.quick)


def run_all(runs: list[dict[str, Any]], out: Path, work: Path, quick: bool) -> None:
    from benchmarks.run import log, run_preset
    from digitrec.fileio import write_json, write_text

    stem = out / f"gpu-{'quick-' if quick else ''}{machine_slug()}-{datetime.date.today().isoformat()}"
    record: dict[str, Any] = {"kind": "gpu-speed", "provenance": provenance(), "complete": False, "quick": quick,
                              "runs": [],
                              "summary": []}
    out.mkdir(parents=True, exist_ok=True)
    for spec in runs:
        name = f"{spec['preset']}-{spec['mode']}-{spec['seed']}"
        row = run_preset(spec["preset"], spec["seed"], work / name, ["--device", "cuda", *spec["extra"]])
        record["runs"].append({**row, "mode": spec["mode"], "part": spec["part"]})
        record["summary"] = summarize(record["runs"])
        write_json(stem.with_suffix(".json"), record)  # after every run: a cut-off call keeps what it measured
        write_text(stem.with_suffix(".md"), markdown(record))
        log(f"{name}: {row['test_accuracy']:.4f} in {row['train_time_s']:.2f}s of training "
            f"({row['command_wall_s']:.1f}s whole command)")
    record["complete"] = True
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), markdown(record))


if __name__ == "__main__":
    main()
