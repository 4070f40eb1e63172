"""What each CPU speed idea buys (benchmarks/run.py, sections `ideas` and `bf16`), measured in one process.

ideas, throughput: training steps of the real step code (digitrec.step, real MNIST batches resident as uint8, the
    presets' augmentation) for one change at a time, from the fast preset's network as it was trained before
    (fp32, NCHW) to the speedrun preset's; rounds interleave the variants so that other load on a shared machine
    hits them alike; wall and CPU time per image, and the first step (oneDNN builds its kernels there).
ideas, accuracy: the speedrun preset with one change at a time, 1 epoch, several seeds, test accuracy (official
    test set; selection inside training uses validation only), and test-time augmentation on the same models.
bf16: bfloat16 autocast for CPU training vs fp32 — the speedrun and fast presets, same seeds, interleaved.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

# (name, preset, overrides, batch) — each row changes one thing from the row before
THROUGHPUT = (
    ("fast preset network, fp32, NCHW, batch 256, with its augmentation", "fast", {"channels_last": False}, None),
    ("+ channels_last (the fast preset)", "fast", {}, None),
    ("+ bf16 autocast", "fast", {"bf16_cpu": True}, None),
    ("+ no augmentation", "fast", {"bf16_cpu": True, "augment": False}, None),
    ("+ stride-2 stem instead of conv + pool at 28² (speedrun network, batch 256)", "speedrun", {}, 256),
    ("+ batch 96 (the speedrun preset)", "speedrun", {}, None),
    ("speedrun preset in fp32", "speedrun", {"bf16_cpu": False}, None),
    ("speedrun preset on 1 thread", "speedrun", {"threads": 1}, None),
    ("speedrun preset + torch.compile (inductor; the first step includes compiling)", "speedrun", {"compile": True},
     None),
)
ACCURACY = (
    ("speedrun preset", {}),
    ("+ the fast preset's augmentation (rotate/shear 5°, shift 0.05)", {"augment": True}),
    ("batch 256, lr 0.2 (the fast preset's)", {"batch_size": 256, "lr": 0.2}),
    ("conv + pool stem (the fast preset's network)", {"model_options": {"width": 16, "stem": "pool"}}),
    ("no label smoothing", {"label_smoothing": 0.0}),
    ("EMA of the weights, decay 0.99", {"ema": 0.99}),
    ("fp32 instead of bf16", {"bf16_cpu": False}),
    ("2 epochs", {"epochs": 2}),
)


def _config(preset: str, overrides: dict[str, Any]):
    from digitrec.config import make_config

    return make_config(preset, device="cpu", **{k: v for k, v in overrides.items() if k != "model_options"},
                       **({"model_options": overrides["model_options"]} if "model_options" in overrides else {}))


def _stepper(cfg, batch: int, data) -> Callable[[], None]:
    """One training step of `cfg` (the trainer's step code) on a random batch of real training images."""
    from digitrec.augment import AugmentConfig, augment_batch
    from digitrec.models import create
    from digitrec.predict import to_float
    from digitrec.step import make_step
    from digitrec.train import make_optimizer

    torch.manual_seed(cfg.seed)
    model = create(cfg.model, **cfg.model_options)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(cfg, model.parameters())
    for group in optimizer.param_groups:
        group["lr"] *= 0.1  # a stable rate for random batches; the speed of a step does not depend on it
    train_model = torch.compile(model, mode=cfg.compile_mode) if cfg.compile else model
    step = make_step(train_model, optimizer, False, cfg.bf16_cpu, cfg.label_smoothing)
    aug, gen = AugmentConfig.from_config(cfg), torch.Generator().manual_seed(0)
    x_all, y_all = torch.from_numpy(data.train_images), torch.from_numpy(data.train_labels).long()

    def run() -> None:
        idx = torch.randint(len(y_all), (batch,), generator=gen)
        xb = augment_batch(to_float(x_all[idx]), aug, gen)
        if cfg.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        step(xb, y_all[idx])

    return run


def throughput(rounds: int = 5, images: int = 6144) -> list[dict[str, Any]]:
    from digitrec.data import load

    data, default_threads = load("mnist"), torch.get_num_threads()
    rows, runs = [], []
    for name, preset, overrides, batch in THROUGHPUT:
        cfg = _config(preset, overrides)
        batch = batch or cfg.batch_size
        torch.set_num_threads(cfg.threads or default_threads)
        step = _stepper(cfg, batch, data)
        t0 = time.perf_counter()
        step()  # the first step: oneDNN creates its primitives for these shapes
        rows.append({"variant": name, "batch": batch, "threads": cfg.threads or default_threads,
                     "first_step_ms": 1000 * (time.perf_counter() - t0), "wall": [], "cpu": []})
        runs.append((step, cfg.threads or default_threads, max(4, images // batch), batch))
    for _ in range(rounds):  # interleaved: a burst of other load hits every variant alike
        for row, (step, threads, n, batch) in zip(rows, runs):
            torch.set_num_threads(threads)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                step()
            row["wall"].append(n * batch / (time.perf_counter() - w0))
            row["cpu"].append(n * batch / (time.process_time() - c0))
    torch.set_num_threads(default_threads)
    for row in rows:
        row["images_per_s"], row["images_per_cpu_s"] = float(np.median(row.pop("wall"))), float(np.median(row.pop("cpu")))
    return rows


def train_accuracy(cfg, out: Path, test_x: torch.Tensor, test_y: torch.Tensor) -> dict[str, Any]:
    """Train in this process; test accuracy of the best-validation checkpoint, plain and with test-time shifts."""
    from digitrec.checkpoint import load_model
    from digitrec.predict import forward_in_batches, tta_logits
    from digitrec.train import train

    c0 = time.process_time()
    metrics = train(cfg, out, progress=False, log=lambda _: None, evaluate_test=False)
    cpu = time.process_time() - c0
    model, _ = load_model(out / "model.pt")
    acc = (forward_in_batches(model, test_x, 2000).argmax(1) == test_y).float().mean().item()
    tta = (tta_logits(model, test_x, 2000).argmax(1) == test_y).float().mean().item()
    return {"seed": cfg.seed, "test_accuracy": acc, "tta_accuracy": tta, "train_time_s": metrics["train_time_s"],
            "cpu_s": cpu}


def accuracy(work: Path, seeds: list[int], variants=ACCURACY, preset: str = "speedrun") -> list[dict[str, Any]]:
    from digitrec.data import load

    data = load("mnist")
    test_x, test_y = torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels).long()
    rows = []
    for i, (name, overrides) in enumerate(variants):
        runs = [train_accuracy(_config(preset, {**overrides, "seed": s}), work / f"idea{i}-{s}", test_x, test_y)
                for s in seeds]
        rows.append({"variant": name, "overrides": overrides, "runs": runs, **_summary(runs)})
        print(f"  {name}: median {rows[-1]['accuracy_median']:.4f} (tta {rows[-1]['tta_median']:.4f}), "
              f"{rows[-1]['train_time_median_s']:.1f}s", flush=True)
    return rows


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {"accuracy_median": float(np.median([r["test_accuracy"] for r in runs])),
            "accuracy_mean": float(np.mean([r["test_accuracy"] for r in runs])),
            "tta_median": float(np.median([r["tta_accuracy"] for r in runs])),
            "train_time_median_s": float(np.median([r["train_time_s"] for r in runs])),
            "cpu_median_s": float(np.median([r["cpu_s"] for r in runs]))}


def bf16(work: Path, seeds: list[int], overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """fp32 vs bf16 autocast training, per preset, seeds interleaved (fp32 then bf16 for each seed); `overrides`
    (e.g. a --limit for smoke runs) apply to every run."""
    from digitrec.data import load

    data = load("mnist")
    test_x, test_y = torch.from_numpy(data.test_images), torch.from_numpy(data.test_labels).long()
    rows = []
    for preset in ("speedrun", "fast"):
        runs: dict[bool, list] = {False: [], True: []}
        for s in seeds:
            for on in (False, True):
                cfg = dataclasses.replace(_config(preset, {**(overrides or {}), "seed": s}), bf16_cpu=on)
                runs[on].append(train_accuracy(cfg, work / f"bf16-{preset}-{on}-{s}", test_x, test_y))
        for on in (False, True):
            rows.append({"preset": preset, "bf16": on, "runs": runs[on], **_summary(runs[on])})
            print(f"  {preset} bf16={on}: median {rows[-1]['accuracy_median']:.4f}, "
                  f"{rows[-1]['train_time_median_s']:.1f}s", flush=True)
    return rows


def markdown(key: str, r: dict[str, Any]) -> list[str]:
    if key == "bf16":
        out = ["## bf16 autocast for CPU training (oneDNN; this CPU has AVX512-BF16) vs fp32, same seeds", "",
               "| preset | precision | test accuracy (median) | training time (median) | CPU time (median) |",
               "|---|---|---:|---:|---:|"]
        return out + [f"| {x['preset']} | {'bf16' if x['bf16'] else 'fp32'} | {x['accuracy_median']:.2%} | "
                      f"{x['train_time_median_s']:.1f} s | {x['cpu_median_s']:.1f} s |" for x in r["presets"]]
    out = ["## What each idea buys: training throughput (one change per row, interleaved rounds, median)", "",
           "| variant | batch | threads | images/s (wall) | images per CPU-second | first step |",
           "|---|---:|---:|---:|---:|---:|"]
    out += [f"| {x['variant']} | {x['batch']} | {x['threads']} | {x['images_per_s']:,.0f} | "
            f"{x['images_per_cpu_s']:,.0f} | {x['first_step_ms']:.0f} ms |" for x in r["throughput"]]
    out += ["", f"## What each idea buys: accuracy (speedrun preset with one change; seeds {r['seeds']})", "",
            "| variant | test accuracy (median) | with test-time shifts | training time (median) |",
            "|---|---:|---:|---:|"]
    out += [f"| {x['variant']} | {x['accuracy_median']:.2%} | {x['tta_median']:.2%} | "
            f"{x['train_time_median_s']:.1f} s |" for x in r["accuracy"]]
    return out
