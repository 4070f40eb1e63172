"""Load test of `digitrec serve`: many concurrent clients on /v1/predict, latency and throughput.

    DIGITREC_DATA=/work/shared/data python3 benchmarks/loadtest.py [--model FILE] [--requests 5000]
        [--concurrency 50] [--payload png,json] [--max-seconds 120] [--server-threads 1]

Starts the server as a subprocess on 127.0.0.1 (a free port), then `--concurrency` clients (httpx.AsyncClient)
send `--requests` requests in total: MNIST test digits as uploads (png: dark ink on white paper, 4× enlarged,
so the server preprocesses them like photos) and/or as 28×28 JSON arrays (json: no preprocessing, so the model
and HTTP costs show). Each payload's run stops by itself after --max-seconds. Records errors, latency
percentiles, requests/s, accuracy of the answers against the MNIST labels and the server's mean micro-batch
size, to benchmarks/results/loadtest-<machine>-<date>.{json,md}.
Clients and server share the machine's CPU cores.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.provenance import describe, machine_slug, of_record, provenance  # noqa: E402
from digitrec.data import load  # noqa: E402
from digitrec.fileio import write_json, write_text  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def paper_png(digit_u8: np.ndarray) -> bytes:
    img = Image.fromarray(255 - digit_u8).resize((112, 112), Image.Resampling.BILINEAR)
    page = Image.new("L", (152, 152), 255)
    page.paste(img, (20, 20))
    buf = io.BytesIO()
    page.save(buf, "PNG")
    return buf.getvalue()


def start_server(model: str, threads: int) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "digitrec", "serve", "--model", model, "--host", "127.0.0.1", "--port", "0",
           "--threads", str(threads), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # the first line names the port; the server logs only warnings after it
        lines.append(line)
        m = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
        if m:
            # keep draining its output so that a chatty server never blocks on a full pipe
            threading.Thread(target=lambda: [print("server:", s, end="") for s in proc.stdout], daemon=True).start()
            return proc, m.group(1)
    proc.wait()
    raise SystemExit(f"the server did not start: {' '.join(cmd)}\n{''.join(lines)[-2000:]}")


async def run_load(url: str, payloads: list, labels: np.ndarray, kind: str, total: int, concurrency: int,
                   max_seconds: float, before: dict) -> dict:
    latencies, errors, digits = [], [], {}
    next_index = 0
    deadline = time.monotonic() + max_seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        async def worker() -> None:
            nonlocal next_index
            while next_index < total and time.monotonic() < deadline:
                i = next_index
                next_index += 1
                p = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                try:
                    if kind == "png":
                        r = await client.post("/v1/predict", files={"file": ("digit.png", p, "image/png")})
                    else:
                        r = await client.post("/v1/predict", json={"image": p})
                    ok = r.status_code == 200
                    if ok:
                        digits[i] = r.json()["digit"]
                    else:
                        errors.append(f"{r.status_code} {r.text[:100]}")
                except httpx.HTTPError as e:
                    ok = False
                    errors.append(f"{type(e).__name__}: {e}")
                if ok:
                    latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), max_seconds + 60)
        wall = time.perf_counter() - t0
        health = (await client.get("/healthz")).json()
    lat = np.array(latencies) * 1000
    correct = [digits[i] == labels[i % len(labels)] for i in digits]
    return {
        "requests_sent": next_index, "requests_ok": len(latencies), "errors": len(errors),
        "zero_errors": not errors and next_index == total, "stopped_by_time_cap": next_index < total,
        "error_examples": errors[:5], "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": {k: round(float(np.percentile(lat, q)), 2) for k, q in
                       (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))} if len(lat) else None,
        "accuracy_vs_mnist_labels": round(float(np.mean(correct)), 4) if correct else None,
        "server_forward_passes": health["batches"] - before["batches"],
        "server_images": health["images"] - before["images"],
        "mean_batch_size": round((health["images"] - before["images"]) / max(1, health["batches"] - before["batches"]), 2),
    }


def results_table(res: dict) -> list[str]:
    """Markdown rows: one per payload kind."""
    return [
        "| payload | requests ok | errors | zero errors | requests/s | p50 ms | p90 ms | p99 ms | max ms "
        "| mean batch | accuracy |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {kind} | {x['requests_ok']:,} | {x['errors']} | "
          f"{('yes' if x['zero_errors'] else 'NO') + (' (time cap)' if x['stopped_by_time_cap'] else '')} | "
          f"{x['requests_per_s']} | {(x['latency_ms'] or {}).get('p50')} | {(x['latency_ms'] or {}).get('p90')} | "
          f"{(x['latency_ms'] or {}).get('p99')} | {(x['latency_ms'] or {}).get('max')} | {x['mean_batch_size']} | "
          f"{x['accuracy_vs_mnist_labels']} |" for kind, x in res.items()]]


def markdown(r: dict) -> str:
    prov, a, res = of_record(r) or {}, r["settings"], r["results"]
    return "\n".join([
        "# Load test: `digitrec serve`, POST /v1/predict", "",
        f"{a['requests']:,} requests per payload from {a['concurrency']} concurrent clients (httpx.AsyncClient), "
        f"time cap {a['max_seconds']:g} s per payload, model `{a['model']}`, server torch threads {a['server_threads']}, "
        f"micro-batching defaults (≤64 images, 3 ms wait).", "",
        *results_table(res), "",
        "Latency is per request, from the client's send to its parsed answer (queueing included); accuracy is the "
        "answers' agreement with the MNIST test labels; mean batch = images per forward pass in the server.", "",
        "Clients and server ran on the same cores" + (f"; {a['note']}" if a.get("note") else "") + ".", "",
        describe(prov) + ".", ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the bundled model (digitrec.reader.default_model_path)")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--payload", default="png,json", help="png, json or both (comma-separated)")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--server-threads", type=int, default=1)
    ap.add_argument("--note", default="", help="a remark for the results (e.g. 'CPU shared with other work')")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if args.model is None:
        from digitrec.reader import default_model_path

        args.model = str(default_model_path())
    kinds = args.payload.split(",")
    if not kinds or any(k not in ("png", "json") for k in kinds):
        ap.error(f"--payload: png, json or png,json, not {args.payload!r}")
    mnist = load("mnist", os.environ.get("DIGITREC_DATA"), download=False)
    images, labels = np.asarray(mnist.test_images[:500]), np.asarray(mnist.test_labels[:500])
    prov = provenance()
    results = {}
    proc, url = start_server(args.model, args.server_threads)
    try:
        for kind in kinds:
            payloads = [paper_png(x) for x in images] if kind == "png" else [x.tolist() for x in images]
            before = httpx.get(url + "/healthz").json()
            results[kind] = asyncio.run(run_load(url, payloads, labels, kind, args.requests, args.concurrency,
                                                 args.max_seconds, before))
            print(kind, results[kind], flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    record = {"kind": "loadtest", "provenance": prov,
              "settings": {"model": args.model, "requests": args.requests, "concurrency": args.concurrency,
                           "max_seconds": args.max_seconds,
                           "server_threads": args.server_threads, "note": args.note},
              "results": results}
    day = datetime.date.today().isoformat()
    stem = Path(args.out) / f"loadtest-{machine_slug()}-{day}"
    write_json(stem.with_suffix(".json"), record)
    write_text(stem.with_suffix(".md"), markdown(record))
    print(markdown(record))
    print(f"wrote {stem}.json and .md")
    sys.exit(0 if all(r["zero_errors"] for r in results.values()) else 1)


if __name__ == "__main__":
    main()
