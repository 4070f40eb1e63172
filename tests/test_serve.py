"""The HTTP service: answers on real MNIST digits, and a 4xx JSON error (never a crash) for every bad input."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from _live_server import LiveServer
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
def client(model):
    with TestClient(create_app(model)) as c:
        yield c


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    return body["error"]


def test_healthz_and_docs(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["model"] == "model.pt"
    assert health["limits"]["max_upload_bytes"] == 10 * 1024 * 1024
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/read", "/healthz"} <= set(spec["paths"])
    assert set(spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]) == {"multipart/form-data",
                                                                                  "application/json"}
    assert client.get("/docs").status_code == 200


def test_predict_multipart_matches_the_model(client, model, mnist):
    predictor = load_predictor(model)
    images, labels = np.asarray(mnist.test_images[:24]), np.asarray(mnist.test_labels[:24])
    got, expected = [], []
    for image in images:
        data = paper_png(image)
        r = client.post("/v1/predict", files={"file": ("digit.png", data, "image/png")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
        assert body["confidence"] == max(body["probabilities"]) and body["digit"] == int(np.argmax(body["probabilities"]))
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["crop"]))))
        assert seen.shape == (28, 28)
        got.append(body["digit"])
        expected.append(int(predictor.predict_proba(load_digit(data)[None, None]).argmax()))
    assert got == expected  # the server answers what the model says for the same preprocessing
    assert np.mean(np.array(got) == labels) >= 0.85, (got, labels.tolist())  # and the answers are real digits


def test_predict_json_array_0_1_and_0_255(client, model, mnist):
    predictor = load_predictor(model)
    for image in np.asarray(mnist.test_images[:8]):
        want = predictor.predict_proba(image[None, None].astype(np.float32) / 255)[0]
        for payload in (image.tolist(), (image / 255.0).tolist()):
            r = client.post("/v1/predict", json={"image": payload})
            assert r.status_code == 200, r.text
            assert np.allclose(r.json()["probabilities"], want, atol=2e-6)


def test_read_a_number(client, mnist):
    images, labels = np.asarray(mnist.test_images[:4]), np.asarray(mnist.test_labels[:4])
    page = Image.new("L", (4 * 90 + 40, 130), 255)
    for i, image in enumerate(images):
        page.paste(Image.fromarray(255 - image).resize((84, 84)), (20 + 90 * i, 20))
    buf = io.BytesIO()
    page.save(buf, "JPEG", quality=92)
    r = client.post("/v1/read", files={"file": ("number.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["digits"]) == len(body["crops"]) == 4
    assert body["text"] == "".join(str(d["digit"]) for d in body["digits"])
    assert body["text"] == "".join(map(str, labels))
    xs = [d["box"][0] for d in body["digits"]]
    assert xs == sorted(xs) and all(20 + 90 * i - 10 <= x <= 20 + 90 * i + 84 for i, x in enumerate(xs))
    crop = Image.open(io.BytesIO(base64.b64decode(body["crops"][0])))
    assert crop.size == (28, 28) and crop.format == "PNG"
    doubtful = client.post("/v1/read?min_confidence=1.0", files={"file": ("n.jpg", buf.getvalue(), "image/jpeg")})
    assert all(d["doubtful"] for d in doubtful.json()["digits"]) and set(doubtful.json()["text"]) == {"?"}
    blank = client.post("/v1/read", files={"file": ("b.png", png(np.full((50, 80), 255)), "image/png")}).json()
    assert blank == {"text": "", "digits": [], "crops": []}


def _noise_png() -> bytes:
    return png(np.random.default_rng(0).integers(0, 256, (200, 200)))


BAD_INPUTS = [
    # (id, request kwargs, status, words expected in the error)
    ("empty body", dict(content=b""), 415, "multipart"),
    ("empty JSON body", dict(content=b"", headers={"content-type": "application/json"}), 400, "empty"),
    ("empty multipart", dict(content=b"", headers={"content-type": "multipart/form-data; boundary=x"}), 400, "file"),
    ("empty file", dict(files={"file": ("a.png", b"", "image/png")}), 400, "empty"),
    ("missing field", dict(files={"photo": ("a.png", b"abc", "image/png")}), 400, "'file'"),
    ("not an image", dict(files={"file": ("a.png", b"hello, not a picture", "image/png")}), 422, "not a readable"),
    ("truncated PNG", dict(files={"file": ("a.png", _noise_png()[:3000], "image/png")}), 422, "truncated"),
    ("PNG bomb", dict(files={"file": ("bomb.png", png_bomb(), "image/png")}), 413, "pixels"),
    ("text/plain part", dict(files={"file": ("a.txt", b"7", "text/plain")}), 415, "image/*"),
    ("wrong request type", dict(content=b"7", headers={"content-type": "text/plain"}), 415, "text/plain"),
    ("form-urlencoded", dict(data={"file": "7"}), 415, "multipart"),
    ("invalid JSON", dict(content=b"{nope", headers={"content-type": "application/json"}), 400, "invalid JSON"),
    ("JSON not an object", dict(json=[1, 2, 3]), 422, '{"image"'),
    ("JSON 27x28", dict(json={"image": np.zeros((27, 28)).tolist()}), 422, "27×28"),
    ("JSON 28x28x1", dict(json={"image": np.zeros((28, 28, 1)).tolist()}), 422, "28×28"),
    ("JSON ragged", dict(json={"image": [[0] * 28] * 27 + [[0] * 27]}), 422, "ragged"),
    ("JSON strings", dict(json={"image": [["0"] * 28] * 28}), 422, "numbers"),
    ("JSON NaN", dict(content=json.dumps({"image": [[float("nan")] * 28] * 28}).encode(),
                      headers={"content-type": "application/json"}), 422, "NaN"),
    ("JSON Infinity", dict(content=json.dumps({"image": [[float("inf")] * 28] * 28}).encode(),
                           headers={"content-type": "application/json"}), 422, "infinite"),
    ("JSON out of range", dict(json={"image": [[300] * 28] * 28}), 422, "0–255"),
    ("JSON negative", dict(json={"image": [[-1] * 28] * 28}), 422, "0–255"),
    ("two files", dict(files=[("file", ("a.png", b"1", "image/png")), ("file", ("b.png", b"2", "image/png"))]),
     400, "files"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_4xx_json_error_and_the_server_keeps_serving(client, case):
    _, kwargs, status, words = case
    message = error_of(client.post("/v1/predict", **kwargs), status)
    assert words.lower() in message.lower(), message
    if "files" in kwargs:  # uploads go through the same checks on /v1/read
        assert words.lower() in error_of(client.post("/v1/read", **kwargs), status).lower()
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/predict", json={"image": np.zeros((28, 28)).tolist()}).status_code == 200


def test_huge_upload_is_refused_by_content_length_and_while_streaming(client, model):
    big = b"\0" * (10 * 1024 * 1024 + 1)
    assert "limit" in error_of(client.post("/v1/predict", files={"file": ("big.png", big, "image/png")}), 413)
    with TestClient(create_app(model, max_upload_bytes=50_000)) as small:
        chunks = (b"x" * 10_000 for _ in range(10))  # chunked: no Content-Length to check up front
        r = small.post("/v1/predict", content=chunks, headers={"content-type": "multipart/form-data; boundary=x"})
        assert "50,000-byte limit" in error_of(r, 413)
        ok = small.post("/v1/predict", files={"file": ("d.png", _noise_png()[:40_000], "image/png")})
        assert ok.status_code != 413


def test_pixel_limit_and_bad_query_are_configurable_4xx(client, model):
    with TestClient(create_app(model, max_pixels=100 * 100)) as small:
        r = small.post("/v1/read", files={"file": ("a.png", png(np.full((101, 100), 255)), "image/png")})
        assert "100x101" in error_of(r, 413)
        assert small.post("/v1/read", files={"file": ("a.png", png(np.full((100, 100), 255)), "image/png")}).status_code == 200
    assert "min_confidence" in error_of(client.post("/v1/read?min_confidence=2",
                                                    files={"file": ("a.png", _noise_png(), "image/png")}), 422)
    assert error_of(client.get("/v1/nothing-here"), 404)
    assert error_of(client.get("/v1/predict"), 405)


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


def test_real_server_slow_upload_is_408_and_oversized_stream_is_cut_off(model):
    app = create_app(model, timeout_s=1.0, max_upload_bytes=100_000)
    with LiveServer(app) as server:
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
            # (what was sent beyond it sits in the loopback socket buffers, a few MB)
            assert reply.startswith(b"HTTP/1.1 413") and sent < 20_000_000, (reply[:80], sent)
        import httpx

        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"


def test_concurrent_requests_share_forward_passes(model, mnist):
    import httpx

    images = np.asarray(mnist.test_images[:64])
    with TestClient(create_app(model, batch_wait_ms=20)) as c:
        before = c.get("/healthz").json()

        async def many():
            transport = httpx.ASGITransport(app=c.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
                async def one(image):
                    return await ac.post("/v1/predict", json={"image": image.tolist()})
                return await asyncio.gather(*(one(i) for i in images))

        responses = c.portal.call(many)
        after = c.get("/healthz").json()
    assert all(r.status_code == 200 for r in responses)
    assert after["images"] - before["images"] == 64
    assert after["batches"] - before["batches"] < 16, after  # 64 requests in far fewer forward passes
    predictor = load_predictor(model)
    want = predictor.predict_proba(images[:, None].astype(np.float32) / 255).argmax(1)
    assert [r.json()["digit"] for r in responses] == want.tolist()  # batching does not mix answers up


def test_slow_processing_is_503_and_a_failing_model_is_a_json_500(model, monkeypatch):
    import digitrec.serve.app as app_module

    def slow_load_digit(data, name=None):
        time.sleep(1.5)
        return load_digit(data, name)

    upload = {"file": ("d.png", png(np.full((40, 40), 255)), "image/png")}
    with TestClient(create_app(model, timeout_s=0.5), raise_server_exceptions=False) as c:
        monkeypatch.setattr(app_module, "load_digit", slow_load_digit)
        assert "0.5 s" in error_of(c.post("/v1/predict", files=upload), 503)
        monkeypatch.undo()
        batcher = c.app.state.batcher
        good = batcher.predict_proba
        batcher.predict_proba = lambda x: 1 / 0
        assert "ZeroDivisionError" in error_of(c.post("/v1/predict", files=upload), 500)
        batcher.predict_proba = good  # the batching worker survived the failure
        assert c.post("/v1/predict", files=upload).status_code == 200


def test_serve_package_does_not_import_training_code():
    code = ("import sys, digitrec.serve, digitrec.commands.serve; "
            "bad = [m for m in ('digitrec.train', 'digitrec.config', 'digitrec.augment', 'digitrec.evaluate') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("argv, message", [
    (["--model", "missing.pt"], "not found"),
    (["--port", "70000"], "--port"),
    (["--max-upload-mb", "0"], "--max-upload-mb"),
    (["--timeout", "-1"], "--timeout"),
])
def test_serve_cli_bad_flags(argv, message, model, capsys):
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
