"""Where a request's time goes: each stage's single-thread cost, measured in this process on the load test's
payloads, for digitrec and for the baseline; and (py-spy) the share of digitrec's CPU per stage under load."""
from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BOUNDARY = b"multipart/form-data; boundary=XLOADTESTX"


def per_call_us(fn, seconds: float = 0.4) -> float:
    """Median over 5 rounds of the mean time per call (µs), each round about seconds / 5 long."""
    fn()
    t0 = time.perf_counter()
    fn()
    n = max(1, int(seconds / 5 / max(time.perf_counter() - t0, 1e-6)))
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return round(float(np.median(rounds)), 1)


def starlette_form(body: bytes):
    """The baseline's upload parsing (Starlette request.form()), as a callable run on one persistent event loop."""
    from starlette.requests import Request

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"content-type", BOUNDARY), (b"content-length", str(len(body)).encode())]}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def parse() -> bytes:
        form = await Request(scope, receive).form()
        data = await form["file"].read()
        await form.close()
        return data

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(parse())


def slow_inline_ms() -> dict:
    """How long the slowest uploads that qualify for the event loop hold it (decoding + preprocessing, one thread,
    ms; each as a single digit and as a number)."""
    from benchmarks.loadtest_payloads import slow_inline_uploads
    from digitrec.serve.decode import digits_of_number, one_digit, small_header
    from digitrec.serve.limits import ServeLimits

    limits, out = ServeLimits(), {}
    for name, data in slow_inline_uploads().items():
        header = small_header(data, limits.max_pixels)
        inline = header is not None and header.width * header.height <= limits.inline_pixels
        out[name] = {"bytes": len(data), "on the loop": inline}
        for fn in (one_digit, digits_of_number):
            fn(data, limits.max_pixels)  # warm-up
            out[name][fn.__name__] = round(per_call_us(lambda: fn(data, limits.max_pixels), 1.0) / 1000, 1)
    return out


def stage_costs(model: str, payloads: dict) -> dict:
    """Per payload: µs per request of each stage, digitrec's and the baseline's, on one thread."""
    sys.path.insert(0, str(HERE))
    import loadtest_baseline as plain

    from digitrec.onnx_predictor import OnnxPredictor
    from digitrec.preprocess import load_digit, segment
    from digitrec.serve.decode import open_upload, png_base64
    from digitrec.serve.inputs import upload_image

    predictor = OnnxPredictor(model, threads=1)
    out = {}
    for name, p in payloads.items():
        body, data = Path(p["body_file"]).read_bytes(), p["data"]
        one = p["path"] == "/v1/predict"
        crops = [load_digit(data)] if one else [c.image for c in segment(data)]
        plain_crops = [plain.mnist_form(plain.ink(data))] if one else [d for d, _ in plain.digits(data)]
        batch, plain_batch = np.stack(crops)[:, None], np.stack(plain_crops)[:, None]
        answer = {"digits": [{"digit": 1, "confidence": 0.9, "box": [1, 2, 3, 4]}] * len(crops), "crops": []}
        out[name] = {"digitrec": {
            "multipart parsing": per_call_us(lambda: upload_image(body, BOUNDARY)),
            "image header check": per_call_us(lambda: open_upload(data, 40_000_000)),
            "preprocessing": per_call_us(lambda: load_digit(data) if one else segment(data), 1.0),
            "model (onnxruntime, 1 thread)": per_call_us(lambda: predictor.predict_proba(batch)),
            "answer (crop PNGs + JSON)": per_call_us(
                lambda: json.dumps({**answer, "crops": [png_base64(c) for c in crops]})),
        }, "baseline": {
            "multipart parsing": per_call_us(starlette_form(body)),
            "preprocessing": per_call_us(lambda: plain.mnist_form(plain.ink(data)) if one else plain.digits(data)),
            "model (onnxruntime, 1 thread)": per_call_us(lambda: predictor.predict_proba(plain_batch)),
            "answer (JSON)": per_call_us(lambda: json.dumps({"digit": 1, "confidence": 0.9})),
        }, "crops": len(crops)}
        for who in ("digitrec", "baseline"):
            out[name][who]["sum of stages"] = round(sum(out[name][who].values()), 1)
    return out


# py-spy buckets, most specific first: a sample goes to the first bucket any of its frames matches
# (a frame is "Class.function (path/file.py:line)"; keys are function names or file paths)
BUCKETS = [
    ("preprocessing", ("load_digit", "segment", "plain_digit", "plain_segment")),
    ("image header check", ("open_upload", "small_header")),
    ("model forward", ("predict_proba",)),
    ("multipart parsing", ("upload_image",)),
    ("answer (encode + send)", ("png_base64", "send_json", "send_error")),
    ("digitrec request handling", ("serve/app.py", "serve/service.py", "serve/batcher.py", "serve/asgi.py")),
    ("HTTP protocol (uvicorn, httptools)", ("uvicorn/protocols", "uvicorn/middleware")),
    ("event loop, threads, hand-offs", ()),
]


def _matches(frame: str, key: str) -> bool:
    name, _, where = frame.partition(" (")
    return name == key or name.endswith("." + key) or f"/{key}:" in frame or where.startswith(key)


def bucket_of(stack: list[str]) -> str:
    for bucket, keys in BUCKETS:
        if any(_matches(frame, k) for frame in stack for k in keys):
            return bucket
    return BUCKETS[-1][0]


def profile_buckets(pid: int, url: str, payload: dict, lua: Path, seconds: float) -> dict:
    """Share of digitrec's busy samples per stage, under wrk load (py-spy, 200 Hz, all threads, idle excluded)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "profile.txt"
        env = {**os.environ, "LOADTEST_BODY": str(payload["body_file"])}
        load = subprocess.Popen(["wrk", "-t1", "-c50", f"-d{seconds + 4:g}s", "-s", str(lua), url + payload["path"]],
                                stdout=subprocess.DEVNULL, env=env)
        time.sleep(2)
        subprocess.run(["py-spy", "record", "-p", str(pid), "-d", f"{seconds:g}", "-r", "200", "--nonblocking",
                        "--threads", "--format", "raw", "-o", str(raw)], capture_output=True, timeout=seconds + 60)
        load.wait(seconds + 60)
        counts, rest, total = collections.Counter(), collections.Counter(), 0
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
            bucket = bucket_of(frames)
            counts[bucket] += int(n)
            total += int(n)
            if bucket == BUCKETS[-1][0] and frames:
                rest[frames[-1].split(" (")[0]] += int(n)
    return {"samples": total, "share": {b: round(counts[b] / max(total, 1), 3) for b, _ in BUCKETS},
            "top_unattributed": [f"{f} {n}" for f, n in rest.most_common(8)]}
