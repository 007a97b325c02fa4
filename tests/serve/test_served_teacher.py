"""A served student is a teacher too: `distill teachers add --from-run N` on a running `distill serve N`, then
`distill generate` through the usual request path (cache, ledger), answered by the student alone."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from curation.teacher.config import get_teacher
from curation.workspace import Workspace
from distill.cli import main
from tests.serve.conftest import spawn_server
from tests.teacher.conftest import build
from train.config import RunConfig
from train.store import create_run, update_run


def test_a_running_gateway_of_a_run_teaches(tmp_path: Path, student_dirs: tuple[Path, Path], capsys) -> None:
    base, adapter = student_dirs
    ws_path = build(tmp_path / "ws.duckdb", n=3)
    with Workspace.open(ws_path) as ws:
        run_id = create_run(ws, RunConfig(base_model=str(base)), dataset_version=None, group_id=None)
        update_run(ws, run_id, status="done", adapter_path=str(adapter))
    w = ["-w", str(ws_path)]
    assert main(["teachers", "add", "small", "--from-run", str(run_id), *w]) == 1  # nothing serves it yet
    assert "no running" in capsys.readouterr().err
    # a gateway without a teacher (student mode) releases the workspace once loaded
    proc, state = spawn_server(ws_path, str(run_id), "--mode", "student", "--device", "cpu")
    try:
        assert state["run_id"] == run_id and state["served_model"] == f"distill-run-{run_id}"
        assert main(["teachers", "add", "small", "--from-run", str(run_id), "--param", "max_tokens=4", *w]) == 0
        assert f"distill-run-{run_id}:student" in capsys.readouterr().out
        assert main(["generate", "small", *w, "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["done"] == 3 and report["failed"] == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    with Workspace.open(ws_path) as ws:
        cfg = get_teacher(ws, "small")
        assert (cfg.base_url, cfg.model, cfg.terms_ack) == (state["base_url"], f"distill-run-{run_id}:student", True)
        outputs = ws.query("SELECT model, mode FROM teacher_outputs WHERE teacher = 'small'")
        assert outputs == [(f"distill-run-{run_id}", "sync")] * 3
        assert ws.query("SELECT kind, status, count(*) FROM teacher_ledger GROUP BY ALL") == [("generate", "ok", 3)]
    lines = [
        json.loads(ln) for ln in (tmp_path / "ws.artifacts/serve/logs/serve-000001.jsonl").read_text().splitlines()
    ]
    assert [(ln["metadata"]["serve"]["mode"], ln["metadata"]["serve"]["route"]) for ln in lines] == [
        ("direct", "student")
    ] * 3
