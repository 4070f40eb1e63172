"""Atomic writes: a reader (or a crash) never sees a half-written file, and a failed write is one clear error.

Files are written to a temporary name in the target's folder, flushed to disk, then renamed over the target.
An OSError while writing (a full disk, a read-only folder) becomes a DigitrecError such as
"cannot write RUN/last.pt: no space left on device", and the temporary file is removed.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import DigitrecError


def os_reason(e: OSError) -> str:
    """'no space left on device', 'permission denied', ...: the OS's words, one line, lower case."""
    return (e.strerror or str(e) or type(e).__name__).lower()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise DigitrecError(f"cannot write {path}: {os_reason(e)}") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files 0600; a result file should have normal permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as e:
            raise DigitrecError(f"cannot write {path}: {os_reason(e)}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _write_file(path: Path, data: bytes) -> None:
    """Write and flush to disk (a checkpoint that is renamed into place must be complete after a power cut)."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        try:
            _write_file(tmp, data)
        except OSError as e:
            raise DigitrecError(f"cannot write {path}: {os_reason(e)}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The file's sha256 (hex), read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """torch.save, serialised in memory first: a failing disk then raises the OS's error ('no space left on
    device'), not torch's zip writer's '[enforce fail at inline_container.cc]'."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getbuffer())
