"""The whole loop run from the studio at 160x48 (issue 18): what a new user saw while baselines, evaluations and rounds
ran, each pinned by a pilot test."""

from __future__ import annotations

from typing import Any

import pytest
from textual.widgets import Input

from curation.progress import Progress
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.screens import baselines as B
from studio.screens.evaluation import NO_EVALUATIONS
from tests.studio.conftest import build_workspace, settle, status_text

pytestmark = pytest.mark.timeout(120)


def test_progress_text_counts_items() -> None:
    assert Progress("generate", 16, 40).text() == "generate 16/40 (40%)"
    assert Progress("load model", 0, None, "smollm2").text() == "load model smollm2"


async def test_empty_evaluation_screen_names_the_baselines_key(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            assert status_text(app, "#eval-status") == NO_EVALUATIONS
            assert "run the baselines (l" in NO_EVALUATIONS


async def test_baselines_status_names_the_baseline_and_counts_its_items(tmp_path, monkeypatch) -> None:
    """It showed "baselines: generate 0%" for minutes: neither which baseline nor how many items."""

    def fake_run(ws: Workspace, progress: Any, cancel: Any, **kw: Any) -> Any:
        progress(Progress("baseline few-shot-k2", 0, None, "smollm2"))
        progress(Progress("generate", 16, 40))
        raise RuntimeError("stop here")

    class Resolve:
        names = B.BASELINE.names

        def resolve(self, ws: Workspace, values: dict[str, Any]) -> dict[str, Any]:
            return {}

    monkeypatch.setattr("train.baselines.run_baselines", fake_run)
    monkeypatch.setattr(B, "BASELINE", Resolve())
    seen: list[str] = []

    def hook(message: Any) -> None:
        if isinstance(message, B.BaselinesProgressed):
            seen.append(message.text)

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
            await settle(pilot)
            app.screen._start_baselines({})  # type: ignore[attr-defined]
            await settle(pilot)
    assert seen[-1] == "baselines (few-shot-k2): generate 16/40 (40%)", seen


async def test_the_round_form_opens_in_its_new_inputs_field(tmp_path) -> None:
    """Nothing had focus in the round form: "10" typed on opening went nowhere, and two tabs reached "Start from
    eval", not the number of new inputs."""
    from studio.screens.rounds import RoundScreen

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("n")
            await settle(pilot)
            assert isinstance(app.screen, RoundScreen)
            await pilot.press("ctrl+u", "1", "0")
            assert app.screen.query_one("#round-n", Input).value == "10"


async def test_evaluate_asks_for_a_limit_before_it_runs(tmp_path, monkeypatch) -> None:
    """``e`` evaluated every held-out row twice (tuned and untuned) with no way to set a limit from the studio."""
    from studio.screens import evaluation as EV
    from studio.screens.eval_form import EvaluateForm

    calls: list[dict[str, Any]] = []

    def fake_evaluate_run(ws: Workspace, run_id: int, **kw: Any) -> list[Any]:
        calls.append({"run_id": run_id, **kw})
        return []

    monkeypatch.setattr(EV, "latest_finished_run", lambda ws: 7)
    monkeypatch.setattr(EV.E, "evaluate_run", fake_evaluate_run)
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("e")
            await settle(pilot)
            assert isinstance(app.screen, EvaluateForm) and not calls
            assert app.focused is not None and app.focused.id == "ev-limit"
            await pilot.press("6", "0", "tab", "tab", "tab", "tab", "space")  # limit 60; untick the untuned twin
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert not isinstance(app.screen, EvaluateForm)
    assert len(calls) == 1, calls
    assert calls[0]["run_id"] == 7 and calls[0]["limit"] == 60 and calls[0]["baseline"] is False, calls


async def test_training_status_says_what_the_eval_phase_does(tmp_path) -> None:
    """The training status said "eval…" for minutes: a held-out loss over every held-out row, before step 1 too."""
    from studio.screens.training import RunEventReceived, TrainingScreen
    from train import events as ev

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="training")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, TrainingScreen)
            screen.post_message(RunEventReceived(1, ev.TrainingStarted(30, 4397, 567, "smollm2", {}, 1000)))
            screen.post_message(RunEventReceived(1, ev.PhaseStarted("eval", 0)))
            await settle(pilot)
            assert status_text(app, "#train-status") == "held-out loss at step 0 over 567 held-out rows…"


async def test_the_evaluations_list_shows_verdict_and_score_at_160_columns(tmp_path, monkeypatch) -> None:
    """At 160x48 the list (a quarter of the width) was cut after "kind" and "set": no score, no PASS/FAIL."""
    from textual.widgets import DataTable

    from studio.screens import evaluation as EV

    row = {"eval_id": 2, "run_id": None, "kind": "baseline:few-shot-k2", "eval_set": "heldout", "base_model": "smollm2",
           "n_items": 40, "score": 0.5, "gap": 0.0, "passed": False}  # fmt: skip
    monkeypatch.setattr(EV.E, "list_evaluations", lambda ws, *a: [row])
    monkeypatch.setattr(EV.EvaluationScreen, "_load_evaluation", lambda self, eval_id: None)  # no such evaluation
    monkeypatch.setattr(EV.EvaluationScreen, "_load_disagreements", lambda self, eval_id, slice_name: None)
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            table = app.screen.query_one("#evaluations", DataTable)
            keys = [c.key.value for c in table.ordered_columns]
            shown = sum(c.get_render_width(table) for c in table.ordered_columns[: keys.index("pass") + 1])
            shown = max(shown, sum(c.get_render_width(table) for c in table.ordered_columns[: keys.index("score") + 1]))
            assert table.row_count == 1 and shown <= table.scrollable_content_region.width, (keys, shown)
