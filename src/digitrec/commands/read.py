"""`digitrec read [MODEL] IMAGE...`: the number written in each image (one digit or many), with boxes.

MODEL is a checkpoint (.pt), an exported .onnx model, a run folder holding model.pt, or `default` (the bundled
robust model); when the first argument is none of these, the bundled model reads all the arguments as images.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DigitrecError

MODEL_SUFFIXES = (".pt", ".pth", ".onnx")


def register(sub) -> None:
    p = sub.add_parser("read", help="read the number (one or more digits) in photos, scans or drawings",
                       description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("paths", nargs="+", metavar="[MODEL] IMAGE", help="model (optional), then image files")
    p.add_argument("--json", action="store_true", help="one JSON object per image per line")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="F",
                   help="digits below this confidence are shown as '?' (default: 0)")
    p.set_defaults(func=run)


def split_model(paths: list[str]) -> tuple[Path, list[str]]:
    """(model path, image paths) from the positional arguments."""
    from ..reader import default_model_path

    first = paths[0]
    if first == "default":
        model, images = default_model_path(), paths[1:]
    elif first.endswith(MODEL_SUFFIXES):
        model, images = Path(first), paths[1:]
    elif Path(first).is_dir():
        model, images = Path(first) / "model.pt", paths[1:]
    else:
        model, images = default_model_path(), paths
    if not images:
        raise DigitrecError(f"read: no image files given after the model {first}")
    return model, images


def run(args: argparse.Namespace) -> int:
    from ..predict import load_predictor
    from ..reader import read_image

    if not 0.0 <= args.min_confidence <= 1.0:
        raise DigitrecError(f"--min-confidence must be in [0, 1], got {args.min_confidence}")
    model, images = split_model(args.paths)
    if not model.exists():
        raise DigitrecError(f"{model}: model not found")
    predictor = load_predictor(model)
    # every image is read before anything is printed: a bad file fails the command with no partial output
    results = [read_image(predictor, path, args.min_confidence) for path in images]
    for path, r in zip(images, results):
        if args.json:
            digits = [{k: d[k] for k in ("digit", "confidence", "box", "doubtful")} for d in r["digits"]]
            print(json.dumps({"file": path, "text": r["text"], "digits": digits}))
        else:
            detail = ", ".join(f"{d['digit']} {d['confidence']:.0%}" for d in r["digits"])
            print(f"{path}: {r['text'] or '(no digits found)'}" + (f"  ({detail})" if detail else ""))
    return 0
