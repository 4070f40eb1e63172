"""Logs that a hostile client cannot flood: each kind of message at most a few times per window, then one count.

A stream of malformed requests, half-open connections or a file-descriptor shortage makes uvicorn and asyncio
log the same line (often with a traceback) per event; the reporter saw 459 MB in two minutes.
"""
from __future__ import annotations

import logging
import time

WATCHED = ("uvicorn.error", "asyncio", "digitrec.serve")


class RateLimit(logging.Filter):
    """Lets through `burst` records per message template per `window` seconds; says how many it held back."""

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self.seen: dict[tuple[str, str], list] = {}  # (logger, template) → [window start, passed, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        state = self.seen.get(key)
        if state is None or now - state[0] > self.window:
            if len(self.seen) > 1000:  # templates are few; a flood of distinct ones must not grow this forever
                self.seen.clear()
            held = state[2] if state else 0
            self.seen[key] = [now, 1, 0]
            if held:
                record.msg = f"{record.msg} ({held} more like this were not logged in the last {self.window:g} s)"
            return True
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        return False


def install() -> None:
    """Add the rate limit to the loggers a client can make speak (once per process)."""
    for name in WATCHED:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimit) for f in logger.filters):
            logger.addFilter(RateLimit())
