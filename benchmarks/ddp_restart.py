"""Does a torchrun job survive a killed rank? Repeats: 2 CPU processes (gloo) train, rank 1 is SIGKILLed after the
first epoch, torchrun (--max-restarts 1) restarts both, `--resume-if-exists` continues from last.pt.

    DIGITREC_DATA=/work/shared/data python3 benchmarks/ddp_restart.py [--runs 10] [--rdzv static|c10d]

Counts the runs that finish (exit 0, both epochs, resumed after epoch 1) and writes
benchmarks/results/ddp-restart-<machine>-<date>.{json,md}. Before `Distributed.setup` gave each restart attempt its
own store namespace, the restarted ranks could read a dead rank's gloo address and fail with "connection refused".
"""
from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, machine_slug, provenance  # noqa: E402
import digitrec  # noqa: E402
from digitrec.fileio import write_json, write_text  # noqa: E402

RECIPE = ["--model", "fast", "--dataset", "mnist", "--split", "canonical", "--limit", "5999", "--epochs", "2",
          "--batch-size", "64", "--lr", "0.01", "--optimizer", "adam", "--schedule", "onecycle", "--seed", "0",
          "--device", "cpu", "--threads", "1"]


TIMEOUT_S = 300  # a hung restart is a failure, not a wait forever


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(parent: int, local_rank: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"LOCAL_RANK={local_rank}".encode() in env:
            return int(entry.name)
    return None


def _kill_marked(marker: str) -> None:
    """SIGKILL every process started for this run (torchrun may leave orphaned workers behind when it fails)."""
    needle = f"DIGITREC_BENCH_RUN={marker}".encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def kill_rank_and_restart(out: Path, recipe: list[str], rdzv: str = "static", timeout: float = TIMEOUT_S,
                          env: dict[str, str] | None = None) -> tuple[int | None, str, bool]:
    """torchrun 2 CPU workers training `recipe` into `out`; SIGKILL rank 1 once epoch 1 is saved; let torchrun
    (--max-restarts 1) restart them. Returns (torchrun's exit status, its output, whether rank 1 was found and killed);
    a run that does not end within `timeout` s after the kill is stopped and its output ends with "HangError"."""
    if rdzv == "static":
        where = ["--master-addr", "127.0.0.1", "--master-port", str(_free_port())]
    else:
        where = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-id", "bench"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--max-restarts", "1",
           "--monitor-interval", "0.2", *where, "-m", "digitrec", "train", *recipe, "--no-progress",
           "--resume-if-exists", "--out", str(out)]
    marker = f"{os.getpid()}-{out.name}-{time.time_ns()}"
    log = out.with_name(out.name + ".log")
    hung = False
    with open(log, "w") as sink:  # a file, not a pipe: orphaned workers cannot block the read
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                                env={**os.environ, **(env or {}), "OMP_NUM_THREADS": "1", "DIGITREC_BENCH_RUN": marker})
        try:
            deadline = time.monotonic() + timeout
            while not (out / "last.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            victim = _worker(proc.pid, 1)
            if victim is not None:
                os.kill(victim, signal.SIGKILL)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:  # a hang is a failure too
                hung = True
        finally:
            _kill_marked(marker)  # torchrun's workers live in sessions of their own
            proc.wait()
    output = log.read_text() + (f"\nHangError: no exit within {timeout} s" if hung else "")
    log.unlink()
    return proc.returncode, output, victim is not None


def one_run(out: Path, rdzv: str) -> tuple[bool, str, float]:
    t0 = time.perf_counter()
    code, output, killed = kill_rank_and_restart(out, RECIPE, rdzv)
    epochs = [line.split()[1] for line in output.splitlines() if line.startswith("epoch ")]
    ok = code == 0 and killed and "resuming" in output and epochs == ["1/2", "2/2"]
    # the first error after the kill is rank 0 losing its peer (expected); the restart's own error comes later
    errors = [line.strip() for line in output.splitlines() if "Error" in line and "[rank0]" not in line]
    reason = "" if ok else (errors[0] if errors else f"exit status {code}")
    return ok, reason, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rdzv", choices=("static", "c10d"), default="static")
    ap.add_argument("--tag", default="", help="added to the results file name (e.g. which code was measured)")
    args = ap.parse_args()
    prov, rows = provenance(), []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            out = Path(tmp) / f"run{i}"
            ok, reason, wall = one_run(out, args.rdzv)
            shutil.rmtree(out, ignore_errors=True)
            rows.append({"run": i, "ok": ok, "wall_s": round(wall, 1), "error": reason})
            print(f"run {i}: {'ok' if ok else 'FAILED ' + reason} ({wall:.0f} s)", flush=True)
    passed = sum(r["ok"] for r in rows)
    res = {"kind": "ddp-restart", "provenance": prov, "rdzv": args.rdzv, "tag": args.tag,
           "pythonpath": os.environ.get("PYTHONPATH", ""), "runs": rows, "passed": passed, "total": len(rows)}
    slug = f"ddp-restart-{args.rdzv}{'-' + args.tag if args.tag else ''}-{machine_slug()}-{datetime.date.today().isoformat()}"
    out = Path(__file__).parent / "results"
    write_json(out / f"{slug}.json", res)
    lines = [f"# torchrun restart after a killed rank ({args.rdzv} rendezvous{', ' + args.tag if args.tag else ''}) "
             f"— {prov['date']}", "",
             f"{describe(prov)}. digitrec imported from: `{digitrec.__file__}` (workers: PYTHONPATH "
             f"`{os.environ.get('PYTHONPATH', '')}`).", "",
             f"**{passed} of {len(rows)} runs finished** (2 gloo processes, rank 1 SIGKILLed after epoch 1, "
             "torchrun --max-restarts 1, resumed after epoch 1, both epochs trained once).", "",
             "| run | result | wall |", "| ---: | --- | ---: |"]
    lines += [f"| {r['run']} | {'ok' if r['ok'] else 'failed: ' + r['error'][:120]} | {r['wall_s']} s |" for r in rows]
    write_text(out / f"{slug}.md", "\n".join(lines) + "\n")
    print(f"{passed}/{len(rows)} ok; wrote {out / slug}.{{json,md}}")


if __name__ == "__main__":
    main()
