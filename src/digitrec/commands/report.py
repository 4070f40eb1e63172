"""`digitrec report DIR... --out report.html`: one self-contained HTML page over comparisons and runs."""
from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML report over `compare` folders and `train` runs",
                       description="Write one HTML file (figures embedded, no external assets): the Table 1 "
                                   "comparison, accuracy/loss curves, confusion matrices, per-class metrics and "
                                   "the most confident mistakes of each run.")
    p.add_argument("paths", nargs="+", metavar="DIR", help="`digitrec compare` output folders or `digitrec train` run folders")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--examples", type=int, default=12,
                   help="most confident mistakes shown per run (re-runs each checkpoint on its test split; 0: none)")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (for the mistakes)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import DigitrecError
    from ..fileio import write_text
    from ..outputs import check_output_file
    from ..report import build_report

    if args.examples < 0:
        raise DigitrecError(f"--examples must be ≥ 0, got {args.examples}")
    check_output_file(args.out, args.paths)
    page = build_report(args.paths, examples=args.examples, data_dir=args.data_dir)
    write_text(args.out, page)
    print(f"wrote {args.out} ({len(page.encode()) / 1e6:.2f} MB)")
    return 0
