"""Sweeps: many independent `python -m digitrec train` runs (seeds × parameter values), several at once.

    sweep(plan(train_argv, base, seeds, params), out, jobs) → OUT/{runs/NAME/{model.pt, metrics.json, train.log, ...},
                                                                  summary.md, summary.json}

Each run is its own process (a crash or an out-of-memory stops one run, not the sweep), on its own GPU when there
are several (CUDA_VISIBLE_DEVICES, round robin) or with its share of the CPU threads. A finished run (metrics.json)
is skipped and an interrupted one resumed, so rerunning the same command completes a sweep.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import queue
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from .config import FIELDS, TrainConfig, flag, parse_value
from .errors import DigitrecError
from .fileio import write_json, write_text

_NOT_SWEPT = {"seed": "use --seeds", "model_options": "use dropout=… or a --model-option flag"}


def parse_seeds(text: str) -> list[int]:
    """`A..B` (both ends included), `A,B,C`, or one seed."""
    try:
        if ".." in text:
            a, b = text.split("..")
            seeds = list(range(int(a), int(b) + 1))
        else:
            seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise DigitrecError(f"--seeds expects A..B, A,B,C or one integer, got {text!r}") from None
    if not seeds:
        raise DigitrecError(f"--seeds {text!r} is empty (A..B needs A ≤ B)")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise DigitrecError(f"--seeds {text!r}: seeds must be distinct and ≥ 0")
    return seeds


def parse_param(text: str) -> tuple[str, list[Any]]:
    """`NAME=V1,V2,…` for a training setting (any TrainConfig field, or dropout), values typed like the setting
    (config.parse_value: 'none' unsets an optional setting)."""
    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not values.strip():
        raise DigitrecError(f"--param expects NAME=V1,V2,..., got {text!r}")
    if name in _NOT_SWEPT:
        raise DigitrecError(f"--param {name}: not swept this way ({_NOT_SWEPT[name]})")
    if name != "dropout" and name not in FIELDS:
        raise DigitrecError(f"--param: unknown setting {name!r} (a train flag name, e.g. lr, batch_size, dropout)")
    out = []
    for raw in values.split(","):
        try:
            value = float(raw) if name == "dropout" else parse_value(name, raw)
        except ValueError as e:
            raise DigitrecError(f"--param {name}: {e}") from None
        out.append(value)
    if len(set(map(repr, out))) != len(out):
        raise DigitrecError(f"--param {name}: repeated value")
    return name, out


@dataclasses.dataclass
class PlannedRun:
    name: str
    values: dict[str, Any]  # the swept parameters (seed included)
    argv: list[str]  # `digitrec train` arguments, --out excepted


def flag_args(name: str, value: Any) -> list[str]:
    """The `digitrec train` arguments that set `name` to `value` (the inverse of the generated flags)."""
    if isinstance(value, bool):
        return [flag(name) if value else "--no-" + flag(name)[2:]]
    return [flag(name), "none" if value is None else str(value)]


def _slug(name: str, value: Any) -> str:
    """A folder-name part for one swept value: `lr0.003`, `limitnone`, `init_from` paths by their tail + hash."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
    if safe != text or len(safe) > 40:
        safe = safe[-24:].lstrip("_.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{name}{safe}"


def plan(train_argv: list[str], base: TrainConfig, seeds: list[int],
         params: list[tuple[str, list[Any]]]) -> list[PlannedRun]:
    """One run per (parameter values × seed); every combination is validated before anything starts."""
    names = [n for n, _ in params]
    if len(set(names)) != len(names):
        raise DigitrecError(f"--param given twice for {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    runs = []
    for combo in itertools.product(*(values for _, values in params)):
        values = dict(zip(names, combo))
        fields = {k: v for k, v in values.items() if k != "dropout"}
        options = {**base.model_options, **({"dropout": values["dropout"]} if "dropout" in values else {})}
        if "dropout" in values and not 0 <= values["dropout"] < 1:
            raise DigitrecError(f"--param dropout: {values['dropout']} is not in [0, 1)")
        try:
            dataclasses.replace(base, **fields, model_options=options).validate()  # now, not in each run
        except DigitrecError as e:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise DigitrecError(f"--param {shown}: {e}") from None
        extra = [a for k, v in values.items() for a in flag_args(k, v)]
        for seed in seeds:
            name = "-".join([_slug(k, v) for k, v in values.items()] + [f"seed{seed}"])
            runs.append(PlannedRun(name, {**values, "seed": seed}, [*train_argv, *extra, "--seed", str(seed)]))
    return runs


def _resources(base: TrainConfig, jobs: int) -> tuple[list[dict[str, str]], list[str]]:
    """Per-slot environment (one GPU each, round robin) and extra flags (CPU threads per run)."""
    from .device import gpu_slots, resolve_device, threads_per_worker

    device = resolve_device(base.device)
    slots = gpu_slots(device, jobs)
    if slots is not None:
        return [{"CUDA_VISIBLE_DEVICES": str(gpu)} for gpu in slots], []
    extra = [] if base.threads or device.type == "cuda" else ["--threads", str(threads_per_worker(jobs))]
    return [{} for _ in range(jobs)], extra


def sweep(runs: list[PlannedRun], base: TrainConfig, out: str | os.PathLike, jobs: int = 1,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every run not finished yet, `jobs` at a time; write and return the summary."""
    from .data import load

    if jobs < 1:
        raise DigitrecError(f"--jobs must be ≥ 1, got {jobs}")
    load(base.dataset, base.data_dir)  # a missing dataset fails once, here, not in every run
    out = Path(out)
    envs, extra = _resources(base, jobs)
    slots: queue.Queue[dict[str, str]] = queue.Queue()
    for env in envs:
        slots.put(env)
    todo = [r for r in runs if not (out / "runs" / r.name / "metrics.json").exists()]
    log(f"sweep: {len(runs)} runs ({len(runs) - len(todo)} already finished), {min(jobs, max(1, len(todo)))} at a time"
        f" → {out}/runs/")
    results: dict[str, dict[str, Any]] = {}

    def one(run: PlannedRun) -> None:
        run_dir = out / "runs" / run.name
        run_dir.mkdir(parents=True, exist_ok=True)
        env = slots.get()
        try:
            cmd = [sys.executable, "-m", "digitrec", "train", *run.argv, *extra, "--no-progress",
                   "--resume-if-exists", "--out", str(run_dir)]
            t0 = time.perf_counter()
            with open(run_dir / "train.log", "w") as logf:  # a log, appended as it runs: not atomic on purpose
                code = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, env={**os.environ, **env}).returncode
            wall = time.perf_counter() - t0
        finally:
            slots.put(env)
        tail = (run_dir / "train.log").read_text(errors="replace").strip().splitlines()
        results[run.name] = {"returncode": code, "wall_s": round(wall, 2), "error": tail[-1] if code and tail else None}
        log(f"{run.name}: " + ("done" if code == 0 else f"FAILED (exit {code}): {tail[-1] if tail else ''}")
            + f" in {wall:.1f}s")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(one, r) for r in todo]:
            f.result()
    return write_summary(runs, out, results)


def write_summary(runs: list[PlannedRun], out: Path, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import json

    from .machine import machine_info

    rows = []
    for r in runs:
        metrics_path = out / "runs" / r.name / "metrics.json"
        row: dict[str, Any] = {"name": r.name, **r.values, **results.get(r.name, {})}
        if metrics_path.exists():
            m = json.loads(metrics_path.read_text())
            row.update(accuracy=m["accuracy"], f1_macro=m["f1_macro"], train_time_s=m["train_time_s"],
                       best_epoch=m.get("best_epoch"), ok=True)
        else:
            row["ok"] = False
        rows.append(row)
    swept = [k for k in runs[0].values if k != "seed"] if runs else []
    groups = []
    for key, members in itertools.groupby(sorted(rows, key=lambda r: [str(r[k]) for k in swept]),
                                          key=lambda r: tuple(r[k] for k in swept)):
        members = list(members)
        ok = [m for m in members if m["ok"]]
        acc = [m["accuracy"] for m in ok]
        groups.append({**dict(zip(swept, key)), "runs": len(members), "finished": len(ok),
                       "accuracy_mean": statistics.fmean(acc) if acc else None,
                       "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0 if acc else None,
                       "accuracy_min": min(acc, default=None), "accuracy_max": max(acc, default=None),
                       "f1_mean": statistics.fmean(m["f1_macro"] for m in ok) if ok else None,
                       "train_time_mean_s": statistics.fmean(m["train_time_s"] for m in ok) if ok else None})
    summary = {"machine": machine_info(), "swept": swept, "groups": groups, "runs": rows}
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", summary_markdown(summary))
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    swept, m = summary["swept"], summary["machine"]
    lines = [f"# digitrec sweep — {len(summary['runs'])} runs", "",
             f"{m['date']}, commit {m['git_commit']}, {m['cpu']} ({m['cpu_cores']} cores), GPU {m['gpu']}, "
             f"torch {m['torch']}. Test accuracy is mean ± sample standard deviation over seeds.", "",
             "| " + " | ".join(swept + ["runs", "test accuracy", "min", "max", "F1 (macro)", "train time (s)"]) + " |",
             "|" + "---|" * len(swept) + "---:|" * 6]
    for g in summary["groups"]:
        cells = [str(g[k]) for k in swept] + [f"{g['finished']}/{g['runs']}"]
        if g["accuracy_mean"] is None:
            cells += ["failed", "", "", "", ""]
        else:
            cells += [f"{g['accuracy_mean']:.4f} ± {g['accuracy_std']:.4f}", f"{g['accuracy_min']:.4f}",
                      f"{g['accuracy_max']:.4f}", f"{g['f1_mean']:.4f}", f"{g['train_time_mean_s']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| run | test accuracy | train time (s) | status |", "|---|---:|---:|---|"]
    for r in summary["runs"]:
        status = "ok" if r["ok"] else f"failed: {r.get('error') or 'not run'}"
        acc = f"{r['accuracy']:.4f}" if r["ok"] else ""
        t = f"{r['train_time_s']:.1f}" if r["ok"] else ""
        lines.append(f"| {r['name']} | {acc} | {t} | {status.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
