"""What every results file records (command, git commit, date, CPU model and cores, GPU, torch version):
digitrec.machine's machine_info(), plus a short machine name for result file names."""
from __future__ import annotations

import os

from digitrec.machine import cpu_model, git_commit, machine_info

__all__ = ["cpu_model", "git_commit", "machine_info", "machine_slug"]


def machine_slug() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0).lower().replace("nvidia ", "").replace(" ", "-")
    return f"cpu{os.cpu_count()}"
