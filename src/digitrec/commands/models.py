"""`digitrec models`: the model registry and the presets."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("models", help="list models and presets")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import preset_names
    from ..models import available, create

    for name in available():
        n = sum(p.numel() for p in create(name).parameters())
        print(f"{name:14s} {n:>12,} parameters")
    print("presets:", ", ".join(preset_names()))
    return 0
