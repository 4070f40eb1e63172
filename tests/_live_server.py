"""Real servers on 127.0.0.1 and a free port: uvicorn in a background thread (LiveServer, for tests that patch
the app), or `digitrec serve` as a subprocess (ServerProcess, exactly what a user runs)."""
from __future__ import annotations

import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from digitrec.serve.limits import ServeLimits
from digitrec.serve.server import ServerConfig


class LiveServer:
    def __init__(self, app) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))  # the OS picks a free port; loopback only
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        limits = getattr(app, "limits", ServeLimits())
        self.server = uvicorn.Server(ServerConfig(app, limits, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


class ServerProcess:
    """`python -m digitrec serve --port 0 ARGS` with its output in `log`; `max_files` lowers its descriptor limit."""

    def __init__(self, args: list[str], log: Path, max_files: int | None = None) -> None:
        self.args, self.log_path, self.max_files = args, Path(log), max_files
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def _limit_files(self) -> None:  # runs in the child before exec
        if self.max_files:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.max_files, hard))

    def __enter__(self) -> "ServerProcess":
        cmd = [sys.executable, "-m", "digitrec", "serve", "--host", "127.0.0.1", "--port", "0",
               "--log-level", "warning", *self.args]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=self._limit_files,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = re.search(r"on (http://127\.0\.0\.1:\d+)/", self.log_path.read_text(errors="replace"))
            if found and self._healthy(found.group(1)):
                self.url = found.group(1)
                return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"`{' '.join(cmd)}` did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.log.close()
