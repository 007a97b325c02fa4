"""Pilot tests: the checklist screen (phases and measured items, enter goes to the screen that closes one) and the
evaluation screen's baselines form (a cheaper model through the fake teacher, its outcome on the status line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Checkbox, DataTable, Input, Static
from trainfix import fake_teacher_workspace

from curation.errors import UserError
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.screens.baselines import BaselineForm
from studio.screens.checklist import ChecklistScreen
from studio.screens.evaluation import EvaluationScreen
from tests.studio.conftest import settle
from tests.teacher.fake_openai import FakeOpenAI


async def test_checklist_screen_lists_phases_and_goes_to_the_closing_screen(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws.duckdb") as ws:
        app = DistillStudio(ws, start="checklist")
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ChecklistScreen)
            table = screen.query_one("#checklist", DataTable)
            titles = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            assert titles[0] == "SCOPE AND JUSTIFY" and "ROLLOUT" in titles and "quality bar set" in titles
            assert "items done" in str(screen.query_one("#checklist-status", Static).render())
            table.focus()
            table.move_cursor(row=titles.index("quality bar set"))
            await pilot.pause()
            assert "distill bar set" in str(screen.query_one("#checklist-next", Static).render())
            await pilot.press("enter")
            await settle(pilot)
            assert app.current_mode == "evaluation" and isinstance(app.screen, EvaluationScreen)
            # Back on the checklist, it measures again (a bar set meanwhile shows at once).
            from train.bars import QualityBar, set_bar

            set_bar(ws, QualityBar(task="t", metrics=[{"kind": "valid_json"}], threshold=0.5))
            await pilot.press("9")
            await settle(pilot)
            table = app.screen.query_one("#checklist", DataTable)
            row = next(table.get_row_at(i) for i in range(table.row_count) if str(table.get_row_at(i)[1]) ==
                       "quality bar set")  # fmt: skip
            assert str(row[0]) == "done"


async def test_evaluation_screen_runs_a_model_baseline(tmp_path: Path, fake_server: FakeOpenAI) -> None:
    ws = fake_teacher_workspace(tmp_path / "ws.duckdb", fake_server.base_url)
    app = DistillStudio(ws, start="evaluation")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, BaselineForm)
        assert form.query_one("#bl-version", Input).value == "v1"
        form.query_one("#bl-ks", Input).value = ""
        form.query_one("#bl-models", Input).value = "cheap"
        form.query_one("#bl-zero-shot", Checkbox).value = False
        await pilot.press("ctrl+s")
        await settle(pilot, rounds=6)
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        status = str(screen.query_one("#eval-status", Static).render())
        assert status == "the cheapest outcome: model:cheap already meets the bar; training may not be needed"
        evals = screen.query_one("#evaluations", DataTable)
        assert evals.row_count == 1 and evals.get_row_at(0)[4] == "baseline:model:cheap"  # eval, pass, score, run, kind
    ws.close()


def test_bar_editor_takes_requests_per_day() -> None:
    from studio.screens.bar_editor import bar_from_fields, bar_to_fields

    bar = bar_from_fields({"bar-task": "t", "bar-metrics": "valid_json", "bar-threshold": "0.5",
                           "bar-requests-per-day": "1200"})  # fmt: skip
    assert bar.requests_per_day == 1200 and bar_to_fields(bar)["bar-requests-per-day"] == "1200"
    assert bar_from_fields({**bar_to_fields(bar), "bar-requests-per-day": ""}).requests_per_day is None
    with pytest.raises(UserError, match=r"Requests per day \(--requests-per-day\): must be >= 0"):
        bar_from_fields({**bar_to_fields(bar), "bar-requests-per-day": "-3"})
