"""The service's settings: the one place where each limit has its default, its range and its meaning.

`digitrec serve` makes one flag per field (commands/serve.py), `create_app(model, **overrides)` takes the same
names, and /healthz reports them. Every value is checked here: a number must be finite and within its range.
"""
from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from ..errors import DigitrecError

KIB, MIB = 1024, 1024 * 1024


def _limit(default, low, high, flag: str, help: str, scale: float = 1):
    """A numeric setting: `default` in the field's unit; the CLI flag `--flag` takes value / scale (e.g. MB)."""
    return field(default=default, metadata={"range": (low, high), "flag": flag, "help": help, "scale": scale})


@dataclass(frozen=True)
class ServeLimits:
    max_upload_bytes: int = _limit(10 * MIB, 16 * KIB, 1024 * MIB, "max-upload-mb", "largest request body", MIB)
    max_json_bytes: int = _limit(64 * KIB, KIB, 16 * MIB, "max-json-kb",
                                 "largest JSON body (a 28×28 array needs about 20 KB)", KIB)
    max_pixels: int = _limit(40_000_000, 64, 250_000_000, "max-pixels",
                             "largest image (width × height), checked from its header before decoding")
    timeout_s: float = _limit(30.0, 0.01, 3600.0, "timeout",
                              "seconds per request: body upload (408), then processing (503)")
    header_timeout_s: float = _limit(10.0, 0.1, 600.0, "header-timeout",
                                     "seconds a client may take to send a request's headers (then closed)")
    keep_alive_s: float = _limit(15.0, 0.1, 3600.0, "keep-alive",
                                 "seconds an idle connection stays open (longer than httpx's own 5 s)")
    max_connections: int = _limit(1024, 16, 1_000_000, "max-connections",
                                  "open connections per worker (kept below the process's file limit); beyond it "
                                  "the longest-idle connection is closed")
    max_queue: int = _limit(128, 1, 100_000, "max-queue",
                            "requests in progress per worker (upload to answer); beyond it: 503 + Retry-After")
    max_buffered_mb: float = _limit(256.0, 1.0, 65_536.0, "max-buffered-mb",
                                    "request bodies held in memory at once per worker; beyond it: 503")
    max_decodes: int = _limit(2, 1, 64, "max-decodes",
                              "images decoded and preprocessed at once per worker (bounds their memory)")
    inline_pixels: int = _limit(100_000, 0, 1_000_000, "inline-pixels",
                                "uploads of at most this many pixels (and 16 KB; a 280×280 canvas drawing) are "
                                "decoded on the event loop, cheaper than a hand-off to the decode pool (0: never)")
    max_batch: int = _limit(64, 1, 4096, "max-batch", "images per forward pass (micro-batching)")
    batch_wait_ms: float = _limit(0.0, 0.0, 1000.0, "batch-wait-ms",
                                  "how long an idle model waits for more requests before a forward pass (0: none; "
                                  "under load batches form while the model is busy)")
    threads: int = _limit(1, 1, 256, "threads", "model threads (onnxruntime intra-op, or torch)")
    allow_origins: tuple[str, ...] = field(default=(), metadata={"flag": "allow-origin"})
    allow_hosts: tuple[str, ...] = field(default=(), metadata={"flag": "allow-host"})

    def __post_init__(self) -> None:
        for f in fields(self):
            if "range" in f.metadata:
                object.__setattr__(self, f.name, check_number(f, getattr(self, f.name)))
        object.__setattr__(self, "allow_origins", tuple(check_origin(o) for o in self.allow_origins))
        object.__setattr__(self, "allow_hosts", tuple(check_host(h) for h in self.allow_hosts))

    @property
    def max_buffered_bytes(self) -> int:
        return int(self.max_buffered_mb * MIB)


def numeric_fields() -> list:
    return [f for f in fields(ServeLimits) if "range" in f.metadata]


def check_number(f, value):
    """`value` for field `f` (in the field's unit), or a DigitrecError naming the flag, the range and the value."""
    low, high = f.metadata["range"]
    scale, flag = f.metadata["scale"], f.metadata["flag"]
    shown = value / scale if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    where = f"--{flag} must be a finite number from {low / scale:g} to {high / scale:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DigitrecError(f"{where}, got {shown!r}")
    if f.type in (int, "int"):
        if value != int(value):
            raise DigitrecError(f"--{flag} must be a whole number, got {shown:g}")
        value = int(value)
    if not low <= value <= high:
        raise DigitrecError(f"{where}, got {shown:g}")
    return value


def check_origin(origin: str) -> str:
    """An origin as browsers send it: scheme://host[:port], nothing after it."""
    parts = urlsplit(origin) if isinstance(origin, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query \
            or parts.fragment or "@" in parts.netloc:
        raise DigitrecError(f"--allow-origin must look like https://example.org or http://host:8080, got {origin!r}")
    return f"{parts.scheme}://{parts.netloc.lower()}"


HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def check_host(host: str) -> str:
    """A host name or IP address as a Host header carries it, without port: digits.example, 10.0.0.5, [2001:db8::1]."""
    name = host.strip().lower().rstrip(".") if isinstance(host, str) else ""
    try:
        ipaddress.ip_address(name.strip("[]"))
        return f"[{name.strip('[]')}]" if ":" in name else name
    except ValueError:
        pass
    if not HOST_NAME.fullmatch(name):
        raise DigitrecError(f"--allow-host must be a host name or IP address without port (digits.example, "
                            f"10.0.0.5), got {host!r}")
    return name
