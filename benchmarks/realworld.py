"""How well `digitrec read` reads real handwriting, against other readers, and how fast: one command, one record.

On a folder of real images with labels.csv (file,label,kind,multi,source_repo,...; the development set
$DIGITREC_DATA/realworld-dev), for the bundled model and any --model NAME=PATH:
  - accuracy of single digits (exact one-digit text) per kind, and of whole numbers (exact digit string), on
    the whole set and on its two halves split by writer (source repository), so that a choice made on one half
    can be confirmed on the other;
  - MNIST official test accuracy of each model;
  - every failure of the bundled model, with its cause when --causes FILE.json names it ({"file": "cause"}),
    and its crops saved to --crops DIR (outside the repository) for a person to look at;
  - peers on the same images (--peers: tesseract-psm6/7/8/10, easyocr, easyocr-rec, rapidocr): accuracy per
    kind and seconds per image, as ratios to digitrec's;
  - speed on one core and the bounds on hostile input (benchmarks/realworld_speed.py);
  - optionally the synthetic multi-digit photos of make_realworld.py (--synthetic DIR).

    python3 benchmarks/realworld.py --data $DIGITREC_DATA/realworld-dev --causes benchmarks/realworld_causes.json
    → benchmarks/results/realworld-<machine>-<date>.{json,md}
A record is written only from a clean git tree (or with --allow-dirty, which marks it).
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import machine_slug, provenance  # noqa: E402
from benchmarks.realworld_report import markdown  # noqa: E402
from digitrec.data import load  # noqa: E402
from digitrec.errors import DigitrecError  # noqa: E402
from digitrec.fileio import write_json, write_text  # noqa: E402
from digitrec.predict import load_predictor  # noqa: E402
from digitrec.preprocess import segment  # noqa: E402
from digitrec.reader import Reader, default_model_path, read_crops  # noqa: E402

# one writer behind two source repositories (the same widely copied photo of a number; see the set's notes.txt)
SAME_WRITER = {"kranthy09/digitDetect": "Yogender-Singh/Digit-Detection-using-Opencv"}
GROUPS = ("canvas", "photo", "scan", "unknown")


def half(source_repo: str) -> str:
    """'A' or 'B': a fixed split of the writers (source repositories), by a hash of the name."""
    writer = SAME_WRITER.get(source_repo, source_repo)
    return "A" if hashlib.sha256(writer.encode()).digest()[0] % 2 == 0 else "B"


def load_rows(data: Path, limit: int | None) -> list[dict]:
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["half"] = half(r["source_repo"])
        r["single"] = r["multi"] == "0"
    return rows[:limit] if limit else rows


def score(rows: list[dict], texts: dict[str, str]) -> dict:
    """Exact-match accuracy: single digits per kind and in all, numbers, each on the whole set and per half."""
    out = {}
    for part in ("all", "A", "B"):
        rs = [r for r in rows if part == "all" or r["half"] == part]
        cells = {"single": [r for r in rs if r["single"]], "numbers": [r for r in rs if not r["single"]]}
        cells.update({k: [r for r in rs if r["single"] and r["kind"] == k] for k in GROUPS})
        out[part] = {k: {"right": sum(texts[r["file"]] == r["label"] for r in v), "n": len(v)}
                     for k, v in cells.items() if v}
    return out


def mnist_accuracy(predictor) -> float:
    test = load("mnist")
    x = torch.from_numpy(test.test_images).float().div(255).unsqueeze(1).numpy()
    return float((predictor.predict_proba(x).argmax(1) == test.test_labels).mean())


def read_all(read, rows: list[dict], data: Path) -> tuple[dict[str, str], float]:
    """Texts of all images (an unreadable one reads as an error string) and seconds per image."""
    texts = {}
    t0 = time.perf_counter()
    for r in rows:
        try:
            texts[r["file"]] = read(str(data / r["file"]))
        except (DigitrecError, RuntimeError, OSError) as e:
            texts[r["file"]] = f"error: {e}"
    return texts, (time.perf_counter() - t0) / max(1, len(rows))


def save_crops(rows: list[dict], data: Path, texts: dict[str, str], folder: Path) -> None:
    """Each failure's MNIST-form crops, side by side, as FILE-stem_read-TEXT.png (for a person to look at)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for r in rows:
        if texts[r["file"]] == r["label"]:
            continue
        crops = [c.image for c in segment(data / r["file"])] or [np.zeros((28, 28), np.float32)]
        strip = (np.concatenate(crops, axis=1) * 255).astype(np.uint8)
        name = f"{Path(r['file']).stem}_truth-{r['label']}_read-{texts[r['file']] or 'none'}.png"
        Image.fromarray(strip).resize((strip.shape[1] * 4, 112), Image.Resampling.NEAREST).save(folder / name)


