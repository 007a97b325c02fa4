"""The evaluation screen's round key, in a pilot: n opens the round form with the plan previewed, ctrl+s runs the
round in the round panel (progress per step), which then shows the history and the stop signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roundfix import copy_workspace
from textual.app import App
from textual.widgets import DataTable, Input, Static
from textual.worker import WorkerCancelled

from curation.workspace import Workspace
from studio.screens.evaluation import EvaluationScreen
from studio.screens.rounds import RoundPanel, RoundScreen
from tests.teacher.fake_openai import FakeOpenAI
from train.rounds.store import get_steps


class OneScreen(App[None]):
    def __init__(self, ws: Workspace) -> None:
        super().__init__()
        self.ws = ws

    def on_mount(self) -> None:
        self.push_screen(EvaluationScreen(self.ws))


async def settle(app: App[None], pilot: Any, rounds: int = 3) -> None:
    """Let the workers finish; the panel reloads its history after each step (exclusive: a newer load cancels an
    older one, which ``wait_for_complete`` reports as WorkerCancelled)."""
    for _ in range(rounds):
        await pilot.pause()
        while True:
            try:
                await app.workers.wait_for_complete()
                break
            except WorkerCancelled:
                continue
    await pilot.pause()


async def test_the_round_key_plans_and_runs_a_round_and_the_panel_shows_its_history(
    round_base: dict[str, Any], round_fake: FakeOpenAI, tmp_path: Path
) -> None:
    round_fake.planted = ()
    ws = Workspace.open(copy_workspace(round_base["path"], tmp_path))
    app = OneScreen(ws)
    async with app.run_test(size=(180, 55)) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, EvaluationScreen)
        panel = screen.query_one(RoundPanel)
        assert "no rounds yet" in str(panel.query_one("#round-history", Static).render())
        await pilot.press("n")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, RoundScreen)
        plan = str(modal.query_one("#round-plan", Static).render())
        assert "round 1 (new) from evaluation" in plan and "estimated teacher cost" in plan
        assert all(s in plan for s in round_base["failing"])
        modal.query_one("#round-n", Input).value = "3"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen and panel.running
        await settle(app, pilot, rounds=6)
        assert not panel.running
        status = str(panel.query_one("#round-status", Static).render())
        assert status.startswith("round 1 done: version v1-r1"), status
        steps = get_steps(ws, 1)
        assert all(s["status"] == "done" for s in steps.values()) and len(steps) == 7
        history = str(panel.query_one("#round-history", Static).render())
        assert "round 0 start" in history and "round 1 done" in history and "r1 " in history
        assert ws.query("SELECT plan->>'$.slices[0].n_new' FROM rounds") == [("3",)]
        evals = screen.query_one("#evaluations", DataTable)
        assert evals.row_count == 2  # the start and the round's evaluation
    ws.close()
