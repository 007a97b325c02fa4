"""The request log: import format, restart continues the file, rotation, torn tails, no keys, `distill import`."""

from __future__ import annotations

import json
from concurrent.futures import wait
from pathlib import Path

from curation.workspace import Workspace
from distill.cli import main
from tests.serve.conftest import MESSAGES, client, read_lines
from tests.teacher.conftest import KEY
from tests.teacher.fake_openai import triage_answer
from train.serve.logwriter import ServeLog, log_files
from train.serve.settings import logs_dir


def test_a_restart_continues_the_same_file_and_the_lines_import(gateway, sws: Workspace, tmp_path: Path,
                                                               capsys) -> None:  # fmt: skip
    with gateway(mode="shadow") as g:
        c = client(g)
        c.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3, metadata={"slice": "billing"})
        c.chat.completions.create(model="m", messages=[MESSAGES[0], {"role": "user", "content": "password reset"}],
                                  max_tokens=3)  # fmt: skip
    with gateway(mode="student") as g:
        c = client(g)
        c.chat.completions.create(model="m", messages=[MESSAGES[0], {"role": "user", "content": "late package"}],
                                  max_tokens=3, extra_headers={"X-Slice": "shipping"})  # fmt: skip
    files = log_files(logs_dir(sws.artifacts_dir))
    assert [f.name for f in files] == ["serve-000001.jsonl"]
    lines = read_lines(sws)
    assert [ln["metadata"]["serve"]["route"] for ln in lines] == ["both", "both", "student"]
    # `distill import` reads the file unchanged, into another workspace (this one is the gateway's)
    other = tmp_path / "next-round.duckdb"
    assert main(["import", str(files[0]), "-w", str(other), "--json"]) == 0
    capsys.readouterr()
    with Workspace.open(other) as ws2:
        rows = ws2.query_dicts("SELECT slice, response, teacher_model, metadata, latency_ms, logged_at, "
                               "response_logprobs IS NOT NULL AS has_lp FROM records ORDER BY record_id")  # fmt: skip
        assert ws2.scalar("SELECT count(*) FROM quarantine") == 0
    assert [r["slice"] for r in rows] == ["billing", "(none)", "shipping"]
    assert rows[0]["response"] == triage_answer(MESSAGES[-1]["content"])
    assert rows[0]["teacher_model"] == "triage-teacher-2026-01-01" and rows[2]["teacher_model"] == "distill-student"
    meta = [json.loads(r["metadata"]) for r in rows]
    assert [m["serve"]["route"] for m in meta] == ["both", "both", "student"]
    assert 0 < meta[2]["serve"]["confidence"] <= 1 and meta[0]["serve"]["student"]["confidence"] > 0
    assert all(r["latency_ms"] > 0 and r["logged_at"] is not None for r in rows)


def test_no_key_reaches_the_log(gateway, sws: Workspace) -> None:
    leaky = [MESSAGES[0], {"role": "user", "content": f"my key is {KEY}, and sk-live-abcdefghijklmnop too"}]
    with gateway(mode="shadow") as g:
        client(g).chat.completions.create(model="m", messages=leaky, max_tokens=2,
                                          extra_headers={"Authorization": f"Bearer {KEY}", "X-Api-Key": KEY})  # fmt: skip
    text = logs_dir(sws.artifacts_dir).joinpath("serve-000001.jsonl").read_text()
    assert KEY not in text and "sk-live-abcdefghijklmnop" not in text and "Bearer" not in text
    assert "my key is ***" in text


def test_rotation_by_size_and_a_torn_last_line(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    log = ServeLog(folder, max_bytes=4096)
    futs = [log.append({"i": i, "pad": "x" * 200}) for i in range(60)]
    wait(futs)
    assert all(f.exception() is None for f in futs)
    log.close()
    files = log_files(folder)
    assert len(files) >= 3 and all(f.stat().st_size <= 4096 for f in files)
    seen = [json.loads(ln)["i"] for f in files for ln in f.read_text().splitlines()]
    assert seen == list(range(60))  # in order, none lost, none twice
    assert log.stats.lines == 60 and 1 <= log.stats.syncs <= 60
    # a crash mid-write leaves a partial line: the next writer cuts it and continues the newest file
    newest = files[-1]
    with open(newest, "ab") as f:
        f.write(b'{"i": 99, "pa')
    log = ServeLog(folder, max_bytes=4096)
    log.append({"i": 60}).result()
    log.close()
    assert log_files(folder)[-1] == newest
    tail = [json.loads(ln)["i"] for ln in newest.read_text().splitlines()]
    assert tail[-1] == 60 and 99 not in tail


def test_the_caller_is_answered_only_once_its_line_is_fsynced(gateway, sws: Workspace, monkeypatch) -> None:
    import os
    import time

    import train.serve.logwriter as logwriter

    real, synced = os.fsync, []

    def slow_fsync(fd: int) -> None:
        time.sleep(0.3)
        real(fd)
        synced.append(time.monotonic())

    with gateway(mode="student") as g:
        monkeypatch.setattr(logwriter.os, "fsync", slow_fsync)
        client(g).chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
        answered = time.monotonic()
    assert synced and synced[0] <= answered
