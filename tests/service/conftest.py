"""Fixtures for the workspace service: workspaces opened through it, clients in subprocesses, no process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from curation.service import IDLE_ENV, SERVICE_ENV
from curation.service.paths import ServicePaths
from curation.workspace import Workspace
from tests.studio.conftest import build_workspace, notes  # noqa: F401  (notes: the studio tests' fixture, used here too)

ROOT = Path(__file__).resolve().parents[2]
IDLE_S = "3"  # services of these tests stop 3 s after their last client


def service_env(**extra: str) -> dict[str, str]:
    """The environment for a client subprocess: through the service, this code first on the path."""
    return {**os.environ, SERVICE_ENV: "on", IDLE_ENV: IDLE_S, "PYTHONPATH": str(ROOT), **extra}


def run_py(module: str, *args: str, env: dict[str, str] | None = None, stdin: bool = False) -> subprocess.Popen[str]:
    """``python -m module args...`` as a client process (stdout piped, text; stdin piped with ``stdin``)."""
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env or service_env(), cwd=ROOT,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def service_pid(path: Path) -> int | None:
    """The pid of the service answering for ``path``, or None (asks it, as any client would)."""
    if not ServicePaths.for_workspace(path).socket.exists():
        return None
    with Workspace.open(path, service=True) as ws:
        return ws._backend.service_pid  # type: ignore[union-attr]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent, the test process) counts as gone once its last thread has
    # exited: a killed process's main thread shows Z while its other threads still hold its sockets open.
    try:
        zombie = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
        return not zombie or len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return not Path(f"/proc/{pid}").exists()


def wait_gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # reap it if this process started it
        except ChildProcessError:
            pass
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Workspaces open through the service in this test; the services it started are stopped at the end."""
    monkeypatch.setenv(SERVICE_ENV, "on")
    monkeypatch.setenv(IDLE_ENV, IDLE_S)
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_gone(pid)


@pytest.fixture
def shared(tmp_path: Path, served: list[int]) -> Iterator[tuple[Path, Workspace]]:
    """A 60-record workspace and a client of its service (whose pid ``served`` will stop)."""
    path = build_workspace(tmp_path / "w.duckdb", n=60)
    ws = Workspace.open(path)
    assert ws.served
    served.append(ws._backend.service_pid)  # type: ignore[union-attr]
    yield path, ws
    ws.close()
