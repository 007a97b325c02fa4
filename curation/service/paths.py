"""Where a workspace's service listens: a Unix socket named after the workspace's absolute path.

The folder is ``$XDG_RUNTIME_DIR/distill`` (per user, cleared at logout) or ``/tmp/distill-<uid>``, made 0700 and
refused unless this user owns it and nobody else can enter it; the socket itself is 0600. The name is a hash of the
resolved path, so every process naming the same file (by any relative path or symlink) meets the same service, and
the path stays far under the 108-byte limit of a Unix socket address (~45 bytes under /tmp).
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_SOCKET_PATH = 107  # sun_path is 108 bytes with the terminating NUL


class NoSocket(OSError):
    """A socket cannot be made for this workspace here (no Unix sockets, no private folder): work in-process."""


@dataclass(frozen=True)
class ServicePaths:
    """The files of one workspace's service."""

    socket: Path  # where it listens
    lock: Path  # flock'd by the one service of the workspace while it runs
    log: Path  # its stderr

    @classmethod
    def for_workspace(cls, workspace: Path) -> ServicePaths:
        """The paths for ``workspace`` (resolved here), making the private folder if needed; ``NoSocket`` if not."""
        if not hasattr(os, "getuid") or not hasattr(__import__("socket"), "AF_UNIX"):
            raise NoSocket("this system has no Unix sockets")
        folder = runtime_dir()
        name = hashlib.sha256(str(workspace.resolve()).encode()).hexdigest()[:24]
        sock = folder / f"{name}.sock"
        if len(os.fsencode(sock)) > MAX_SOCKET_PATH:
            raise NoSocket(f"socket path {sock} is longer than {MAX_SOCKET_PATH} bytes")
        return cls(sock, folder / f"{name}.lock", folder / f"{name}.log")


def runtime_dir() -> Path:
    """This user's private folder for service sockets (made 0700), or ``NoSocket``."""
    uid = os.getuid()
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    candidates = [Path(xdg) / "distill"] if xdg and os.path.isabs(xdg) else []
    candidates.append(Path(tempfile.gettempdir()) / f"distill-{uid}")
    problems = []
    for folder in candidates:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError as exc:
            problems.append(f"{folder}: {exc.strerror}")
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
            problems.append(f"{folder} is not a private folder of this user")  # someone else's, or a symlink
            continue
        if len(os.fsencode(folder)) + 30 <= MAX_SOCKET_PATH:
            return folder
        problems.append(f"{folder} is too long for a socket path")
    raise NoSocket("; ".join(problems))
