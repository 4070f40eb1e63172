"""int8 vs fp32 in ONNX Runtime, one thread, and bf16 autocast for CPU training: what each buys on this CPU.

    DIGITREC_DATA=DIR python -m benchmarks.int8                # the record (about 10 minutes on 2 quiet cores)
    DIGITREC_DATA=DIR python -m benchmarks.int8 --quick        # smoke run into results/quick/; numbers mean nothing

int8 part. Three networks, each trained here on the canonical split (official train 90/10; the test set is never
used for training or selection):
  fast             the fast preset (conv → max-pool → BatchNorm → ReLU blocks: BN after the pool)
  fast-bn-first    the fast preset with BN before the pool (model option order=conv-bn-pool): BN folds into the conv
  speedrun         the speedrun preset (stride-2 first conv, BN after the pools)
Each is exported to fp32 ONNX and quantized statically (calibrated on official training images) in the variants of
VARIANTS: QDQ vs QOperator format, per-channel vs per-tensor weight scales, u8s8 (uint8 activations × int8 weights,
what AVX512-VNNI's vpdpbusd multiplies) vs s8s8. For each: accuracy on the official 10,000 test images, batch-256
images/s and batch-1 latency on ONE thread (rounds interleave the variants of a network, so other load hits them
alike; medians), the speed-up over the fp32 ONNX file of the same network in the same run, and the operators of the
graph ONNX Runtime actually runs (QLinearConv, float BatchNormalization left between quantized ops, layout
Transposes) that say why.
bf16 part: the speedrun and fast presets trained with bf16 autocast (oneDNN) vs fp32, same seeds, interleaved
(benchmarks/ideas.py).
Writes benchmarks/results/int8-<machine>-<date>.{json,md} (kind "int8"), rewritten after each part.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, machine_slug, of_record, provenance  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# name → (preset, model_options overrides)
NETWORKS = {"fast": ("fast", {}), "fast-bn-first": ("fast", {"order": "conv-bn-pool"}), "speedrun": ("speedrun", {})}
# name → quantize_onnx keyword arguments
VARIANTS = {
    "int8 QDQ per-channel u8s8 (digitrec quantize default)": {},
    "int8 QOperator per-channel u8s8": {"quant_format": "qoperator"},
    "int8 QDQ per-tensor u8s8": {"per_channel": False},
    "int8 QOperator per-tensor u8s8": {"quant_format": "qoperator", "per_channel": False},
    "int8 QDQ per-channel s8s8": {"activations": "int8", "weights": "int8"},
}
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")


def cpu_flags() -> list[str]:
    """The instruction-set extensions int8 and bf16 kernels look for, as /proc/cpuinfo lists them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    return [f for f in CPU_FLAGS if f in flags]


def train_network(name: str, work: Path, quick: bool, given: dict[str, str] | None = None) -> Path:
    """The network's checkpoint: given with --checkpoint NAME=PATH, else its preset trained in this process (seed 0;
    the best-validation checkpoint)."""
    from digitrec.config import make_config
    from digitrec.train import train

    if given and name in given:
        return Path(given[name])
    preset, options = NETWORKS[name]
    out = work / f"train-{name}"
    if not (out / "model.pt").exists():
        base = make_config(preset, device="cpu")
        cfg = make_config(preset, device="cpu", model_options={**base.model_options, **options},
                          **({"limit": 3000, "epochs": 1} if quick else {}))
        train(cfg, out, progress=False, log=lambda _: None, evaluate_test=False)
    return out / "model.pt"


def graph_ops(path: Path, work: Path) -> dict[str, int]:
    """Operator counts of the graph ONNX Runtime runs for `path` on one thread (after its optimizations)."""
    import onnx
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    opts.optimized_model_filepath = str(work / f"{path.stem}.optimized.onnx")
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ops: dict[str, int] = {}
    for node in onnx.load(opts.optimized_model_filepath).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ops


def export_variants(ckpt: Path, work: Path, calibration: np.ndarray, variants: dict) -> dict[str, Path]:
    """fp32 ONNX of the checkpoint, then each int8 variant of it: name → file."""
    from digitrec import checkpoint, export

    model, _ = checkpoint.load_model(ckpt)
    files = {"fp32 ONNX Runtime": work / "fp32.onnx"}
    export.export_onnx(model, files["fp32 ONNX Runtime"], calibration[:256])
    for i, (name, options) in enumerate(variants.items()):
        files[name] = work / f"int8-{i}.onnx"
        export.quantize_onnx(files["fp32 ONNX Runtime"], files[name], calibration, **options)
    return files


