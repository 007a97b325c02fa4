"""Several processes on one workspace through its service: studios, reviewers and CLI commands at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.workspace import Workspace
from tests.service.conftest import run_py, service_env

pytestmark = pytest.mark.timeout(300)


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{out}\n{err}"
    return out


def test_two_studios_and_the_cli_at_once_lose_nothing(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    before = ws.scalar("SELECT count(*) FROM review_events")
    # Two reviewers at their studios (the real app, headless, in their own processes) and two scripted reviewers,
    # while the CLI reads the workspace and previews a semantic dedupe (embeddings written, Arrow both ways).
    studios = [run_py("tests.service.studio_client", str(path), "8", env=service_env(DISTILL_REVIEWER=f"s{i}"))
               for i in range(2)]  # fmt: skip
    scripts = [run_py("tests.service.clients", "review", str(path), "15", str(20 * i),
                      env=service_env(DISTILL_REVIEWER=f"c{i}")) for i in range(2)]  # fmt: skip
    cli = [
        run_py("distill", "stats", "-w", str(path), "--json"),
        run_py("distill", "dedupe", "--dry-run", "-w", str(path), "--json"),
        run_py("distill", "dedupe", "--exact", "--dry-run", "-w", str(path), "--json"),
    ]
    for p in studios:
        assert _finish(p).splitlines()[-1] == "done 8"
    for p in scripts:
        assert _finish(p).splitlines()[-1] == "done 15"
    stats, semantic, exact = (json.loads(_finish(p)) for p in cli)
    assert stats["records"] == 60
    assert semantic["n_records"] == 60 and exact["n_records"] == 60
    # Every decision of every process is there, each under its reviewer.
    by_reviewer = dict(ws.query("SELECT reviewer, count(*) FROM review_events GROUP BY 1"))
    assert ws.scalar("SELECT count(*) FROM review_events") - before == 2 * 8 + 2 * 15
    assert by_reviewer == {"s0": 8, "s1": 8, "c0": 15, "c1": 15}
    assert ws.scalar("SELECT count(*) FROM reviews WHERE status = 'accepted'") >= 30


def test_reads_do_not_wait_for_a_writer(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    holder = run_py("tests.service.clients", "hold", str(path))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "in transaction"
        # The holder sits inside a write transaction: other processes read (and see the last committed state).
        out = subprocess.run([sys.executable, "-m", "distill", "stats", "-w", str(path), "--json"], env=service_env(),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert ws.get_setting("committed") == 1 and ws.get_setting("uncommitted") is None
    finally:
        holder.kill()
        holder.wait()
