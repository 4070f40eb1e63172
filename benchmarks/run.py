"""Speed and accuracy benchmarks, all in one run on one machine, each ratio against a baseline of the same run.

    python -m benchmarks.run                 # the default sections
    python -m benchmarks.run --quick         # a smoke run of every section (a few minutes; numbers not comparable)
    python -m benchmarks.run --only speedrun,startup,baseline --baseline-epochs 4

Sections:
  speedrun   `digitrec train --preset speedrun`, whole command timed (wall and CPU), 5 seeds: median accuracy
  startup    where the whole command's time goes: phases, decoded-data cache vs IDX decoding, imports
             (benchmarks/startup.py)
  ideas      what each CPU speed idea buys: step throughput and 1-epoch accuracy, one change at a time (not default)
  bf16       bf16 autocast vs fp32 for CPU training, speedrun and fast presets (not default; benchmarks/ideas.py)
  fast       `digitrec train --preset fast`, whole command timed, several seeds (test accuracy, training time)
  best       `digitrec train --preset best`, test accuracy per epoch → time to 99.5 %
  baseline   the conventional way, as PyTorch's examples/mnist: torchvision MNIST + DataLoader + per-sample
             transforms, its Net, Adadelta lr 1.0, StepLR(0.7), batch 64 → test accuracy per epoch
  pipeline   paper-cnn training throughput at batch 64: digitrec's resident-uint8 pipeline vs DataLoader
             (on the GPU where there is one: the same model on it both ways)
  inference  each model: batch-1 latency p50/p99 and batch-256 images/s, one thread and all threads
Writes benchmarks/results/<machine>-<date>.{json,md} with the provenance block (benchmarks/provenance.py), rewritten
after every section;
`python -m benchmarks.readme` then regenerates the README's results from the records.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.provenance import describe, machine_slug, of_record, provenance

RESULTS = Path(__file__).parent / "results"
TARGETS = (0.990, 0.992, 0.995)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def digitrec_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "digitrec", *args]


# --------------------------------------------------------------------------- digitrec presets
def run_preset(preset: str, seed: int, out: Path, extra: list[str], env: dict[str, str] | None = None,
               importtime: bool = False) -> dict:
    """`digitrec train --preset P --seed S` as a user runs it, in a fresh process: its wall and CPU time (the child
    process's user + system time, which other work on a shared machine inflates less than wall time)."""
    cmd = digitrec_cmd("train", "--preset", preset, "--seed", str(seed), "--out", str(out), "--no-progress", *extra)
    if importtime:
        cmd = [sys.executable, "-X", "importtime", *cmd[1:]]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if importtime else None,
                          text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = json.loads((out / "metrics.json").read_text())
    row = {"preset": preset, "seed": seed, "test_accuracy": m["accuracy"], "train_time_s": m["train_time_s"],
           "command_wall_s": wall, "command_cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
           "phase_time_s": m.get("phase_time_s"), "epochs": m["epochs"], "load_average_before": round(load, 2),
           "command": " ".join(cmd[2:] if not importtime else cmd[1:]), "env": env or {}}
    if importtime:
        from benchmarks.startup import import_breakdown

        row["imports"] = import_breakdown(proc.stderr)
    return row


def section_preset(preset: str, work: Path, seeds: list[int], extra: list[str]) -> dict:
    """A preset's whole command, one fresh process per seed: accuracy (median, mean, spread) and times."""
    runs = []
    for s in seeds:
        r = run_preset(preset, s, work / f"{preset}-{s}", extra)
        log(f"{preset} seed {s}: {r['test_accuracy']:.4f} in {r['train_time_s']:.1f}s training, "
            f"{r['command_wall_s']:.1f}s wall ({r['command_cpu_s']:.1f}s CPU)")
        runs.append(r)
    acc = np.array([r["test_accuracy"] for r in runs])
    return {"preset": preset, "runs": runs, "accuracy_median": float(np.median(acc)),
            "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
            "accuracy_min": float(acc.min()),
            "train_time_mean_s": float(np.mean([r["train_time_s"] for r in runs])),
            "train_time_median_s": float(np.median([r["train_time_s"] for r in runs])),
            "command_wall_mean_s": float(np.mean([r["command_wall_s"] for r in runs])),
            "command_wall_median_s": float(np.median([r["command_wall_s"] for r in runs])),
            "command_cpu_median_s": float(np.median([r["command_cpu_s"] for r in runs]))}


def section_fast(work: Path, seeds: list[int], extra: list[str]) -> dict:
    return section_preset("fast", work, seeds, extra)


def section_startup(work: Path, preset: str, extra: list[str]) -> dict:
    """Where the whole command's time goes (benchmarks/startup.py): with the decoded-data cache, without it, and
    under `python -X importtime`."""
    runs = {}
    for name, env, importtime in (("cached", None, False), ("no_cache", {"DIGITREC_DATA_CACHE": "0"}, False),
                                  ("importtime", None, True)):
        if name == "cached":  # the cache entry exists before the timed run (written by an untimed one)
            run_preset(preset, 0, work / f"startup-{preset}-fill", extra)
        runs[name] = run_preset(preset, 0, work / f"startup-{preset}-{name}", extra, env, importtime)
        log(f"startup {name}: {runs[name]['command_wall_s']:.1f}s wall, phases {runs[name]['phase_time_s']}")
    return {"preset": preset, **runs}


def per_epoch_test_accuracy(run: Path, test_x: torch.Tensor, test_y: torch.Tensor) -> list[dict]:
    """Test accuracy after every epoch, from the epoch snapshots the benchmark's callback kept."""
    from digitrec.checkpoint import build_model, load
    from digitrec.predict import forward_in_batches

    rows = []
    for snap in sorted(run.glob("epoch-*.pt"), key=lambda p: int(p.stem.split("-")[1])):
        model = build_model(load(snap))
        acc = (forward_in_batches(model, test_x, 2000).argmax(1) == test_y).float().mean().item()
        rows.append({"epoch": int(snap.stem.split("-")[1]), "test_accuracy": acc})
    return rows


def section_best(work: Path, extra: list[str], test_x, test_y) -> dict:
    """The best preset in-process, snapshotting the evaluated weights each epoch (outside the timed epochs)."""
    from digitrec import checkpoint
    from digitrec.commands.train import add_config_flags, config_from_args
    from digitrec.train import train

    out = work / "best"
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="best")
    add_config_flags(parser)
    cfg = config_from_args(parser.parse_args(extra))
    snaps: list = []

    def keep_snapshot(epoch: int, row: dict) -> None:
        state = checkpoint.load(out / "last.pt")
        weights = state["model"]
        if state.get("ema"):  # the evaluated model is the weight average: AveragedModel keys are 'module.*'
            weights = {k[len("module."):]: v for k, v in state["ema"].items() if k.startswith("module.")}
        snaps.append(epoch)
        checkpoint.save(out / f"epoch-{epoch}.pt", _rebuild(state, weights), state["model_name"],
                        state["model_options"], state["num_classes"])

    t0 = time.perf_counter()
    metrics = train(cfg, out, progress=False, log=log, on_epoch=keep_snapshot)
    wall = time.perf_counter() - t0
    history = json.loads((out / "history.json").read_text())["epochs"]
    curve = per_epoch_test_accuracy(out, test_x, test_y)
    elapsed = np.cumsum([h["epoch_time_s"] for h in history])
    for row, t in zip(curve, elapsed):
        row["train_time_s"] = float(t)
    return {"test_accuracy": metrics["accuracy"], "train_time_s": metrics["train_time_s"], "wall_s": wall,
            "curve": curve, "config": " ".join(extra) or "(preset)", "checkpoint": str(out / "model.pt")}


