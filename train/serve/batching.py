"""Micro-batching: concurrent requests for the in-process student become one ``generate`` call.

Requests queue up; one worker thread takes the oldest, then waits until ``max_batch`` requests that can share a
call (same sampling temperature and top_p) are queued or the oldest has waited ``wait_ms``, and runs them as one
batch. It waits only while traffic is concurrent (the last batch had more than one request): a lone caller is not
held back (on the tiny test model the 10 ms wait was 6% of a request's latency), and under load the first batch
runs alone while the next ones form. While a batch generates, new requests queue, so under load the next batch
forms without waiting at all. A request whose future was cancelled meanwhile (its caller left) is skipped. The
model is only ever called from this thread.
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
        self._last_size = 1
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
            deadline = head.arrived + (self.wait_s if self._last_size > 1 else 0.0)
            while True:
                batch = [j for j in self._queue if j.key == head.key][: self.max_batch]
                left = deadline - time.monotonic()
                if len(batch) >= self.max_batch or left <= 0 or self._closing:
                    break
                self._cond.wait(left)
            for j in batch:
                self._queue.remove(j)
            self._last_size = len(batch)
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                gens = self.run_batch(batch)
            except BaseException as exc:  # every caller of the batch sees the failure (student_error)
                for j in batch:
                    j.future.set_exception(exc)
                continue
            for j, g in zip(batch, gens, strict=True):
                j.future.set_result(g)
