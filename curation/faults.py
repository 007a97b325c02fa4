"""One-line messages for faults of the environment: a full disk, a read-only folder, a damaged workspace, a teacher
that stopped answering. The CLI prints them instead of a traceback (``distill.cli.main``); anything not recognised
here is a bug and is reported as an internal error.

DuckDB reports file system errors as text inside its own exceptions (a full disk during COMMIT is a
``TransactionException`` saying "Could not write file ...: No space left on device"), so they are matched by the
operating system's wording as well as by ``errno`` for Python's own ``OSError``.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

import duckdb

from curation.workspace_file import damaged

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
DISK_FULL_TEXT = ("No space left on device", "File too large", "Disk quota exceeded")
# DuckDB's wording for an unreadable workspace, and what it means for the user.
DAMAGED_TEXT = {
    "Could not read enough bytes": "the file ends early: truncated",
    "Corrupt database file": "a block fails its checksum: overwritten",
    "not a valid DuckDB database file": "its header is not DuckDB's",
}
DENIED_ERRNOS = {errno.EACCES, errno.EPERM}
_QUOTED_PATH = re.compile(r'"([^"]+)"')


def disk_full(target: Path | str, *, importing: bool = False) -> str:
    """The message for a write that found no space (or hit a file size limit)."""
    kept = "nothing from this import was kept" if importing else "the change being written was not kept"
    return f"disk full while writing {target}; {kept} (free some space and run it again)"


def _file_in(message: str, workspace: Path | None) -> str | None:
    """The file a DuckDB message names, as the workspace when it is one of the workspace's own files."""
    m = _QUOTED_PATH.search(message)
    if not m:
        return None
    named = Path(m.group(1))
    if workspace is not None and named.name.startswith(workspace.name):  # ws.duckdb, ws.duckdb.wal, ws.duckdb.tmp
        return str(workspace)
    return str(named)


def _os_error(exc: OSError, workspace: Path | None, importing: bool) -> str:
    where = exc.filename or workspace or "a file"
    if exc.errno in DISK_FULL_ERRNOS:
        return disk_full(where, importing=importing)
    if exc.errno in DENIED_ERRNOS:
        return f"permission denied: {where} (you cannot read or write it; check its owner and mode)"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system; work on a copy in a writable folder"
    if exc.errno == errno.ENOENT:
        return f"no such file or folder: {where}"
    return f"{exc.strerror or type(exc).__name__}: {where}"


def _duckdb_error(exc: duckdb.Error, workspace: Path | None, importing: bool) -> str | None:
    text = str(exc)
    first = text.splitlines()[0] if text else type(exc).__name__
    target = _file_in(text, workspace) or workspace or "the workspace"
    if any(t in text for t in DISK_FULL_TEXT):
        return disk_full(target, importing=importing)
    for wording, meaning in DAMAGED_TEXT.items():
        if wording in text:
            return damaged(Path(str(target)), meaning)
    if "Permission denied" in text:
        return f"permission denied: {target} (you cannot write it or its folder; check the owner and mode)"
    if "Read-only file system" in text:
        return f"{target} is on a read-only file system; work on a copy in a writable folder"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"out of memory: {first}"
    if isinstance(exc, duckdb.IOException):
        return f"cannot read or write {target}: {first}"
    return None


def _teacher_error(exc: BaseException) -> str | None:
    import openai  # only when an openai exception is in hand: importing it costs ~0.3 s of CLI start-up

    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is one too
        url = getattr(getattr(exc, "request", None), "url", None)
        at = f" at {url.scheme}://{url.host}{f':{url.port}' if url.port else ''}" if url is not None else ""
        return f"cannot reach the teacher{at} ({type(exc).__name__}: {exc}); check the network and run it again"
    return None


def describe(exc: BaseException, *, workspace: Path | None = None, importing: bool = False) -> str | None:
    """A one-line message for an environment fault, or None when ``exc`` is not one (a bug, shown as such)."""
    if isinstance(exc, MemoryError):
        return "out of memory; close other programs or work on a smaller file"
    if isinstance(exc, OSError):
        return _os_error(exc, workspace, importing)
    if isinstance(exc, duckdb.Error):
        return _duckdb_error(exc, workspace, importing)
    if type(exc).__module__.split(".")[0] == "openai":
        return _teacher_error(exc)
    return None
