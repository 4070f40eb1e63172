"""The paper's Table 1 on MNIST, full size, as a results record: svm, knn, simple-cnn, paper-cnn and hybrid (the
paper's CNN + ResNet-18 "proposed model") on the paper's 80/10/10 split, with each row's provenance.

    DIGITREC_DATA=/work/shared/data python -m benchmarks.table1 [--work runs/table1] [--threads 2] [--report]
        → benchmarks/results/table1-mnist-<machine>-<date>.{json,md} (+ -chart.png; report.html/png with --report)

Neural runs are trained here with `digitrec train --preset paper` (a rerun resumes them: stop it any time), each
launch's provenance kept beside its run folder (WORK/<model>-mnist.launches.json); svm and knn are fitted afresh
by `digitrec compare` (seconds), which then tables all five. Bookkeeping for long runs on a shared machine lives here, not in
compare: with --allow-unfinished a run still training is tabled from its best checkpoint so far (marked unfinished);
a run whose epochs took very different times gets a note estimating its quiet-machine cost; the load average at
the start and the end says whether other work shared the machine. --no-train tables what exists.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.provenance import (ROOT, describe, load_average, machine_slug, problem, provenance,
                                   source_state)
from digitrec.compare import CompareOptions, commit_of, run_compare, to_markdown, write_tables
from digitrec.fileio import write_json, write_text
from digitrec.models.classical import CLASSICAL

RESULTS = Path(__file__).parent / "results"
MODELS = "svm,knn,simple-cnn,paper-cnn,hybrid"


def epoch_time_note(dataset: str, model: str, run_dir: Path) -> str | None:
    """A note when a run's epochs took very different times (the machine was shared for some of them): its total
    training time then overstates the model's cost. The estimate for a quiet machine is epochs × the median of the
    epochs within 1.5× of the fastest (the fastest epoch alone runs low even on a quiet machine)."""
    try:
        times = [e["epoch_time_s"] for e in json.loads((run_dir / "history.json").read_text())["epochs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if len(times) < 3:
        return None
    fastest, median = min(times), statistics.median(times)
    slow = [i + 1 for i, t in enumerate(times) if t > 1.5 * fastest]
    if not slow:
        return None
    quiet = statistics.median([t for t in times if t <= 1.5 * fastest])
    return (f"{dataset} {model}: epoch times ranged {fastest:.0f}–{max(times):.0f} s (median {median:.0f} s); "
            f"epoch{'s' if len(slow) > 1 else ''} {', '.join(map(str, slow))} took over 1.5× the fastest, so the "
            f"machine was probably shared then: {len(times)} × the median of the other epochs ({quiet:.0f} s) = "
            f"{len(times) * quiet:.0f} s is closer to the cost on a quiet machine than the {sum(times):.0f} s recorded")


def shared_machine_note(start: list[float] | None, end: list[float] | None, cores: int | None) -> str | None:
    busy = max((start or []) + (end or []), default=0.0)
    if busy <= (cores or 1):
        return None
    return (f"the machine was shared with other work: load average up to {busy:.1f} on {cores} cores, so wall-clock "
            f"times are inflated; cpu_time_s in the JSON is the measuring process's CPU time")


# --- training, with each launch's provenance ----------------------------------------------------------------------

def _launches_file(run_dir: Path) -> Path:
    return run_dir.with_name(run_dir.name + ".launches.json")


def train(model: str, dataset: str, run_dir: Path, threads: int | None, extra: list[str]) -> None:
    """`digitrec train --preset paper` for one model, resumed when its folder holds an unfinished run."""
    if (run_dir / "metrics.json").is_file():
        return
    argv = [sys.executable, "-m", "digitrec", "train", "--preset", "paper", "--model", model, "--dataset", dataset,
            "--no-progress", "--out", str(run_dir), *(["--threads", str(threads)] if threads else []), *extra,
            *(["--resume"] if (run_dir / "last.pt").is_file() else [])]
    launch = provenance(argv)
    if problem(launch):
        raise SystemExit(f"cannot train for a record: {problem(launch)}")
    launches = json.loads(_launches_file(run_dir).read_text()) if _launches_file(run_dir).is_file() else []
    write_json(_launches_file(run_dir), launches + [launch])
    subprocess.run(argv, check=True)
    after = source_state()
    if (after["commit"], after["diff_sha256"]) != (launch["commit"], launch["diff_sha256"]):
        raise SystemExit(f"the source tree changed while {model} trained: which code ran is unknown")


def run_commit(run_dir: Path) -> tuple[str | None, list[dict]]:
    """The commit a run was trained at, from the launches recorded here (all must agree) or the run's own records."""
    launches = json.loads(_launches_file(run_dir).read_text()) if _launches_file(run_dir).is_file() else []
    states = {(p["commit"], p["dirty"], p["diff_sha256"]) for p in launches}
    if len(states) > 1:
        return "mixed: launched at different code states", launches
    if launches:
        return commit_of(launches[0]), launches
    from digitrec.runs import provenance_of

    for name in ("history.json", "metrics.json"):  # a run trained elsewhere: the provenance training wrote, if any
        try:
            found = provenance_of(json.loads((run_dir / name).read_text()))
        except (OSError, ValueError, AttributeError):
            continue
        if found is not None:
            return commit_of(found), []
    return None, []


