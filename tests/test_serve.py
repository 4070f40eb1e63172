"""The HTTP service against real servers on loopback: `digitrec serve` as a subprocess (ServerProcess) or uvicorn
in a thread (LiveServer, where a test patches the app). Answers on real MNIST digits; a 4xx JSON error (never a
crash) for every bad input; no deadlock under concurrent reads; overload, half-open connections, cross-origin
requests and bad flags all bounded and refused as docs/serving.md says."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import resource
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

from _live_server import LiveServer, ServerProcess
from digitrec.predict import load_predictor
from digitrec.preprocess import load_digit
from digitrec.serve import create_app


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def paper_png(digit_u8: np.ndarray, scale: int = 4) -> bytes:
    """An MNIST digit as a 'scan': dark ink on white paper, enlarged, with a margin."""
    img = Image.fromarray(255 - digit_u8).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    page = Image.new("L", (28 * scale + 40, 28 * scale + 40), 255)
    page.paste(img, (20, 20))
    buf = io.BytesIO()
    page.save(buf, "PNG")
    return buf.getvalue()


def number_jpeg(digits_u8: np.ndarray) -> bytes:
    """MNIST digits side by side on white paper, as a JPEG photo of a number."""
    page = Image.new("L", (len(digits_u8) * 90 + 40, 130), 255)
    for i, image in enumerate(digits_u8):
        page.paste(Image.fromarray(255 - image).resize((84, 84)), (20 + 90 * i, 20))
    buf = io.BytesIO()
    page.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side×side pixels (400 million for 20000) in a few tens of kilobytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def model(tiny_run):
    return tiny_run / "model.pt"


@pytest.fixture(scope="module")
def live(model, tmp_path_factory):
    """`digitrec serve` with default limits (one extra allowed origin), as a user starts it."""
    log = tmp_path_factory.mktemp("live") / "server.log"
    with ServerProcess(["--model", str(model), "--allow-origin", "https://allowed.example"], log) as server:
        yield server


@pytest.fixture(scope="module")
def tight(model, tmp_path_factory):
    """`digitrec serve` with small limits: 10,000 pixels, 2 requests in progress, 1 MB of bodies, headers in 0.5 s."""
    log = tmp_path_factory.mktemp("tight") / "server.log"
    flags = ["--max-pixels", "10000", "--max-queue", "2", "--max-buffered-mb", "1", "--header-timeout", "0.5",
             "--keep-alive", "3"]
    with ServerProcess(["--model", str(model), *flags], log) as server:
        yield server


@pytest.fixture(scope="module")
def http(live):
    with httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    return body["error"]


def upload(data: bytes, name: str = "digit.png", kind: str = "image/png") -> dict:
    return {"files": {"file": (name, data, kind)}}


# --- answers -------------------------------------------------------------------------------------------------

def test_healthz_docs_and_page(http):
    health = http.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "model.pt"
    assert health["limits"]["max_upload_bytes"] == 10 * 1024 * 1024 and health["limits"]["max_queue"] == 128
    spec = http.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/read", "/healthz"} <= set(spec["paths"])
    assert set(spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]) == {"multipart/form-data",
                                                                                  "application/json"}
    assert {"Prediction", "Reading", "ReadDigit", "Error"} <= set(spec["components"]["schemas"])
    assert http.get("/docs").status_code == 200
    page = http.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert http.get("/static/app.js").status_code == 200


def test_predict_multipart_matches_the_model(http, model, mnist):
    predictor = load_predictor(model)
    images, labels = np.asarray(mnist.test_images[:24]), np.asarray(mnist.test_labels[:24])
    got, expected = [], []
    for image in images:
        data = paper_png(image)
        r = http.post("/v1/predict", **upload(data))
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
        assert body["confidence"] == max(body["probabilities"]) and body["digit"] == int(np.argmax(body["probabilities"]))
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["crop"]))))
        image = load_digit(data)
        assert np.array_equal(seen, np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8))  # the crop is what it saw
        got.append(body["digit"])
        expected.append(int(predictor.predict_proba(image[None, None]).argmax()))
    assert got == expected  # the server answers what the model says for the same preprocessing
    assert np.mean(np.array(got) == labels) >= 0.85, (got, labels.tolist())  # and the answers are real digits


def test_predict_json_array_0_1_and_0_255(http, model, mnist):
    predictor = load_predictor(model)
    for image in np.asarray(mnist.test_images[:8]):
        want = predictor.predict_proba(image[None, None].astype(np.float32) / 255)[0]
        for payload in (image.tolist(), (image / 255.0).tolist()):
            r = http.post("/v1/predict", json={"image": payload})
            assert r.status_code == 200, r.text
            assert np.allclose(r.json()["probabilities"], want, atol=2e-6)


def test_blank_image_is_no_digit_not_a_guess(http):
    for request in (upload(png(np.full((40, 40), 255))), {"json": {"image": np.zeros((28, 28)).tolist()}}):
        body = http.post("/v1/predict", **request).json()
        assert body["digit"] is None and body["confidence"] is None and body["probabilities"] is None, body


def test_read_a_number(http, mnist):
    images, labels = np.asarray(mnist.test_images[:4]), np.asarray(mnist.test_labels[:4])
    data = number_jpeg(images)
    r = http.post("/v1/read", **upload(data, "number.jpg", "image/jpeg"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["digits"]) == len(body["crops"]) == 4
    assert body["text"] == "".join(str(d["digit"]) for d in body["digits"]) == "".join(map(str, labels))
    xs = [d["box"][0] for d in body["digits"]]
    assert xs == sorted(xs) and all(20 + 90 * i - 10 <= x <= 20 + 90 * i + 84 for i, x in enumerate(xs))
    crop = Image.open(io.BytesIO(base64.b64decode(body["crops"][0])))
    assert crop.size == (28, 28) and crop.format == "PNG"
    doubtful = http.post("/v1/read?min_confidence=1.0", **upload(data, "n.jpg", "image/jpeg")).json()
    assert all(d["doubtful"] for d in doubtful["digits"]) and set(doubtful["text"]) == {"?"}
    blank = http.post("/v1/read", **upload(png(np.full((50, 80), 255)))).json()
    assert blank == {"text": "", "digits": [], "crops": []}


# --- bad input: each one a 4xx JSON error, and the server keeps serving ----------------------------------------

def _noise_png() -> bytes:
    return png(np.random.default_rng(0).integers(0, 256, (200, 200)))


def _json(raw: bytes | str) -> dict:
    return dict(content=raw.encode() if isinstance(raw, str) else raw, headers={"content-type": "application/json"})


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n{ } loop\n"
BAD_INPUTS = [
    # (id, request kwargs, status, words expected in the error)
    ("empty body", dict(content=b""), 415, "multipart"),
    ("empty JSON body", _json(b""), 400, "empty"),
    ("empty multipart", dict(content=b"", headers={"content-type": "multipart/form-data; boundary=x"}), 400, "file"),
    ("multipart without boundary", dict(content=b"x", headers={"content-type": "multipart/form-data"}), 400,
     "boundary"),
    ("empty file", upload(b""), 400, "empty"),
    ("missing field", {"files": {"photo": ("a.png", b"abc", "image/png")}}, 400, "'file'"),
    ("not an image", upload(b"hello, not a picture"), 422, "not a readable"),
    ("PostScript", upload(EPS, "loop.eps", "image/png"), 422, "not a readable"),
    ("truncated PNG", upload(_noise_png()[:3000]), 422, "truncated"),
    ("PNG bomb", upload(png_bomb()), 413, "pixels"),
    ("text/plain part", {"files": {"file": ("a.txt", b"7", "text/plain")}}, 415, "image/*"),
    ("wrong request type", dict(content=b"7", headers={"content-type": "text/plain"}), 415, "text/plain"),
    ("form-urlencoded", dict(data={"file": "7"}), 415, "multipart"),
    ("invalid JSON", _json(b"{nope"), 400, "invalid JSON"),
    ("JSON not UTF-8", _json(b'{"image": "\xff\xfe"}'), 400, "invalid JSON"),
    ("JSON 10**400", _json('{"image": [[' + "1" + "0" * 400 + "]]}"), 422, "28×28"),
    ("JSON 10**400 in a 28x28", _json(json.dumps({"image": [[0] * 28] * 27 + [[0] * 27 + [0]]})
                                     .replace("0]]}", "1" + "0" * 400 + "]]}")), 422, "float range"),
    ("JSON 5000-digit integer", _json('{"image": ' + "7" * 5000 + "}"), 400, "invalid JSON"),
    ("JSON 200,000-deep", _json("[" * 200_000 + "]" * 200_000), 413, "65,536-byte"),
    ("JSON 30,000-deep", _json("[" * 30_000 + "]" * 30_000), 400, "nested too deeply"),
    ("JSON too big", _json(json.dumps({"image": [[0.5] * 28] * 28, "pad": "x" * 70_000})), 413, "limit"),
    ("JSON not an object", dict(json=[1, 2, 3]), 422, '{"image"'),
    ("JSON 27x28", dict(json={"image": np.zeros((27, 28)).tolist()}), 422, "27×28"),
    ("JSON 28x28x1", dict(json={"image": np.zeros((28, 28, 1)).tolist()}), 422, "28×28"),
    ("JSON ragged", dict(json={"image": [[0] * 28] * 27 + [[0] * 27]}), 422, "ragged"),
    ("JSON strings", dict(json={"image": [["0"] * 28] * 28}), 422, "numbers"),
    ("JSON booleans", dict(json={"image": [[True] * 28] * 28}), 422, "numbers"),
    ("JSON NaN", _json(json.dumps({"image": [[float("nan")] * 28] * 28})), 422, "NaN"),
    ("JSON Infinity", _json(json.dumps({"image": [[float("inf")] * 28] * 28})), 422, "infinite"),
    ("JSON out of range", dict(json={"image": [[300] * 28] * 28}), 422, "0–255"),
    ("JSON negative", dict(json={"image": [[-1] * 28] * 28}), 422, "0–255"),
    ("two files", {"files": [("file", ("a.png", b"1", "image/png")), ("file", ("b.png", b"2", "image/png"))]},
     400, "2 files"),
    ("too many fields", {"data": {f"f{i}": "x" for i in range(20)}, "files": {"file": ("a.png", b"1", "image/png")}},
     400, "form fields"),
    ("malformed multipart", dict(content=b"--x\r\nno headers end", headers={
        "content-type": "multipart/form-data; boundary=x"}), 400, "malformed multipart"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_json_error_and_the_server_keeps_serving(http, case):
    _, kwargs, status, words = case
    message = error_of(http.post("/v1/predict", **kwargs), status)
    assert words.lower() in message.lower(), message
    if "files" in kwargs:  # uploads go through the same checks on /v1/read
        assert words.lower() in error_of(http.post("/v1/read", **kwargs), status).lower()
    assert http.get("/healthz").status_code == 200
    assert http.post("/v1/predict", json={"image": np.eye(28).tolist()}).status_code == 200


def test_huge_upload_paths_and_query_are_4xx(http):
    big = b"\0" * (10 * 1024 * 1024 + 1)
    assert "limit" in error_of(http.post("/v1/predict", **upload(big)), 413)
    assert "min_confidence" in error_of(http.post("/v1/read?min_confidence=2", **upload(_noise_png())), 422)
    assert "min_confidence" in error_of(http.post("/v1/read?min_confidence=nan", **upload(_noise_png())), 422)
    assert error_of(http.get("/v1/nothing-here"), 404)
    assert "POST" in error_of(http.get("/v1/predict"), 405)


def test_pixel_limit_is_the_flag_value(tight):
    r = httpx.post(tight.url + "/v1/read", **upload(png(np.full((101, 100), 255))))
    assert "100x101" in error_of(r, 413) and "10,000" in r.json()["error"]
    assert httpx.post(tight.url + "/v1/read", **upload(png(np.full((100, 100), 255)))).status_code == 200


def read_reply(s: socket.socket) -> bytes:
    """Status line, headers and body of one HTTP response (the server closes or sends Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
                      b"0"))
    while len(body) < length:
        more = s.recv(4096)
        if not more:
            break
        body += more
    return head + b"\r\n\r\n" + body


