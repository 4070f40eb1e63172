"""MNIST accuracy frontier: the `accurate` preset over seeds, their ensemble, and what each ingredient buys.

    DIGITREC_DATA=/work/shared/data python -m benchmarks.accuracy   # seeds, ensemble, 3 ablations (≈ 65 min, 2 cores)
    python -m benchmarks.accuracy --ablations all                   # all 7 ablations (≈ 120 min)
    python -m benchmarks.accuracy --ablations none                  # seeds + ensemble only (≈ 40 min)
    python -m benchmarks.accuracy --old-ensemble                    # also retrain the old ensemble (+ ≈ 5 min)
    python -m benchmarks.accuracy --quick                           # smoke test: tiny runs, a record marked quick

Every training is the command a user types, `python -m digitrec train --preset accurate --seed S [CHANGE] --out
WORK/NAME`, on the canonical split (the official training set less a stratified 10 % validation part; the official
10,000 test images untouched). Each run keeps its best epoch by validation accuracy; nothing here chooses anything
on the test set — test accuracy is only reported, next to validation accuracy, which is what choices were made on.

Runs (all under --work; a finished run is reused when it was trained from this same code state, or from a clean
commit with the same package code, src/digitrec; an interrupted one is resumed, so a stopped benchmark continues
where it was; with --jobs 1 each run is scored before the next one trains, so nothing else runs beside a training):
  seedS            the preset, seeds --seeds (median and best of these are the headline numbers)
  ABLATION         seed 0 with one ingredient changed (--ablations; see ABLATIONS) — one seed each, so a difference
                   smaller than the seeds' spread is noise
  fast-seedS, best with --old-ensemble: the old ensemble's members (three 2-epoch `fast` runs and one `best` run),
                   to show why it lost to its best member
EMA and TTA need no extra training: every run is also scored with its last epoch's raw (non-EMA) weights, its EMA
weights, and with and without test-time augmentation. The ensemble is `digitrec ensemble` of the seed runs, plus the
variants that explain it (logits averaged instead of probabilities, members without TTA / EMA, the old members).

Writes benchmarks/results/accuracy-<machine>-<date>.json and .md (rewritten after every run, so partial results
survive), with the provenance block; refuses to start from a tree whose state it cannot name. --quick trains a tiny
preset (300 images, one epoch) to check the whole pipeline in about a minute and writes accuracy-quick-*.json,
which the README never shows.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import ROOT, describe, machine_slug, problem, provenance  # noqa: E402
from digitrec.fileio import write_json, write_text  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PRESET = "accurate"
BUDGET_S = 900  # training time allowed per run on the 2-core CPU
TARGETS = {"median": 0.997, "best": 0.9975, "ensemble": 0.998}
# one ingredient changed at a time, seed 0: name → (flags added to the preset's, what the row measures)
ABLATIONS = {
    "no-elastic": (["--elastic", "0"], "without elastic distortion (affine augmentation only)"),
    "no-augment": (["--no-augment"], "without any augmentation"),
    "no-label-smoothing": (["--label-smoothing", "0"], "without label smoothing"),
    "epochs-12": (["--epochs", "12"], "12 epochs (the `best` preset's schedule length) instead of the preset's"),
    "width-16": (["--model-option", "width=16"], "half the width (16 channels instead of 32)"),
    "fast-network": (["--model", "fast"], "the `fast` network (four convolutions) instead of `deep` (six)"),
    "fp32": (["--no-bf16-cpu"], "float32 instead of bfloat16 autocast (the training time changes most)"),
}
# augmentation, schedule and width need their own runs (EMA and TTA are measured on the seed runs themselves); the
# others are opt-in (--ablations all, ≈ 55 min more) to keep the default near an hour on 2 cores
DEFAULT_ABLATIONS = ["no-augment", "epochs-12", "width-16"]
QUICK_PRESET = """model = "fast"
model_options = { width = 8 }
split = "canonical"
limit = 300
epochs = 1
batch_size = 64
optimizer = "sgd"
lr = 0.05
schedule = "onecycle"
warmup = 0.2
ema = 0.9
tta = true
elastic = 1.0
"""
OLD_ENSEMBLE = {"fast-seed0": ["--preset", "fast", "--seed", "0"], "fast-seed1": ["--preset", "fast", "--seed", "1"],
                "fast-seed2": ["--preset", "fast", "--seed", "2"], "best": ["--preset", "best", "--seed", "0"]}


@dataclass
class Run:
    name: str
    args: list[str]
    role: str  # seed | ablation | old
    what: str = ""
    out: Path = Path()
    timing: dict[str, Any] = field(default_factory=dict)


def planned(preset: str, seeds: list[int], ablations: list[str], old: bool, work: Path) -> list[Run]:
    runs = [Run(f"seed{s}", ["--preset", preset, "--seed", str(s)], "seed", f"{preset}, seed {s}") for s in seeds]
    runs += [Run(a, ["--preset", preset, "--seed", "0", *ABLATIONS[a][0]], "ablation", ABLATIONS[a][1])
             for a in ablations]
    runs += [Run(n, a, "old", " ".join(a[:2]).replace("--preset ", "") + " preset") for n, a in OLD_ENSEMBLE.items()
             if old]
    for r in runs:
        r.out = work / r.name
    return runs


# --- training ----------------------------------------------------------------------------------------------------

def run_state() -> dict[str, Any]:
    """The code state as training records it (runinfo, from the package's folder: with untracked files its diff hash
    differs from benchmarks.provenance's, which hashes them by paths from the repository root)."""
    from digitrec.runinfo import source_state as state

    return state()


def package_tree(commit: str | None) -> str | None:
    """Git's hash of the package's code (src/digitrec: networks, training, presets) at a commit; None when unknown."""
    if not commit:
        return None
    out = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{commit}:src/digitrec"], cwd=ROOT,
                         capture_output=True, text=True)
    return out.stdout.strip() or None