def _rebuild(state: dict, weights: dict) -> nn.Module:
    from digitrec.models import create

    model = create(state["model_name"], num_classes=state["num_classes"], **state["model_options"])
    model.load_state_dict(weights)
    return model


# --------------------------------------------------------------------------- the conventional baseline
class ExamplesNet(nn.Module):
    """The network of PyTorch's examples/mnist/main.py."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


def torchvision_root(tmp: Path) -> Path:
    """torchvision's MNIST layout (ROOT/MNIST/raw/<uncompressed IDX files>) made from the files digitrec uses."""
    import gzip

    from digitrec.data import locate

    _, folder = locate("mnist", download=False)
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*-ubyte.gz"):
        target = raw / f.name[:-3]
        if not target.exists():
            target.write_bytes(gzip.decompress(f.read_bytes()))
    return tmp


def bench_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def conventional_loaders(root: Path, batch_size: int, augment: bool = False):
    """examples/mnist's loaders: no workers on the CPU; on CUDA its `num_workers=1, pin_memory=True`."""
    from torchvision import datasets, transforms

    norm = [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]
    train_tf = transforms.Compose(([transforms.RandomAffine(10, translate=(0.1, 0.1), shear=10)] if augment else []) + norm)
    train = datasets.MNIST(root, train=True, download=False, transform=train_tf)
    test = datasets.MNIST(root, train=False, download=False, transform=transforms.Compose(norm))
    kw = {"num_workers": 1, "pin_memory": True} if bench_device().type == "cuda" else {"num_workers": 0}
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, **kw),
            torch.utils.data.DataLoader(test, batch_size=1000, **kw))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def section_baseline(work: Path, max_epochs: int, max_batches: int | None = None) -> dict:
    torch.manual_seed(1)
    device = bench_device()
    train_loader, test_loader = conventional_loaders(torchvision_root(work / "tv"), 64)
    model = ExamplesNet().to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    curve, elapsed = [], 0.0
    for epoch in range(1, max_epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(train_loader):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device), y.to(device)
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        sched.step()
        _sync(device)
        elapsed += time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x.to(device)).argmax(1) == y.to(device)).sum().item()
        curve.append({"epoch": epoch, "test_accuracy": correct / 10000, "train_time_s": elapsed})
        log(f"baseline epoch {epoch}: {correct / 10000:.4f} after {elapsed:.0f}s")
        if correct / 10000 >= TARGETS[-1]:
            break
    return {"curve": curve, "recipe": "examples/mnist: Net, Adadelta lr 1.0, StepLR gamma 0.7, batch 64, "
                                      "torchvision MNIST + DataLoader + ToTensor/Normalize"
                                      + (", on CUDA: num_workers=1, pin_memory" if device.type == "cuda"
                                         else " (CPU default: no workers)")}


