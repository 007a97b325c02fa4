"""Several teachers side by side in the studio (issue 20): the review queue and the record detail show every
teacher's answer with a word diff, `t` moves between teachers, `T` makes one the record's answer, and the queue can
put the records the teachers disagree on first."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from curation.browse import RecordFilter, fetch_page, get_record
from curation.importing import import_file
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.widgets.record_view import RecordView, render_record
from tests.studio.conftest import settle

pytestmark = pytest.mark.timeout(120)

PROMPTS = ["2+2?", "Capital of France?", "Largest planet?"]
ANSWERS = {"gpt4": ["4", "Paris", "Jupiter"], "claude": ["4", "Paris", "Jupiter is largest"],
           "llama": ["5", "Paris", "Saturn"]}  # fmt: skip


def _workspace(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with Workspace.open(path) as ws:
        for t, answers in ANSWERS.items():
            f = tmp_path / f"{t}.json"
            f.write_text(json.dumps([{"prompt": p, "output": a} for p, a in zip(PROMPTS, answers, strict=True)]))
            import_file(ws, f, teacher=t)
    return path


def _text(view: RecordView) -> str:
    console = Console(width=150, record=True, file=io.StringIO())
    console.print(render_record(view.detail, view.selected, view.base))
    return console.export_text()


def test_teachers_disagree_first_order(tmp_path: Path) -> None:
    with Workspace.open(_workspace(tmp_path)) as ws:
        rows = fetch_page(ws, RecordFilter(), "disagree", limit=3)
        # Largest planet: 3 different answers; 2+2: 2; Paris: all agree
        assert [get_record(ws, r.record_id).messages[-1]["content"] for r in rows] == [
            "Largest planet?", "2+2?", "Capital of France?"]  # fmt: skip


async def test_review_shows_every_teacher_and_takes_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "rita")
    path = _workspace(tmp_path)
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            screen = app.screen
            first = screen.current.record_id
            view = screen.query_one(RecordView)
            assert [a.teacher for a in view.detail.answers] == ["gpt4", "claude", "llama"]
            assert "teachers (3)" in _text(view) and "word diff: current answer → gpt4" in _text(view)
            await pilot.press("t", "t")  # llama's answer highlighted
            assert view.selected_answer().teacher == "llama"
            assert "word diff: current answer → llama" in _text(view)
            await pilot.press("d")
            assert "word diff: gpt4 → llama" in _text(view)
            await pilot.press("T")
            await settle(pilot)
            assert screen.current.record_id != first  # the decision moved on
    with Workspace.open(path) as ws:
        d = get_record(ws, first)
        assert (d.response, d.original_response, d.status) == ("5", "4", "accepted")