def check_reusable(run: Run, state: dict[str, Any]) -> None:
    """A run folder from other code cannot stand in this record: refuse it (a clear line, nothing overwritten).
    Other code means another package: a run trained from a clean commit whose src/digitrec is this clean commit's
    (only benchmarks or documents differ) is the same training and is reused. `state`: run_state() of this
    benchmark."""
    from digitrec.runs import provenance_of

    history = run.out / "history.json"
    if not history.is_file():
        return
    prov = provenance_of(json.loads(history.read_text())) or {}
    if (prov.get("commit"), prov.get("diff_sha256")) == (state["commit"], state["diff_sha256"]):
        return
    clean = prov.get("diff_sha256") is None and state["diff_sha256"] is None
    tree = package_tree(prov.get("commit")) if clean else None
    if tree is not None and tree == package_tree(state["commit"]):
        return
    raise SystemExit(f"{run.out} was trained from other code ({prov.get('commit')}, diff "
                     f"{prov.get('diff_sha256')}); use another --work or remove it")


def trained(runs: list[Run], jobs: int, threads: int | None, state: dict[str, Any]):
    """The runs, trained (or reused), in plan order. With --jobs 1 each is scored before the next one starts, so a
    run's training time is its own; with more, trainings overlap each other and the scoring (timings indicative)."""
    if jobs == 1:
        for run in runs:
            yield train(run, threads, state)
        return
    pool = concurrent.futures.ThreadPoolExecutor(jobs)
    try:
        for future in [pool.submit(train, r, threads, state) for r in runs]:
            yield future.result()
    finally:  # a failed run stops the benchmark: the queued ones are not started
        pool.shutdown(cancel_futures=True)