def time_to(curve: list[dict], target: float) -> float | None:
    return next((r["train_time_s"] for r in curve if r["test_accuracy"] >= target), None)


# --------------------------------------------------------------------------- throughput
def section_pipeline(work: Path, steps: int) -> dict:
    """paper-cnn, batch 64, Adam, the paper's augmentation: images/s through each input pipeline."""
    from digitrec.augment import AugmentConfig, random_affine
    from digitrec.data import load
    from digitrec.models import create
    from digitrec.predict import to_float

    results = {}
    device = bench_device()
    data = load("mnist")
    x_all = torch.from_numpy(data.train_images).to(device)  # digitrec: uint8, resident on the training device
    y_all = torch.from_numpy(data.train_labels).long().to(device)
    aug = AugmentConfig()

    def digitrec_batches():
        g = torch.Generator(device=device).manual_seed(0)
        while True:
            perm = torch.randperm(len(y_all), generator=g, device=device)
            for i in range(0, len(perm) - 63, 64):
                idx = perm[i:i + 64]
                yield random_affine(to_float(x_all[idx]), aug, g), y_all[idx]

    loader, _ = conventional_loaders(torchvision_root(work / "tv"), 64, augment=True)

    def loader_batches():
        while True:
            for x, y in loader:
                yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    for name, batches in (("digitrec", digitrec_batches()), ("dataloader", loader_batches())):
        torch.manual_seed(0)
        model = create("paper-cnn").to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        for i, (x, y) in enumerate(batches):
            if i == 10:
                _sync(device)
                t0 = time.perf_counter()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            if i == 10 + steps - 1:
                _sync(device)
                break
        results[name] = steps * 64 / (time.perf_counter() - t0)  # fp32 both ways: the same work per step
        log(f"pipeline {name}: {results[name]:.0f} images/s")
    results["ratio"] = results["digitrec"] / results["dataloader"]
    return results


