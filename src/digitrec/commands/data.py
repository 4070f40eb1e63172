"""`digitrec data info|verify`: which dataset files are where, and whether their sha256 is the published one."""
from __future__ import annotations

import argparse

from ..errors import DigitrecError


def register(sub) -> None:
    p = sub.add_parser("data", help="show or verify dataset files")
    p.add_argument("action", choices=["info", "verify", "download"])
    p.add_argument("--dataset", default=None, help="mnist or emnist-digits (default: all)")
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.datasets import locate, status
    from ..data.sources import SOURCES

    names = [args.dataset] if args.dataset else list(SOURCES)
    for name in names:
        if name not in SOURCES:
            raise DigitrecError(f"unknown dataset {name!r}; choose one of: {', '.join(SOURCES)}")
    if args.action == "download":
        for name in names:
            src, folder = locate(name, args.data_dir, download=True)
            print(f"{name}: complete in {folder}")
        return 0
    bad = 0
    for name in names:
        for row in status(name, args.data_dir, check_hashes=args.action == "verify"):
            if row["path"] is None:
                state, bad = "missing", bad + 1
            elif "sha256_ok" in row:
                state = "sha256 ok" if row["sha256_ok"] else "SHA256 MISMATCH"
                bad += not row["sha256_ok"]
            else:
                state = f"{row['bytes']:,} bytes"
            print(f"{name:14s} {row['file']:44s} {state:16s} {row['path'] or ''}")
    if args.action == "verify" and bad:
        raise DigitrecError(f"{bad} file(s) missing or corrupt (digitrec data download fetches them)")
    return 0