def archive(run_dir: Path, folder: Path) -> None:
    """run_dir (weights left out) and its launches file as one .tgz in `folder`."""
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / f"{run_dir.name}.tgz", "w:gz") as tar:
        tar.add(run_dir, arcname=run_dir.name, filter=lambda t: None if t.name.endswith(".pt") else t)
        if _launches_file(run_dir).is_file():
            tar.add(_launches_file(run_dir), arcname=_launches_file(run_dir).name)


def snapshot_unfinished(run_dir: Path, work: Path) -> Path:
    """A run still training, frozen for the table: its history and best checkpoint so far, evaluated afresh."""
    from digitrec import checkpoint
    from digitrec.evaluate import evaluate_checkpoint

    snap = work / "snapshots" / run_dir.name
    shutil.rmtree(snap, ignore_errors=True)
    snap.mkdir(parents=True)
    for f in ("history.json", "model.pt"):
        shutil.copy2(run_dir / f, snap / f)
    history = json.loads((snap / "history.json").read_text())
    ckpt = checkpoint.load(snap / "model.pt")
    metrics = evaluate_checkpoint(snap / "model.pt", history["dataset"], history["split"],
                                  data_dir=history.get("config", {}).get("data_dir"))
    done, planned = len(history["epochs"]), history.get("config", {}).get("epochs")
    metrics.update({"model": ckpt["model_name"], "epochs": done, "best_epoch": ckpt.get("epoch"),
                    "sizes": history.get("sizes", metrics["sizes"]), "train_time_s": history["train_time_s"],
                    "unfinished": {"epochs_done": done, "epochs_planned": planned},
                    "description": f"unfinished run: {done} of {planned} epochs when tabled"})
    write_json(snap / "metrics.json", metrics)
    return snap


# --- the table --------------------------------------------------------------------------------------------------

def annotate(result: dict, table_dir: Path, prov: dict, commits: dict[str, str | None]) -> None:
    """Rows: the commit each was trained at, unfinished runs marked; notes on uneven epochs and a shared machine."""
    for row in result["rows"]:
        if row["status"] == "trained":  # fitted by compare in this process
            row["commit"] = commit_of(prov)
        elif row["model"] in commits:
            row["commit"] = commits[row["model"]]
        metrics = json.loads((table_dir / row["run_dir"] / "metrics.json").read_text()) if row["run_dir"] else {}
        if metrics.get("unfinished"):
            u = metrics["unfinished"]
            row["status"] = "unfinished"
            row["note"] = (f"training unfinished when tabled: {u['epochs_done']} of {u['epochs_planned']} epochs "
                           f"done; its best checkpoint so far (epoch {metrics.get('best_epoch')}) evaluated")
        note = epoch_time_note(row["dataset"], row["model"], table_dir / row["run_dir"]) if row["run_dir"] else None
        if note:
            result["notes"].append(note)
    result["load_average"] = {"start": prov.get("load_average"), "end": load_average()}
    note = shared_machine_note(prov.get("load_average"), result["load_average"]["end"],
                               prov["hardware"]["cpu_cores"])
    if note:
        result["notes"].append(note)


