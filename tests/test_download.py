"""digitrec.data.download against a local HTTP server (127.0.0.1 only: CI has no network)."""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from digitrec.data import datasets
from digitrec.data.download import fetch
from digitrec.data.sources import EMNIST_DIGITS, MNIST
from digitrec.errors import DigitrecError

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path | None:
    env = os.environ.get("DIGITREC_DATA")
    if env:  # CI gives it relative to the repo (../shared/data)
        return next((p for p in (Path(env), REPO / env) if p.is_dir()), Path(env))
    return None


DATA = _data_root()
MNIST_DIR = DATA / "mnist" if DATA else REPO / "src/digitrec/data/bundled/mnist"  # same bytes
EMNIST_DIR = DATA / "emnist" if DATA else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with `Range: bytes=N-` support (SimpleHTTPRequestHandler ignores Range) and records requests."""

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        rng = self.headers.get("Range")
        self.server.requests.append((self.path, rng))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if rng and not self.server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:start + self.server.cut_after] if self.server.cut_after else data[start:])


@pytest.fixture(autouse=True)
def _no_mirror_override(monkeypatch):
    monkeypatch.delenv("DIGITREC_MIRROR", raising=False)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(root)))
    httpd.requests, httpd.ignore_range, httpd.cut_after = [], False, None  # cut_after: drop the connection early
    httpd.root, httpd.url = root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    """A loopback port that refuses connections: bound but not listening, so nothing else can take it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def publish_mnist(server) -> None:
    for f in MNIST.files:
        shutil.copy(MNIST_DIR / f, server.root / f)


def all_but(target: Path, name: str) -> Path:
    """Target folder already holding every MNIST file except `name`, so a test moves only that one."""
    target.mkdir()
    for f in MNIST.files:
        if f != name:
            shutil.copy(MNIST_DIR / f, target / f)
    return target


SMALL = MNIST.test_labels  # 4.5 kB
BIG = MNIST.train_images  # 9.9 MB


def test_fetch_mnist(server, tmp_path):
    publish_mnist(server)
    target = tmp_path / "out"
    fetch(dataclasses.replace(MNIST, mirrors=(server.url,)), target, progress=False, timeout=5)
    assert sorted(p.name for p in target.iterdir()) == sorted(MNIST.files)  # no .part left
    for f in MNIST.files:
        assert sha256(target / f) == MNIST.sha256[f]
    assert sorted(path for path, _ in server.requests) == sorted("/" + f for f in MNIST.files)


