"""The Done-when, through the real CLI in a subprocess: generate, kill -9 mid-run, restart, exactly one each.

Also: the API key never reaches the workspace file, its artifacts, an export or the CLI's output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.teacher.config import save_teacher
from curation.workspace import Workspace
from tests.teacher.conftest import KEY, KEY_ENV, build, output_counts, teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def distill(*args: str, env_key: str | None = KEY, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if env_key is not None:
        env[KEY_ENV] = env_key
    cmd = [sys.executable, "-m", "distill", *args]
    if not wait:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_killed_run_restarts_without_duplicates(tmp_path: Path, server: FakeOpenAI) -> None:
    path = build(tmp_path / "ws.duckdb", n=40, answered=4)
    with Workspace.open(path) as ws:
        save_teacher(ws, teacher_cfg(server.base_url, concurrency=3))
    server.latency = 0.05
    proc = distill("generate", "big", "-w", str(path), wait=False)
    deadline = time.monotonic() + 60
    while server.total_successes() < 20 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    attempts_at_kill = dict(server.attempts)
    delivered_at_kill = server.total_successes()
    with Workspace.open(path) as ws:  # the WAL replays; every committed answer is there
        committed = {k for (k,) in ws.query("SELECT cache_key FROM teacher_cache")}
        done_before = ws.scalar("SELECT count(*) FROM teacher_outputs")
        committed_msgs = {json.dumps(json.loads(m), sort_keys=True) for (m,) in ws.query(
            "SELECT CAST(r.messages AS VARCHAR) FROM teacher_outputs o JOIN records r USING (record_id)")}  # fmt: skip
    assert done_before < 36 and len(committed) == done_before

    server.latency = 0.0
    out = distill("generate", "big", "-w", str(path), "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == "done" and res["done"] == 36 - done_before
    # nothing committed before the kill was asked again
    assert all(server.attempts[c] == attempts_at_kill[c] for c in committed_msgs)
    with Workspace.open(path) as ws:
        counts = output_counts(ws)
        answered = {r for (r,) in ws.query("SELECT record_id FROM records WHERE teacher_model = 'prod-teacher'")}
        assert {rid: n for rid, n in counts.items() if rid not in answered} == dict.fromkeys(set(counts) - answered, 1)
        assert all(counts[r] == 0 for r in answered)  # records that had a response were not selected
        assert ws.scalar("SELECT count(*) FROM records WHERE response IS NULL") == 0
        # the killed run is closed as interrupted with what it committed
        runs = ws.query("SELECT status, n_done FROM teacher_runs ORDER BY run_id")
        assert runs == [("interrupted", done_before), ("done", 36 - done_before)]
        ok = ws.scalar("SELECT count(*) FROM teacher_ledger WHERE status = 'ok'")
        assert ok == 36
        spent = ws.scalar("SELECT sum(cost_usd) FROM teacher_ledger")
        assert spent == pytest.approx(ws.scalar("SELECT sum(cost_usd) FROM teacher_outputs"))
        assert spent == pytest.approx(ws.scalar("SELECT sum(cost_usd) FROM teacher_cache"))
    # the restart asks exactly once for what was not committed; what is paid twice is only what was delivered but
    # not yet committed at the kill (in flight, or in the writer's 0.1 s linger)
    assert res["requests"] == 36 - done_before
    late = sum(server.successes.values()) - delivered_at_kill - res["requests"]
    assert 0 <= late <= 3  # answers to the killed process's last requests, written to its dead sockets


def test_cli_teachers_and_no_key_anywhere(tmp_path: Path, server: FakeOpenAI) -> None:
    path = build(tmp_path / "ws.duckdb", n=6)
    w = ["-w", str(path)]
    add = distill("teachers", "add", "big", *w, "--base-url", server.base_url, "--model", "m-2026",
                  "--key-env", KEY_ENV, "--price-in", "2.5", "--price-out", "10", "--param", "top_logprobs=3",
                  "--retries", "1")  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert "generation is refused" in add.stderr
    refused = distill("generate", "big", *w)
    assert refused.returncode == 1 and "terms allow training" in refused.stderr
    looks_like_key = distill("teachers", "add", "x", *w, "--base-url", server.base_url, "--model", "m",
                             "--key-env", KEY)  # fmt: skip
    assert looks_like_key.returncode == 1 and KEY not in looks_like_key.stderr
    again = distill("teachers", "add", "big", *w, "--base-url", server.base_url, "--model", "m-2026",
                    "--key-env", KEY_ENV, "--price-in", "2.5", "--price-out", "10", "--ack-terms", "--replace",
                    "--retries", "1")  # fmt: skip
    assert again.returncode == 0
    no_key = distill("generate", "big", *w, env_key=None)
    assert no_key.returncode == 1 and KEY_ENV in no_key.stderr
    server.plans["ticket 1:"] = [{"kind": "leak"}] * 5  # the provider echoes our Authorization header back
    gen = distill("generate", "big", *w)
    assert gen.returncode == 0, gen.stderr
    assert "5 generated" in gen.stdout and "1 failed" in gen.stdout
    shown = [distill("teachers", c, *a, *w, "--json") for c, a in (("list", ()), ("show", ("big",)))]
    assert json.loads(shown[1].stdout)["spend"]["requests"] == 6
    assert json.loads(shown[1].stdout)["api_key_set"] is True  # shown as a flag, never as a value
    assert f"Bearer {KEY}" in server.auth_headers_seen  # the key did travel, so the checks below can fail
    texts = [p.stdout + p.stderr for p in (add, refused, looks_like_key, again, no_key, gen, *shown)]
    with Workspace.open(path) as ws:
        err = ws.scalar("SELECT error FROM teacher_ledger WHERE status = 'failed'")
        assert "***" in err
        export = tmp_path / "export"
        ws.query(f"EXPORT DATABASE '{export}' (FORMAT csv)")
    blobs = [t.encode() for t in texts] + [path.read_bytes()]
    blobs += [
        p.read_bytes() for d in (export, path.with_name(path.stem + ".artifacts")) for p in d.rglob("*") if p.is_file()
    ]
    wal = path.with_name(path.name + ".wal")
    blobs += [wal.read_bytes()] if wal.exists() else []
    assert all(KEY.encode() not in b and b"0123456789abcdef" not in b for b in blobs)


def test_ctrl_c_keeps_answers_and_exits_130(tmp_path: Path, server: FakeOpenAI) -> None:
    path = build(tmp_path / "ws.duckdb", n=30)
    with Workspace.open(path) as ws:
        save_teacher(ws, teacher_cfg(server.base_url, concurrency=1))
    server.latency = 0.1
    proc = distill("generate", "big", "-w", str(path), wait=False)
    while server.total_successes() < 3 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "cancelled" in out
    with Workspace.open(path) as ws:
        kept = ws.scalar("SELECT count(*) FROM teacher_outputs")
        assert 3 <= kept < 30
        assert ws.scalar("SELECT status FROM teacher_runs") == "cancelled"


def test_cli_synth_says_when_it_falls_short(tmp_path: Path, server: FakeOpenAI) -> None:
    """The fake teacher answers 6 asked-for prompts with 4 new ones and 2 duplicates, then only duplicates: the
    CLI reports the shortfall instead of leaving the user to do the arithmetic."""
    path = build(tmp_path / "ws.duckdb")
    with Workspace.open(path) as ws:
        save_teacher(ws, teacher_cfg(server.base_url))
    out = distill("synth", "run", "big", "--slice", "shipping", "-n", "6", "-w", str(path))
    assert out.returncode == 0, out.stderr
    assert "4 new synthetic prompts (asked 6, 6 duplicates dropped" in out.stdout
    assert "short by 2:" in out.stdout and "run the command again" in out.stdout
