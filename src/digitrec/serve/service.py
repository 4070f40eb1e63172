"""The service's work per request: admission (queue and memory limits), body, decoding, forward pass, answer.

Three places run code, each bounded: the event loop (HTTP, JSON, batching, and the decoding of small uploads:
at most 16 KB and `inline_pixels` pixels), the decode pool (`max_decodes` threads: image header check, decoding,
preprocessing of everything else) and the model's own thread (batcher.py). A request is
admitted only while fewer than `max_queue` are in progress and the bodies held stay under `max_buffered_mb`;
otherwise it gets 503 with Retry-After at once.
"""
from __future__ import annotations

import asyncio
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np

from .. import __version__
from ..reader import read_crops
from .allocator import keep_freed_memory
from .asgi import ApiError, declared_length, media_type, read_body
from .batcher import MicroBatcher
from .decode import digits_of_number, one_digit, png_base64, quiet_bomb_warnings, small_header
from .inputs import array_image, json_body, upload_image
from .limits import ServeLimits

BUSY = [(b"retry-after", b"1")]


def open_predictor(model_path: str | os.PathLike, threads: int):
    """The model on `threads` CPU threads: ONNX Runtime for .onnx (torch is not even imported), torch for .pt."""
    if str(model_path).endswith(".onnx"):
        from ..onnx_predictor import OnnxPredictor

        return OnnxPredictor(model_path, threads=threads)
    import torch

    from ..predict import load_predictor

    torch.set_num_threads(threads)
    return load_predictor(model_path)


class ClientGone(Exception):
    """The client closed the connection while its request was being processed: nobody to answer."""


class Request:
    """One admitted request: its phase (for the timeout's answer), the body bytes it holds in the memory budget,
    and — while its image waits for the decode pool — a watch on the connection, so that work for a client that
    left is dropped, not done."""

    def __init__(self, service: "Service", scope, receive) -> None:
        self.service, self.scope, self.receive = service, scope, receive
        self.phase, self.held, self.gone, self.expired = "reading", 0, False, False
        self.task: asyncio.Task | None = None
        self.watch: asyncio.Task | None = None

    def reserve(self, n: int) -> None:
        service = self.service
        if service.buffered + n > service.limits.max_buffered_bytes:
            raise ApiError(503, "the server holds too many uploads right now; retry shortly", BUSY)
        service.buffered += n
        self.held += n

    async def body(self, limit: int) -> bytes:
        length = declared_length(self.scope, limit)
        if length:  # reserve it all up front: a refused request costs no upload
            self.reserve(length)
        data = await read_body(self.receive, limit, self.reserve if length is None else lambda n: None)
        self.phase = "processing"
        return data

    def watch_client(self) -> None:
        """From here on, the next ASGI message can only be a disconnect: then stop the work (a queued decode is
        cancelled before it starts)."""
        self.watch = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        if (await self.receive())["type"] == "http.disconnect":
            self.gone = True
            self.task.cancel()

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()

    def release(self) -> None:
        self.service.buffered -= self.held
        self.held = 0
        if self.watch is not None:
            self.watch.cancel()