def section_inference(models: list[str]) -> list[dict]:
    from digitrec.models import available, create

    rows = []
    all_threads = torch.get_num_threads()
    for name in models:
        if name not in available():
            continue
        model = create(name).eval()
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                x1, x256 = torch.rand(1, 1, 28, 28), torch.rand(256, 1, 28, 28)
                for _ in range(20):
                    model(x1)
                lat = []
                for _ in range(300):
                    t0 = time.perf_counter()
                    model(x1)
                    lat.append((time.perf_counter() - t0) * 1000)
                model(x256)
                t0 = time.perf_counter()
                n = 10
                for _ in range(n):
                    model(x256)
                ips = n * 256 / (time.perf_counter() - t0)
            rows.append({"model": name, "threads": threads, "batch1_p50_ms": float(np.percentile(lat, 50)),
                         "batch1_p99_ms": float(np.percentile(lat, 99)), "batch256_images_per_s": ips})
            log(f"inference {name} threads={threads}: p50 {rows[-1]['batch1_p50_ms']:.2f} ms, {ips:.0f} img/s")
    torch.set_num_threads(all_threads)
    return rows


# --------------------------------------------------------------------------- report
def _curve_table(curve: list[dict]) -> list[str]:
    """Markdown rows: test accuracy and cumulative training time per epoch."""
    return ["| epoch | test accuracy | training time |", "|---|---|---|"] + [
        f"| {c['epoch']} | {c['test_accuracy']:.2%} | {c['train_time_s']:.0f} s |" for c in curve]


def time_to_accuracy_table(r: dict) -> list[str]:
    """Markdown rows: time to each target accuracy, digitrec vs the conventional baseline of the same run."""
    out = ["| target | digitrec | conventional (examples/mnist) | speed-up |", "|---|---|---|---|"]
    last = r["baseline"]["curve"][-1] if r.get("baseline", {}).get("curve") else None
    for t in r["time_to_accuracy"]:
        d, b = t["digitrec_s"], t["baseline_s"]
        ours = f"{d:.1f} s ({t['digitrec_how']})" if d is not None else "not reached"
        if b is not None:
            theirs, ratio = f"{b:.0f} s", (f"{b / d:.0f}×" if d else "—")
        elif last is not None:  # a lower bound: the baseline had not got there when its budget ended
            theirs = f"> {last['train_time_s']:.0f} s (not reached in {last['epoch']} epochs)"
            ratio = f"> {last['train_time_s'] / d:.0f}×" if d else "—"
        else:
            theirs, ratio = "not measured", "—"
        out.append(f"| {t['target']:.1%} | {ours} | {theirs} | {ratio} |")
    return out


def fast_table(f: dict) -> list[str]:
    """Markdown rows: a preset's seeds, accuracy and times (older records have no CPU time or median)."""
    cpu = all("command_cpu_s" in x for x in f["runs"])
    out = ["| seed | test accuracy | training time | whole command (wall) |" + (" whole command (CPU) |" if cpu else ""),
           "|---|---|---|---|" + ("---|" if cpu else "")]
    out += [f"| {x['seed']} | {x['test_accuracy']:.2%} | {x['train_time_s']:.1f} s | {x['command_wall_s']:.1f} s |"
            + (f" {x['command_cpu_s']:.1f} s |" if cpu else "") for x in f["runs"]]
    if "accuracy_median" in f:
        out.append(f"| **median** | **{f['accuracy_median']:.2%}** | {f['train_time_median_s']:.1f} s "
                   f"| {f['command_wall_median_s']:.1f} s |" + (f" {f['command_cpu_median_s']:.1f} s |" if cpu else ""))
    return out + [f"| mean ± std | {f['accuracy_mean']:.2%} ± {f['accuracy_std']:.2%} | {f['train_time_mean_s']:.1f} s "
                  f"| {f['command_wall_mean_s']:.1f} s |" + (" |" if cpu else "")]