def test_corrupt_download_is_rejected(server, tmp_path):
    data = bytearray((MNIST_DIR / SMALL).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (server.root / SMALL).write_bytes(data)
    target = all_but(tmp_path / "out", SMALL)
    with pytest.raises(DigitrecError) as info:
        fetch(dataclasses.replace(MNIST, mirrors=(server.url,)), target, progress=False, timeout=5)
    msg = str(info.value)
    assert SMALL in msg and "sha256" in msg and MNIST.sha256[SMALL] in msg
    assert hashlib.sha256(data).hexdigest() in msg
    assert not (target / SMALL).exists() and not list(target.glob("*.part")) and not list(target.glob(".*"))


def test_resume_sends_range(server, tmp_path):
    publish_mnist(server)
    target = all_but(tmp_path / "out", BIG)
    full = (MNIST_DIR / BIG).read_bytes()
    (target / f"{BIG}.part").write_bytes(full[: len(full) // 2])
    fetch(dataclasses.replace(MNIST, mirrors=(server.url,)), target, progress=True, timeout=5)
    assert server.requests == [(f"/{BIG}", f"bytes={len(full) // 2}-")]
    assert sha256(target / BIG) == MNIST.sha256[BIG]
    assert not (target / f"{BIG}.part").exists()


def test_dropped_connection_keeps_part_for_resume(server, tmp_path):
    publish_mnist(server)
    server.cut_after = 1000
    target = all_but(tmp_path / "out", SMALL)
    src = dataclasses.replace(MNIST, mirrors=(server.url,))
    with pytest.raises(DigitrecError, match="connection closed"):
        fetch(src, target, progress=False, timeout=5)
    assert (target / f"{SMALL}.part").stat().st_size == 1000 and not (target / SMALL).exists()
    server.cut_after = None
    fetch(src, target, progress=False, timeout=5)
    assert server.requests[-1] == (f"/{SMALL}", "bytes=1000-")
    assert sha256(target / SMALL) == MNIST.sha256[SMALL]


def test_resume_when_server_ignores_range(server, tmp_path):
    publish_mnist(server)
    server.ignore_range = True  # answers 200 with the whole file: the .part must be restarted, not appended to
    target = all_but(tmp_path / "out", SMALL)
    (target / f"{SMALL}.part").write_bytes((MNIST_DIR / SMALL).read_bytes()[:1000])
    fetch(dataclasses.replace(MNIST, mirrors=(server.url,)), target, progress=False, timeout=5)
    assert server.requests == [(f"/{SMALL}", "bytes=1000-")]
    assert sha256(target / SMALL) == MNIST.sha256[SMALL]


def test_complete_part_gets_416_and_is_finished(server, tmp_path):
    publish_mnist(server)
    target = all_but(tmp_path / "out", SMALL)
    shutil.copy(MNIST_DIR / SMALL, target / f"{SMALL}.part")  # e.g. interrupted between download and rename
    fetch(dataclasses.replace(MNIST, mirrors=(server.url,)), target, progress=False, timeout=5)
    assert sha256(target / SMALL) == MNIST.sha256[SMALL]
    assert not (target / f"{SMALL}.part").exists()


def test_falls_back_to_next_mirror(server, dead_url, tmp_path):
    publish_mnist(server)
    target = all_but(tmp_path / "out", SMALL)
    fetch(dataclasses.replace(MNIST, mirrors=(dead_url, server.url)), target, progress=False, timeout=5)
    assert sha256(target / SMALL) == MNIST.sha256[SMALL]


def test_mirror_env_var_overrides_mirrors(server, dead_url, tmp_path, monkeypatch):
    publish_mnist(server)
    monkeypatch.setenv("DIGITREC_MIRROR", server.url)
    target = all_but(tmp_path / "out", SMALL)
    fetch(dataclasses.replace(MNIST, mirrors=(dead_url,)), target, progress=False, timeout=5)
    assert sha256(target / SMALL) == MNIST.sha256[SMALL]


def test_unreachable_is_one_line_error(dead_url, tmp_path):
    target = tmp_path / "out"
    with pytest.raises(DigitrecError) as info:
        fetch(dataclasses.replace(MNIST, mirrors=(dead_url,)), target, progress=False, timeout=5)
    msg = str(info.value)
    assert "\n" not in msg and dead_url + MNIST.train_images in msg
    assert not any(p.name in MNIST.files for p in target.iterdir())


def fake_images(n: int) -> bytes:
    return gzip.compress(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(range(256)) * (n * 784 // 256 + 1),
                         mtime=0)


@pytest.fixture
def emnist_zip(server):
    """A small stand-in for NIST's gzip.zip: real EMNIST digits label files, generated images, other splits."""
    if EMNIST_DIR is None or not (EMNIST_DIR / EMNIST_DIGITS.train_labels).is_file():
        pytest.skip("EMNIST label files not available (set DIGITREC_DATA)")
    members = {
        EMNIST_DIGITS.train_images: fake_images(3),
        EMNIST_DIGITS.test_images: fake_images(2),
        EMNIST_DIGITS.train_labels: (EMNIST_DIR / EMNIST_DIGITS.train_labels).read_bytes(),
        EMNIST_DIGITS.test_labels: (EMNIST_DIR / EMNIST_DIGITS.test_labels).read_bytes(),
    }
    with zipfile.ZipFile(server.root / "gzip.zip", "w") as z:
        for name, data in members.items():
            z.writestr(EMNIST_DIGITS.zip_member_dir + name, data)
        z.writestr("gzip/emnist-letters-train-labels-idx1-ubyte.gz", b"not a digits file")
    return dataclasses.replace(EMNIST_DIGITS, sha256={k: hashlib.sha256(v).hexdigest() for k, v in members.items()})


@pytest.mark.parametrize("via", ["zip_url", "DIGITREC_MIRROR"])
def test_emnist_zip(server, emnist_zip, dead_url, tmp_path, monkeypatch, via):
    if via == "zip_url":
        src = dataclasses.replace(emnist_zip, zip_url=server.url + "gzip.zip")
    else:  # the override must win over zip_url, which is a dead loopback port so a bug never leaves the machine
        monkeypatch.setenv("DIGITREC_MIRROR", server.url)
        src = dataclasses.replace(emnist_zip, zip_url=dead_url + "gzip.zip")
    target = tmp_path / "out"
    fetch(src, target, progress=False, timeout=5)
    assert sorted(p.name for p in target.iterdir()) == sorted(src.files)  # zip gone, nothing else extracted
    for f in src.files:
        assert sha256(target / f) == src.sha256[f]
    assert EMNIST_DIGITS.sha256[EMNIST_DIGITS.test_labels] == src.sha256[EMNIST_DIGITS.test_labels]  # real file


def test_emnist_zip_member_mismatch(server, emnist_zip, tmp_path):
    bad = dict(emnist_zip.sha256, **{EMNIST_DIGITS.test_images: "0" * 64})
    src = dataclasses.replace(emnist_zip, zip_url=server.url + "gzip.zip", sha256=bad)
    target = tmp_path / "out"
    with pytest.raises(DigitrecError, match=EMNIST_DIGITS.test_images):
        fetch(src, target, progress=False, timeout=5)
    assert not (target / EMNIST_DIGITS.test_images).exists()
    assert not list(target.glob("*.part")) and not list(target.glob(".*"))


def test_locate_reports_where_to_put_files(dead_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_MIRROR", dead_url)
    monkeypatch.delenv("DIGITREC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a real user cache must not satisfy locate()
    empty = tmp_path / "data"
    with pytest.raises(DigitrecError) as info:
        datasets.locate("emnist-digits", data_dir=empty, download=True, progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert all(f in msg for f in EMNIST_DIGITS.files)
    assert str(empty / "emnist") in msg and dead_url + "gzip.zip" in msg


class DripHandler(http.server.BaseHTTPRequestHandler):
    """A mirror that announces 28 KB and then sends one byte every 0.2 s (at most 100: the test stops by itself)."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(28_000))
        self.end_headers()
        try:
            for _ in range(100):
                self.wfile.write(b"\0")
                self.wfile.flush()
                if self.server.stop.wait(0.2):
                    return
        except OSError:  # the client gave up: what the test wants
            pass


@pytest.fixture
def drip_server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    httpd.stop = threading.Event()
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_dripping_mirror_hits_the_overall_deadline(drip_server, tmp_path):
    """Each byte arrives well within the socket timeout, so only an overall deadline ends the download."""
    import time

    target = all_but(tmp_path / "out", SMALL)
    t0 = time.monotonic()
    with pytest.raises(DigitrecError) as info:
        fetch(dataclasses.replace(MNIST, mirrors=(drip_server,)), target, progress=False, timeout=5, deadline=1.5)
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert "\n" not in msg and drip_server + SMALL in msg and "gave up after" in msg and "deadline" in msg
    assert 1.5 <= elapsed < 5  # the deadline, not the 20 s the drip would take, nor the socket timeout
    part = target / f"{SMALL}.part"
    assert 0 < part.stat().st_size < 28_000 and not (target / SMALL).exists()  # kept for a resume


def test_default_deadline_scales_with_the_announced_size():
    from digitrec.data.download import deadline_for

    assert deadline_for(28_000) < 61 and deadline_for(560_000_000) > 5000 and deadline_for(None) == 3600