def train(run: Run, threads: int | None, state: dict[str, Any]) -> Run:
    """`digitrec train` in a child process (resumed if interrupted); its wall and CPU time. Finished runs reused."""
    check_reusable(run, state)
    if (run.out / "metrics.json").is_file():
        run.timing = {"reused": True}
        return run
    argv = [sys.executable, "-m", "digitrec", "train", *run.args, "--out", str(run.out), "--resume-if-exists",
            "--no-progress", *(["--threads", str(threads)] if threads else [])]
    run.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(run.out.parent / f"{run.name}.log", "ab") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{run.name}: `{' '.join(argv)}` failed (exit {child.returncode}); see "
                         f"{run.out.parent / (run.name + '.log')}")
    run.timing = {"reused": False, "wall_s": time.perf_counter() - t0, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "argv": argv}
    return run


# --- scoring: every run with its delivered, last raw and last EMA weights, with and without TTA ------------------

def weight_sets(run: Path) -> dict[str, torch.nn.Module]:
    """model.pt (best validation epoch; EMA weights when the run kept an EMA) and last.pt's raw and EMA weights."""
    from digitrec import checkpoint

    sets = {"delivered": checkpoint.load_model(run / "model.pt")[0]}
    last = checkpoint.load(run / "last.pt")
    sets["last_raw"] = checkpoint.build_model(last, run / "last.pt")
    if last.get("ema") is not None:
        ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
        sets["last_ema"] = checkpoint.build_model({**last, "model": ema}, run / "last.pt")
    return sets


def logits(model: torch.nn.Module, images: np.ndarray, tta: bool) -> torch.Tensor:
    from digitrec.predict import forward_in_batches, tta_logits

    x = torch.from_numpy(images)
    return tta_logits(model, x, 1000) if tta else forward_in_batches(model, x, 1000)


def score(run: Run, split) -> dict[str, Any]:
    """Accuracies of every weight set × TTA on validation and test; the delivered test logits kept for ensembles."""
    from digitrec.runs import provenance_of

    metrics = json.loads((run.out / "metrics.json").read_text())
    trained_from = (provenance_of(json.loads((run.out / "history.json").read_text())) or {}).get("commit")
    views, kept = {}, {}
    for name, model in weight_sets(run.out).items():
        for tta in (False, True):
            key = name + ("+tta" if tta else "")
            val = logits(model, split.val_images, tta)
            test = logits(model, split.test_images, tta)
            views[key] = {"val": float((val.argmax(1).numpy() == split.val_labels).mean()),
                          "test": float((test.argmax(1).numpy() == split.test_labels).mean())}
            kept[key] = test
    row = {"name": run.name, "role": run.role, "what": run.what, "args": run.args, "tta": metrics.get("tta", False),
           "test_accuracy": metrics["accuracy"], "best_val_acc": metrics["best_val_acc"],
           "best_epoch": metrics["best_epoch"], "epochs": metrics["epochs"], "train_time_s": metrics["train_time_s"],
           "threads": metrics.get("sessions", [{}])[-1].get("hardware", {}).get("torch_threads"),
           "trained_from": trained_from, "views": views, **run.timing}
    return {"row": row, "logits": kept}


# --- ensembles -----------------------------------------------------------------------------------------------------

def vote(members: list[torch.Tensor], labels: np.ndarray, average: str = "probabilities") -> float:
    """Accuracy of the members' mean softmax probabilities (or mean logits)."""
    stacked = torch.stack(members)
    mean = stacked.softmax(-1).mean(0) if average == "probabilities" else stacked.mean(0)
    return float((mean.argmax(1).numpy() == labels).mean())