def markdown(r: dict) -> str:
    prov = of_record(r) or {}
    out = [f"# digitrec speed benchmark — {prov.get('date')}", "", describe(prov) + ".", ""]
    if r.get("note"):
        out += [r["note"], ""]
    if r.get("complete") is False:
        out += ["**Partial results: the run had not finished all its sections when this file was written.**", ""]
    if "time_to_accuracy" in r:
        out += ["## Time to MNIST test accuracy (official 10,000 test images; training time, evaluation excluded)", "",
                *time_to_accuracy_table(r), ""]
    for name in ("speedrun", "fast"):
        if name in r:
            out += [f"## `digitrec train --preset {name}` (seeds " + ", ".join(str(x["seed"]) for x in r[name]["runs"])
                    + "), each a fresh process", "", *fast_table(r[name]), ""]
    if "startup" in r:
        from benchmarks.startup import markdown as startup_markdown

        out += [f"## Where the whole command's time goes (`--preset {r['startup']['preset']}`)", "",
                *startup_markdown(r["startup"]), ""]
    for key in ("ideas", "bf16"):
        if key in r:
            from benchmarks import ideas

            out += [*ideas.markdown(key, r[key]), ""]
    if "best" in r:
        b = r["best"]
        out += ["## `digitrec train --preset best`", "", *_curve_table(b["curve"])]
        out += [f"\nFinal (best-validation checkpoint): **{b['test_accuracy']:.2%}** after {b['train_time_s']:.0f} s of training.", ""]
    if "ensemble" in r:
        e = r["ensemble"]
        out += ["## `digitrec ensemble` of the runs above (mean of softmax probabilities)", "",
                f"{len(e['members'])} members (best member {e['best_member_accuracy']:.2%}): "
                f"**{e['accuracy']:.2%}** on the official test set.", ""]
    if "baseline" in r:
        out += ["## Conventional baseline (" + r["baseline"]["recipe"] + ")", "", *_curve_table(r["baseline"]["curve"])]
        out.append("")
    if "pipeline" in r:
        p = r["pipeline"]
        out += ["## Training throughput, paper-cnn, batch 64 (same model, optimizer and augmentation)", "",
                f"digitrec pipeline **{p['digitrec']:.0f} images/s** vs DataLoader + per-sample transforms "
                f"{p['dataloader']:.0f} images/s: **{p['ratio']:.2f}×**.", ""]
    if "inference" in r:
        out += ["## Inference (PyTorch eager, fp32, random weights: speed does not depend on them)", "",
                "| model | threads | batch 1 p50 | batch 1 p99 | batch 256 |", "|---|---|---|---|---|"]
        out += [f"| {x['model']} | {x['threads']} | {x['batch1_p50_ms']:.2f} ms | {x['batch1_p99_ms']:.2f} ms | "
                f"{x['batch256_images_per_s']:,.0f} img/s |" for x in r["inference"]]
        out.append("")
    return "\n".join(out)


def time_to_accuracy(result: dict) -> list[dict]:
    """Per target: digitrec's shortest time to reach it — the speedrun preset if the median of its seeds does, the
    fast preset if every seed does, else the best preset's curve — and the baseline's, from the same run."""
    rows = []
    for target in TARGETS:
        candidates = []
        if "speedrun" in result and result["speedrun"]["accuracy_median"] >= target:
            n = len(result["speedrun"]["runs"])
            candidates.append((result["speedrun"]["train_time_median_s"], f"speedrun preset, median of {n} seeds"))
        if "fast" in result and result["fast"]["accuracy_min"] >= target:
            candidates.append((result["fast"]["train_time_mean_s"], "fast preset, every seed"))
        if "best" in result and time_to(result["best"]["curve"], target) is not None:
            candidates.append((time_to(result["best"]["curve"], target), "best preset"))
        d, how = min(candidates) if candidates else (None, "")
        rows.append({"target": target, "digitrec_s": d, "digitrec_how": how,
                     "baseline_s": time_to(result["baseline"]["curve"], target)})
    return rows


