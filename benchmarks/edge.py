"""Edge deployment benchmark: what export, int8 quantization and pruning really give, on ONE CPU thread.

    DIGITREC_DATA=/work/shared/data nice -n 10 python3 benchmarks/edge.py [--work DIR]
        [--checkpoint fast=RUN/model.pt ...] [--models fast,simple-cnn,paper-cnn] [--train-limit N]
        [--prune-amount 0.5] [--finetune-epochs 1] [--finetune-limit N] [--curve-model fast]
        [--curve-unstructured 0.5,0.8,0.9] [--curve-structured 0.25,0.5,0.75] [--calibration-images 1000]

For each model, variants: fp32 PyTorch, fp32 ONNX Runtime, int8 ONNX Runtime (QDQ, per-channel, calibrated on
training images), int8 PyTorch FX (x86 backend; the alternative the quantize command was chosen against),
structured-pruned fp32 (PyTorch and ONNX Runtime) and structured-pruned int8 (ONNX Runtime).
Each: file size, accuracy on the official MNIST test set (10,000 images), batch-1 latency p50/p99 and batch-256
images/s, with torch and ONNX Runtime both limited to one thread.
Models come from --checkpoint NAME=PATH, else are trained here on the canonical split (official train 90/10;
the test set is never used for training or selection) with the recipe recorded in the results.
Also a sparsity/size vs accuracy curve for --curve-model (unstructured and structured pruning, each fine-tuned).
Writes benchmarks/results/edge-<machine>-<date>.{json,md} and edge-curve-<machine>-<date>.{json,png}.
"""
from __future__ import annotations

import argparse
import datetime
import gzip
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, machine_slug, of_record, provenance  # noqa: E402
from digitrec import checkpoint, export  # noqa: E402
from digitrec import prune as pruning  # noqa: E402
from digitrec.data import load  # noqa: E402
from digitrec.fileio import atomic_path, write_json, write_text  # noqa: E402
from digitrec.onnx_predictor import OnnxPredictor  # noqa: E402

# recipes for models trained here (small budgets: paper-cnn is the slowest of the three to train on a CPU)
RECIPES = {
    "fast": dict(model="fast", epochs=3, lr=0.01, optimizer="adam", schedule="onecycle", warmup=0.2, batch_size=128),
    "simple-cnn": dict(model="simple-cnn", epochs=2, lr=1e-3, optimizer="adam", batch_size=128),
    "paper-cnn": dict(model="paper-cnn", epochs=1, lr=1e-3, optimizer="adam", batch_size=128),
}


def train_model(name: str, work: Path, limit: int | None) -> Path:
    from digitrec.config import make_config
    from digitrec.train import train

    out = work / f"train-{name}"
    if not (out / "metrics.json").exists():
        cfg = make_config("paper", split="canonical", device="cpu", threads=1, limit=limit, **RECIPES[name])
        train(cfg, out, progress=False)
    return out / "model.pt"


# --- timing (one thread) -------------------------------------------------------------------------------------

