"""Connections that cannot pile up: a deadline for request headers, and a cap on open connections.

uvicorn times out idle keep-alive connections, but a connection that never completes its request headers
(nothing sent, or half a request line) stays open forever, and enough of them exhaust the process's file
descriptors: accept() then fails, new clients (and /healthz) wait, and the error is logged on every retry.
Here each connection must finish a request's headers within `header_timeout_s` of connecting (or of its first
byte after a response) — else it gets 408 and is closed — and beyond the connection cap (kept below the file
limit) the longest-idle connection is closed to make room for the new one. The protocol is uvicorn's own
(httptools when installed, else h11) with these rules added.
"""
from __future__ import annotations

import os
import resource

from uvicorn.protocols.http.auto import AutoHTTPProtocol

FD_RESERVE = 32  # descriptors kept free for the process itself (model files, logs, decoders)
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def backlog_for_fd_limit() -> int:
    """Listen backlog: asyncio accepts up to this many connections at once, so it must fit in the file limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 2048 if soft == resource.RLIM_INFINITY else min(2048, max(8, soft // 8))


def connection_cap(wanted: int, backlog: int) -> int:
    """`wanted`, lowered so that open connections plus one accept burst never reach the process's file limit."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    return max(1, min(wanted, soft - in_use - backlog - FD_RESERVE))


class GuardedHTTPProtocol(AutoHTTPProtocol):
    """uvicorn's HTTP/1.1 protocol plus a request-header deadline and the connection cap (config: ServerConfig)."""

    cap: int | None = None  # per process, fixed at the first connection (after the model's files are open)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.head_timer, self.seen_cycle = None, None
        self.idle_since = self.loop.time()
        self.arm()
        self.make_room()

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and self.idle():  # the first bytes of a new request: its headers' deadline
            self.arm()
        super().data_received(data)
        if self.cycle is not self.seen_cycle:  # a request's headers are complete
            self.seen_cycle = self.cycle
            self.disarm()

    def on_response_complete(self) -> None:
        self.idle_since = self.loop.time()
        super().on_response_complete()

    def connection_lost(self, exc) -> None:
        self.disarm()
        super().connection_lost(exc)

    def idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def arm(self) -> None:
        self.disarm()
        self.head_timer = self.loop.call_later(self.config.header_timeout_s, self.headers_too_slow)

    def disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def headers_too_slow(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing() and self.idle():
            self.transport.write(TIMED_OUT)
            self.transport.close()

    def make_room(self) -> None:
        """Over the cap: close the connection idle longest (or this one, when every other is busy)."""
        cls = type(self)
        if cls.cap is None:
            cls.cap = connection_cap(self.config.max_connections, self.config.backlog)
        if len(self.connections) <= cls.cap:
            return
        open_ = [c for c in self.connections if not c.transport.is_closing()]
        if len(open_) <= cls.cap:
            return
        idle = [c for c in open_ if c is not self and isinstance(c, GuardedHTTPProtocol) and c.idle()]
        victim = min(idle, key=lambda c: c.idle_since) if idle else self
        victim.transport.close()
