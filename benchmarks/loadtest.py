"""Load test: `digitrec serve` beside a minimal baseline server, in one run, with wrk.

    DIGITREC_DATA=/work/shared/data python benchmarks/loadtest.py [--model M.onnx] [--profile] [--quick]

Servers (each a subprocess on 127.0.0.1, the same ONNX model, onnxruntime on one thread):
  digitrec     `digitrec serve --workers W` as shipped (its own preprocessing)
  baseline     benchmarks/loadtest_baseline.py: Starlette + onnxruntime, plain MNIST-style preprocessing
  swapped      benchmarks/loadtest_swapped.py: digitrec's server with the baseline's preprocessing swapped in —
               not a product configuration; it splits the gap into "server" and "preprocessing"
  pool         `digitrec serve --inline-pixels 0`: every upload decoded in the decode pool, none on the event
               loop — what decoding small uploads on the loop saves (attribution, 1 worker)
Payloads (multipart uploads): a 28×28 PNG and a 280×280 canvas PNG to /v1/predict, a 640×480 JPEG photo of a
4-digit number to /v1/read. Load: `wrk -t1 -c50 -dD` per payload after a warm-up, --rounds rounds with the
servers interleaved, the median round reported; workers 1 and 2 for digitrec and baseline. Then wrk's 50
clients send digitrec 28×28 uploads until it has answered 5,000 more, and the first 5,000 answers are checked
(status and digit). Also each stage's single-thread cost on the same payloads, measured in this process, and
(--profile, needs py-spy) where the servers' CPU goes under load. Writes
benchmarks/results/loadtest-<machine>-<date>.{json,md} (--quick: benchmarks/results/quick/).
The load generator shares the machine's cores with the servers; a machine shared with other work makes the
numbers indicative only: compare the ratios of the same run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.loadtest_payloads import make_payloads  # noqa: E402
from benchmarks.loadtest_report import headline, markdown  # noqa: E402
from benchmarks.loadtest_stages import profile_buckets, slow_inline_ms, stage_costs  # noqa: E402
from benchmarks.provenance import machine_slug, provenance  # noqa: E402
from digitrec.fileio import write_bytes, write_json, write_text  # noqa: E402

RESULTS = HERE / "results"
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=XLOADTESTX"
local f = io.open(os.getenv("LOADTEST_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format('JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    s.requests, s.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
end
"""


