"""Micro-batching: concurrent requests share one forward pass.

Requests put their crops on a queue; one worker takes the first, waits a few milliseconds for more
(up to `max_batch` images), runs a single `predict_proba` in a thread (the event loop keeps serving),
and hands each request its rows. While the model runs, new requests pile up, so batches grow with load.
"""
from __future__ import annotations

import asyncio
from typing import Callable

import numpy as np


class MicroBatcher:
    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray], max_batch: int = 64,
                 max_wait_ms: float = 3.0) -> None:
        self.predict_proba = predict_proba
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.queue: asyncio.Queue | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.batches = 0  # counters, reported by /healthz
        self.images = 0

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
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

    async def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (N×classes) for float images N×28×28 in 0–1."""
        if self.queue is None:
            raise RuntimeError("MicroBatcher.start() was not called")
        x = np.asarray(images, dtype=np.float32)
        if len(x) == 0:  # nothing to batch (e.g. a photo with no digits)
            return await asyncio.to_thread(self.predict_proba, x[:, None])
        future = self.loop.create_future()
        await self.queue.put((x, future))
        return await future

    def predict_from_thread(self, images: np.ndarray) -> np.ndarray:
        """The same, called from a worker thread (e.g. inside a synchronous reader running in to_thread)."""
        x = np.asarray(images, dtype=np.float32)
        x = x[:, 0] if x.ndim == 4 else x
        if len(x) == 0:
            return self.predict_proba(x[:, None])
        return asyncio.run_coroutine_threadsafe(self.predict(x), self.loop).result()

    async def _worker(self) -> None:
        while True:
            items = [await self.queue.get()]
            count = len(items[0][0])
            if count < self.max_batch:
                await asyncio.sleep(self.max_wait)  # let concurrent requests join this batch
            while count < self.max_batch and not self.queue.empty():
                item = self.queue.get_nowait()
                items.append(item)
                count += len(item[0])
            items = [(x, f) for x, f in items if not f.done()]  # a timed-out request no longer waits
            if not items:
                continue
            batch = np.concatenate([x for x, _ in items])[:, None]
            try:
                probs = await asyncio.to_thread(self.predict_proba, batch)
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
