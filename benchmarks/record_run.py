"""Record a training run in benchmarks/results/: metrics, per-epoch history, figures, and how it was made.

    python -m benchmarks.record_run --name paper-preset-mnist --train --preset paper --dataset mnist
        trains here (`digitrec train ARGS --out runs/records/NAME`) and records the run with this command's
        provenance: the exact argv of the training command, the commit and whether the tree was clean (else the
        diff's hash), checked again when training ends — a tree changed meanwhile is refused.
    python -m benchmarks.record_run RUN_DIR --name paper-preset-mnist
        records a run trained earlier, with the provenance its training wrote into history.json / metrics.json
        (argv, commit, dirty, diff_sha256, hardware), or the one benchmarks/table1.py kept when it launched it
        (e.g. runs/table1/paper-cnn-mnist); a run without one is refused: its code state is unknown.

Writes benchmarks/results/<name>-<machine>-<date>/{result.json, README.md, accuracy.png, loss.png, confusion.png}.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.provenance import ROOT, describe, machine_slug, problem, provenance, source_state
from digitrec.fileio import write_json, write_text

RESULTS = Path(__file__).parent / "results"
FIGURES = ("accuracy.png", "loss.png", "confusion.png")


def run_provenance(run: Path, metrics: dict, history: dict) -> dict[str, Any]:
    """The provenance training wrote into the run (history.json first, then metrics.json), read defensively; else
    the one benchmarks/table1.py kept when it launched the training (RUN.launches.json, every launch alike)."""
    from digitrec.runs import provenance_of

    for record in (history, metrics):
        prov = provenance_of(record)
        if prov is not None:
            return prov
    launches_file = run.with_name(run.name + ".launches.json")
    if launches_file.is_file():
        launches = json.loads(launches_file.read_text())
        if launches and len({(p["commit"], p["dirty"], p["diff_sha256"]) for p in launches}) == 1:
            return {**launches[0], "launches": len(launches)}
        raise SystemExit(f"{launches_file}: the run was launched at different code states; not recorded")
    raise SystemExit(f"{run}: no provenance (sessions or provenance) in history.json or metrics.json — trained before "
                     f"digitrec recorded it, so the code it ran is unknown; train it again with "
                     f"`python -m benchmarks.record_run --name NAME --train ARGS`")


def train_here(name: str, args: list[str], work: Path) -> tuple[Path, dict[str, Any]]:
    """`digitrec train ARGS` run from here; its provenance taken before it starts and checked after it ends."""
    out = Path(args[args.index("--out") + 1]) if "--out" in args else work / name
    argv = [sys.executable, "-m", "digitrec", "train", *args, *([] if "--out" in args else ["--out", str(out)])]
    trained = provenance(argv)
    if problem(trained):
        raise SystemExit(f"cannot record: {problem(trained)}")
    subprocess.run(argv, check=True)
    after = source_state()
    if (after["commit"], after["diff_sha256"]) != (trained["commit"], trained["diff_sha256"]):
        raise SystemExit("the source tree changed while the run trained: which code ran is unknown; not recorded")
    return out, trained


def metrics_table(m: dict[str, Any]) -> list[str]:
    """Markdown rows: the run's test metrics and training time."""
    return ["| test n | accuracy | precision (macro) | recall (macro) | F1 (macro) | training time |",
            "|---|---|---|---|---|---|",
            f"| {m['n']:,} | {m['accuracy']:.2%} | {m['precision_macro']:.2%} | {m['recall_macro']:.2%} | "
            f"{m['f1_macro']:.2%} | {m['train_time_s']:.0f} s |"]


def markdown(record: dict[str, Any], figures: list[str]) -> str:
    m, epochs, trained = record["metrics"], record["history"]["epochs"], record["trained"]
    lines = [f"# {record['name']}: {m['model']} on {m['dataset']} ({m['split']} split)", "",
             f"Trained: {describe(trained)}.", "",
             f"Recorded: {describe(record['provenance'])}.", *([record["note"], ""] if record["note"] else [""]),
             f"Split sizes: {m['sizes']}. Best validation epoch: {m.get('best_epoch')} of {m.get('epochs')}.", "",
             *metrics_table(m), "",
             "| epoch | train loss | train acc | val loss | val acc | epoch time |", "|---|---|---|---|---|---|"]
    lines += [f"| {e['epoch']} | {e['train_loss']:.4f} | {e['train_acc']:.2%} | {e['val_loss']:.4f} | "
              f"{e['val_acc']:.2%} | {e['epoch_time_s']:.0f} s |" for e in epochs]
    lines += ["", " ".join(f"![{f[:-4]}]({f})" for f in figures), ""]
    return "\n".join(lines)


def record(run: Path, name: str, note: str, trained: dict[str, Any] | None, results: Path = RESULTS) -> Path:
    metrics = json.loads((run / "metrics.json").read_text())
    history = json.loads((run / "history.json").read_text())
    trained = trained or run_provenance(run, metrics, history)
    if problem(trained):
        raise SystemExit(f"{run}: cannot record a run whose code state is unknown ({problem(trained)})")
    out = results / f"{name}-{machine_slug()}-{datetime.date.today().isoformat()}"
    out.mkdir(parents=True, exist_ok=True)
    figures = [f for f in FIGURES if (run / f).is_file()]
    for fig in figures:
        shutil.copyfile(run / fig, out / fig)
    rec = {"kind": "training-run", "name": name, "note": note, "trained": trained, "provenance": provenance(),
           "metrics": metrics, "history": history}
    write_json(out / "result.json", rec)
    write_text(out / "README.md", markdown(rec, figures))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", help="a finished run folder (omit with --train)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="")
    ap.add_argument("--work", default=str(ROOT / "runs" / "records"), help="where --train puts its run folder")
    ap.add_argument("--train", nargs=argparse.REMAINDER, metavar="ARGS", help="`digitrec train` arguments (last)")
    args = ap.parse_args()
    if (args.run is None) == (args.train is None):
        ap.error("give either RUN_DIR or --train ARGS")
    trained = None
    run = Path(args.run) if args.run else None
    if args.train is not None:
        run, trained = train_here(args.name, args.train, Path(args.work))
    print(f"wrote {record(run, args.name, args.note, trained)}/")


if __name__ == "__main__":
    main()
