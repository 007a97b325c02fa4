"""Reach a workspace's service, starting it (detached) when nothing answers on its socket.

Two clients may start one at the same moment: each service first takes an flock on the workspace's lock file, and a
service that finds another one answering says so and exits; its starter then connects to the one that answers. A
service killed with -9 leaves its socket file behind: connecting is refused, so a new service starts (the kernel
dropped the dead one's flock, DuckDB replays its WAL) and replaces the stale file.
"""

from __future__ import annotations

import os
import pickle
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from curation.errors import WorkspaceServiceLost
from curation.service import idle_seconds
from curation.service.paths import NoSocket, ServicePaths

START_TIMEOUT_S = 300.0  # the service migrates the schema before it answers: minutes on a big, old workspace
ATTEMPTS = 6  # connect, start, connect...: a service may stop (idle) between our start and our connect


def dial(path: Path) -> socket.socket:
    """A connected socket to the service listening at ``path`` (FileNotFoundError / ConnectionRefusedError if none)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except BaseException:
        sock.close()
        raise
    return sock


def connect(workspace: Path, paths: ServicePaths) -> socket.socket:
    """A socket to the service of ``workspace``, started first if none answers."""
    for attempt in range(ATTEMPTS):
        try:
            return dial(paths.socket)
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        if attempt:
            time.sleep(0.05 * attempt)
        start(workspace, paths)
    raise WorkspaceServiceLost(f"the workspace service of {workspace} does not answer (log: {paths.log})")


def _environment() -> dict[str, str]:
    """The client's environment, with this code first on the path (the service must run the same code)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the curation package
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def start(workspace: Path, paths: ServicePaths) -> None:
    """Start a service for ``workspace`` and wait until it answers (or says another one does).

    An error the service met while opening the file (not a workspace, locked by an in-process user, damaged,
    newer schema) is raised here with its type; ``NoSocket`` when it could not listen.
    """
    read_end, write_end = os.pipe()
    cmd = [sys.executable, "-m", "curation.service", str(workspace), "--ready-fd", str(write_end),
           "--idle", str(idle_seconds())]  # fmt: skip
    try:
        log_fd = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # cwd "/": the service holds no folder open, and a relative path in SQL fails loudly instead of meaning
            # the first client's folder. A new session: Ctrl-C in the client's terminal does not reach it.
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_fd,
                                    pass_fds=(write_end,), start_new_session=True, cwd="/", env=_environment())  # fmt: skip
        finally:
            os.close(log_fd)
    except OSError as exc:  # no log file, or this user may not run the interpreter by its path: no service here
        os.close(read_end)
        raise NoSocket(f"cannot start the workspace service: {exc}") from None
    finally:
        os.close(write_end)
    try:
        reply = _ready(read_end, proc, paths)
    finally:
        os.close(read_end)
        proc.wait()  # the process we started forked the service and exited (``__main__._detach``)
    if "error" in reply:
        raise reply["error"]


def _ready(fd: int, proc: subprocess.Popen[bytes], paths: ServicePaths) -> dict[str, Any]:
    """The service's first words on the pipe: ready, another one is running, or the error it met."""
    data = bytearray()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break  # written and closed (or died)
            data += chunk
    else:
        raise WorkspaceServiceLost(
            f"the workspace service did not start within {START_TIMEOUT_S:.0f} s (log: {paths.log})"
        )
    try:
        reply: dict[str, Any] = pickle.loads(bytes(data))
        return reply
    except Exception:
        raise WorkspaceServiceLost(
            f"the workspace service exited while starting ({last_line(paths.log)}; log: {paths.log})"
        ) from None


def last_line(path: Path) -> str:
    """The last non-blank line of a log, for an error message."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"


__all__ = ["NoSocket", "connect", "dial", "start"]
