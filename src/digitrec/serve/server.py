"""Run the service under uvicorn: one process, or `workers` processes sharing one listening socket.

The socket is bound here, before anything starts, so a busy port is a one-line error and port 0 reports the
port it got. Each worker process builds its own app (model, pools, batcher) from `create_app(model, limits)`.
"""
from __future__ import annotations

import functools
import inspect
import os
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from ..errors import DigitrecError
from . import logs
from .app import create_app
from .limits import ServeLimits
from .protocol import GuardedHTTPProtocol, backlog_for_fd_limit


class ServerConfig(uvicorn.Config):
    """uvicorn's settings plus the connection rules GuardedHTTPProtocol reads, and rate-limited logs."""

    def __init__(self, app, limits: ServeLimits, **kwargs) -> None:
        self.header_timeout_s, self.max_connections = limits.header_timeout_s, limits.max_connections
        super().__init__(app, http=GuardedHTTPProtocol, loop=event_loop(), timeout_keep_alive=limits.keep_alive_s,
                         backlog=backlog_for_fd_limit(), **kwargs)

    def configure_logging(self) -> None:  # runs in the parent and again in every worker process
        super().configure_logging()
        logs.install()


def event_loop() -> str:
    """uvloop when installed (the serve extra brings it): its event loop costs less per request than asyncio's."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as e:
        sock.close()
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise DigitrecError(f"cannot listen on {host}:{port} ({reason})") from None
    sock.set_inheritable(True)  # worker processes are handed this socket
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if sock.family == socket.AF_INET6 else f"http://{host}:{port}/"


def serve(model: str | os.PathLike, limits: ServeLimits, host: str = "127.0.0.1", port: int = 8000,
          workers: int = 1, log_level: str = "info", access_log: bool = False, announce=print) -> None:
    """Serve until interrupted. The model is loaded here first, so that a bad file fails before listening;
    worker processes (workers > 1) each load their own copy."""
    app = create_app(model, limits)
    sock = bind(host, port)
    announce(f"digitrec: serving {model} on {url_of(sock)} with {workers} worker process"
             f"{'es' if workers > 1 else ''} (API docs at /docs)")
    common = dict(workers=workers, log_level=log_level, access_log=access_log)
    try:
        if workers == 1:
            uvicorn.Server(ServerConfig(app, limits, **common)).run(sockets=[sock])
        else:
            del app
            config = ServerConfig(functools.partial(create_app, str(model), limits), limits, factory=True, **common)
            # older uvicorn's supervisor takes the worker's target explicitly
            takes_target = "target" in inspect.signature(Multiprocess).parameters
            target = {"target": uvicorn.Server(config).run} if takes_target else {}
            Multiprocess(config, sockets=[sock], **target).run()
    finally:
        sock.close()