def digitrec_rows(models: dict[str, str], rows, data: Path) -> tuple[list[dict], dict[str, str]]:
    results, bundled_texts = [], {}
    for name, path in models.items():
        reader = Reader(path, threads=1)
        texts, seconds = read_all(lambda p: reader.read(p)["text"], rows, data)
        results.append({"reader": name, "path": path, "seconds_per_image": seconds, "score": score(rows, texts),
                        "mnist_test_accuracy": mnist_accuracy(reader.predictor), "texts": texts})
        bundled_texts = bundled_texts or texts
        print(f"{name}: {results[-1]['score']['all']}  {seconds:.3f} s/image", flush=True)
    return results, bundled_texts


def peer_rows(peers: list[str], rows, data: Path) -> list[dict]:
    from benchmarks.realworld_peers import make_peer

    results = []
    for name in peers:
        try:
            read = make_peer(name)
        except (ImportError, RuntimeError) as e:
            results.append({"reader": name, "unavailable": f"{type(e).__name__}: {e}"})
            continue
        texts, seconds = read_all(read, rows, data)
        results.append({"reader": name, "seconds_per_image": seconds, "score": score(rows, texts), "texts": texts})
        print(f"{name}: {results[-1]['score']['all']}  {seconds:.3f} s/image", flush=True)
    return results


def synthetic_rows(folder: Path, models: dict[str, str]) -> list[dict]:
    """make_realworld.py's photos: digit accuracy (1 − edit distance / digits) and whole numbers, per model."""
    truth = json.loads((folder / "labels.json").read_text())["images"]
    segments = {f: segment(folder / f) for f in truth}
    out = []
    for name, path in models.items():
        predictor = load_predictor(path, threads=1)
        texts = {f: read_crops(predictor, segments[f])["text"] for f in truth}
        errors = sum(_edit_distance(texts[f], t) for f, t in truth.items())
        out.append({"reader": name, "images": len(truth), "digits": sum(map(len, truth.values())),
                    "digit_accuracy": 1 - errors / sum(map(len, truth.values())),
                    "number_accuracy": float(np.mean([texts[f] == t for f, t in truth.items()]))})
    return out


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(os.environ.get("DIGITREC_DATA", "../shared/data")) / "realworld-dev"
    ap.add_argument("--data", default=str(default_data), help="folder with labels.csv and images/")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                    help="another model to compare (repeatable); the bundled model is always first")
    ap.add_argument("--peers", default="tesseract-psm7,tesseract-psm10,easyocr,easyocr-rec,rapidocr",
                    help="comma-separated peers ('' for none): tesseract-psmN, easyocr, easyocr-rec, rapidocr")
    ap.add_argument("--causes", default=None, metavar="FILE.json", help="failure causes judged by eye")
    ap.add_argument("--crops", default=None, metavar="DIR", help="save each failure's crops here")
    ap.add_argument("--synthetic", default=None, metavar="DIR", help="also score make_realworld.py's photos")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed and bounds section")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images (a quick look; not a record)")
    ap.add_argument("--allow-dirty", action="store_true", help="write a record from an uncommitted tree (marked)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    prov = provenance()
    if prov["dirty"] is not False and not args.allow_dirty:
        sys.exit("realworld.py: the tree has uncommitted changes; commit them (or pass --allow-dirty: marked)")
    data = Path(args.data)
    rows = load_rows(data, args.limit)
    models = {"digitrec (bundled)": str(default_model_path())}
    models.update(dict(item.partition("=")[::2] for item in args.model))
    ours, bundled_texts = digitrec_rows(models, rows, data)
    peers = peer_rows([p for p in args.peers.split(",") if p], rows, data)
    if args.crops:
        save_crops(rows, data, bundled_texts, Path(args.crops))
    causes = json.loads(Path(args.causes).read_text()) if args.causes else {}
    failures = [{"file": r["file"], "kind": r["kind"], "multi": not r["single"], "truth": r["label"],
                 "read": bundled_texts[r["file"]], "half": r["half"],
                 "cause": causes.get(r["file"], "not yet examined")}
                for r in rows if bundled_texts[r["file"]] != r["label"]]
    result = {"kind": "realworld", "provenance": prov, "data": {"folder": str(data), "images": len(rows)}, "digitrec": ours,
              "peers": peers, "failures": failures}
    if not args.no_speed:
        from benchmarks.realworld_speed import run_speed

        from PIL import Image

        phones = [data / r["file"] for r in rows if r["kind"] == "photo"
                  and np.prod(Image.open(data / r["file"]).size) >= 10_000_000]  # the real 12-MP phone photos
        result["speed"] = run_speed(Reader(threads=1), load("mnist").test_images, phones[:5])
    if args.synthetic:
        result["synthetic"] = synthetic_rows(Path(args.synthetic), models)
    stem = f"realworld-{machine_slug()}-{datetime.date.today().isoformat()}"
    write_json(Path(args.out) / f"{stem}.json", result)
    write_text(Path(args.out) / f"{stem}.md", markdown(result))
    print(f"wrote {Path(args.out) / stem}.json and .md")


def results_table(result: dict) -> list[str]:
    """The README's table: every reader's accuracy per kind, on the whole set and per half."""
    from benchmarks.realworld_report import accuracy_table

    return accuracy_table(result)


if __name__ == "__main__":
    main()
