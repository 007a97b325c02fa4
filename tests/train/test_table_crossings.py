"""Train and curation meet through functions, not each other's tables: failing slices go to curation as arguments,
train asks for new inputs through curation's request_inputs, an undo leaves train's evaluations alone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from curation.errors import UserError
from curation.importing import import_file, undo_import
from curation.oversample import open_requests, request_inputs
from curation.workspace import Workspace
from distill.cli import main
from tests.conftest import log_record, write_jsonl
from train import store
from train.evaluate import request_more_inputs


def _evaluation(ws: Workspace, slices: dict[str, bool], items: list[dict] | None = None) -> int:
    """An evaluation stored the way train.evaluate stores one: slice name -> passed."""
    row = {"kind": "tuned", "base_model": "tiny", "n_items": 5, "summary": "{}", "created_at": datetime.now()}
    per_slice = [{"slice": s, "n": 5, "passed": ok, "metrics": "{}"} for s, ok in slices.items()]
    return store.insert_evaluation(ws, row, per_slice, items or [])


def test_flagged_oversampling_queues_the_same_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ws.duckdb"
    with Workspace.open(path) as ws:
        assert store.failing_slices(ws) == []
        first = _evaluation(ws, {"billing": False, "login": True})
        _evaluation(ws, {"security": False, "login": True, "shipping": False})
        assert store.failing_slices(ws) == ["security", "shipping"] and store.failing_slices(ws, first) == ["billing"]
    rc = main(["oversample", "--flagged", "--request-each", "30", "--reason", "eval 2", "-w", str(path)])
    assert rc == 0 and "security, shipping" in capsys.readouterr().out
    rc = main(["oversample", "--flagged", "--eval", str(first), "--request-each", "5", "-w", str(path)])
    assert rc == 0
    with Workspace.open(path) as ws:
        assert ws.query("SELECT slice, n, reason, status, n_generated FROM input_requests ORDER BY request_id") == [
            ("security", 30, "eval 2", "open", 0),
            ("shipping", 30, "eval 2", "open", 0),
            ("billing", 5, "oversample", "open", 0),
        ]


def test_an_evaluation_asks_for_inputs_through_curation(ws: Workspace) -> None:
    eval_id = _evaluation(ws, {"payments": False})
    req = request_more_inputs(ws, eval_id, "payments", 25)
    same = request_inputs(ws, {"payments": 25}, reason=f"evaluation {eval_id} failed the bar")[0]
    cols = "slice, n, reason, status, fulfilled_at, n_generated"
    rows = {r[0]: r[1:] for r in ws.query(f"SELECT request_id, {cols} FROM input_requests")}
    assert rows[req] == rows[same] == ("payments", 25, f"evaluation {eval_id} failed the bar", "open", None, 0)
    assert [r["request_id"] for r in open_requests(ws)] == [req, same]
    with pytest.raises(UserError, match="must be > 0"):
        request_more_inputs(ws, eval_id, "payments", 0)


def test_undoing_an_import_leaves_evaluations_whole(ws: Workspace, tmp_path: Path) -> None:
    batch = import_file(ws, write_jsonl(tmp_path / "a.jsonl", [log_record("a1"), log_record("a2")]))
    ids = [int(r[0]) for r in ws.query("SELECT record_id FROM records ORDER BY 1")]
    items = [{"record_id": rid, "slice": "billing", "prompt": "a", "student_output": "x", "teacher_output": "y",
              "reference": None, "scores": "{}", "agree": False, "latency_ms": 1.0} for rid in ids]  # fmt: skip
    eval_id = _evaluation(ws, {"billing": False}, items)
    # No --force needed: train's items are no curation work on the records (they keep their own prompt and answers).
    assert undo_import(ws, batch.batch_id) == 2
    assert ws.scalar("SELECT count(*) FROM eval_items WHERE eval_id = ?", [eval_id]) == 2
