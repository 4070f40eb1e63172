"""What a training run records about itself, built once and written into last.pt, history.json and metrics.json.

`RunInfo` holds what was trained (dataset, split, sizes, configuration), where (device, processes) and, for each
time the run was started or resumed, a session: the exact argv, the date, the source it ran from (commit, whether
the tree had uncommitted changes and the sha256 of that diff) and the hardware (CPU model, cores, GPU, torch).
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, cwd=cwd, timeout=30)


# Records being written are not code: a benchmark writing its own results must not make the tree dirty.
_CODE = (":/", ":(top,exclude)benchmarks/results")
_UNKNOWN = {"commit": "unknown", "dirty": None, "diff_sha256": None, "source": "unknown"}


def _from_environment() -> dict[str, Any]:
    """A tree copied to a machine without its .git (a lent GPU) names its state through DIGITREC_GIT_*
    (`python -m benchmarks.provenance --env` prints them on the machine that has the checkout)."""
    dirty = os.environ.get("DIGITREC_GIT_DIRTY")
    return {"commit": os.environ["DIGITREC_GIT_COMMIT"], "dirty": None if dirty is None else dirty == "1",
            "diff_sha256": os.environ.get("DIGITREC_GIT_DIFF_SHA256") or None, "source": "environment"}


def source_state(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The commit digitrec runs from; when the code differs from it, dirty=True and the sha256 of the diff
    (`git diff HEAD` plus untracked files, benchmarks/results/ left out).

    Outside a git checkout (an installed wheel, a copied tree) the commit is 'unknown'; DIGITREC_GIT_COMMIT, when
    set, names it instead (a tree copied to another machine may carry stale git metadata). `root`: the checkout to
    describe (default: the one this package runs from)."""
    if os.environ.get("DIGITREC_GIT_COMMIT"):
        return _from_environment()
    here = Path(root) if root is not None else Path(__file__).parent
    try:
        head = _git("rev-parse", "HEAD", cwd=here)
        if head.returncode != 0:
            return dict(_UNKNOWN)
        top = Path(_git("rev-parse", "--show-toplevel", cwd=here).stdout.decode().strip())
        if root is None and here.resolve() != (top / "src" / "digitrec").resolve():  # installed inside another repo
            return dict(_UNKNOWN)
        diff = _git("diff", "HEAD", "--binary", "--", *_CODE, cwd=here).stdout
        untracked = [n for n in _git("ls-files", "--others", "--exclude-standard", "-z", "--", *_CODE, cwd=here).stdout
                     .decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        return dict(_UNKNOWN)
    h = hashlib.sha256(diff)
    for name in sorted(untracked):  # new files not yet added change what runs too
        path = top / name
        size = path.stat().st_size if path.is_file() else 0
        h.update(f"\0untracked {name} {size}\0".encode())
        if size <= 10 << 20:  # (a large data file: by name and size)
            h.update(path.read_bytes() if path.is_file() else b"")
    dirty = bool(diff or untracked)
    return {"commit": head.stdout.decode().strip(), "dirty": dirty, "diff_sha256": h.hexdigest() if dirty else None,
            "source": "git", "untracked": len(untracked)}


def short_state(state: dict[str, Any] | None = None) -> str:
    """The source state in a few characters: the short commit, and the diff's hash when the tree was dirty."""
    state = state or source_state()
    commit = str(state["commit"])
    short = commit[:7] if len(commit) == 40 else commit
    return short + (f"+diff.{state['diff_sha256'][:12]}" if state.get("dirty") and state.get("diff_sha256") else
                    "+uncommitted" if state.get("dirty") else "")


def hardware() -> dict[str, Any]:
    from .machine import cpu_model

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() \
        else []
    return {"cpu": cpu_model(), "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": gpus[0] if gpus else None, "gpus": len(gpus),
            "torch": str(torch.__version__), "cuda": str(torch.version.cuda) if gpus else None,
            "python": platform.python_version(), "platform": platform.platform()}


def session(start_epoch: int) -> dict[str, Any]:
    """This process's part of the run: argv, date, source and hardware."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {"argv": list(sys.argv), "started": now,
            "start_epoch": start_epoch, **source_state(), "hardware": hardware()}


@dataclasses.dataclass
class RunInfo:
    dataset: str
    split: str
    sizes: dict[str, int]
    device: str
    world_size: int
    config: dict[str, Any]
    sessions: list[dict[str, Any]]

    @classmethod
    def start(cls, cfg, sizes: dict[str, int], device: torch.device, world_size: int, start_epoch: int = 0,
              earlier: list[dict[str, Any]] | None = None) -> "RunInfo":
        """The run's record, with this process's session appended to those of earlier starts (a resume)."""
        return cls(cfg.dataset, cfg.split, sizes, str(device), world_size, dataclasses.asdict(cfg),
                   [*(earlier or []), session(start_epoch)])

    def record(self) -> dict[str, Any]:
        """Top-level fields of history.json and metrics.json."""
        return dataclasses.asdict(self)

    def checkpoint_fields(self) -> dict[str, Any]:
        """What every checkpoint of the run carries besides its weights."""
        return {"config": self.config, "dataset": self.dataset, "split": self.split, "sizes": self.sizes,
                "sessions": self.sessions}