class Service:
    def __init__(self, model_path: str | os.PathLike, limits: ServeLimits) -> None:
        self.model_name, self.limits = Path(model_path).name, limits
        self.predictor = open_predictor(model_path, limits.threads)  # a bad model file fails here, before listening
        self.batcher = MicroBatcher(self.predictor.predict_proba, limits.max_batch, limits.batch_wait_ms)
        self.decoder: ThreadPoolExecutor | None = None
        self.in_progress = self.buffered = self.refused = self.abandoned = 0

    async def start(self) -> None:
        keep_freed_memory()  # in each worker process
        quiet_bomb_warnings()
        self.decoder = ThreadPoolExecutor(self.limits.max_decodes, thread_name_prefix="digitrec-decode")
        await self.batcher.start()

    async def stop(self) -> None:
        await self.batcher.stop()
        if self.decoder is not None:
            self.decoder.shutdown(wait=False, cancel_futures=True)

    async def handle(self, handler, scope, receive):
        """Run `handler(request)` admitted and under the request timeout: uploading → 408, processing → 503.
        It runs in the connection's own task (no task of its own to schedule); the timeout and a client that
        leaves cancel that task, and the cancellation is turned into the answer here."""
        if self.in_progress >= self.limits.max_queue:
            self.refused += 1
            raise ApiError(503, f"the server is at its limit of {self.limits.max_queue} requests in progress; "
                                "retry shortly", BUSY)
        request = Request(self, scope, receive)
        request.task = asyncio.current_task()
        timer = asyncio.get_running_loop().call_later(self.limits.timeout_s, request.expire)
        self.in_progress += 1
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not (request.expired or request.gone):
                raise  # the server is shutting down
            if hasattr(request.task, "uncancel"):  # Python ≥ 3.11 counts cancellations: this one is handled
                request.task.uncancel()
            if request.gone:
                self.abandoned += 1
                raise ClientGone() from None
            t = self.limits.timeout_s
            if request.phase == "reading":
                raise ApiError(408, f"the request body did not arrive within {t:g} s") from None
            raise ApiError(503, f"the request was not processed within {t:g} s (server busy)", BUSY) from None
        finally:
            timer.cancel()
            self.in_progress -= 1
            request.release()

    async def decode(self, request: Request, fn, data: bytes):
        """`fn(upload, max_pixels)` on the event loop for a small upload (its header read here: at most
        --inline-pixels pixels), else in the decode pool, with the client watched meanwhile."""
        max_pixels = self.limits.max_pixels
        header = small_header(data, max_pixels)
        if header is not None and header.width * header.height <= self.limits.inline_pixels:
            return fn(header, max_pixels)
        request.watch_client()
        upload = data if header is None else header
        return await asyncio.get_running_loop().run_in_executor(self.decoder, fn, upload, max_pixels)

    async def predict(self, request: Request) -> dict:
        kind = media_type(request.scope)
        if kind == "multipart/form-data":
            upload = upload_image(await request.body(self.limits.max_upload_bytes), content_type(request.scope))
            image, crop = await self.decode(request, one_digit, upload)
        elif kind == "application/json":
            image = array_image(json_body(await request.body(self.limits.max_json_bytes)))
            crop = png_base64(image)
        else:
            raise ApiError(415, "send the image as multipart/form-data (field 'file') or as application/json "
                                '{"image": 28×28 array}' + (f", not {kind}" if kind else ""))
        if not image.any():  # no ink at all: there is no digit to read
            return {"digit": None, "confidence": None, "probabilities": None, "crop": crop}
        probs = (await self.batcher.predict(image[None]))[0]
        digit = int(np.argmax(probs))
        return {"digit": digit, "confidence": round(float(probs[digit]), 6),
                "probabilities": [round(float(p), 6) for p in probs], "crop": crop}

    async def read(self, request: Request) -> dict:
        min_confidence = confidence_floor(request.scope)
        if media_type(request.scope) != "multipart/form-data":
            raise ApiError(415, "expected a multipart/form-data upload with the image in field 'file'")
        upload = upload_image(await request.body(self.limits.max_upload_bytes), content_type(request.scope))
        crops = await self.decode(request, digits_of_number, upload)
        probs = await self.batcher.predict(np.stack([c.image for c in crops])) if crops else None
        result = read_crops(Answered(probs), crops, min_confidence)
        return {"text": result["text"], "digits": result["digits"], "crops": [png_base64(c.image) for c in crops]}

    def health(self) -> dict:
        return {"status": "ok", "version": __version__, "model": self.model_name, "pid": os.getpid(),
                "batches": self.batcher.batches, "images": self.batcher.images, "in_progress": self.in_progress,
                "refused_busy": self.refused, "abandoned_by_client": self.abandoned, "limits": asdict(self.limits)}


def content_type(scope) -> bytes:
    return next((v for k, v in scope["headers"] if k == b"content-type"), b"")


def confidence_floor(scope) -> float:
    """The `min_confidence` query parameter: a number from 0 to 1 (default 0)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("min_confidence")
    if not values:
        return 0.0
    try:
        value = float(values[-1])
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ApiError(422, f"min_confidence must be a number from 0 to 1, got {values[-1][:40]!r}")
    return value


class Answered:
    """A predictor whose answer is already known: reader.read_crops formats the batcher's probabilities."""

    def __init__(self, probs: np.ndarray | None) -> None:
        self.probs = probs

    def predict_proba(self, images) -> np.ndarray:
        return self.probs
