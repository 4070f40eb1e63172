"""Plain ASGI pieces for the hot routes: JSON answers, errors, request bodies read within limits.

The hot routes (/v1/predict, /v1/read, /healthz) speak ASGI directly: a framework's request objects, form
parsing into spooled files and response validation cost more per request than the work on a 28×28 digit.
"""
from __future__ import annotations

import json
from typing import Callable

JSON_HEADERS = [(b"content-type", b"application/json")]
ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode  # made once, not per answer


class ApiError(Exception):
    """A request the service refuses: HTTP status, a one-line message, and extra headers (e.g. Retry-After)."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or []


def header(scope, name: bytes) -> bytes | None:
    """The first value of a request header (names are lower-case in ASGI)."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def media_type(scope) -> str:
    value = header(scope, b"content-type") or b""
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


async def send_json(send, status: int, payload, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = ENCODE(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


async def send_empty(send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0"), *headers]})
    await send({"type": "http.response.body", "body": b""})


async def send_error(send, error: ApiError) -> None:
    await send_json(send, error.status, {"error": error.message}, error.headers)


def declared_length(scope, limit: int) -> int | None:
    """Content-Length, refused at once when malformed (400) or over `limit` (413); None for chunked bodies."""
    value = header(scope, b"content-length")
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ApiError(400, "invalid Content-Length header")
    if int(value) > limit:
        raise ApiError(413, f"request body is larger than the {limit:,}-byte limit")
    return int(value)


async def read_body(receive, limit: int, reserve: Callable[[int], None]) -> bytes:
    """The whole request body, never more than `limit` bytes in memory: a chunked upload that grows past it is
    cut off with 413. `reserve(n)` is told of each chunk before it is kept (the worker's memory budget)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client closed the connection before the body was complete")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body is larger than the {limit:,}-byte limit")
            reserve(len(chunk))
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