SECTIONS = "speedrun,startup,fast,best,baseline,pipeline,inference"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=SECTIONS, help=f"comma-separated sections (default: {SECTIONS}; also: ideas, "
                                                      "bf16)")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the fast preset and of the ideas/bf16 studies")
    ap.add_argument("--speedrun-seeds", default="0,1,2,3,4")
    ap.add_argument("--baseline-epochs", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="tiny budgets: checks the runner, numbers mean nothing")
    ap.add_argument("--note", default="", help="a remark stored with the results (e.g. other load on the machine)")
    ap.add_argument("--out", default=None, help="results file stem (default: results/<machine>-<date>)")
    ap.add_argument("--work", default=None)
    ap.add_argument("--render", default=None, metavar="JSON", help="only rewrite the .md of an earlier results file")
    return ap.parse_args()


def run_sections(args: argparse.Namespace, work: Path, result: dict, save: Callable[[], None]) -> None:
    """Each section asked for, in order; the record is rewritten after each (a cut-off run keeps what it has)."""
    sections, extra = set(args.only.split(",")), (["--limit", "2000", "--epochs", "1"] if args.quick else [])
    seeds = [int(s) for s in args.seeds.split(",")]
    from digitrec.data import load

    data = load("mnist")
    test_x, test_y = torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels).long()
    steps = {
        "speedrun": lambda: section_preset("speedrun", work, [int(s) for s in args.speedrun_seeds.split(",")], extra),
        "startup": lambda: section_startup(work, "speedrun", extra),
        "fast": lambda: section_fast(work, seeds, extra),
        "best": lambda: section_best(work, extra, test_x, test_y),
        "ideas": lambda: section_ideas(work, seeds, args.quick),
        "bf16": lambda: section_bf16(work, seeds[:1] if args.quick else seeds),
        "baseline": lambda: section_baseline(work, 1 if args.quick else args.baseline_epochs, 30 if args.quick else None),
        "pipeline": lambda: section_pipeline(work, 20 if args.quick else 600 if bench_device().type == "cuda" else 150),
        "inference": lambda: section_inference(["paper-cnn", "simple-cnn", "fast", "resnet18", "hybrid"]),
    }
    for name, step in steps.items():
        if name in sections:
            result[name] = step()
            if name == "best":
                add_ensemble(work, seeds, result)
            if "baseline" in result and any(k in result for k in ("speedrun", "fast", "best")):
                result["time_to_accuracy"] = time_to_accuracy(result)
            save()


def section_ideas(work: Path, seeds: list[int], quick: bool) -> dict:
    from benchmarks import ideas

    seeds = seeds[:1] if quick else seeds
    return {"throughput": ideas.throughput(1 if quick else 5, 512 if quick else 6144),
            "accuracy": ideas.accuracy(work, seeds, ideas.ACCURACY[:2] if quick else ideas.ACCURACY), "seeds": seeds}


def section_bf16(work: Path, seeds: list[int]) -> dict:
    from benchmarks import ideas

    return {"presets": ideas.bf16(work, seeds)}


def add_ensemble(work: Path, seeds: list[int], result: dict) -> None:
    members = [m for m in [work / f"fast-{s}" for s in seeds] + [work / "best"] if (m / "model.pt").exists()]
    if len(members) >= 2:
        from digitrec.ensemble import ensemble

        e = ensemble(members)
        result["ensemble"] = {"members": e["members"], "accuracy": e["accuracy"],
                              "best_member_accuracy": e["best_member_accuracy"]}
        log(f"ensemble of {len(members)}: {e['accuracy']:.4f}")


def main() -> None:
    args = parse_args()
    from digitrec.fileio import write_json, write_text

    if args.render:
        path = Path(args.render)
        write_text(path.with_suffix(".md"), markdown(json.loads(path.read_text())))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="digitrec-bench-"))
    result: dict = {"kind": "speed", "provenance": provenance(), "note": args.note, "complete": False}
    name = f"{machine_slug()}-{datetime.date.today().isoformat()}"
    stem = Path(args.out) if args.out else RESULTS / "quick" / f"quick-{name}" if args.quick else RESULTS / name
    stem.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        write_json(stem.with_suffix(".json"), result)
        write_text(stem.with_suffix(".md"), markdown(result))

    run_sections(args, work, result, save)
    result["complete"] = True
    save()
    log(f"wrote {stem}.json and .md")


if __name__ == "__main__":
    main()
