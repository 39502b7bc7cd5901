"""Micro-batching: windows that become ready on different streams within a few milliseconds
are stacked into one model call. The first request opens a batch; it closes when
``max_wait_ms`` has passed or the next request would take it past ``max_batch`` windows
(that request opens the next batch). One stream's windows are never split, so a single
request larger than ``max_batch`` (a burst of audio) is a call of its own. The model runs
on one executor thread (ONNX Runtime releases the GIL), so the event loop keeps reading
sockets meanwhile. ``max_wait_ms=0`` scores each request alone. An incremental model's
requests are its streams' pending frames (``runtime.engine.PendingOutputs``): the model call
runs them with their streams' states, those of equal length in one graph call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kwspot.serving.metrics import ServerMetrics

ScoreFn = Callable[[np.ndarray], np.ndarray]


def score_together(fn: ScoreFn, metrics: ServerMetrics | None,
                   requests: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One model call for several streams' windows: stack them, score, record the batch in
    ``metrics``, and hand each request its own rows. Shared by the built-in batcher and the
    Ray Serve deployment (whose ``@serve.batch`` collects the requests)."""
    start = time.perf_counter()
    if all(isinstance(r, np.ndarray) for r in requests):
        stacked = requests[0] if len(requests) == 1 else np.concatenate(requests)
        outs = np.split(fn(stacked), np.cumsum([len(r) for r in requests])[:-1])
    else:  # an incremental model's pending frames: each carries its stream's state
        outs = fn(list(requests))
    if metrics is not None:
        metrics.model_seconds.observe(time.perf_counter() - start)
        metrics.model_calls.inc()
        metrics.batch_windows.observe(sum(len(r) for r in requests))
        metrics.batch_streams.observe(len(requests))
    return outs


@dataclass
class _Request:
    windows: np.ndarray
    future: asyncio.Future


class MicroBatcher:
    """``await batcher.score(windows)`` -> posteriors, batched across concurrent callers."""

    def __init__(self, score: ScoreFn, max_batch: int = 256, max_wait_ms: float = 2.0,
                 metrics: ServerMetrics | None = None) -> None:
        self.fn = score
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="kwspot-model")
        self.queue: asyncio.Queue[_Request] | None = None
        self.task: asyncio.Task | None = None
        self.carry: _Request | None = None  # a request that did not fit the last batch
        self.batch: list[_Request] = []  # the batch being collected or scored

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        if self.max_wait > 0:
            self.task = asyncio.create_task(self._run(), name="kwspot-batcher")

    async def stop(self) -> None:
        """Stop batching; callers still waiting get an error instead of waiting forever."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        pending = self.batch + ([self.carry] if self.carry else []) + self._drain()
        self.batch, self.carry = [], None
        for request in pending:
            if not request.future.done():
                request.future.set_exception(RuntimeError("the server is shutting down"))
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _drain(self) -> list[_Request]:
        out = []
        while self.queue is not None and not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def score(self, windows: np.ndarray) -> np.ndarray:
        if not len(windows):
            return np.zeros((0, 0), np.float32)
        loop = asyncio.get_running_loop()
        if self.task is None:  # batching off: one call per request
            (out,) = await loop.run_in_executor(self.executor, score_together, self.fn,
                                                self.metrics, [windows])
            return out
        assert self.queue is not None
        future = loop.create_future()
        self.queue.put_nowait(_Request(windows, future))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = self.carry or await self.queue.get()
            self.carry = None
            self.batch = batch = [first]  # kept on self so that stop() can fail it
            size = len(first.windows)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                if self.queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        request = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    request = self.queue.get_nowait()
                if size + len(request.windows) > self.max_batch:
                    self.carry = request  # opens the next batch; this one is full
                    break
                batch.append(request)
                size += len(request.windows)
            await self._dispatch(batch, loop)
            self.batch = []

    async def _dispatch(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        try:
            outs = await loop.run_in_executor(self.executor, score_together, self.fn,
                                              self.metrics, [r.windows for r in batch])
        except Exception as exc:  # the callers get the error; the batcher keeps running
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        for r, out in zip(batch, outs, strict=True):
            if not r.future.done():  # a caller whose socket closed has cancelled its future
                r.future.set_result(out)
