"""Where the time of a whole `digitrec train` command goes, besides training (benchmarks/run.py, section startup).

Three runs of the same command (`digitrec train --preset P --seed 0`), each in a fresh process:
  cached     the decoded-dataset cache in place (what a user's second run gets)
  no-cache   DIGITREC_DATA_CACHE=0: the IDX files gunzipped and parsed each time
  importtime `python -X importtime`: how long each package takes to import (first import, with what it pulls in)
Each run's own metrics.json gives its phases (setup, training, validation, saving, test evaluation, figures); the
rest of the wall time is the interpreter, the imports before setup, argument parsing and exit.
"""
from __future__ import annotations

import re
from typing import Any

# packages whose import cost is worth naming; they nest (sklearn pulls in scipy, torch numpy)
PACKAGES = ("torch", "torch._dynamo", "numpy", "sklearn", "scipy", "matplotlib", "matplotlib.pyplot", "PIL",
            "tqdm", "digitrec.train", "digitrec.evaluate", "digitrec.cli")
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


def import_breakdown(stderr: str) -> dict[str, Any]:
    """From `python -X importtime` output: the total of the top-level imports (seconds) and, per package in
    PACKAGES, the cumulative time of its first import and the top-level import it happened in (importtime lists a
    module after everything it imported; torch._dynamo, for one, is imported on its own when the optimizer is built)."""
    lines = [(int(m.group(2)) / 1e6, len(m.group(3)), m.group(4)) for m in _LINE.finditer(stderr)]
    total = sum(t for t, indent, _ in lines if indent == 0)
    packages, seen = [], set()
    for i, (t, indent, name) in enumerate(lines):
        if name in PACKAGES and name not in seen:
            seen.add(name)
            top = next(n for _, ind, n in lines[i:] if ind == 0)
            packages.append({"package": name, "import_s": t, "within": top})
    order = {p: i for i, p in enumerate(PACKAGES)}
    return {"total_s": total, "packages": sorted(packages, key=lambda p: order[p["package"]])}


PHASES = (("setup", "setup: device, data, split, model, optimizer"), ("train", "training (the epochs)"),
          ("validate", "validation after each epoch"), ("save", "checkpoints (last.pt, model.pt, history.json)"),
          ("test", "test evaluation (10,000 images, metrics)"), ("figures", "figures (3 PNG files)"))


def phase_rows(run: dict[str, Any]) -> list[tuple[str, float]]:
    """(what, seconds) for one run: its phases, and the rest of the command's wall time."""
    phases = run.get("phase_time_s") or {}
    rows = [(label, phases[key]) for key, label in PHASES if key in phases]
    rows.append(("the rest: interpreter, imports before setup, arguments, exit",
                 run["command_wall_s"] - sum(phases.values())))
    return rows


def markdown(s: dict[str, Any]) -> list[str]:
    cached, cold = s["cached"], s["no_cache"]
    out = [f"Command: `{cached['command']}` (seed 0). Wall {cached['command_wall_s']:.1f} s, CPU "
           f"{cached['command_cpu_s']:.1f} s; with the data decoded from the IDX files instead of the cache: wall "
           f"{cold['command_wall_s']:.1f} s, setup {cold['phase_time_s'].get('setup', 0):.2f} s instead of "
           f"{cached['phase_time_s'].get('setup', 0):.2f} s.", "",
           "| part of the command | wall (cached data) | wall (decoding the IDX files) |", "|---|---:|---:|"]
    for (what, t), (_, t_cold) in zip(phase_rows(cached), phase_rows(cold)):
        out.append(f"| {what} | {t:.2f} s | {t_cold:.2f} s |")
    out.append(f"| **whole command** | **{cached['command_wall_s']:.2f} s** | {cold['command_wall_s']:.2f} s |")
    imports = s["importtime"]["imports"]
    out += ["", f"Imports (`python -X importtime`, which adds its own overhead): {imports['total_s']:.2f} s in all, "
            "some of it inside the phases above (an import made when first needed). First import of each package, "
            "with what it pulls in (they nest):", "", "| package | import | as part of |", "|---|---:|---|"]
    out += [f"| {p['package']} | {p['import_s']:.2f} s | {p['within']} |" for p in imports["packages"]]
    return out
