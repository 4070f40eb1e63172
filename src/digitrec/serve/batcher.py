"""Micro-batching: concurrent requests share one forward pass, on the model's own thread.

Requests (coroutines on the event loop) put their images on a queue; one worker task takes what is queued
(up to `max_batch` images), runs a single `predict_proba` on a dedicated one-thread executor and hands each
request its rows. While the model runs, new requests queue up, so batches grow with load and cost no waiting
when the service is idle (`max_wait_ms` > 0 makes an idle model wait that long for company).

The model's executor is used by nothing else: decoding runs elsewhere and never waits for a forward pass
from inside a pool thread, so no pool can fill with work that waits on itself.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np


class MicroBatcher:
    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray], max_batch: int = 64,
                 max_wait_ms: float = 0.0) -> None:
        self.predict_proba = predict_proba
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.executor: ThreadPoolExecutor | None = None
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0  # counters, reported by /healthz
        self.images = 0

    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="digitrec-model")
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._worker())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N×classes) for float images N×28×28 in 0–1, N ≥ 1."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 3 or len(x) == 0:
            raise ValueError(f"expected N×28×28 images with N ≥ 1, got shape {x.shape}")
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((x, future))
        return await future

    def _take(self, first) -> list:
        """The first item and whatever else is queued, up to max_batch images; requests that gave up are dropped."""
        items, count = [first], len(first[0])
        while count < self.max_batch and not self.queue.empty():
            item = self.queue.get_nowait()
            items.append(item)
            count += len(item[0])
        return [(x, f) for x, f in items if not f.done()]

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            if self.max_wait and len(first[0]) < self.max_batch and self.queue.empty():
                await asyncio.sleep(self.max_wait)
            items = self._take(first)
            if not items:
                continue
            batch = items[0][0] if len(items) == 1 else np.concatenate([x for x, _ in items])
            try:
                probs = await loop.run_in_executor(self.executor, self.predict_proba, batch[:, None])
            except Exception as e:  # the model failed: every waiting request gets the error, the worker lives on
                for _, f in items:
                    if not f.done():
                        f.set_exception(e)
                continue
            self.batches += 1
            self.images += len(batch)
            start = 0
            for x, f in items:
                if not f.done():
                    f.set_result(np.asarray(probs[start:start + len(x)]))
                start += len(x)
