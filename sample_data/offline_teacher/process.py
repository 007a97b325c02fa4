"""Run the offline teacher in the background for a workspace: start it (detached) unless one answers, stop it.

The server writes ``{pid, port, base_url, model}`` to a state file once it listens and removes it when it exits; a
server counts as running only if ``/healthz`` on that port answers with that pid (a stale file, or a pid reused by
another program, is never trusted). Only the standard library here: ``distill demo`` imports this module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

STATE_NAME = "offline_teacher.json"
LOG_NAME = "offline_teacher.log"
DEFAULT_PORT = 8741
START_TIMEOUT_S = 60.0  # importing FastAPI and uvicorn takes ~2 s on an idle machine, far longer on a busy one


@dataclass(frozen=True)
class Running:
    """A live offline teacher."""

    pid: int
    port: int
    base_url: str
    model: str


def state_path(artifacts_dir: Path) -> Path:
    """Where a workspace's offline teacher records its pid and port."""
    return artifacts_dir / STATE_NAME


def health(port: int, timeout: float = 1.0) -> dict | None:
    """``/healthz`` of a server on 127.0.0.1:``port``, or None if nothing answers there as the offline teacher."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as r:
            doc = json.loads(r.read())
    except (OSError, ValueError):  # refused, timed out, not HTTP, not JSON
        return None
    return doc if isinstance(doc, dict) and doc.get("status") == "ok" else None


def running(artifacts_dir: Path) -> Running | None:
    """The workspace's offline teacher if its state file names a server that answers with the same pid."""
    try:
        st = json.loads(state_path(artifacts_dir).read_text())
        info = Running(int(st["pid"]), int(st["port"]), str(st["base_url"]), str(st["model"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    h = health(info.port)
    return info if h is not None and h.get("pid") == info.pid else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":  # as the server binds: a port left in TIME_WAIT by a stopped teacher is free
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start(artifacts_dir: Path, *, port: int = DEFAULT_PORT, latency_ms: float | None = None) -> tuple[Running, bool]:
    """The running offline teacher of this workspace, started detached if none answers: (it, whether started).

    ``port`` is tried first; if it is taken, any free port. RuntimeError with the log's last line if the server
    exits or does not answer within ``START_TIMEOUT_S``.
    """
    alive = running(artifacts_dir)
    if alive is not None:
        return alive, False
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    state, log_path = state_path(artifacts_dir), artifacts_dir / LOG_NAME
    state.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "sample_data.offline_teacher", "--state-file", str(state),
           "--port", str(port if _port_free(port) else 0)]  # fmt: skip
    if latency_ms is not None:
        cmd += ["--latency-ms", str(latency_ms)]
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding this sample_data package
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    detach: dict = (
        {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS}  # type: ignore[attr-defined]
        if os.name == "nt"
        else {"start_new_session": True}  # no Ctrl-C from the terminal that ran `distill demo`
    )
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                close_fds=True, **detach)  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        alive = running(artifacts_dir)
        if alive is not None and alive.pid == proc.pid:
            return alive, True
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.terminate()
    raise RuntimeError(f"the offline teacher did not start ({_last_line(log_path)}; log: {log_path})")


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"


def stop(artifacts_dir: Path, timeout: float = 10.0) -> Running | None:
    """Stop the workspace's offline teacher (SIGTERM, then wait for it to go); the one stopped, or None if none ran.
    A stale state file is removed."""
    alive = running(artifacts_dir)
    if alive is None:
        state_path(artifacts_dir).unlink(missing_ok=True)
        return None
    os.kill(alive.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and health(alive.port, timeout=0.5) is not None:
        time.sleep(0.1)
    state_path(artifacts_dir).unlink(missing_ok=True)
    return alive