def neural_runs(args, models: list[str], work: Path) -> tuple[dict[str, Path], dict[str, str | None]]:
    """Each neural model's run folder for the table (trained or resumed here, unless --no-train) and its commit."""
    reuse, commits = {}, {}
    extra = [a for flag, v in (("--epochs", args.epochs), ("--limit", args.limit)) if v for a in (flag, str(v))]
    extra += args.train_flag  # how the runs go (e.g. --cuda-graphs), never the recipe: each launch's argv records them
    neural = [m for m in models if m not in CLASSICAL]
    for m in sorted(neural, key=lambda m: m != "hybrid"):  # the longest first, while the most time is left
        run_dir = work / f"{m}-{args.dataset}"
        if not args.no_train:
            train(m, args.dataset, run_dir, args.threads, extra)
            if args.archive:  # at once: a machine lent for a limited time keeps what it measured
                archive(run_dir, Path(args.archive))
    for m in neural:
        run_dir = work / f"{m}-{args.dataset}"
        if not (run_dir / "metrics.json").is_file():
            if not (args.allow_unfinished and (run_dir / "model.pt").is_file()):
                raise SystemExit(f"{run_dir}: not finished (train it, or --allow-unfinished to table it so far)")
            commits[m], _ = run_commit(run_dir)
            run_dir = snapshot_unfinished(run_dir, work)
        else:
            commits[m], _ = run_commit(run_dir)
        reuse[m] = run_dir
    return reuse, commits


def record(result: dict, prov: dict, table_dir: Path, results: Path, name: str) -> Path:
    stem = results / f"{name}-{machine_slug()}-{datetime.date.today().isoformat()}"
    rec = {"kind": "table1", "provenance": prov, "table": result}
    write_json(stem.with_suffix(".json"), rec)
    write_text(stem.with_suffix(".md"), to_markdown(result) + f"\nRecorded by: {describe(prov)}.\n")
    if (table_dir / "chart.png").is_file():
        shutil.copyfile(table_dir / "chart.png", stem.with_name(stem.name + "-chart.png"))
    return stem


def report(table_dir: Path, results: Path) -> None:
    """report.html over the comparison, and a screenshot of it (needs Chromium)."""
    html = results / "report.html"
    subprocess.run([sys.executable, "-m", "digitrec", "report", str(table_dir), "--out", str(html)], check=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={results / 'report.png'}", "--window-size=1400,3000", html.resolve().as_uri()],
                       check=False, capture_output=True, timeout=300)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(ROOT / "runs" / "table1"))
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch and scikit-learn")
    ap.add_argument("--no-train", action="store_true", help="table the runs that exist; train nothing")
    ap.add_argument("--allow-unfinished", action="store_true", help="table runs still training (marked so)")
    ap.add_argument("--quick", action="store_true", help="2 epochs on 5,000 images: checks the script only")
    ap.add_argument("--epochs", type=int, default=None, help="neural epochs (default: the paper's 25; 2 with --quick)")
    ap.add_argument("--limit", type=int, default=None, help="neural training images (default: all; 5000 with --quick)")
    ap.add_argument("--classical-limit", type=int, default=None, help="svm/knn training images (default: all)")
    ap.add_argument("--results", default=str(RESULTS), help="folder for the record")
    ap.add_argument("--name", default=None, help="record name (default: table1-DATASET, table1-quick-DATASET)")
    ap.add_argument("--report", action="store_true", help="also write report.html (+ report.png) into --results")
    ap.add_argument("--train-flag", action="append", default=[], metavar="FLAG",
                    help="passed to every `digitrec train` (repeatable; e.g. --train-flag=--cuda-graphs)")
    ap.add_argument("--archive", default=None, metavar="DIR",
                    help="after each neural run, its folder (no weights) and launches as DIR/<run>.tgz")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.limit, args.classical_limit = args.epochs or 2, args.limit or 5000, args.classical_limit or 5000
    work, results = Path(args.work), Path(args.results)
    models = [m for m in args.models.split(",") if m]
    prov = provenance()
    reuse, commits = neural_runs(args, models, work)
    table_dir = work / f"table-{args.dataset}"
    shutil.rmtree(table_dir, ignore_errors=True)  # svm and knn are refitted each time (seconds): one code state
    result = run_compare(CompareOptions(datasets=[args.dataset], models=models, out=table_dir, reuse=reuse,
                                        threads=args.threads, progress=False, epochs=args.epochs, limit=args.limit,
                                        classical_limit=args.classical_limit))
    annotate(result, table_dir, prov, commits)
    write_tables(result, table_dir, chart=True)
    small = args.quick or args.epochs or args.limit or args.classical_limit
    name = args.name or f"table1-{'small-' if small else ''}{args.dataset}"
    stem = record(result, prov, table_dir, results, name)
    if args.report:
        report(table_dir, results)
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
