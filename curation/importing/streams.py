"""Opening an input file for reading, plain or gzip, so that a broken gzip stream ends early instead of raising.

Python's ``gzip`` raises ``EOFError`` on a truncated file and ``BadGzipFile`` on a bad checksum, after the
lines it had already decoded in that read are lost. ``GzipReader`` decompresses in small steps with ``zlib``,
hands out everything that decodes, and then reports why it stopped (``problem``), so the importer can keep the
readable lines and say where the file breaks.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any, BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
# Compressed bytes fed to zlib per step: what a corrupt stream can lose before the error shows is at most the
# output of this much input, so it stays small.
STEP_BYTES = 64 * 1024


class StreamError(Exception):
    """The file's compressed stream is broken (truncated or corrupt); the message says how."""


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


class GzipReader(io.RawIOBase):
    """A gzip file (one or more members) read as far as it decodes; ``problem`` says why it ended early."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "rb")
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._in = b""  # compressed bytes not yet given to zlib
        self._out = b""  # decompressed bytes not yet handed out (what a failed step salvaged)
        self._done = False
        self.problem: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = len(buffer)
        while not self._out and not self._done:
            self._out = self._step(want)
        out, self._out = self._out[:want], self._out[want:]
        buffer[: len(out)] = out
        return len(out)

    def _step(self, want: int) -> bytes:
        """Decompress up to ``want`` bytes; b"" when it needs more input, or when the stream ended."""
        if self._z.eof:  # a member ended: another may follow (concatenated gzip), or zero padding, or nothing
            rest = (self._z.unused_data + self._f.read(STEP_BYTES)).lstrip(b"\x00")
            while not rest and (more := self._f.read(STEP_BYTES)):
                rest = more.lstrip(b"\x00")
            if not rest:
                self._done = True
                return b""
            if not rest.startswith(GZIP_MAGIC[: len(rest)]):
                return self._stop("is followed by bytes that are not gzip", b"")
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._in = rest
        data = self._z.unconsumed_tail or self._in or self._f.read(STEP_BYTES)
        self._in = b""
        if not data:
            return self._stop("ends early", b"")
        before = self._z.copy()
        try:
            return self._z.decompress(data, want)
        except zlib.error as exc:  # "Error -3 while decompressing data: invalid block type"
            return self._stop(f"is corrupt ({str(exc).rsplit(': ', 1)[-1]})", _salvage(before, data))

    def _stop(self, problem: str, salvaged: bytes) -> bytes:
        self.problem = f"gzip stream {problem}"
        self._done = True
        return salvaged

    def close(self) -> None:
        self._f.close()
        super().close()


def _salvage(z: Any, data: bytes) -> bytes:
    """What ``z`` decodes from ``data`` before the error that one call over all of it raised (and lost).

    zlib raises at the point of damage, or at the checksum after the last byte, dropping that call's output; the
    longest prefix of ``data`` that still decodes (a binary search over copies of ``z``) keeps everything before it,
    so a bad checksum loses nothing.
    """
    good, best, bad = 0, b"", len(data)
    while bad - good > 1:
        mid = (good + bad) // 2
        try:
            out = z.copy().decompress(data[:mid])
        except zlib.error:
            bad = mid
        else:
            good, best = mid, out
    return best


def open_binary(path: Path) -> BinaryIO:
    """Open a possibly gzipped file for binary reading; a broken gzip stream reads as far as it decodes.

    After reading to the end, ``stream_problem(f)`` says whether (and why) the stream ended early.
    """
    if is_gzip(path):
        return io.BufferedReader(GzipReader(path), buffer_size=STEP_BYTES)
    return open(path, "rb")


def stream_problem(f: BinaryIO) -> str | None:
    """Why a stream from ``open_binary`` ended early, or None when it was read whole (or is not gzip)."""
    raw = getattr(f, "raw", None)
    return raw.problem if isinstance(raw, GzipReader) else None