def latency_ms(fn, x: np.ndarray, runs: int) -> tuple[float, float]:
    for _ in range(10):
        fn(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def images_per_s(fn, x: np.ndarray, reps: int) -> float:
    fn(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return reps * len(x) / (time.perf_counter() - t0)


def torch_runner(model: torch.nn.Module):
    model.eval()

    @torch.inference_mode()
    def run(x: np.ndarray) -> np.ndarray:
        return torch.softmax(model(torch.from_numpy(x)), 1).numpy()

    return run


def ort_runner(path: Path):
    p = OnnxPredictor(path, threads=1)
    return lambda x: p.session.run(None, {p.input_name: x})[0]


def measure(name: str, run, size: int, x_test: np.ndarray, y_test: np.ndarray, args, **extra) -> dict:
    probs = np.concatenate([run(x_test[i:i + 500]) for i in range(0, len(x_test), 500)])
    p50, p99 = latency_ms(run, x_test[:1], args.latency_runs)
    row = {"variant": name, "bytes": int(size), "accuracy": float((probs.argmax(1) == y_test).mean()),
           "latency_b1_p50_ms": p50, "latency_b1_p99_ms": p99,
           "images_per_s_b256": images_per_s(run, x_test[:256], args.throughput_reps), **extra}
    print(f"  {name:22s} {size / 1024:8.0f} KiB  acc {row['accuracy']:.2%}  b1 p50 {p50:.2f} ms p99 {p99:.2f} ms  "
          f"b256 {row['images_per_s_b256']:.0f} img/s", flush=True)
    return row


def torch_bytes(obj) -> int:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return len(buf.getvalue())


def fx_int8(model: torch.nn.Module, calib: np.ndarray) -> torch.nn.Module:
    """PyTorch's own static int8 (FX graph mode, x86 backend, per-channel weights), calibrated like ORT's."""
    import warnings

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "x86"
        prepared = prepare_fx(model.eval(), get_default_qconfig_mapping("x86"), (torch.from_numpy(calib[:2]),))
        with torch.inference_mode():
            for i in range(0, len(calib), 64):
                prepared(torch.from_numpy(calib[i:i + 64]))
        return convert_fx(prepared)


def prune(src: Path, work: Path, tag: str, amount: float, structured: bool, args) -> Path:
    out = work / f"prune-{tag}-{'s' if structured else 'u'}{amount:g}"
    if not (out / "metrics.json").exists():
        pruning.prune_run(src, out, amount, structured, args.finetune_epochs, threads=1, limit=args.finetune_limit,
                         progress=False, log=lambda s: print("   ", s, flush=True))
    return out


def bench_model(name: str, ckpt_path: Path, work: Path, x_test, y_test, calib_u8, args) -> dict:
    model, ckpt = checkpoint.load_model(ckpt_path)
    x = (x_test.astype(np.float32) / 255)[:, None]
    calib = (calib_u8.astype(np.float32) / 255)[:, None]
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    print(f"{name}: {ckpt_path}", flush=True)
    rows = [measure("fp32 PyTorch", torch_runner(model), ckpt_path.stat().st_size, x, y_test, args)]
    check = export.export_onnx(model, d / "fp32.onnx", x_test[:args.check_images])
    rows.append(measure("fp32 ONNX Runtime", ort_runner(d / "fp32.onnx"), export.file_size(d / "fp32.onnx"), x, y_test,
                        args, export_check=check))
    export.quantize_onnx(d / "fp32.onnx", d / "int8.onnx", calib_u8)
    rows.append(measure("int8 ONNX Runtime", ort_runner(d / "int8.onnx"), export.file_size(d / "int8.onnx"), x, y_test,
                        args))
    if not args.skip_fx:
        q = fx_int8(checkpoint.load_model(ckpt_path)[0], calib)
        rows.append(measure("int8 PyTorch FX (x86)", torch_runner(q), torch_bytes(q.state_dict()), x, y_test, args))
    run = prune(ckpt_path, work, name, args.prune_amount, True, args)
    pruned, pckpt = checkpoint.load_model(run / "model.pt")
    info = {"pruned_channels": pckpt["model_options"].get("channels"), "params": pruning.count_params(pruned)}
    if not args.skip_pruned_torch:
        rows.append(measure(f"pruned {args.prune_amount:g} fp32 PyTorch", torch_runner(pruned),
                            (run / "model.pt").stat().st_size, x, y_test, args, **info))
    export.export_onnx(pruned, d / "pruned-fp32.onnx", x_test[:args.check_images])
    rows.append(measure(f"pruned {args.prune_amount:g} fp32 ORT", ort_runner(d / "pruned-fp32.onnx"),
                        export.file_size(d / "pruned-fp32.onnx"), x, y_test, args, **info))
    export.quantize_onnx(d / "pruned-fp32.onnx", d / "pruned-int8.onnx", calib_u8)
    rows.append(measure(f"pruned {args.prune_amount:g} int8 ORT", ort_runner(d / "pruned-int8.onnx"),
                        export.file_size(d / "pruned-int8.onnx"), x, y_test, args))
    return {"model": name, "checkpoint": str(ckpt_path), "params": pruning.count_params(model),
            "recipe": {k: ckpt["config"].get(k) for k in ("split", "limit", "epochs", "lr", "optimizer", "schedule",
                                                           "warmup", "batch_size", "augment")},
            "trained_epochs": ckpt.get("epoch"), "val_acc": (ckpt.get("metrics") or {}).get("val_acc"),
            "rows": rows}


def curve(name: str, ckpt_path: Path, work: Path, args) -> list[dict]:
    points = []
    for structured, amounts in ((False, args.curve_unstructured), (True, args.curve_structured)):
        for amount in amounts:
            run = prune(ckpt_path, work, name, amount, structured, args)
            p = __import__("json").loads((run / "metrics.json").read_text())["pruning"]
            raw = (run / "model.pt").read_bytes()
            points.append({"method": p["method"], "amount": amount, "params": p["params_after"],
                           "nonzero_params": None, "sparsity": p["sparsity_after"], "bytes": len(raw),
                           "gzip_bytes": len(gzip.compress(raw, 6)), "accuracy_before_finetune":
                           p["accuracy_before_finetune"], "accuracy": p["accuracy_after_finetune"]})
            model, _ = checkpoint.load_model(run / "model.pt")
            points[-1]["nonzero_params"] = int(sum(int((t != 0).sum()) for t in model.parameters()))
            print(f"  curve {p['method']} {amount:g}: {points[-1]['nonzero_params']:,} nonzero params, "
                  f"acc {p['accuracy_before_finetune']:.2%} → {p['accuracy_after_finetune']:.2%}", flush=True)
    return points


def plot_curve(points: list[dict], base: dict, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # fine-tuned accuracy needs a zoomed axis; before fine-tuning it can fall to chance, so it gets its own panel
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, key, label in ((axes[0], "accuracy", "after fine-tuning"), (axes[1], "accuracy_before_finetune",
                                                                         "right after pruning, before fine-tuning")):
        for method, color in (("global-unstructured-l1", "tab:blue"), ("structured-channels", "tab:orange")):
            pts = sorted((p for p in points if p["method"] == method), key=lambda p: p["nonzero_params"])
            ax.plot([p["nonzero_params"] for p in pts], [100 * p[key] for p in pts], "o-", color=color, label=method)
            for p in pts:
                ax.annotate(f"{p['amount']:g}", (p["nonzero_params"], 100 * p[key]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4))
        ax.axhline(100 * base["accuracy"], color="gray", ls="--", label=f"unpruned ({base['params']:,} params)")
        ax.set_xscale("log")
        ax.set_xlabel("non-zero parameters (labels: pruning amount)")
        ax.set_ylabel("MNIST test accuracy (%)")
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
    lowest = min(100 * min(p["accuracy"] for p in points), 100 * base["accuracy"])
    axes[0].set_ylim(max(0, lowest - 1), 100)
    axes[1].set_ylim(0, 100)
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def draw_curve(res: dict, json_path: Path) -> None:
    base = next(r for r in res["models"] if r["model"] == res["curve_model"])
    plot_curve(res["curve"], {"accuracy": base["rows"][0]["accuracy"], "params": base["params"]},
               f"{res['curve_model']}: pruning vs MNIST test accuracy ({res['finetune_epochs']} fine-tune epoch(s) on "
               f"{res['finetune_limit'] or 'all'} training images)", json_path.with_suffix(".png"))


def model_table(r: dict) -> list[str]:
    """Markdown rows: one model's variants (size, accuracy, latency, throughput)."""
    return ["| variant | size (KiB) | test acc | b1 p50 (ms) | b1 p99 (ms) | b256 img/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"] + [
        f"| {row['variant']} | {row['bytes'] / 1024:.0f} | {row['accuracy']:.2%} | {row['latency_b1_p50_ms']:.2f} | "
        f"{row['latency_b1_p99_ms']:.2f} | {row['images_per_s_b256']:.0f} |" for row in r["rows"]]


def markdown(res: dict) -> str:
    prov = of_record(res) or {}
    lines = [f"# Edge deployment benchmark ({prov.get('date')})", "",
             f"{describe(prov)}; onnxruntime {res['onnxruntime']}; **one thread** for torch and ONNX Runtime.", "",
             *([res["note"], ""] if res.get("note") else []),
             "Accuracy: official MNIST test set (10,000 images). int8: ONNX Runtime static QDQ, per-channel int8 "
             f"weights, uint8 activations, calibrated on {res['calibration_images']} official training images. "
             f"Pruned: structured channel pruning (amount {res['prune_amount']}), fine-tuned "
             f"{res['finetune_epochs']} epoch(s) on {res['finetune_limit'] or 'all'} training images.", ""]
    if not res.get("complete", True):
        lines += ["**Partial results: the run had not finished all models when this file was written.**", ""]
    for r in res["models"]:
        lines += [f"## {r['model']} ({r['params']:,} params; recipe {r['recipe']}, best val acc "
                  f"{r['val_acc']:.4f} at epoch {r['trained_epochs']})", "", *model_table(r), ""]
    if res.get("curve"):
        lines += [f"## Pruning curve: {res['curve_model']}", "",
                  "| method | amount | params | non-zero | model.pt KiB | gzip KiB | acc before FT | acc after FT |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for p in res["curve"]:
            lines.append(f"| {p['method']} | {p['amount']:g} | {p['params']:,} | {p['nonzero_params']:,} | "
                         f"{p['bytes'] / 1024:.0f} | {p['gzip_bytes'] / 1024:.0f} | {p['accuracy_before_finetune']:.2%} "
                         f"| {p['accuracy']:.2%} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "digitrec-edge"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--models", default="fast,simple-cnn,paper-cnn")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    ap.add_argument("--train-limit", type=int, default=None, help="train models here on N training images")
    ap.add_argument("--prune-amount", type=float, default=0.5)
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--finetune-limit", type=int, default=None)
    ap.add_argument("--calibration-images", type=int, default=1000)
    ap.add_argument("--latency-runs", type=int, default=200)
    ap.add_argument("--throughput-reps", type=int, default=5)
    ap.add_argument("--skip-fx", action="store_true", help="skip the PyTorch FX int8 comparison")
    ap.add_argument("--skip-pruned-torch", action="store_true", help="time the pruned model in ONNX Runtime only")
    ap.add_argument("--check-images", type=int, default=1000, help="test images for the ONNX export check")
    ap.add_argument("--curve-model", default="fast")
    ap.add_argument("--curve-unstructured", type=floats, default=[0.5, 0.8, 0.9])
    ap.add_argument("--curve-structured", type=floats, default=[0.25, 0.5, 0.75])
    ap.add_argument("--note", default="", help="e.g. that the CPU was shared with other work")
    ap.add_argument("--replot", metavar="RESULTS_JSON", help="only redraw the curve PNG from an edge-*.json")
    return ap


def main() -> None:
    args = parser().parse_args()
    if args.replot:
        import json

        res = json.loads(Path(args.replot).read_text())
        draw_curve(res, Path(args.replot).parent / Path(args.replot).name.replace("edge-", "edge-curve-", 1))
        return

    prov = provenance()
    torch.set_num_threads(1)
    work = Path(args.work)
    given = dict(item.split("=", 1) for item in args.checkpoint)
    data = load("mnist")
    x_test, y_test = data.test_images, data.test_labels.astype(np.int64)
    calib = export.calibration_images("mnist", args.calibration_images)  # official TRAINING images
    models = [m for m in args.models.split(",") if m]
    paths = {m: Path(given[m]) if m in given else train_model(m, work, args.train_limit) for m in models}
    t0 = time.time()
    day = datetime.date.today().isoformat()
    out = Path(args.out)
    res = {"kind": "edge", "provenance": prov, "onnxruntime": __import__("onnxruntime").__version__,
           "note": args.note,
           "calibration_images": args.calibration_images, "prune_amount": args.prune_amount,
           "finetune_epochs": args.finetune_epochs, "finetune_limit": args.finetune_limit, "models": []}

    def save(done: bool) -> None:  # after every model, so a long run leaves its finished part behind
        res.update(wall_s=time.time() - t0, complete=done)
        write_json(out / f"edge-{machine_slug()}-{day}.json", res)
        write_text(out / f"edge-{machine_slug()}-{day}.md", markdown(res))

    for m in models:
        res["models"].append(bench_model(m, paths[m], work, x_test, y_test, calib, args))
        save(False)
    if args.curve_model in paths and (args.curve_unstructured or args.curve_structured):
        res.update(curve_model=args.curve_model, curve=curve(args.curve_model, paths[args.curve_model], work, args))
        write_json(out / f"edge-curve-{machine_slug()}-{day}.json",
                   {"kind": "edge-curve", "provenance": prov, "model": args.curve_model, "points": res["curve"]})
        draw_curve(res, out / f"edge-curve-{machine_slug()}-{day}.json")
    save(True)
    print(f"wrote {out}/edge-{machine_slug()}-{day}.{{json,md}}")


if __name__ == "__main__":
    main()
