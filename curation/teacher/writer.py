"""The group-commit writer of the request path: one thread commits finished requests in groups.

A DuckDB write transaction costs ~10 ms of CPU whatever its size, so one per answer would cap throughput on a busy
machine: after the first item the writer lingers ``LINGER_S`` for more, then commits them all in one transaction.
HTTP never holds the write lock (the senders only queue). A kill loses at most the items of the last linger.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
LINGER_S = 0.1  # how long the writer waits to group items into one transaction
GROUP_MAX = 512
_ITEM, _FLUSH, _STOP = 0, 1, 2


class GroupWriter(Generic[T]):
    """``commit(items)`` runs on the writer's thread for each group; ``flush`` waits until all queued so far is
    committed. A commit that raises is kept in ``error`` and later items are dropped (the caller stops sending)."""

    def __init__(self, commit: Callable[[list[T]], None], name: str = "teacher-writer") -> None:
        self._commit = commit
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def put(self, item: T) -> None:
        """Queue a finished item (thread-safe)."""
        self._queue.put((_ITEM, item))

    def flush(self) -> None:
        """Commit what is queued now, without waiting out the linger; return once it is committed."""
        done = threading.Event()
        self._queue.put((_FLUSH, done))
        done.wait()

    def close(self) -> None:
        """Commit what is queued and stop the thread."""
        self._queue.put((_STOP, None))
        self._thread.join()

    def _loop(self) -> None:
        stopped = False
        while not stopped:
            items: list[T] = []
            flushes: list[threading.Event] = []
            entry = self._queue.get()
            deadline = time.monotonic() + LINGER_S
            while True:
                kind, value = entry
                if kind == _ITEM:
                    items.append(value)  # type: ignore[arg-type]
                elif kind == _FLUSH:
                    flushes.append(value)  # type: ignore[arg-type]
                else:
                    stopped = True
                if not items or flushes or stopped or len(items) >= GROUP_MAX:
                    break
                try:
                    entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            if items and self.error is None:
                try:
                    self._commit(items)
                except BaseException as exc:  # surfaced by the sender; it stops sending more
                    self.error = exc
            for ev in flushes:
                ev.set()
