"""How a results record was made — written by every benchmark into its JSON, read by the README generator.

    provenance() → {"argv": the exact command line, "cwd": where it ran,
                    "commit": the checked-out commit (40 hex), "dirty": uncommitted changes to the code?,
                    "diff_sha256": sha256 of those changes (git diff HEAD + untracked files), or None when clean,
                    "source": "git" | "environment" | "unknown",
                    "date": UTC, "hardware": {cpu, cpu_cores, gpu, torch, python, torch_threads},
                    "load_average": 1/5/15-minute load when the benchmark started,
                    "environment": the variables that change what runs (DIGITREC_DATA, OMP_NUM_THREADS, ...)}

benchmarks/results/ itself is left out of the diff: a benchmark writing its own record does not make the tree dirty.
A tree copied to a machine without its .git (a lent GPU machine) names its state through the environment:
`eval "$(python -m benchmarks.provenance --env)"` on the machine that has the checkout, then send the tree.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = ("DIGITREC_DATA", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONPATH")


def source_state() -> dict[str, Any]:
    """The commit of the code that runs, whether it has uncommitted changes, and their hash (one implementation,
    shared with training's own records)."""
    from digitrec.runinfo import source_state as state

    return {k: v for k, v in state(ROOT).items() if k != "untracked"}


def hardware() -> dict[str, Any]:
    from digitrec.runinfo import hardware as hw

    return {k: v for k, v in hw().items() if k in ("cpu", "cpu_cores", "torch_threads", "gpu", "torch", "python")}


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """The provenance block of a record about to be measured (call it before the measurement starts)."""
    return {"argv": list(argv if argv is not None else sys.orig_argv), "cwd": os.getcwd(), **source_state(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "hardware": hardware(), "load_average": load_average(),
            "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ}}


def machine_slug() -> str:
    """A short machine name for result file names: the GPU's, else cpu<cores>."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0).lower().replace("nvidia ", "").replace(" ", "-")
    return f"cpu{os.cpu_count()}"


# --- reading records ---------------------------------------------------------------------------------------------

def of_record(record: dict[str, Any]) -> dict[str, Any] | None:
    """A record's provenance block; records written before it existed carry a "machine" block instead, read here
    with what it says (its commit string ends in -dirty for uncommitted changes, whose hash it never kept)."""
    if isinstance(record.get("provenance"), dict):
        return record["provenance"]
    m = record.get("machine")
    if not isinstance(m, dict) or not isinstance(m.get("git_commit"), str) or m["git_commit"] == "unknown":
        return None
    dirty = m["git_commit"].endswith("-dirty")
    return {"argv": None, "command": m.get("command"), "commit": m["git_commit"].removesuffix("-dirty"),
            "dirty": dirty, "diff_sha256": None, "source": "legacy", "date": m.get("date"),
            "hardware": {k: m.get(k) for k in ("cpu", "cpu_cores", "gpu", "torch", "python")}}


def problem(prov: dict[str, Any] | None) -> str | None:
    """Why a record cannot back a published number (no provenance, unknown code state), or None when it can."""
    if prov is not None and prov.get("mixed"):
        return "trained in sessions at different code states"
    if prov is None or not prov.get("commit") or prov["commit"] == "unknown":
        return "no commit recorded"
    if prov.get("dirty") is None:
        return "tree state unknown"
    if prov["dirty"] and not prov.get("diff_sha256"):
        return "uncommitted changes without the diff's hash"
    return None


def command(prov: dict[str, Any], notes: bool = True) -> str:
    """The command line, quoted for a shell (an old record's as it wrote it: its argv was joined with spaces).
    notes=False leaves out `--note TEXT` (a remark stored with the results; it changes nothing measured)."""
    if prov.get("command"):
        return prov["command"] if notes else prov["command"].split(" --note ")[0]
    argv = [str(a) for a in prov.get("argv") or []]
    if not notes:
        argv = [a for i, a in enumerate(argv) if a != "--note" and (i == 0 or argv[i - 1] != "--note")]
    return shlex.join(argv)


def describe(prov: dict[str, Any], notes: bool = True) -> str:
    """One Markdown line: commit and tree state, date, hardware, command."""
    hw = prov.get("hardware") or {}
    state = ("clean tree" + (", named by DIGITREC_GIT_* for a copy without .git" if prov.get("source") == "environment"
                             else "") if prov.get("dirty") is False else
             f"uncommitted changes, diff sha256 {prov['diff_sha256'][:16]}" if prov.get("diff_sha256") else
             "uncommitted changes" if prov.get("dirty") else "tree state unknown")
    machine = f"{hw.get('cpu')} ({hw.get('cpu_cores')} cores)" + (f", GPU {hw['gpu']}" if hw.get("gpu") else "")
    load = f"; load average at start {prov['load_average']}" if prov.get("load_average") else ""
    return (f"commit `{(prov.get('commit') or 'unknown')[:12]}` ({state}) · {prov.get('date')} · {machine} · "
            f"torch {hw.get('torch')}{load} · command: `{command(prov, notes)}`")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", action="store_true",
                    help="print shell exports naming this checkout's state, for a copy of the tree without .git")
    args = ap.parse_args()
    if not args.env:
        print(json.dumps(provenance(), indent=2))
        return
    state = source_state()
    if state["source"] != "git":
        raise SystemExit("not in a git checkout: nothing to export")
    print(f"export DIGITREC_GIT_COMMIT={state['commit']} DIGITREC_GIT_DIRTY={int(state['dirty'])}"
          + (f" DIGITREC_GIT_DIFF_SHA256={state['diff_sha256']}" if state["diff_sha256"] else ""))


if __name__ == "__main__":
    main()
