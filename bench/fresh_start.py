"""Time ``distill studio WORKSPACE`` from the command to its first frame with data, in a fresh process.

The command runs in a new pseudo-terminal (the studio refuses to run without one) of the bench's size; the first
frame is the first moment the terminal shows the workspace's record count as the overview prints it ("1,000,000"),
i.e. imports, opening the workspace (starting its service if none runs), the app's start and the overview's queries.
Also reports the CPU seconds the command's process had used by then (a machine shared with other jobs stretches the
wall time, much less the CPU time). The studio is then quit with ctrl+q.

Variants: ``service-cold`` (no service of the workspace runs: the command starts one), ``service-warm`` (one runs,
as when a colleague's studio is open), ``in-process`` (``DISTILL_SERVICE=off``: the process opens the file itself),
``default`` (the code's own default, nothing prepared: use it with ``--root`` on a checkout without the service).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from contextlib import ExitStack
from pathlib import Path

VARIANTS = ("service-cold", "service-warm", "in-process", "default")
_ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*\x1b\\|[@-Z\\-_])")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_service(path: Path) -> None:
    """Stop the workspace's service if one runs (SIGTERM, then wait for it to go)."""
    try:
        from curation.service.paths import ServicePaths
    except ImportError:
        return  # code without the service
    from curation.workspace import Workspace

    if not ServicePaths.for_workspace(path).socket.exists():
        return
    try:
        with Workspace.open(path, service=True) as ws:
            pid = ws._backend.service_pid  # type: ignore[union-attr]
    except Exception:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def run_once(path: Path, marker: str, root: Path, env: dict[str, str], size: tuple[int, int]) -> tuple[float, float]:
    """(seconds to the first frame showing ``marker``, CPU seconds of the command by then)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    full_env = {**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(root), **env}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "distill", "studio", str(path)], stdin=slave, stdout=slave,
                            stderr=slave, env=full_env, cwd=root, start_new_session=True)  # fmt: skip
    os.close(slave)
    seen, wanted = b"", marker.encode()
    try:
        while True:
            if time.perf_counter() - started > 120:
                raise TimeoutError(f"no frame with {marker!r} after 120 s; the terminal showed: {seen[-300:]!r}")
            if select.select([master], [], [], 0.01)[0]:
                try:
                    seen += os.read(master, 1 << 16)
                except OSError:
                    raise RuntimeError(f"the studio exited: {_ANSI.sub(b'', seen)[-500:]!r}") from None
                if wanted in _ANSI.sub(b"", seen[-20000:]):
                    elapsed, cpu = time.perf_counter() - started, cpu_seconds(proc.pid)
                    break
        os.write(master, b"\x11")  # ctrl+q
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 1 << 16)
                except OSError:
                    break
        return elapsed, cpu
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)


def measure(
    path: Path, n_records: int, variant: str, repeats: int, root: Path, size: tuple[int, int]
) -> list[tuple[float, float]]:
    """``repeats`` fresh starts of the studio in one variant."""
    from curation.workspace import Workspace

    marker = f"{n_records:,}"
    env = (
        {"DISTILL_SERVICE": "off"}
        if variant == "in-process"
        else {"DISTILL_SERVICE": "on"}
        if variant.startswith("service")
        else {}
    )
    out = []
    for _ in range(repeats):
        with ExitStack() as stack:
            if variant != "service-warm":
                stop_service(path)
            if variant == "service-warm":
                stack.enter_context(Workspace.open(path, service=True))  # a colleague's client keeps it running
            out.append(run_once(path, marker, root, env, size))
        time.sleep(0.5)
    return out
