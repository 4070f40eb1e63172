"""Where a command may write: never over one of its own inputs, never over a run's training records.

`digitrec export M.pt --out M.pt`, `report R --out R/model.pt` or `evaluate R/model.pt --out R` would each destroy
what they read or what training wrote; they are refused before any work is done.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .errors import DigitrecError

# files that `digitrec train` (and compare) write into a run or comparison folder
RECORDS = ("model.pt", "last.pt", "pruned.pt", "history.json", "metrics.json", "accuracy.png", "loss.png",
           "confusion.png", "train.log", "table.json", "table.csv", "table.md", "chart.png")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def holds_training_run(folder: Path) -> str | None:
    """The training record that makes `folder` a run (a checkpoint, a history, training metrics), or None."""
    for name in ("model.pt", "last.pt", "history.json"):
        if (folder / name).is_file():
            return name
    try:  # a classical model's run (digitrec compare) has training metrics but no checkpoint
        if "train_time_s" in json.loads((folder / "metrics.json").read_text()):
            return "metrics.json"
    except (OSError, ValueError, TypeError):
        pass
    return None


def check_output_file(out: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), flag: str = "--out") -> Path:
    """A file a command may (re)write: not a folder, not one of `inputs`, not an existing run record."""
    out = Path(out)
    if out.is_dir():
        raise DigitrecError(f"{flag} {out} is a folder; name the file to write")
    for given in map(Path, inputs):
        if _same(out, given):
            raise DigitrecError(f"{flag} {out} is this command's input; write to another file")
    if out.name in RECORDS and (out.exists() or holds_training_run(out.parent)):
        raise DigitrecError(f"{flag} {out}: {out.name} is a run's own record; write to another file")
    return out


def check_output_folder(out: str | os.PathLike, flag: str = "--out") -> Path:
    """A folder for a command's metrics.json and figures: not a file, not a training run's folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DigitrecError(f"{flag} {out} is a file; name a folder")
    record = holds_training_run(out) if out.is_dir() else None
    if record:
        raise DigitrecError(f"{flag} {out} holds a training run ({record}), whose records are kept as they are; "
                            f"choose another folder, e.g. {out / 'eval'}")
    return out
