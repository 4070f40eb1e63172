"""`digitrec read [MODEL] IMAGE|DIR|GLOB...`: the number written in each image (one digit or many), with boxes.

MODEL is a checkpoint (.pt), an exported .onnx model, a run folder holding model.pt, or `default` (the bundled
model); when the first argument is none of these, the bundled model reads all the arguments as images.
Images named one by one are all read before anything is printed: a bad one fails the command (exit 2). A folder
(searched recursively for image files) or a glob pattern is a batch: images are read as a stream, in parallel
with --jobs, a bad file is reported in its own line ("error") and the rest go on; --out FILE appends one JSON
line per image to FILE, flushed as each is read, and skips the images FILE already holds (a stopped batch resumes).
"""
from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

from ..errors import DigitrecError

MODEL_SUFFIXES = (".pt", ".pth", ".onnx")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def register(sub) -> None:
    p = sub.add_parser("read", help="read the number (one or more digits) in photos, scans or drawings",
                       description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("paths", nargs="+", metavar="[MODEL] IMAGE", help="model (optional), then images, folders or globs")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="F",
                   help="digits below this confidence are shown as '?' (default: 0)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="processes reading a batch (default: 1)")
    p.add_argument("--out", default=None, metavar="FILE.jsonl",
                   help="append JSON lines here (images already in it are skipped) instead of printing them")
    p.set_defaults(func=run)


def split_model(paths: list[str]) -> tuple[Path, list[str]]:
    """(model path, image arguments) from the positional arguments."""
    from ..reader import reader_model_path

    first = paths[0]
    if first == "default":
        model, images = reader_model_path(), paths[1:]
    elif first.endswith(MODEL_SUFFIXES):
        model, images = Path(first), paths[1:]
    elif Path(first).is_dir() and (Path(first) / "model.pt").is_file():
        model, images = Path(first) / "model.pt", paths[1:]
    else:
        model, images = reader_model_path(), paths
    if not images:
        raise DigitrecError(f"read: no image files given after the model {first}")
    return model, images


def expand(args: list[str]) -> tuple[list[str], bool]:
    """(image paths, whether it is a batch): folders give their image files (recursively), globs their matches."""
    files, batch = [], False
    for arg in args:
        if Path(arg).is_dir():
            batch = True
            files += sorted(str(p) for p in Path(arg).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif glob.has_magic(arg) and not Path(arg).exists():
            batch = True
            files += sorted(p for p in glob.glob(arg, recursive=True) if Path(p).is_file())
        else:
            files.append(arg)
    return files, batch


def show(obj: dict, as_json: bool) -> str:
    if as_json:
        return json.dumps(obj)
    if "error" in obj:
        return f"{obj['file']}: error: {obj['error']}"
    detail = ", ".join(f"{d['digit']} {d['confidence']:.0%}" for d in obj["digits"])
    return f"{obj['file']}: {obj['text'] or '(no digit found)'}" + (f"  ({detail})" if detail else "")


def run(args: argparse.Namespace) -> int:
    from ..reader import Reader

    if not 0.0 <= args.min_confidence <= 1.0:
        raise DigitrecError(f"--min-confidence must be in [0, 1], got {args.min_confidence}")
    if args.jobs < 1:
        raise DigitrecError(f"--jobs must be ≥ 1, got {args.jobs}")
    model, names = split_model(args.paths)
    images, batch = expand(names)
    if not batch and args.out is None:  # named files: all read first, so a bad one fails with no partial output
        reader = Reader(model, min_confidence=args.min_confidence)
        lines = [show(reader.read(path), args.json) for path in images]
        print("\n".join(lines))
        return 0
    from ..batch import read_batch

    if not Path(model).exists():
        raise DigitrecError(f"{model}: model not found")
    return read_batch(model, images, args.out, args.jobs, args.min_confidence, lambda obj: show(obj, args.json))