def test_slow_upload_is_408_and_oversized_stream_is_cut_off(model):
    with LiveServer(create_app(model, timeout_s=1.0, max_upload_bytes=100_000)) as server:
        head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:  # a client that stalls
            s.sendall(head + b"5\r\n--x\r\n\r\n")
            t0 = time.monotonic()
            reply = read_reply(s)
            assert reply.startswith(b"HTTP/1.1 408") and b'"error"' in reply and time.monotonic() - t0 < 5
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:  # a client that never stops
            part = (b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
                    b"Content-Type: image/png\r\n\r\n")
            s.sendall(head + f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sent, reply = 0, b""
            try:
                while sent < 50_000_000 and not reply:
                    s.sendall(b"2710\r\n" + b"x" * 10_000 + b"\r\n")
                    sent += 10_000
                    s.setblocking(False)
                    try:
                        reply = s.recv(4096)
                    except BlockingIOError:
                        pass
                    s.setblocking(True)
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.settimeout(10)
            reply = reply + read_reply(s) if b"\r\n\r\n" not in reply else reply
            # answered long before the (endless) body ended: the server stopped reading at the limit
            assert reply.startswith(b"HTTP/1.1 413") and sent < 20_000_000, (reply[:80], sent)
        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"


def test_slow_processing_is_503_and_a_failing_model_is_a_json_500(model, monkeypatch):
    import digitrec.serve.decode as decode

    def slow_load_digit(data, name=None, **kw):
        time.sleep(1.5)
        return load_digit(data, name)

    data = upload(png(np.full((40, 40), 255)))
    app = create_app(model, timeout_s=0.5, inline_pixels=0)  # decoded in the pool (small uploads: bounded, inline)
    with LiveServer(app) as server:
        monkeypatch.setattr(decode, "load_digit", slow_load_digit)
        r = httpx.post(server.url + "/v1/predict", **data)
        assert "0.5 s" in error_of(r, 503) and r.headers["retry-after"] == "1"
        monkeypatch.undo()
        batcher = app.service.batcher
        good = batcher.predict_proba
        batcher.predict_proba = lambda x: 1 / 0
        r = httpx.post(server.url + "/v1/predict", json={"image": np.eye(28).tolist()})
        assert "ZeroDivisionError" in error_of(r, 500)
        batcher.predict_proba = good  # the batching worker survived the failure
        assert httpx.post(server.url + "/v1/predict", json={"image": np.eye(28).tolist()}).status_code == 200


# --- concurrency: no deadlock, batching, bounded queue, bounded decodes -------------------------------------

async def _fire(url: str, requests: list[tuple[str, dict]], timeout: float = 60) -> list:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        return await asyncio.gather(*(client.post(path, **kw) for path, kw in requests))


def test_50_concurrent_reads_and_mixed_traffic_never_deadlock(live, mnist):
    """Reading used to wait inside the thread pool for a forward pass that needed the same pool: six concurrent
    reads hung every request. Now decoding and the model never share a pool."""
    images, labels = np.asarray(mnist.test_images[:40]), np.asarray(mnist.test_labels[:40])
    number = number_jpeg(images[:4])
    reads = [("/v1/read", upload(number, "n.jpg", "image/jpeg"))] * 50
    t0 = time.monotonic()
    answers = asyncio.run(_fire(live.url, reads))
    assert [r.status_code for r in answers] == [200] * 50 and time.monotonic() - t0 < 60
    assert {r.json()["text"] for r in answers} == {"".join(map(str, labels[:4]))}
    mixed = [("/v1/read", upload(number, "n.jpg", "image/jpeg")), ("/v1/predict", upload(paper_png(images[0]))),
             ("/v1/predict", {"json": {"image": images[1].tolist()}})] * 20
    answers = asyncio.run(_fire(live.url, mixed))
    assert [r.status_code for r in answers] == [200] * 60
    assert [r.json().get("text", r.json().get("digit")) for r in answers[:3]] == [
        "".join(map(str, labels[:4])), labels[0], labels[1]]
    health = httpx.get(live.url + "/healthz").json()
    assert health["in_progress"] == 0 and health["refused_busy"] == 0
    assert httpx.post(live.url + "/v1/read", **upload(number, "n.jpg", "image/jpeg")).json()["text"] == \
        "".join(map(str, labels[:4]))  # and it answers normally afterwards


def test_slow_uploads_on_the_event_loop_do_not_stop_it(live):
    """The slowest uploads that are decoded on the event loop, 40 at once: each holds the loop some ms, so /healthz,
    asked in the middle of them, still answers within a second or so (a generous bound here), and all are read."""
    from benchmarks.loadtest_payloads import slow_inline_uploads

    uploads = list(slow_inline_uploads().values())
    requests = [("/v1/predict", upload(uploads[i % 2], "x.png" if i % 2 == 0 else "x.jpg")) for i in range(40)]

    async def flood_and_ask():
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            flood = asyncio.gather(*(client.post(path, **kw) for path, kw in requests))
            await asyncio.sleep(0.05)
            t0 = time.monotonic()
            health = await client.get("/healthz")
            return await flood, health, time.monotonic() - t0

    answers, health, waited = asyncio.run(flood_and_ask())
    assert health.status_code == 200 and waited < 5.0, waited
    assert [r.status_code for r in answers] == [200] * 40


def test_concurrent_requests_share_forward_passes(live, model, mnist):
    images = np.asarray(mnist.test_images[:64])
    before = httpx.get(live.url + "/healthz").json()
    answers = asyncio.run(_fire(live.url, [("/v1/predict", {"json": {"image": x.tolist()}}) for x in images]))
    after = httpx.get(live.url + "/healthz").json()
    assert all(r.status_code == 200 for r in answers)
    assert after["images"] - before["images"] == 64
    assert after["batches"] - before["batches"] < 64, after  # batches form while the model is busy
    want = load_predictor(model).predict_proba(images[:, None].astype(np.float32) / 255).argmax(1)
    assert [r.json()["digit"] for r in answers] == want.tolist()  # batching does not mix answers up


def _stalled_upload(port: int, length: int) -> socket.socket:
    """A request whose headers promise `length` body bytes that never come: it holds a queue place."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; "
              f"boundary=x\r\nContent-Length: {length}\r\n\r\n".encode())
    return s


def _wait_for(url: str, key: str, value: int) -> None:
    deadline = time.monotonic() + 10
    while httpx.get(url + "/healthz").json()[key] != value:
        assert time.monotonic() < deadline, f"{key} never reached {value}"
        time.sleep(0.02)


def test_beyond_the_queue_limit_503_with_retry_after_at_once(tight, mnist):
    held = [_stalled_upload(tight.port, 1000) for _ in range(2)]
    _wait_for(tight.url, "in_progress", 2)
    t0 = time.monotonic()
    r = httpx.post(tight.url + "/v1/predict", json={"image": np.eye(28).tolist()})
    assert "limit of 2 requests" in error_of(r, 503) and r.headers["retry-after"] == "1"
    assert time.monotonic() - t0 < 1.0  # at once, not after the 30 s timeout
    for s in held:
        s.close()
    _wait_for(tight.url, "in_progress", 0)
    assert httpx.post(tight.url + "/v1/predict", json={"image": np.eye(28).tolist()}).status_code == 200
    # memory: bodies held at once are capped (1 MB here); a request that would pass it is refused up front
    held = _stalled_upload(tight.port, 800_000)
    _wait_for(tight.url, "in_progress", 1)
    r = httpx.post(tight.url + "/v1/predict", **upload(b"\x89PNG" + b"\0" * 600_000))
    assert "too many uploads" in error_of(r, 503) and r.headers["retry-after"] == "1"
    held.close()
    # a burst far beyond the queue: every answer is a digit or an immediate 503, never a hang
    burst = [("/v1/predict", upload(png(x))) for x in np.asarray(mnist.test_images[:40])]
    answers = asyncio.run(_fire(tight.url, burst))
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 503} and codes.count(200) >= 2 and codes.count(503) >= 1, codes
    assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 503)
    _wait_for(tight.url, "in_progress", 0)


def test_decoding_is_capped_at_max_decodes(model, monkeypatch, mnist):
    import digitrec.serve.service as service

    active, peak, lock = [0], [0], threading.Lock()
    real = service.one_digit

    def counted(data, max_pixels):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.05)
            return real(data, max_pixels)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(service, "one_digit", counted)
    with LiveServer(create_app(model, max_decodes=2, inline_pixels=0)) as server:  # all through the pool
        answers = asyncio.run(_fire(server.url, [("/v1/predict", upload(paper_png(x)))
                                                 for x in np.asarray(mnist.test_images[:16])]))
    assert [r.status_code for r in answers] == [200] * 16
    assert peak[0] == 2  # images in memory at once: at most max_decodes, and the pool is used


def test_work_for_clients_that_left_is_dropped(model, monkeypatch, mnist):
    """Clients that give up (a load tool stopping, a browser tab closed) must not leave their decodes queued:
    under overload that work would delay everyone after them."""
    import digitrec.serve.service as service

    started = []
    real = service.one_digit

    def slow(data, max_pixels):
        started.append(1)
        time.sleep(0.5)
        return real(data, max_pixels)

    monkeypatch.setattr(service, "one_digit", slow)
    body = paper_png(np.asarray(mnist.test_images[0]))
    with LiveServer(create_app(model, max_decodes=1, inline_pixels=0)) as server:  # this upload: through the pool
        request = httpx.Request("POST", server.url + "/v1/predict", files={"file": ("d.png", body, "image/png")})
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
        raw = f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{head}\r\n".encode() + request.read()
        for _ in range(6):
            with socket.create_connection(("127.0.0.1", server.port)) as s:
                s.sendall(raw)
                time.sleep(0.02)  # the server has read the request; then the client leaves
        _wait_for(server.url, "in_progress", 0)
        health = httpx.get(server.url + "/healthz").json()
        assert health["abandoned_by_client"] >= 5, health
        time.sleep(0.6)
        assert len(started) <= 2, len(started)  # the queued decodes never ran
        assert httpx.post(server.url + "/v1/predict", files={"file": ("d.png", body, "image/png")}).status_code == 200


# --- connections: half-open clients, header deadline, log flood ---------------------------------------------

def _raise_own_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _half_open(port: int, count: int, seconds: float = 10) -> list[socket.socket]:
    """`count` connections at once (non-blocking connects), each sending a request line and one header but
    never the blank line that ends the headers; the ones that connected within `seconds`."""
    pending = {}
    for _ in range(count):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        pending[s.fileno()] = s
    done, deadline = [], time.monotonic() + seconds
    with selectors.DefaultSelector() as sel:
        for s in pending.values():
            sel.register(s, selectors.EVENT_WRITE)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = pending.pop(key.fd)
                sel.unregister(s)
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    s.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    done.append(s)
                else:
                    s.close()
    for s in pending.values():
        s.close()
    return done


def _peers_held(port: int) -> set[int]:
    """Client ports of the established TCP connections whose local end is `port` (IPv4, from /proc/net/tcp)."""
    held = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            held.add(int(remote.split(":")[1], 16))
    return held


def test_1000_half_open_connections_do_not_stop_healthz(model, tmp_path):
    """Clients that never finish their request headers, far more than the server's file limit (200 here)."""
    _raise_own_file_limit(1200)
    log = tmp_path / "server.log"
    with ServerProcess(["--model", str(model), "--header-timeout", "3"], log, max_files=200) as server:
        half_open = []
        try:
            for _ in range(4):  # 4 waves of 250; the service stays reachable while they pile up
                half_open += _half_open(server.port, 250, seconds=3)
                started = time.monotonic()
                assert httpx.get(server.url + "/healthz", timeout=10).json()["status"] == "ok"
                assert time.monotonic() - started < 3
            assert len(half_open) >= 900, len(half_open)  # connected: the server accepted (and later dropped) them
            # Past the header deadline the server lets every one of them go. Each deadline counts from acceptance,
            # and a burst over the file limit is accepted over a few seconds, so allow for that — but not forever.
            ours, give_up = {s.getsockname()[1] for s in half_open}, time.monotonic() + 20
            while (held := ours & _peers_held(server.port)) and time.monotonic() < give_up:
                time.sleep(0.5)
            assert not held, f"{len(held)} half-open connections still held 20 s after the last one connected"
            for s in half_open[-50:]:
                s.setblocking(True)
                s.settimeout(2)
                try:
                    reply = s.recv(200)  # b"": closed earlier to make room for newer connections
                except TimeoutError:  # the kernel dropped it from a full accept queue; the server never had it
                    continue
                assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply
        finally:
            for s in half_open:
                s.close()
        assert httpx.post(server.url + "/v1/predict", json={"image": np.eye(28).tolist()}).status_code == 200
    text = log.read_text(errors="replace")
    assert len(text) < 20_000, text[-3000:]  # nothing floods the log
    assert text.count("Too many open files") <= 10, text[-3000:]


def test_header_deadline_and_idle_keep_alive(tight):
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        assert s.recv(100).startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as s:  # a normal keep-alive client
        request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{tight.port}\r\n\r\n".encode()
        s.sendall(request)
        assert read_reply(s).startswith(b"HTTP/1.1 200")
        time.sleep(1.0)  # idle longer than the header deadline, within keep-alive: still open
        s.sendall(request)
        assert read_reply(s).startswith(b"HTTP/1.1 200")


# --- cross-origin requests --------------------------------------------------------------------------------

def test_cross_origin_requests_are_refused_unless_allowed(http, live):
    data = upload(png(np.full((40, 40), 255)))
    for path in ("/v1/predict", "/v1/read"):
        r = http.post(path, headers={"Origin": "http://evil.example"}, **data)
        assert "evil.example" in error_of(r, 403) and "access-control-allow-origin" not in r.headers
    assert http.get("/healthz", headers={"Origin": "null"}).status_code == 403
    same = http.post("/v1/predict", headers={"Origin": live.url}, **data)  # the bundled page: same origin
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    allowed = http.post("/v1/predict", headers={"Origin": "https://allowed.example"}, **data)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://allowed.example"
    preflight = http.options("/v1/predict", headers={"Origin": "https://allowed.example",
                                                     "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]
    evil = http.options("/v1/predict", headers={"Origin": "http://evil.example",
                                                "Access-Control-Request-Method": "POST"})
    assert evil.status_code == 403


def test_dns_rebinding_other_host_names_are_refused_on_loopback(http, live, model):
    """A page on evil.example re-pointed at 127.0.0.1 is same-origin in the browser (Origin and Host both say
    evil.example): the Origin check passes it, the Host check does not — for the API and the pages alike."""
    port = live.port
    data = upload(png(np.full((40, 40), 255)))
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    r = http.post("/v1/predict", headers=rebound, **data)
    assert "evil.example" in error_of(r, 400) and "--allow-host" in error_of(r, 400)
    for path in ("/", "/healthz", "/docs"):
        assert http.get(path, headers={"Host": "evil.example"}).status_code == 400, path
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST.", f"127.0.0.2:{port}"):
        assert http.get("/healthz", headers={"Host": host}).status_code == 200, host
    with LiveServer(create_app(model, allow_hosts=("digits.example",))) as server:
        named = httpx.post(server.url + "/v1/predict", headers={"Host": "digits.example:8080"}, **data)
        assert named.status_code == 200
        assert httpx.get(server.url + "/healthz", headers={"Host": "other.example"}).status_code == 400
        assert httpx.get(server.url + "/healthz").status_code == 200  # loopback names still


def test_host_names_are_free_beyond_loopback_unless_listed(model):
    """On a non-loopback address the server cannot know the names it is reached by: any Host is answered, unless
    --allow-host names them. (The decision reads the listening address from the ASGI scope.)"""
    from digitrec.serve.asgi import ApiError
    from digitrec.serve.origins import HostPolicy

    def scope(host: bytes, server: tuple | None):
        return {"headers": [(b"host", host)], "server": server}

    open_policy, listed = HostPolicy(()), HostPolicy(("digits.example",))
    open_policy.check(scope(b"anything.example", ("10.0.0.5", 8000)))
    open_policy.check(scope(b"anything.example", ("0.0.0.0", 8000)))
    listed.check(scope(b"digits.example:443", ("0.0.0.0", 8000)))
    listed.check(scope(b"localhost", ("0.0.0.0", 8000)))
    for policy, server in ((open_policy, ("127.0.0.1", 8000)), (open_policy, ("::1", 8000)),
                           (listed, ("0.0.0.0", 8000))):
        with pytest.raises(ApiError) as refused:
            policy.check(scope(b"evil.example", server))
        assert refused.value.status == 400


# --- processes and flags --------------------------------------------------------------------------------

def test_two_worker_processes_share_the_port(model, tmp_path):
    with ServerProcess(["--model", str(model), "--workers", "2"], tmp_path / "log") as server:
        pids = set()
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client() as fresh:  # a new connection each time: the kernel spreads them over the workers
                pids.add(fresh.get(server.url + "/healthz").json()["pid"])
                assert fresh.post(server.url + "/v1/predict", json={"image": np.eye(28).tolist()}).status_code == 200
        assert len(pids) == 2 and server.proc.pid not in pids


def test_serve_package_does_not_import_training_code():
    code = ("import sys, digitrec.serve.server, digitrec.commands.serve; "
            "bad = [m for m in ('digitrec.train', 'digitrec.config', 'digitrec.augment', 'digitrec.evaluate') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


NUMERIC_FLAGS = ["--port", "--workers", "--max-upload-mb", "--max-json-kb", "--max-pixels", "--timeout",
                 "--header-timeout", "--keep-alive", "--max-connections", "--max-queue", "--max-buffered-mb",
                 "--max-decodes", "--inline-pixels", "--max-batch", "--batch-wait-ms", "--threads"]


@pytest.mark.parametrize("flag", NUMERIC_FLAGS)
@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e12", "x"])
def test_every_numeric_flag_must_be_finite_and_in_range(flag, value, model, capsys):
    from digitrec.cli import main

    assert main(["serve", "--model", str(model), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error:") and flag in err and err.count("\n") == 1, err


def test_every_numeric_flag_is_covered_and_documented():
    from pathlib import Path

    from digitrec.serve.limits import numeric_fields

    assert {f"--{f.metadata['flag']}" for f in numeric_fields()} | {"--port", "--workers"} == set(NUMERIC_FLAGS)
    docs = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    assert all(f"| `{flag}` |" in docs for flag in NUMERIC_FLAGS)


@pytest.mark.parametrize("argv, message", [
    (["--model", "missing.pt"], "not found"),
    (["--allow-origin", "evil.example"], "--allow-origin"),
    (["--allow-origin", "https://a.example/path"], "--allow-origin"),
    (["--allow-host", "digits.example:8080"], "--allow-host"),
    (["--allow-host", "evil example/"], "--allow-host"),
])
def test_serve_cli_bad_values(argv, message, model, capsys):
    from digitrec.cli import main

    argv = argv if "--model" in argv else ["--model", str(model)] + argv
    assert main(["serve"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("digitrec: error:") and message in err and err.count("\n") == 1


def test_serve_cli_busy_port_is_a_clear_error(model, capsys):
    from digitrec.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--model", str(model), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err
