"""Undoing an import that the teacher worked on: refused without --force, outputs go, the money record stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.errors import UserError
from curation.importing import import_file, undo_import
from curation.teacher.batch import collect_batch, submit_batch
from curation.teacher.config import save_teacher
from curation.teacher.engine import generate
from curation.teacher.selection import Selection
from curation.workspace import Workspace
from tests.conftest import log_record, write_jsonl
from tests.teacher.conftest import teacher_cfg
from tests.teacher.fake_openai import FakeOpenAI


def _money(ws: Workspace) -> tuple[int, float, int]:
    return (
        ws.scalar("SELECT count(*) FROM teacher_ledger"),
        ws.scalar("SELECT coalesce(sum(cost_usd), 0) FROM teacher_ledger"),
        ws.scalar("SELECT count(*) FROM teacher_cache"),
    )


def test_undo_keeps_ledger_and_cache_and_regenerating_is_free(tmp_path: Path, server: FakeOpenAI, key_env: str) -> None:
    src = write_jsonl(tmp_path / "logs.jsonl", [log_record(f"ticket {i}: refund please") for i in range(6)])
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        save_teacher(ws, teacher_cfg(server.base_url))
        batch = import_file(ws, src).batch_id
        first = generate(ws, "big", Selection(missing=False))  # a second opinion on answered records
        assert (first.done, first.requests) == (6, 6)
        spent = _money(ws)
        with pytest.raises(UserError, match=r"6 paid teacher outputs.*ledger and teacher cache stay"):
            undo_import(ws, batch)
        assert ws.scalar("SELECT count(*) FROM teacher_outputs") == 6  # refused: nothing removed
        assert undo_import(ws, batch, force=True) == 6
        assert ws.scalar("SELECT count(*) FROM teacher_outputs") == 0
        assert _money(ws) == spent  # the ledger is the record of money spent; the cache stays
        # the same file imported again: every answer comes back from the cache, nothing is paid twice
        assert import_file(ws, src).n_imported == 6
        asked = sum(server.attempts.values())
        again = generate(ws, "big", Selection(missing=False))
        assert (again.cached, again.requests, again.cost_usd) == (6, 0, 0.0)
        assert sum(server.attempts.values()) == asked and _money(ws) == spent


def test_batch_answers_for_undone_records_do_not_come_back(tmp_path: Path, server: FakeOpenAI, key_env: str) -> None:
    src = write_jsonl(tmp_path / "logs.jsonl", [log_record(f"ticket {i}: login fails") for i in range(4)])
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        save_teacher(ws, teacher_cfg(server.base_url))
        batch = import_file(ws, src).batch_id
        job = submit_batch(ws, "big", Selection(missing=False))
        assert undo_import(ws, batch) == 4  # nothing attached yet: no --force needed
        done = collect_batch(ws, job.job_id, wait=True, poll_s=0.01)
        assert done.status == "collected" and done.n_attached == 0
        assert ws.scalar("SELECT count(*) FROM records") == 0  # the output's copies did not resurrect them
        assert ws.scalar("SELECT count(*) FROM teacher_cache") == 4  # paid answers kept for a re-import
        assert ws.scalar("SELECT count(*) FROM teacher_ledger WHERE kind = 'batch' AND status = 'ok'") == 4
        import_file(ws, src)
        assert generate(ws, "big", Selection(missing=False)).cached == 4