def time_variants(files: dict[str, Path], x: np.ndarray, rounds: int, reps: int, latency_runs: int) -> dict:
    """Per file, one thread: batch-256 images/s and batch-1 latency (ms), median over interleaved rounds."""
    from digitrec.onnx_predictor import OnnxPredictor

    runs = {}
    for name, path in files.items():
        p = OnnxPredictor(path, threads=1)
        runs[name] = lambda batch, p=p: p.session.run(None, {p.input_name: batch})
        for _ in range(5):  # warm-up: ONNX Runtime's first runs allocate and pick kernels
            runs[name](x[:256])
            runs[name](x[:1])
    samples: dict[str, dict[str, list[float]]] = {n: {"b256": [], "b1": []} for n in files}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                run(x[:256])
            samples[name]["b256"].append(reps * 256 / (time.perf_counter() - t0))
            for _ in range(latency_runs):
                t0 = time.perf_counter()
                run(x[:1])
                samples[name]["b1"].append(1000 * (time.perf_counter() - t0))
    return {n: {"images_per_s_b256": float(np.median(s["b256"])), "latency_b1_p50_ms": float(np.median(s["b1"])),
                "latency_b1_p99_ms": float(np.percentile(s["b1"], 99))} for n, s in samples.items()}


def bench_network(name: str, work: Path, data, args) -> dict[str, Any]:
    """One network: its variants' accuracy, one-thread speed, speed-up over fp32 ONNX Runtime, graph operators."""
    from digitrec import export
    from digitrec.onnx_predictor import OnnxPredictor

    ckpt = train_network(name, work, args.quick, args.checkpoint)
    calibration = export.calibration_images("mnist", args.calibration_images)
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    files = export_variants(ckpt, folder, calibration, VARIANTS)
    x = (data.test_images.astype(np.float32) / 255)[:, None]
    speed = time_variants(files, x, args.rounds, args.reps, args.latency_runs)
    base = speed["fp32 ONNX Runtime"]
    rows = []
    for variant, path in files.items():
        accuracy = float((OnnxPredictor(path).predict(data.test_images) == data.test_labels).mean())
        s = speed[variant]
        rows.append({"variant": variant, "bytes": path.stat().st_size, "accuracy": accuracy, **s,
                     "speedup_b256": s["images_per_s_b256"] / base["images_per_s_b256"],
                     "speedup_b1": base["latency_b1_p50_ms"] / s["latency_b1_p50_ms"], "ops": graph_ops(path, folder)})
        print(f"  {name:14s} {variant:55s} acc {accuracy:.2%}  b256 {s['images_per_s_b256']:8.0f}/s "
              f"({rows[-1]['speedup_b256']:.2f}×)  b1 {s['latency_b1_p50_ms']:.3f} ms ({rows[-1]['speedup_b1']:.2f}×)",
              flush=True)
    return {"network": name, "preset": NETWORKS[name][0], "model_options": NETWORKS[name][1], "rows": rows}


