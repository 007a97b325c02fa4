"""``python -m curation.service WORKSPACE --ready-fd N --idle S``: serve one workspace (started by ``launch.start``).

The first words on the ready pipe (pickled) tell the starter what happened: ``{"ready": pid}``, ``{"running":
True}`` (another service of this workspace answers), or ``{"error": exc}`` (the workspace could not be opened, or
no socket could be made: ``NoSocket``).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pickle
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any


def _tell(fd: int, msg: dict[str, Any]) -> None:
    if fd < 0:
        return
    try:
        os.write(fd, pickle.dumps(msg, protocol=5))
    except OSError:
        pass  # the starter died: serve anyway, the next client connects
    finally:
        os.close(fd)


def _answers(path: Path) -> bool:
    from curation.service.launch import dial

    try:
        dial(path).close()
    except OSError:
        return False
    return True


def _take_lock(lock: Path, sock: Path) -> int | None:
    """The flock'd lock file's descriptor once this process is the workspace's one service; None if another one
    answers.

    A service that stops removes the lock file while it still holds the flock (no litter of one file per workspace
    ever served): a process that opened the file before that got the flock of a removed file, so the flock counts only
    while the path still names the file we hold.
    """
    from curation.service.launch import START_TIMEOUT_S

    # A service that is stopping closes DuckDB within seconds; one that is starting answers once migrated.
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
        else:
            held, now = os.fstat(fd), _stat(lock)
            if now is not None and (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                return fd
            os.close(fd)  # the file was removed (and maybe made again) meanwhile: try the one there now
            continue
        if _answers(sock):
            return None
        if time.monotonic() > deadline:
            raise TimeoutError(f"another service of this workspace neither answers nor exits (lock {lock})")
        time.sleep(0.05)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _tidy(lock: Path, log: Path) -> None:
    """Remove the lock file (its flock still held: see ``_take_lock``) and the log when nothing was written to it."""
    try:
        if os.stat(log).st_size == 0:
            log.unlink()
    except OSError:
        pass
    try:
        lock.unlink()
    except OSError:
        pass


def _listen(path: Path) -> socket.socket:
    from curation.service.paths import NoSocket

    try:
        path.unlink(missing_ok=True)  # a socket file left by a killed service (we hold the lock: it is dead)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # 0600 from the start, no window where others could connect
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        listener.listen(128)
    except OSError as exc:
        raise NoSocket(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return listener


def _detach() -> None:
    """Fork, and let the parent exit at once: the service is then no child of the client that started it (which
    reaps that parent right away), so when it stops no zombie waits for the client to exit."""
    if os.fork():
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    _detach()  # first: before DuckDB starts threads
    ap = argparse.ArgumentParser(prog="python -m curation.service", description=__doc__)
    ap.add_argument("workspace", type=Path)
    ap.add_argument("--ready-fd", type=int, default=-1)
    ap.add_argument("--idle", type=float, default=None)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a service outlives the terminal of the client that started it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    from curation.service import idle_seconds, protocol
    from curation.service.paths import ServicePaths
    from curation.service.server import Service
    from curation.workspace import Workspace

    try:
        paths = ServicePaths.for_workspace(args.workspace)
        lock_fd = _take_lock(paths.lock, paths.socket)
        if lock_fd is None:
            _tell(args.ready_fd, {"running": True})
            return 0
        ws = Workspace.open(args.workspace, service=False)
    except BaseException as exc:
        _tell(args.ready_fd, protocol.error_reply(exc))
        return 1
    try:
        listener = _listen(paths.socket)
    except BaseException as exc:
        ws.close()
        _tell(args.ready_fd, protocol.error_reply(exc))
        return 1
    _tell(args.ready_fd, {"ready": os.getpid()})
    idle = args.idle if args.idle is not None else idle_seconds()
    Service(ws, listener, str(paths.socket), idle).serve()
    _tidy(paths.lock, paths.log)
    os.close(lock_fd)  # the flock goes with it: the next service may take it
    return 0


if __name__ == "__main__":
    sys.exit(main())
