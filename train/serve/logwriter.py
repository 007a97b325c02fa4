"""The gateway's request log: JSON lines appended durably to rotated files, one fsync per group of ready lines.

``append(record)`` encodes the line in the caller's thread and returns a future that completes once the line is on
disk (written and fsynced): the gateway answers its caller only then, so a kill -9 loses no acknowledged line.
One writer thread takes every line ready at that moment, writes them with one ``os.write`` and one ``fsync``
(group commit: under load a sync covers many requests), then completes their futures. Files are
``serve-NNNNNN.jsonl`` in one folder; a file past ``max_bytes`` is closed and the next number opened. A restart
continues the newest file (after cutting a torn last line, which was never acknowledged).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^serve-(\d{6})\.jsonl$")


def log_files(folder: Path) -> list[Path]:
    """The log files of a folder, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


@dataclass
class LogStats:
    """What the writer did: lines written, fsyncs made, seconds spent in fsync."""

    lines: int = 0
    syncs: int = 0
    sync_s: float = 0.0


class ServeLog:
    """Append-only, durable, rotated JSONL. ``on_sync(lines, seconds)`` is told about each group commit."""

    def __init__(self, folder: Path, max_bytes: int, on_sync: Callable[[int, float], None] | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.on_sync = on_sync
        self.stats = LogStats()
        folder.mkdir(parents=True, exist_ok=True)
        files = log_files(folder)
        self._seq = int(_NAME.match(files[-1].name).group(1)) if files else 1  # type: ignore[union-attr]
        self._fd, self._size = self._open(self._seq)
        if self._size >= max_bytes:
            self._rotate()
        self._pending: list[tuple[bytes, Future[None]]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="serve-log", daemon=True)
        self._thread.start()

    @property
    def current(self) -> Path:
        """The file lines go to now."""
        return self.folder / f"serve-{self._seq:06d}.jsonl"

    def append(self, record: dict[str, Any]) -> Future[None]:
        """Queue one record; the future completes when its line is on disk (or fails with the write's error)."""
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        fut: Future[None] = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("the request log is closed")
            self._pending.append((line, fut))
            self._cond.notify()
        return fut

    def close(self) -> None:
        """Write what is queued, then stop the writer and close the file."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        os.close(self._fd)

    # -- the writer thread -------------------------------------------------------------------------------------
    def _open(self, seq: int) -> tuple[int, int]:
        path = self.folder / f"serve-{seq:06d}.jsonl"
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        size = os.fstat(fd).st_size
        if size and _last_byte(fd, size) != b"\n":
            size = _cut_torn_tail(fd, size)
        if created:
            _fsync_dir(self.folder)  # the new name itself must survive a crash
        return fd, size

    def _rotate(self) -> None:
        os.close(self._fd)
        self._seq += 1
        self._fd, self._size = self._open(self._seq)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                group, self._pending = self._pending, []
                stop = self._closing and not group
            if stop:
                return
            try:
                self._write(group)
            except OSError as exc:  # disk full, I/O error: those callers get an error instead of an answer
                for _, fut in group:
                    fut.set_exception(exc)
                continue
            for _, fut in group:
                fut.set_result(None)

    def _write(self, group: list[tuple[bytes, Future[None]]]) -> None:
        chunk: list[bytes] = []
        filled = self._size  # this file's size once the chunk is written
        for line, _ in group:
            if filled and filled + len(line) > self.max_bytes:  # a line longer than a file still gets one
                self._flush(chunk)
                self._rotate()
                chunk, filled = [], 0
            chunk.append(line)
            filled += len(line)
        self._flush(chunk)

    def _flush(self, chunk: list[bytes]) -> None:
        if not chunk:
            return
        data = memoryview(b"".join(chunk))
        while data:
            data = data[os.write(self._fd, data) :]
        t0 = time.perf_counter()
        os.fsync(self._fd)
        dt = time.perf_counter() - t0
        self._size += sum(map(len, chunk))
        self.stats.lines += len(chunk)
        self.stats.syncs += 1
        self.stats.sync_s += dt
        if self.on_sync is not None:
            self.on_sync(len(chunk), dt)


def _last_byte(fd: int, size: int) -> bytes:
    return os.pread(fd, 1, size - 1)


def _cut_torn_tail(fd: int, size: int) -> int:
    """Truncate after the last newline (a line cut by a crash mid-write was never acknowledged); the new size."""
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        block = os.pread(fd, pos - start, start)
        nl = block.rfind(b"\n")
        if nl >= 0:
            pos = start + nl + 1
            break
        pos = start
    os.ftruncate(fd, pos)
    os.fsync(fd)
    return pos


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open a folder for fsync; NTFS journals the name
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