def results_table(network: dict[str, Any]) -> list[str]:
    """Markdown rows: one network's variants against its fp32 ONNX Runtime file (one thread)."""
    base = network["rows"][0]["accuracy"]
    out = ["| variant | KiB | test acc. | loss (points) | b256 img/s | × fp32 | b1 p50 ms | × fp32 | QLinearConv | "
           "float BN | Transpose |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in network["rows"]:
        ops = r["ops"]
        out.append(f"| {r['variant']} | {r['bytes'] / 1024:.0f} | {r['accuracy']:.2%} | "
                   f"{100 * (base - r['accuracy']):+.2f} | {r['images_per_s_b256']:,.0f} | {r['speedup_b256']:.2f} | "
                   f"{r['latency_b1_p50_ms']:.3f} | {r['speedup_b1']:.2f} | {ops.get('QLinearConv', 0)} | "
                   f"{ops.get('BatchNormalization', 0)} | {ops.get('Transpose', 0)} |")
    return out


def verdict(record: dict[str, Any]) -> list[str]:
    """Which (network, variant) pairs meet the target: ≥ 1.5× at batch 256 and batch 1, ≤ 0.1 point lost."""
    hits = [f"{n['network']}: {r['variant']}" for n in record.get("networks", []) for r in n["rows"][1:]
            if r["speedup_b256"] >= 1.5 and r["speedup_b1"] >= 1.5
            and round(100 * (n["rows"][0]["accuracy"] - r["accuracy"]), 6) <= 0.1]  # whole images: exact
    return [f"Target (≥ 1.5× fp32 ONNX Runtime at batch 256 and at batch 1, one thread, ≤ 0.1 point accuracy loss): "
            + ("met by " + "; ".join(hits) if hits else "not met by any variant in this run") + "."]


def markdown(record: dict[str, Any]) -> str:
    from benchmarks import ideas

    prov = of_record(record) or {}
    out = [f"# int8 and bf16 on this CPU ({prov.get('date')})", "", describe(prov) + ".",
           f"onnxruntime {record.get('onnxruntime')}; CPU flags: {', '.join(record.get('cpu_flags', [])) or 'none'}.",
           ""]
    if not record.get("complete"):
        out += ["**Partial results: the run had not finished when this file was written.**", ""]
    if record.get("networks"):
        out += ["Accuracy on the official 10,000 test images; speed on ONE thread (ONNX Runtime), medians of "
                "interleaved rounds; × fp32: against the same network's fp32 ONNX file in the same run. Operator "
                "counts are of the graph ONNX Runtime runs after its optimizations.", "", *verdict(record), ""]
    for n in record.get("networks", []):
        out += [f"## {n['network']} (preset {n['preset']}, options {n['model_options'] or 'as the preset'})", "",
                *results_table(n), ""]
    if record.get("bf16"):
        out += ideas.markdown("bf16", {"presets": record["bf16"]}) + [""]
    return "\n".join(out) + "\n"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny training and timing: checks the script")
    ap.add_argument("--networks", default=",".join(NETWORKS), help=f"comma-separated, from {', '.join(NETWORKS)}")
    ap.add_argument("--bf16-seeds", default="0,1,2", help="seeds of the bf16 vs fp32 training comparison ('' skips)")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                    help="use this trained checkpoint for network NAME instead of training it (repeatable)")
    ap.add_argument("--calibration-images", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20, help="batch-256 runs per round")
    ap.add_argument("--latency-runs", type=int, default=200, help="batch-1 runs per round")
    ap.add_argument("--work", default=None)
    ap.add_argument("--out", default=None, help="results file stem (default: results/int8-<machine>-<date>, "
                                                "results/quick/... with --quick)")
    args = ap.parse_args()
    unknown = sorted(set(args.networks.split(",")) - set(NETWORKS))
    given = dict(c.split("=", 1) for c in args.checkpoint if "=" in c)
    unknown += sorted(set(given) - set(NETWORKS))
    if unknown:
        ap.error(f"unknown network(s) {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    if len(given) != len(args.checkpoint) or not all(Path(p).is_file() for p in given.values()):
        ap.error("--checkpoint takes NAME=PATH with an existing checkpoint file")
    args.checkpoint = given
    if args.quick:
        args.rounds, args.reps, args.latency_runs, args.calibration_images = 2, 3, 30, 200
        args.bf16_seeds = args.bf16_seeds and "0"
    return args


def main() -> None:
    args = parse_args()
    import onnxruntime

    from benchmarks import ideas
    from digitrec.data import load
    from digitrec.fileio import write_json, write_text

    day = datetime.date.today().isoformat()
    stem = Path(args.out) if args.out else (RESULTS / "quick" / f"int8-quick-{machine_slug()}-{day}" if args.quick
                                            else RESULTS / f"int8-{machine_slug()}-{day}")
    work = Path(args.work or tempfile.mkdtemp(prefix="digitrec-int8-"))
    record: dict[str, Any] = {"kind": "int8", "provenance": provenance(), "complete": False, "quick": args.quick,
                              "onnxruntime": onnxruntime.__version__, "cpu_flags": cpu_flags(), "networks": []}
    stem.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        write_json(stem.with_suffix(".json"), record)
        write_text(stem.with_suffix(".md"), markdown(record))

    data = load("mnist")
    for name in args.networks.split(","):
        record["networks"].append(bench_network(name, work, data, args))
        save()
    seeds = [int(s) for s in args.bf16_seeds.split(",") if s]
    if seeds:
        record["bf16"] = ideas.bf16(work, seeds, {"limit": 3000, "epochs": 1} if args.quick else {})
    record["complete"] = True
    save()
    print(f"wrote {stem}.json and .md", flush=True)


if __name__ == "__main__":
    main()
