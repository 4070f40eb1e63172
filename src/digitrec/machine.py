"""What a results file records about where it was measured: command, commit, date, CPU, cores, GPU, torch.

Installed commands (`digitrec compare`, `sweep`, `report`) record it; benchmarks write the fuller block of
benchmarks/provenance.py. Both take the source state from runinfo.source_state.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """Short commit of the source tree, with the diff's hash when it has uncommitted changes (runinfo.source_state)."""
    from .runinfo import short_state

    return short_state()


def machine_info() -> dict:
    import torch

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([os.path.basename(sys.argv[0]) or "python"] + sys.argv[1:]),
        "git_commit": git_commit(),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