def ensembles(seed_runs: list[Run], kept: dict[str, dict[str, torch.Tensor]], labels: np.ndarray,
              work: Path) -> dict[str, Any]:
    """`digitrec ensemble` of the seed runs (the product), and the variants that explain what it gains and why."""
    out = work / "ensemble"
    argv = [sys.executable, "-m", "digitrec", "ensemble", *(str(r.out) for r in seed_runs), "--out", str(out)]
    subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    product = json.loads((out / "metrics.json").read_text())
    names = [r.name for r in seed_runs]
    own = ["delivered+tta" if m["tta"] else "delivered" for m in product["members"]]
    variants = {
        "mean probabilities, each member as its run was evaluated (digitrec ensemble)": product["accuracy"],
        "mean logits instead of probabilities": vote([kept[n][v] for n, v in zip(names, own)], labels, "logits"),
        "members without TTA": vote([kept[n]["delivered"] for n in names], labels),
        "members with TTA": vote([kept[n]["delivered+tta"] for n in names], labels),
        "members' last-epoch raw weights (no EMA), TTA as evaluated":
            vote([kept[n]["last_raw" + v.removeprefix("delivered")] for n, v in zip(names, own)], labels),
    }
    return {"argv": [str(a) for a in argv], "members": product["members"], "accuracy": product["accuracy"],
            "best_member_accuracy": product["best_member_accuracy"],
            "gain_over_best_member": product["gain_over_best_member"],
            "members_disagree": product["members_disagree"], "oracle_accuracy": product["oracle_accuracy"],
            "variants": variants}


def old_ensemble(kept: dict[str, dict[str, torch.Tensor]], labels: np.ndarray) -> dict[str, Any] | None:
    """The old 4-member ensemble (three 2-epoch fast runs + one best run, no TTA) and its parts."""
    if not all(n in kept for n in OLD_ENSEMBLE):
        return None
    fast = [kept[n]["delivered"] for n in OLD_ENSEMBLE if n != "best"]
    best = kept["best"]["delivered"]
    return {"members": {n: vote([kept[n]["delivered"]], labels) for n in OLD_ENSEMBLE},
            "all four, mean probabilities": vote([*fast, best], labels),
            "all four, mean logits": vote([*fast, best], labels, "logits"),
            "the three fast runs": vote(fast, labels),
            "best counted three times, each fast run once": vote([*fast, best, best, best], labels)}


# --- summary and tables ----------------------------------------------------------------------------------------------

def headline(rows: list[dict[str, Any]], ens: dict[str, Any] | None) -> dict[str, Any]:
    """Median and best test accuracy over the seeds, against the targets; the slowest run's training time."""
    seeds = [r for r in rows if r["role"] == "seed"]
    if not seeds:
        return {}
    accs = [r["test_accuracy"] for r in seeds]
    out = {"seeds": len(seeds), "median": statistics.median(accs), "best": max(accs), "worst": min(accs),
           "mean": statistics.fmean(accs), "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
           "max_train_time_s": max(r["train_time_s"] for r in seeds), "ensemble": ens["accuracy"] if ens else None}
    out["met"] = {"median": out["median"] >= TARGETS["median"], "best": out["best"] >= TARGETS["best"],
                  "ensemble": bool(ens) and ens["accuracy"] >= TARGETS["ensemble"],
                  "budget": out["max_train_time_s"] <= BUDGET_S}
    return out


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2%}"


def _time(r: dict[str, Any]) -> str:
    if r.get("reused"):  # records from before runs named their commit say nothing more
        extra = f" (reused: trained from {r['trained_from'][:12]})" if r.get("trained_from") else ""
    else:
        extra = f" (command {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU)"
    return f"{r['train_time_s']:.0f} s{extra}"


