"""Micro-batching: concurrent requests for the in-process student become one ``generate`` call.

Requests queue up; one worker thread owns the model. When it is free it takes the oldest request and the queued
ones that can share a call (same sampling temperature and top_p), up to ``max_batch``. It waits for more only while
traffic is concurrent: the concurrency seen is the last batch's size plus the requests queued when it ended (the
callers of the batch that just finished come back a few milliseconds later; without waiting for them 8 closed-loop
clients split for good into two half batches: 32 requests in 8 calls on SmolLM2); it waits until that many are
queued, at most ``wait_ms`` or a tenth of the last call's duration (whichever is longer: on a loaded machine the
callers take longer to come back, and a slow model makes the wait cheap) after the model became free. A lone
caller never waits. A request whose future was
cancelled meanwhile (its caller left) is skipped. The model is only ever called from this thread.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from train.generate import Generation


@dataclass(eq=False)
class StudentJob:
    """One request for the student: its prompt text and sampling options."""

    prompt: str
    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    top_logprobs: int = 0
    future: Future[Generation] = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> tuple[float, float | None]:
        """Requests with the same key can share one generate call."""
        return (self.temperature, self.top_p if self.temperature > 0 else None)


RunBatch = Callable[[list[StudentJob]], list[Generation]]


class MicroBatcher:
    """``submit`` from any thread; ``run_batch(jobs)`` (one model call) runs on the batcher's own thread.
    ``on_batch(size)`` is told each batch's size (metrics)."""

    def __init__(
        self, run_batch: RunBatch, max_batch: int, wait_ms: float, on_batch: Callable[[int], None] | None = None
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000
        self.on_batch = on_batch
        self._queue: deque[StudentJob] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._concurrency = 1  # the last batch's size + the requests queued when it ended
        self._free_since = time.monotonic()
        self._last_run_s = 0.0
        self._thread = threading.Thread(target=self._loop, name="student-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: StudentJob) -> Future[Generation]:
        """Queue a job; its future gets the ``Generation`` (or the batch's exception)."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the student is shutting down")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        """Finish the queued jobs and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def _next_batch(self) -> list[StudentJob] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            head = self._queue[0]
            target = min(self.max_batch, self._concurrency)
            wait = max(self.wait_s, self._last_run_s / 10) if target > 1 else 0.0
            deadline = max(head.arrived, self._free_since) + wait
            while True:
                batch = [j for j in self._queue if j.key == head.key][: self.max_batch]
                left = deadline - time.monotonic()
                if len(batch) >= target or left <= 0 or self._closing:
                    break
                self._cond.wait(left)
            for j in batch:
                self._queue.remove(j)
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            if self.on_batch is not None:
                self.on_batch(len(batch))
            t0 = time.monotonic()
            try:
                gens = self.run_batch(batch)
            except BaseException as exc:  # every caller of the batch sees the failure (student_error)
                for j in batch:
                    j.future.set_exception(exc)
                continue
            finally:
                with self._cond:
                    self._free_since = time.monotonic()
                    self._last_run_s = self._free_since - t0
                    self._concurrency = len(batch) + len(self._queue)
            for j, g in zip(batch, gens, strict=True):
                j.future.set_result(g)
