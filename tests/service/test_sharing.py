"""Several processes on one workspace through its service: studios, reviewers and CLI commands at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from curation.workspace import Workspace
from tests.service.conftest import run_py, service_env

pytestmark = pytest.mark.timeout(300)


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{out}\n{err}"
    return out


def _read_until(proc: subprocess.Popen[str], line: str) -> None:
    """Read the process's output up to ``line`` (it must not end first)."""
    assert proc.stdout is not None
    seen = []
    while (got := proc.stdout.readline()) != "":
        if got.strip() == line:
            return
        seen.append(got)
    raise AssertionError(f"{proc.args} ended before {line!r}: exit {proc.wait()}\n{''.join(seen)}{proc.stderr.read()}")  # type: ignore[union-attr]


def test_two_studios_and_the_cli_at_once_lose_nothing(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    before = ws.scalar("SELECT count(*) FROM review_events")
    # Two reviewers at their studios (the real app, headless, each in its own process), deciding until told to stop.
    studios = [run_py("tests.service.studio_client", str(path), "20", env=service_env(DISTILL_REVIEWER=f"s{i}"),
                      stdin=True) for i in range(2)]  # fmt: skip
    for p in studios:
        _read_until(p, "decided 1")
    # While both decide: the CLI reads the workspace and previews a semantic dedupe (its embeddings written to the
    # cache, Arrow both ways), and an exact one.
    cli = [
        run_py("distill", "stats", "-w", str(path), "--json"),
        run_py("distill", "dedupe", "--dry-run", "-w", str(path), "--json"),
        run_py("distill", "dedupe", "--exact", "--dry-run", "-w", str(path), "--json"),
    ]
    stats, semantic, exact = (json.loads(_finish(p)) for p in cli)  # exit 0: nothing refused
    assert stats["records"] == 60
    assert semantic["n_records"] == 60 and exact["n_records"] == 60
    assert ws.scalar("SELECT count(*) FROM embeddings") == 60  # the dry run's cache write landed
    decided = {}
    for i, p in enumerate(studios):
        p.stdin.write("stop\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
        last = _finish(p).splitlines()[-1]  # exit 0: the studio showed no error or warning
        assert last.startswith("done ")
        decided[f"s{i}"] = int(last.split()[1])
    # Every decision of every studio is there, each under its reviewer, each one making its own event.
    assert min(decided.values()) >= 2
    by_reviewer = dict(ws.query("SELECT reviewer, count(*) FROM review_events GROUP BY 1"))
    assert by_reviewer == decided
    assert ws.scalar("SELECT count(*) FROM review_events") - before == sum(decided.values())
    accepted = ws.scalar("SELECT count(*) FROM reviews WHERE status = 'accepted'")
    assert accepted == ws.scalar("SELECT count(DISTINCT record_id) FROM review_events WHERE action = 'accept'")


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


def test_a_write_outside_a_transaction_waits_for_the_writer(shared: tuple[Path, Workspace]) -> None:
    path, ws = shared
    holder = run_py("tests.service.clients", "hold", str(path))
    assert holder.stdout is not None and holder.stdout.readline().strip() == "in transaction"
    # A statement that writes with no transaction (against the rule) on the row the holder's transaction changed:
    # without the service's lock it failed at once with a DuckDB write-write conflict.
    done: list[object] = []
    stray = threading.Thread(
        target=lambda: done.append(ws.query("UPDATE settings SET value = '3' WHERE key = 'committed' RETURNING key"))
    )
    stray.start()
    stray.join(timeout=1.0)  # (the time a conflict took to be raised, many times over)
    waited = stray.is_alive()
    holder.kill()
    holder.wait()
    stray.join(timeout=30)
    assert waited and done == [[("committed",)]]
    assert ws.get_setting("committed") == 3
    assert ws.scalar("SELECT count(*) FROM review_events WHERE reviewer = 'k'") == 0  # the holder's work is gone