EXACT_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "multipart/form-data; boundary=XLOADTESTX"
local f = io.open(os.getenv("LOADTEST_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  seen, failed, wrong = 0, 0, 0
  limit, expect = tonumber(os.getenv("LOADTEST_COUNT")), os.getenv("LOADTEST_EXPECT")
end
function response(status, headers, body)
  if seen >= limit then return end
  seen = seen + 1
  if status ~= 200 then failed = failed + 1
  elseif not string.find(body, expect, 1, true) then wrong = wrong + 1 end
end
function done(s, latency, requests)
  local t = threads[1]
  io.write(string.format('JSON {"checked": %d, "failed": %d, "wrong": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d}\\n', t:get("seen"), t:get("failed"), t:get("wrong"),
    latency:percentile(50), latency:percentile(99), s.errors.connect, s.errors.read, s.errors.write, s.errors.timeout))
end
"""


def multipart(name: str, kind: str, data: bytes) -> bytes:
    return (b'--XLOADTESTX\r\nContent-Disposition: form-data; name="file"; filename="' + name.encode() +
            b'"\r\nContent-Type: ' + kind.encode() + b"\r\n\r\n" + data + b"\r\n--XLOADTESTX--\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server subprocess; `cpu_seconds()` counts it and its worker processes."""

    def __init__(self, name: str, cmd: list[str], workers: int, log: Path) -> None:
        self.name, self.cmd, self.workers, self.log = name, cmd, workers, log
        self.url = ""

    def __enter__(self) -> "Server":
        self.out = open(self.log, "wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.proc.poll() is None:
            text = self.log.read_text(errors="replace")
            url = self.url or (re.search(r"(http://127\.0\.0\.1:\d+)/", text) or [None, None])[1]
            if url and ready(url):
                self.url = url
                time.sleep(2.0 if self.workers > 1 else 0.2)  # let every worker finish loading
                return self
            time.sleep(0.2)
        self.__exit__()
        raise SystemExit(f"{self.name} did not start: {' '.join(self.cmd)}\n{self.log.read_text()[-2000:]}")

    def cpu_seconds(self) -> float:
        pids = {self.proc.pid}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.add(int(stat.parent.name))
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
        self.out.close()


def ready(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/", timeout=2).status_code > 0  # any answer: it listens and serves
    except httpx.HTTPError:
        return False


def start(kind: str, model: str, workers: int, tmp: Path) -> Server:
    py = sys.executable
    if kind in ("digitrec", "pool"):
        cmd = [py, "-m", "digitrec", "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
               "--workers", str(workers), "--log-level", "warning"] + (["--inline-pixels", "0"] if kind == "pool" else [])
    elif kind == "baseline":
        port = free_port()
        cmd = [py, str(HERE / "loadtest_baseline.py"), model, str(port), str(workers)]
    else:
        cmd = [py, str(HERE / "loadtest_swapped.py"), model]
    server = Server(kind, cmd, workers, tmp / f"{kind}-w{workers}.log")
    if kind == "baseline":
        server.url = f"http://127.0.0.1:{port}"
    return server.__enter__()


def wrk(server: Server, payload: dict, seconds: float, connections: int, lua: Path) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(lua),
           server.url + payload["path"]]
    cpu0 = server.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         env={**os.environ, "LOADTEST_BODY": str(payload["body_file"])})
    cpu = server.cpu_seconds() - cpu0
    line = next((x for x in out.stdout.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    r = json.loads(line[5:])
    n, wall = r["requests"], r["duration_us"] / 1e6
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    return {"requests": n, "requests_per_s": round(n / wall, 1), "errors": errors,
            "latency_ms": {k: round(r[f"{k}_us"] / 1000, 1) for k in ("p50", "p90", "p99", "max")},
            "server_cpu_ms_per_request": round(1000 * cpu / max(n, 1), 3), "command": " ".join(cmd)}


def median_round(results: list[dict]) -> dict:
    """The round with the median throughput (its latency and CPU with it); errors summed over all rounds."""
    ordered = sorted(results, key=lambda r: r["requests_per_s"])
    best = dict(ordered[len(ordered) // 2])
    best["rounds_req_per_s"] = [r["requests_per_s"] for r in results]
    best["errors"] = {k: sum(r["errors"].get(k, 0) for r in results) for k in {k for r in results for k in r["errors"]}}
    return best


def settle(server: Server, limit_s: float = 60) -> None:
    """Wait until the server has finished what earlier clients left (digitrec says so in /healthz)."""
    import httpx

    time.sleep(0.5)
    deadline = time.monotonic() + limit_s
    while server.name != "baseline" and time.monotonic() < deadline:
        if httpx.get(server.url + "/healthz", timeout=10).json()["in_progress"] == 0:
            return
        time.sleep(0.2)


def answer_of(server: Server, payload: dict):
    import httpx

    files = {"file": (payload["filename"], payload["data"], payload["content_type"])}
    body = httpx.post(server.url + payload["path"], files=files, timeout=60).json()
    return body.get("text", body.get("digit"))


def exact_count(server: Server, payload: dict, total: int, connections: int, lua: Path) -> dict:
    """wrk with `connections` clients until the server has answered `total` requests; every one of the first
    `total` answers must be 200 with the expected digit (checked in wrk's Lua)."""
    import httpx

    env = {**os.environ, "LOADTEST_BODY": str(payload["body_file"]), "LOADTEST_COUNT": str(total),
           "LOADTEST_EXPECT": f'"digit":{payload["expected"]}'}
    before = httpx.get(server.url + "/healthz", timeout=10).json()["images"]
    t0 = time.monotonic()
    load = subprocess.Popen(["wrk", "-t1", f"-c{connections}", "-d3600s", "--timeout", "30s", "-s", str(lua),
                             server.url + payload["path"]], stdout=subprocess.PIPE, text=True, env=env)
    while time.monotonic() - t0 < 1800 and load.poll() is None:
        time.sleep(0.2)
        if httpx.get(server.url + "/healthz", timeout=30).json()["images"] - before >= total + connections:
            break
    wall = time.monotonic() - t0
    load.send_signal(signal.SIGINT)  # wrk stops and reports
    out = load.communicate(timeout=60)[0]
    r = json.loads(next(x for x in out.splitlines() if x.startswith("JSON "))[5:])
    errors = r["failed"] + sum(r[k] for k in ("connect", "read", "write", "timeout"))
    return {"requests_checked": r["checked"], "connections": connections, "errors": errors, "wrong_answers": r["wrong"],
            "requests_per_s": round(r["checked"] / wall, 1), "latency_ms": {"p50": r["p50_us"] / 1000,
                                                                            "p99": r["p99_us"] / 1000}}


def measure(args, payloads: dict, model: str, tmp: Path, lua: Path) -> dict:
    """wrk on every payload, servers interleaved per payload, per worker count."""
    runs = {}
    for workers in args.workers:
        servers = []
        try:
            for kind in ["digitrec", "baseline"] + (["swapped", "pool"] if workers == 1 else []):
                servers.append(start(kind, model, workers, tmp))
            for server in servers:
                runs.setdefault("answers", {})[server.name] = {p: answer_of(server, payloads[p]) for p in payloads}
            for name, payload in payloads.items():
                for server in servers:
                    wrk(server, payload, args.warmup, args.connections, lua)
                    settle(server)
                rounds = {server.name: [] for server in servers}
                for _ in range(args.rounds):  # servers interleaved round by round: drift hits all alike
                    for server in servers:
                        rounds[server.name].append(wrk(server, payload, args.duration, args.connections, lua))
                        settle(server)
                for server in servers:
                    result = median_round(rounds[server.name])
                    runs.setdefault(name, {})[f"{server.name}/w{workers}"] = result
                    print(f"{name:7s} {server.name:8s} w{workers}: {result['requests_per_s']:8.1f} req/s, "
                          f"p99 {result['latency_ms']['p99']} ms, errors {result['errors'] or 0}, "
                          f"cpu {result['server_cpu_ms_per_request']} ms/req, rounds {result['rounds_req_per_s']}",
                          flush=True)
            if workers == 1:
                if args.profile:  # digitrec as shipped, and its server code with the plain preprocessing
                    runs["profile"] = {s.name: profile_buckets(s.proc.pid, s.url, payloads["28x28"], lua,
                                                               args.profile_seconds)
                                       for s in servers if s.name in ("digitrec", "swapped")}
                settle(servers[0])
                runs["zero_error_run"] = exact_count(servers[0], payloads["28x28"], args.exact_requests,
                                                     args.connections, tmp / "exact.lua")
                print("zero-error run:", runs["zero_error_run"], flush=True)
        finally:
            for server in servers:
                server.__exit__()
    return runs


def ensure_model(model: str | None, tmp: Path) -> str:
    if model:
        return model
    from digitrec.reader import default_model_path

    out = tmp / "model.onnx"
    subprocess.run([sys.executable, "-m", "digitrec", "export", str(default_model_path()), "--out", str(out),
                    "--check-images", "200"], check=True, stdout=subprocess.DEVNULL)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help=".onnx model (default: the bundled model, exported here)")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of wrk per server, payload and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per server and payload (the median is reported)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure (comma-separated)")
    ap.add_argument("--exact-requests", type=int, default=5000, help="the zero-error run's request count")
    ap.add_argument("--profile", action="store_true", help="py-spy profile of digitrec under the 28×28 load")
    ap.add_argument("--profile-seconds", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 s per run, workers 1, 500 exact requests")
    ap.add_argument("--note", default="", help="a remark for the record (e.g. 'machine shared with other work')")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.quick:
        args.duration, args.rounds, args.warmup, args.workers, args.exact_requests = 5.0, 1, 1.0, "1", 500
    args.workers = [int(w) for w in args.workers.split(",")]
    if not shutil.which("wrk"):
        raise SystemExit("needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)")
    if args.profile and not shutil.which("py-spy"):
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    record = {"kind": "loadtest", "provenance": provenance(), "load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = ensure_model(args.model, tmp)
        payloads = make_payloads(os.environ.get("DIGITREC_DATA"))
        lua = tmp / "post.lua"
        write_text(lua, LUA)
        write_text(tmp / "exact.lua", EXACT_LUA)
        for name, p in payloads.items():
            p["body_file"] = tmp / f"{name}.body"
            write_bytes(p["body_file"], multipart(p["filename"], p["content_type"], p["data"]))
        record["stages"] = stage_costs(model, payloads)
        record["slow_inline_ms"] = slow_inline_ms()
        record["runs"] = measure(args, payloads, model, tmp, lua)
    record["load_average_at_end"] = os.getloadavg()
    record["settings"] = {"model": args.model or "bundled model exported to ONNX", "duration_s": args.duration,
                          "rounds": args.rounds,
                          "warmup_s": args.warmup, "connections": args.connections, "workers": args.workers,
                          "exact_requests": args.exact_requests, "quick": args.quick, "note": args.note,
                          "payloads": {k: {kk: v for kk, v in p.items() if kk not in ("data", "body_file")}
                                       for k, p in payloads.items()}}
    out = Path(args.out) if args.out else RESULTS / ("quick" if args.quick else "")
    stem = out / f"loadtest-{machine_slug()}-{datetime.date.today().isoformat()}"
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), markdown(record))
    print(markdown(record))
    print(f"wrote {stem}.json and .md")


def results_table(record: dict) -> list[str]:
    """The README's table: digitrec beside the baseline, per payload and worker count."""
    return headline(record)


if __name__ == "__main__":
    main()
