"""How well `digitrec read` reads "real-world" photos of numbers: the synthetic set of make_realworld.py.

For each model (default: the bundled robust model; add others with --model NAME=PATH) and each pipeline:
  ours  — digitrec.reader.read_image (segment once, then read_crops per model): lighting/polarity/noise handling, segmentation, MNIST form per digit;
  naive — the whole image resized to 28×28, inverted when its background is light, read as one digit.
Metrics: digit accuracy (1 − edit distance / length, summed over all numbers: a missed or extra digit counts
as an error), whole-number accuracy, accuracy on the one-digit images, segmentation count accuracy, and MNIST
test accuracy of the model for reference.

    python3 benchmarks/make_realworld.py --out /tmp/digitrec-realworld --n 500 --seed 0
    python3 benchmarks/realworld.py --data /tmp/digitrec-realworld --model plain=/tmp/rw_runs/plain/model.pt
    → benchmarks/results/realworld-<machine>-<date>.{json,md}
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, machine_slug, provenance  # noqa: E402
from digitrec.data import load  # noqa: E402
from digitrec.fileio import atomic_path, write_json, write_text  # noqa: E402
from digitrec.predict import load_predictor  # noqa: E402
from digitrec.preprocess import open_image  # noqa: E402
from digitrec.preprocess import DigitCrop, segment  # noqa: E402
from digitrec.reader import default_model_path, read_crops  # noqa: E402


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def naive_crop(path: Path) -> np.ndarray:
    """What a tutorial does: the whole image to 28×28, inverted when the background is light."""
    a = np.asarray(open_image(path).resize((28, 28), Image.Resampling.BILINEAR), np.float32) / 255
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    return 1 - a if np.median(border) > 0.5 else a


def score(texts: dict[str, str], truth: dict[str, str]) -> dict:
    names = list(truth)
    n_digits = sum(len(truth[f]) for f in names)
    errors = sum(edit_distance(texts[f], truth[f]) for f in names)
    single = [f for f in names if len(truth[f]) == 1]
    return {
        "digit_accuracy": 1 - errors / n_digits,
        "number_accuracy": float(np.mean([texts[f] == truth[f] for f in names])),
        "single_digit_image_accuracy": float(np.mean([texts[f] == truth[f] for f in single])) if single else None,
        "count_accuracy": float(np.mean([len(texts[f]) == len(truth[f]) for f in names])),
        "images": len(names), "digits": n_digits, "single_digit_images": len(single),
    }


def load_or_segment(data: Path, names: list[str], cache: str | None) -> tuple[dict, float]:
    """segment() of every image, timed; with --segments FILE.npz, saved there and reused by later runs (the crops
    depend only on the images and preprocess.py, not on the model)."""
    if cache and Path(cache).exists():
        with np.load(cache) as z:
            meta = json.loads(str(z["meta"]))
            if meta["names"] == names:
                return ({f: [DigitCrop(z[f"{f}:img"][i], tuple(int(v) for v in z[f"{f}:box"][i]))
                             for i in range(len(z[f"{f}:box"]))] for f in names}, meta["seconds_per_image"])
    t0 = time.perf_counter()
    segments = {f: segment(data / f) for f in names}
    seconds = (time.perf_counter() - t0) / len(names)
    if cache:
        arrays = {"meta": json.dumps({"names": names, "seconds_per_image": seconds})}
        for f, crops in segments.items():
            arrays[f"{f}:img"] = np.stack([c.image for c in crops]) if crops else np.zeros((0, 28, 28), np.float32)
            arrays[f"{f}:box"] = np.array([c.box for c in crops], np.int64).reshape(-1, 4)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    return segments, seconds


def mnist_accuracy(predictor, data_dir: str | None) -> float:
    test = load("mnist", data_dir)
    x = torch.from_numpy(test.test_images).float().div(255).unsqueeze(1).numpy()
    return float((predictor.predict_proba(x).argmax(1) == test.test_labels).mean())


def results_table(rows: list[dict]) -> list[str]:
    """Markdown rows: one per model and pipeline."""
    out = ["| model | pipeline | digit acc. | number acc. | 1-digit images | count acc. | MNIST test | s/image |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        single = "—" if r["single_digit_image_accuracy"] is None else f"{r['single_digit_image_accuracy']:.1%}"
        secs = f"{r['seconds_per_image']:.2f}" if "seconds_per_image" in r else "—"
        out.append(f"| {r['model']} | {r['pipeline']} | {r['digit_accuracy']:.1%} | {r['number_accuracy']:.1%} | "
                   f"{single} | {r['count_accuracy']:.1%} | {r['mnist_test_accuracy']:.2%} | {secs} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="/tmp/digitrec-realworld", help="folder written by make_realworld.py")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="a model to compare (repeatable); the bundled robust model is always included")
    ap.add_argument("--data-dir", default=None, help="MNIST folder for the reference accuracy")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--segments", default=None, metavar="FILE.npz",
                    help="cache of the segmentation (crops and boxes): written if absent, reused if present")
    ap.add_argument("--segment-only", action="store_true", help="segment (and fill --segments), then stop")
    args = ap.parse_args()
    prov = provenance()
    torch.set_num_threads(args.threads)
    data = Path(args.data)
    labels = json.loads((data / "labels.json").read_text())
    truth: dict[str, str] = labels["images"]
    models = {"robust (bundled)": str(default_model_path())}
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = path

    if args.limit:
        truth = dict(list(truth.items())[:args.limit])
    # segmentation does not depend on the model: once per image (read_image = segment + read_crops)
    segments, seg_seconds = load_or_segment(data, list(truth), args.segments)
    print(f"segmented {len(truth)} images, {seg_seconds:.2f} s/image")
    if args.segment_only:
        return
    naive_crops = np.stack([naive_crop(data / f) for f in truth])[:, None]
    rows = []
    for name, path in models.items():
        predictor = load_predictor(path)
        t0 = time.perf_counter()
        ours = {f: read_crops(predictor, segments[f])["text"] for f in truth}
        per_image = seg_seconds + (time.perf_counter() - t0) / len(truth)
        crops = naive_crops
        naive = {f: str(int(p.argmax())) for f, p in zip(truth, predictor.predict_proba(crops))}
        mnist = mnist_accuracy(predictor, args.data_dir)
        for pipeline, texts in (("ours", ours), ("naive", naive)):
            rows.append({"model": name, "path": path, "pipeline": pipeline, "mnist_test_accuracy": mnist,
                         **score(texts, truth), **({"seconds_per_image": per_image} if pipeline == "ours" else {})})
        print(f"{name}: ours {rows[-2]['number_accuracy']:.1%} numbers, naive {rows[-1]['number_accuracy']:.1%}")

    result = {"kind": "realworld", "provenance": prov, "data": {"folder": str(data), "seed": labels.get("seed"), "n": len(truth),
                                        "source": labels.get("source")}, "results": rows}
    stem = f"realworld-{machine_slug()}-{datetime.date.today().isoformat()}"
    out = Path(args.out)
    write_json(out / f"{stem}.json", result)
    lines = [f"# Reading synthetic real-world photos of numbers ({len(truth)} images, "
             f"{rows[0]['digits']} digits, seed {labels.get('seed')})", "",
             describe(prov), "",
             *results_table(rows)]
    lines += ["", "digit acc. = 1 − (edit distance / digits), so missed and extra digits count as errors; "
              "the naive pipeline reads every image as one digit, so it can only get one-digit images right."]
    write_text(out / f"{stem}.md", "\n".join(lines) + "\n")
    print(f"wrote {out / stem}.json and .md")


if __name__ == "__main__":
    main()
