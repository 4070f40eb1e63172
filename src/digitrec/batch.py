"""Reading a batch of images (`digitrec read DIR|GLOB`): a stream of JSON lines, in parallel, resumable.

Each image's line is written whole and flushed as soon as it is read, in the order given; an image that cannot
be read gets a line with an "error" instead of stopping the batch. With an output file, the images it already
holds are skipped, so a batch stopped at any point (Ctrl-C, a kill, a crash) resumes where it was.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import DigitrecError

_reader = None  # each worker process's Reader


def done_files(out: Path) -> set[str]:
    """The files an earlier run already wrote to `out`; a last line cut short by a kill is removed."""
    if not out.exists():
        return set()
    data = out.read_bytes()
    whole = data[:data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        with open(out, "r+b") as f:
            f.truncate(len(whole))
    done = set()
    for line in whole.decode("utf-8", errors="replace").splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("file"), str):
            done.add(obj["file"])
    return done


def _init(model: str, min_confidence: float) -> None:
    global _reader
    from .reader import Reader

    _reader = Reader(model, threads=1, min_confidence=min_confidence)


def _read_one(path: str) -> dict[str, Any]:
    try:
        return _reader.read(path)
    except DigitrecError as e:
        return {"file": path, "error": str(e)}
    except Exception as e:  # noqa: BLE001 — one broken file must not stop a batch of thousands
        return {"file": path, "error": f"cannot read ({type(e).__name__}: {str(e)[:200]})"}


def _results(model: str, todo: list[str], jobs: int, min_confidence: float) -> Iterator[dict[str, Any]]:
    if jobs == 1 or len(todo) < 2:
        _init(model, min_confidence)
        yield from map(_read_one, todo)
        return
    ctx = multiprocessing.get_context("spawn")  # workers start clean: no torch state shared through fork
    with ctx.Pool(min(jobs, len(todo)), initializer=_init, initargs=(model, min_confidence)) as pool:
        yield from pool.imap(_read_one, todo, chunksize=4)


def read_batch(model: str | os.PathLike, images: list[str], out: str | None, jobs: int, min_confidence: float,
               show: Callable[[dict[str, Any]], str]) -> int:
    """Read `images`, printing show(record) per image, or appending its JSON line to `out`."""
    from tqdm import tqdm

    out_path = Path(out) if out else None
    skip = done_files(out_path) if out_path else set()
    todo = [p for p in images if p not in skip]
    errors = 0
    sink = open(out_path, "a", encoding="utf-8") if out_path else sys.stdout
    try:
        with tqdm(total=len(todo), unit="image", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:
            for obj in _results(str(model), todo, jobs, min_confidence):
                errors += "error" in obj
                sink.write((json.dumps(obj) if out_path else show(obj)) + "\n")
                sink.flush()
                bar.update(1)
    finally:
        if out_path:
            sink.close()
    where = f" to {out_path}" if out_path else ""
    already = f", {len(skip)} already there" if skip else ""
    print(f"digitrec: read {len(todo)} images{where} ({errors} unreadable){already}", file=sys.stderr)
    return 0
