"""A kill -9 under traffic loses no acknowledged log line; a bounded load test with no error."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import openai

from curation.teacher.config import save_teacher
from curation.workspace import Workspace, artifacts_dir_for
from tests.serve.conftest import MESSAGES, client, read_lines, spawn_server
from tests.teacher.conftest import teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI
from train.serve.logwriter import log_files
from train.serve.settings import logs_dir


def _logged_ids(ws_path: Path) -> list[str]:
    ids = []
    for f in log_files(logs_dir(artifacts_dir_for(ws_path))):
        for ln in f.read_bytes().split(b"\n"):
            if ln.strip():
                ids.append(json.loads(ln)["metadata"]["serve"]["request_id"])  # every line whole: no torn line
    return ids


def test_kill_9_under_traffic_loses_no_acknowledged_line(tmp_path: Path, teacher_srv: FakeOpenAI,
                                                         student_dirs: tuple[Path, Path]) -> None:  # fmt: skip
    teacher_srv.latency = 0.02
    ws_path = tmp_path / "ws.duckdb"
    with Workspace.open(ws_path) as ws:
        save_teacher(ws, teacher_cfg(teacher_srv.base_url))
    base, adapter = student_dirs
    args = ["--adapter", str(adapter), "--base-model", str(base), "--teacher", "big", "--mode", "canary",
            "--share", "0.5", "--threshold", "0", "--no-bar", "--max-tokens", "3", "--batch-wait-ms", "5",
            "--device", "cpu"]  # fmt: skip
    proc, state = spawn_server(ws_path, *args)
    acked: list[str] = []
    lock, stop = threading.Lock(), threading.Event()

    def traffic(n: int) -> None:
        c = openai.OpenAI(base_url=state["base_url"], api_key="unused", max_retries=0, timeout=30)
        i = 0
        while not stop.is_set():
            msgs = [MESSAGES[0], {"role": "user", "content": f"client {n} ticket {i}: refund"}]
            try:
                r = c.chat.completions.create(model="m", messages=msgs, extra_headers={"X-User-Id": f"u{n}-{i}"})
            except openai.APIError:
                return  # the server is gone
            with lock:
                acked.append(r.id)
            i += 1

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    logged = _logged_ids(ws_path)
    assert len(acked) >= 40
    assert set(acked) <= set(logged), f"acknowledged but not on disk: {set(acked) - set(logged)}"
    assert len(logged) == len(set(logged))
    # the killed workspace opens, and a restarted server continues the same file
    proc, state = spawn_server(ws_path, *args)
    try:
        r = openai.OpenAI(base_url=state["base_url"], api_key="x", max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES
        )
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the normal way to stop a gateway, not a "cancelled" error
        assert proc.wait(timeout=60) == 0
    assert "stopped serving" in ws_path.with_suffix(".serve.log").read_text().splitlines()[-1]
    assert [f.name for f in log_files(logs_dir(artifacts_dir_for(ws_path)))] == ["serve-000001.jsonl"]
    assert _logged_ids(ws_path)[-1] == r.id
    with Workspace.open(ws_path) as ws:  # the clean stop committed the teacher's ledger rows
        assert ws.scalar("SELECT count(*) FROM teacher_ledger WHERE kind = 'serve'") >= 1


def test_bounded_load_without_errors_is_micro_batched(gateway, sws: Workspace) -> None:
    n_clients, per_client = 8, 25
    errors: list[str] = []
    with gateway(mode="canary", share=0.5, max_batch=8, batch_wait_ms=10.0) as g:

        def worker(n: int) -> None:
            c = client(g)
            for i in range(per_client):
                msgs = [MESSAGES[0], {"role": "user", "content": f"load {n}-{i}: where is my package"}]
                try:
                    c.chat.completions.create(model="m", messages=msgs, max_tokens=4,
                                              extra_headers={"X-User-Id": f"user-{n}-{i}"})  # fmt: skip
                except openai.APIError as exc:
                    errors.append(repr(exc))

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.monotonic() - t0
        batches = g.gateway.metrics.batch_size.collect()[0].samples
    assert errors == []
    assert elapsed < 300
    lines = read_lines(sws)
    assert len(lines) == n_clients * per_client
    student = sum(ln["metadata"]["serve"]["route"] == "student" for ln in lines)
    count = next(s.value for s in batches if s.name.endswith("_count"))
    total = next(s.value for s in batches if s.name.endswith("_sum"))
    assert total == student and count < student  # several requests per generate call
