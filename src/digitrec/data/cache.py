"""A cache of decoded datasets: a dataset's four IDX files as uint8 arrays in one uncompressed .npz file in the user
cache, so that a run loads them in milliseconds instead of gunzipping and parsing them every time.

- Keyed by the sha256 of the source files' bytes and of how they were decoded: any change to the data (or to the
  decoding) gives another key, so a stale entry is never read.
- Each array is a member of an uncompressed zip (NumPy's .npz) whose CRC-32 zipfile checks on every read: a
  damaged entry is ignored and rewritten.
- Written atomically (temporary file + rename): a killed writer leaves no partial entry; concurrent writers of one
  key write the same bytes.
- Bounded: one entry per dataset location (writing one removes that location's older entries); datasets under
  MIN_BYTES are not cached (they decode faster than the bookkeeping). DIGITREC_DATA_CACHE=0 switches it off.
- Never required: a cache folder that cannot be read or written is skipped, the files are decoded as before.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import DigitrecError

FORMAT = 1  # bump when the stored layout or the decoding changes
MIN_BYTES = 1 << 20
NAMES = ("train_images", "train_labels", "test_images", "test_labels")
ENV_SWITCH = "DIGITREC_DATA_CACHE"

Arrays = dict[str, np.ndarray]


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "no", "false", "off")


def source_key(files: Sequence[Path], recipe: str) -> str:
    """sha256 of the cache format, the decoding recipe and every source file's bytes (hex)."""
    h = hashlib.sha256(f"digitrec-decoded-{FORMAT}|{recipe}".encode())
    for path in files:
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def entry_path(root: Path, location: str, key: str) -> Path:
    """ROOT/<location hash>-<key>.npz: one prefix per dataset location, so its older entries can be found."""
    return root / f"{_location_id(location)}-{key[:32]}.npz"


def _location_id(location: str) -> str:
    return hashlib.sha256(location.encode()).hexdigest()[:16]


def read(path: Path) -> Arrays | None:
    """The arrays of an entry, or None when it is missing, unreadable or damaged (a member's CRC-32 is wrong)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in NAMES}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return arrays if all(a.dtype == np.uint8 for a in arrays.values()) else None


def write(path: Path, arrays: Arrays) -> None:
    """Write an entry atomically, then remove the older entries of the same location. Failures are ignored."""
    from ..fileio import atomic_path

    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a bare temporary name
                np.savez(f, **{n: arrays[n] for n in NAMES})
        for old in path.parent.glob(path.name.split("-")[0] + "-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except (DigitrecError, OSError):
        pass  # a read-only or full cache folder: decoding each time still works


def load_or_build(root: Path, location: str, files: Sequence[Path], recipe: str,
                  build: Callable[[], Arrays]) -> Arrays:
    """The decoded arrays of `files`: from the cache when a valid entry exists, else `build()` (then cached)."""
    if not enabled():
        return build()
    path = entry_path(root, location, source_key(files, recipe))
    arrays = read(path) if path.is_file() else None
    if arrays is None:
        arrays = build()
        if sum(a.nbytes for a in arrays.values()) >= MIN_BYTES:
            write(path, arrays)
    return arrays
