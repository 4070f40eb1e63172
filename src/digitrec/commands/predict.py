"""`digitrec predict CHECKPOINT IMAGE...`: the digit in each image, with its confidence ("no digit found" when
the image holds no ink: a blank, white, black or transparent image is not read as any digit)."""
from __future__ import annotations

import argparse
import json

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("predict", help="read one digit per image file")
    p.add_argument("checkpoint", help="a digitrec checkpoint (.pt) or an ONNX model from `digitrec export`")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..predict import load_predictor
    from ..preprocess import load_digit

    predictor = load_predictor(args.checkpoint)  # a checkpoint (.pt) or an exported .onnx
    crops = np.stack([load_digit(path) for path in args.images])[:, None]  # all inputs checked before any output
    probs = predictor.predict_proba(crops)
    for path, crop, p in zip(args.images, crops, probs):
        if not crop.any():  # no ink: no digit, rather than the model's guess at an empty square
            print(json.dumps({"file": path, "digit": None, "confidence": None, "probabilities": None})
                  if args.json else f"{path}: no digit found")
            continue
        digit = int(p.argmax())
        if args.json:
            print(json.dumps({"file": path, "digit": digit, "confidence": round(float(p[digit]), 6),
                              "probabilities": [round(float(v), 6) for v in p]}))
        else:
            print(f"{path}: {digit} ({p[digit]:.1%})")
    return 0
