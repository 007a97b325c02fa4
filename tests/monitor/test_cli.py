"""``distill monitor`` as a user runs it: --json, alarms and exit status, the plan and --apply (the serve logs import
as a new batch), the snapshot while the workspace is busy, bad options in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.workspace import Workspace
from tests.monitor.logfix import answer, log_line, minutes, write_log
from tests.monitor.wsfix import N_TRAIN, build_served_workspace, sample_prompts
from train.serve.settings import logs_dir


def distill(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "distill", *args, "-w", str(ws)], capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A served workspace whose log has billing in shadow agreeing half the time (the bar is 0.8), and shipping in
    student mode with 1 of 20 answers sent back."""
    ws = build_served_workspace(tmp_path / "ws.duckdb")
    p = sample_prompts()
    lines = [log_line(t, slice_name="billing", student=answer("refund" if k % 2 else "other"), teacher=answer("refund"),
                      at=minutes(k)) for k, t in enumerate(p["billing"][N_TRAIN : N_TRAIN + 40])]  # fmt: skip
    lines += [log_line(t, slice_name="shipping", route="teacher" if k == 0 else "student", mode="student",
                       student=answer("track"), teacher=answer("track") if k == 0 else None,
                       fallback_reason="low_confidence" if k == 0 else None, at=minutes(60 + k))
              for k, t in enumerate(p["shipping"][N_TRAIN : N_TRAIN + 20])]  # fmt: skip
    write_log(logs_dir(ws.with_name("ws.artifacts")), lines)
    return ws


def test_monitor_json_alarms_and_exit_status(served: Path) -> None:
    r = distill(served, "monitor", "--since", "all", "--json", "--no-drift")
    assert r.returncode == 1, r.stderr  # an alarm
    doc = json.loads(r.stdout)
    tr = doc["traffic"]
    assert tr["overall"]["requests"] == 60 and tr["overall"]["routes"] == {"both": 40, "student": 19, "teacher": 1}
    billing = next(s for s in tr["slices"] if s["slice"] == "billing")
    assert (billing["agreement"]["k"], billing["agreement"]["n"]) == (20, 40)
    assert billing["agreement"]["high"] < 0.8
    assert tr["cost"]["teacher_only"] == pytest.approx(60 * 0.00045)
    assert [(a["kind"], a["slice"], a["level"]) for a in doc["alarms"]] == [
        ("agreement", "(all)", "alarm"), ("agreement", "billing", "alarm")]  # fmt: skip
    assert doc["run_id"] == 1 and doc["version"] == "prod-v1" and doc["drift"] == []
    text = distill(served, "monitor", "--since", "all", "--no-drift")
    assert text.returncode == 1 and "ALARM  billing: student-teacher agreement 50.0%" in text.stdout
    assert "billing" in text.stdout and "Latency per route: both p50 100" in text.stdout
    calm = distill(served, "monitor", "--since", "2026-12-01T13:00", "--json", "--no-drift")
    assert calm.returncode == 0 and json.loads(calm.stdout)["alarms"] == []


def test_monitor_drift_in_json(served: Path) -> None:
    logs = logs_dir(served.with_name("ws.artifacts"))
    write_log(logs, [log_line(t, slice_name="shipping", route="student", mode="student", student=answer("x"),
                              at=minutes(100 + k)) for k, t in enumerate(sample_prompts()["technical"][:40])],
              "serve-000002.jsonl")  # fmt: skip
    r = distill(served, "monitor", "--since", "2026-12-01T13:30", "--json")
    doc = json.loads(r.stdout)
    shipping = next(d for d in doc["drift"] if d["slice"] == "shipping")
    assert shipping["auc"] > 0.9 and shipping["p_value"] < 0.01 and shipping["no_neighbour"] > 0.5
    assert ("drift", "shipping") in {(a["kind"], a["slice"]) for a in doc["alarms"]}


def test_plan_and_apply_import_the_logs_as_a_new_batch(served: Path) -> None:
    with Workspace.open(served) as ws:
        before = ws.scalar("SELECT count(*) FROM records")
    r = distill(served, "monitor", "--since", "all", "--no-drift", "--plan")
    assert "Re-distill plan (because: agreement (all); agreement billing)" in r.stdout
    assert "serve-000001.jsonl" in r.stdout and "19 request(s) were answered by the student" in r.stdout
    with Workspace.open(served) as ws:
        assert ws.scalar("SELECT count(*) FROM records") == before  # --plan changes nothing
    r = distill(served, "monitor", "--since", "all", "--no-drift", "--apply")
    assert r.returncode == 1 and "as batch 2: 60 new record(s)" in r.stdout and "next: the next round" in r.stdout
    with Workspace.open(served) as ws:
        assert ws.scalar("SELECT count(*) FROM records") == before + 60
        assert ws.scalar("SELECT format FROM import_batches WHERE batch_id = 2") == "log"
        slices = dict(ws.query("SELECT slice, count(*) FROM records WHERE batch_id = 2 GROUP BY 1"))
        assert slices == {"billing": 40, "shipping": 20}
    again = distill(served, "monitor", "--since", "all", "--no-drift", "--plan", "--json")
    assert json.loads(again.stdout)["plan"]["files"] == []  # imported since its last line


def test_busy_workspace_uses_the_snapshot(served: Path) -> None:
    assert distill(served, "monitor", "--since", "all", "--json").returncode == 1  # builds the snapshot
    with Workspace.open(served):  # the gateway holds the workspace
        r = distill(served, "monitor", "--since", "all", "--json", "--no-drift")
        assert r.returncode == 1, r.stderr
        doc = json.loads(r.stdout)
        assert doc["from_snapshot"] and doc["traffic"]["overall"]["requests"] == 60 and doc["version"] == "prod-v1"
        r = distill(served, "monitor", "--apply")
        assert r.returncode == 1 and "the workspace is busy" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--since", "yesterday"), "--since 'yesterday': give a span"),
    (("--watch", "--json"), "--watch shows the report live"),
    (("--logs", "/nonexistent/folder"), "--logs /nonexistent/folder: not a folder"),
])  # fmt: skip
def test_bad_options_are_one_line(served: Path, args: tuple[str, ...], message: str) -> None:
    r = distill(served, "monitor", "--no-drift", *args)
    assert r.returncode == 1 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_watch_redraws_until_ctrl_c(served: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "distill", "monitor", "--watch", "0.2", "--no-drift", "--since",
                             "all", "-w", str(served)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while time.monotonic() < deadline and seen.count("distill monitor  ") < 2:
            seen += proc.stdout.readline()  # type: ignore[union-attr]
        assert seen.count("distill monitor  ") >= 2 and "ALARM  billing" in seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