def runs_table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per run: validation (what selects) and test (what is reported), with and without TTA and EMA."""
    lines = ["| run | what | best epoch | val | val TTA | test | test TTA | test, no EMA (last epoch) | training time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        v = r["views"]
        raw = v["last_raw+tta"]["test"] if r["tta"] else v["last_raw"]["test"]
        lines.append(f"| {r['name']} | {r['what']} | {r['best_epoch']}/{r['epochs']} | {_pct(v['delivered']['val'])} | "
                     f"{_pct(v['delivered+tta']['val'])} | {_pct(v['delivered']['test'])} | "
                     f"{_pct(v['delivered+tta']['test'])} | {_pct(raw)} | {_time(r)} |")
    return lines


def ingredient_table(rows: list[dict[str, Any]]) -> list[str]:
    """What each ingredient buys: test (and validation) accuracy of seed 0 with it and without it."""
    base = next((r for r in rows if r["name"] == "seed0"), None)
    if base is None:
        return []
    own = "delivered+tta" if base["tta"] else "delivered"
    lines = ["| change from the preset (seed 0) | val | test | Δ test |", "|---|---|---|---|",
             f"| none: the preset | {_pct(base['views'][own]['val'])} | {_pct(base['test_accuracy'])} | |"]
    seeds = [r for r in rows if r["role"] == "seed"]
    for label, key in (("no TTA (same runs)", "delivered"), ("no EMA: last epoch's raw weights (same runs)",
                                                               "last_raw" + own.removeprefix("delivered"))):
        val = statistics.fmean(r["views"][key]["val"] for r in seeds)
        test = statistics.fmean(r["views"][key]["test"] for r in seeds)
        mine = statistics.fmean(r["views"][own]["test"] for r in seeds)
        lines.append(f"| {label}, mean of {len(seeds)} seeds | {_pct(val)} | {_pct(test)} | {test - mine:+.2%} |")
    for r in rows:
        if r["role"] == "ablation":
            lines.append(f"| {r['what']} | {_pct(r['best_val_acc'])} (TTA {_pct(r['views'][own]['val'])}) | "
                         f"{_pct(r['test_accuracy'])} | {r['test_accuracy'] - base['test_accuracy']:+.2%} |")
    return lines


def ensemble_lines(ens: dict[str, Any] | None, old: dict[str, Any] | None) -> list[str]:
    lines = []
    if ens:
        lines += ["## `digitrec ensemble` of the seed runs", "", f"Command: `{' '.join(ens['argv'][2:])}`", "",
                  f"**{ens['accuracy']:.2%}**; best member {ens['best_member_accuracy']:.2%} (gain "
                  f"{ens['gain_over_best_member']:+.2%}); the members disagree on {ens['members_disagree']} test "
                  f"images; some member is right on {ens['oracle_accuracy']:.2%}.", "",
                  "| variant | test accuracy |", "|---|---|",
                  *[f"| {k} | {_pct(v)} |" for k, v in ens["variants"].items()], ""]
    if old:
        lines += ["## The old ensemble, retrained: three 2-epoch `fast` runs and one `best` run", "",
                  "| members | test accuracy |", "|---|---|",
                  *[f"| {k} | {_pct(v)} |" for k, v in old["members"].items()],
                  *[f"| {k} | {_pct(v)} |" for k, v in old.items() if k != "members"], ""]
    return lines


def results_table(record: dict[str, Any]) -> list[str]:
    """The record's headline, runs, ingredients and ensembles as Markdown lines (also the README's section)."""
    h, rows = record.get("headline") or {}, record["runs"]
    lines = [f"Preset `{Path(record['preset']).stem}`, canonical split: trained on the official training set less a "
             "6,000-image validation part, best epoch by validation accuracy, tested on the official 10,000 test "
             "images. Choices were made on validation accuracy only; test accuracy is reported.", ""]
    if h:
        met = lambda k: "met" if h["met"][k] else "NOT met"  # noqa: E731
        lines += [f"Seeds: {h['seeds']}. Test accuracy median **{h['median']:.2%}** (target ≥ "
                  f"{TARGETS['median']:.2%}: {met('median')}), best **{h['best']:.2%}** (≥ {TARGETS['best']:.2%}: "
                  f"{met('best')}), worst {h['worst']:.2%}, mean {h['mean']:.2%} ± {h['std']:.2%}; ensemble "
                  f"**{_pct(h['ensemble'])}** (≥ {TARGETS['ensemble']:.2%}: {met('ensemble')}). Longest training "
                  f"{h['max_train_time_s']:.0f} s (≤ {BUDGET_S} s: {met('budget')}).", ""]
    lines += ["## Runs", "", *runs_table(rows), "", "## What each ingredient buys", "", *ingredient_table(rows), "",
              *ensemble_lines(record.get("ensemble"), record.get("old_ensemble"))]
    return lines


def markdown(record: dict[str, Any]) -> str:
    title = f"# MNIST accuracy{' (quick smoke run)' if record.get('quick') else ''}: the `{record['preset']}` preset"
    return "\n".join([f"{title} — {record['provenance']['date']}", "", describe(record["provenance"]), "",
                      *([record["note"], ""] if record["note"] else []), *results_table(record)])


# --- main --------------------------------------------------------------------------------------------------------

def write(record: dict[str, Any], stem: Path) -> None:
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), markdown(record))


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=PRESET)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    ap.add_argument("--ablations", default=",".join(DEFAULT_ABLATIONS),
                    help=f"all, none, or some of {','.join(ABLATIONS)} (default: {','.join(DEFAULT_ABLATIONS)})")
    ap.add_argument("--old-ensemble", action="store_true", help="also retrain the old ensemble's members")
    ap.add_argument("--quick", action="store_true", help="smoke test: a tiny preset, seeds 0,1, one ablation")
    ap.add_argument("--work", default=None, help="run folders, finished runs reused (default runs/accuracy, with "
                    "--quick runs/accuracy-quick)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings at a time (timings are then indicative only)")
    ap.add_argument("--threads", type=int, default=None, help="--threads of each training (default: torch's)")
    ap.add_argument("--note", default="")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.ablations, args.old_ensemble = "0,1", "no-elastic", False
    args.seeds = [int(s) for s in args.seeds.split(",")]
    names = {"all": list(ABLATIONS), "none": []}.get(args.ablations, args.ablations.split(","))
    unknown = sorted(set(names) - set(ABLATIONS))
    if unknown or args.jobs < 1 or 0 not in args.seeds and names:
        ap.error(f"unknown ablation(s) {unknown}" if unknown else "--jobs must be ≥ 1" if args.jobs < 1 else
                 "ablations change seed 0: include 0 in --seeds")
    args.ablations = names
    args.work = args.work or str(ROOT / "runs" / ("accuracy-quick" if args.quick else "accuracy"))
    return args


def main() -> None:
    args = parse_args()
    prov = provenance()
    if problem(prov):
        raise SystemExit(f"cannot record: {problem(prov)}")
    from digitrec.data import load, make_split

    work = Path(args.work)
    if args.quick:
        work.mkdir(parents=True, exist_ok=True)
        write_text(work / "quick.toml", QUICK_PRESET)
        args.preset = str(work / "quick.toml")
    split = make_split(load("mnist"), "canonical")  # a limit shrinks only the training part: scored on all of these
    runs = planned(args.preset, args.seeds, args.ablations, args.old_ensemble, work)
    stem = RESULTS / f"accuracy-{'quick-' if args.quick else ''}{machine_slug()}-{datetime.date.today().isoformat()}"
    record = {"kind": "accuracy", "quick": args.quick, "preset": args.preset, "note": args.note, "provenance": prov,
              "jobs": args.jobs, "threads": args.threads, "targets": TARGETS, "budget_s": BUDGET_S, "runs": []}
    kept: dict[str, dict[str, torch.Tensor]] = {}
    state = run_state()
    for run in runs:  # every folder before any training: a stale one is refused now, not after an hour of others
        check_reusable(run, state)
    for run in trained(runs, args.jobs, args.threads, state):
        scored = score(run, split)
        record["runs"].append(scored["row"])
        kept[run.name] = scored["logits"]
        print(f"{run.name}: test {scored['row']['test_accuracy']:.2%}", flush=True)
        record["headline"] = headline(record["runs"], None)
        write(record, stem)
    now = run_state()
    if (now["commit"], now["diff_sha256"]) != (state["commit"], state["diff_sha256"]):
        raise SystemExit("the source tree changed while the benchmark ran: which code ran is unknown; not recorded")
    seed_runs = [r for r in runs if r.role == "seed"]
    record["ensemble"] = ensembles(seed_runs, kept, split.test_labels, work) if len(seed_runs) > 1 else None
    record["old_ensemble"] = old_ensemble(kept, split.test_labels)
    record["headline"] = headline(record["runs"], record["ensemble"])
    write(record, stem)
    print(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
