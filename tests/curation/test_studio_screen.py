from __future__ import annotations

from textual.app import App
from textual.widgets import Input, OptionList, Static

from studio.screens.curation import CurationScreen


class _Host(App[None]):
    def __init__(self, ws) -> None:
        super().__init__()
        self.ws = ws

    def on_mount(self) -> None:
        self.push_screen(CurationScreen(self.ws))


async def _wait(pilot, screen: CurationScreen) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    for _ in range(20):
        if not screen.busy:
            return
        await pilot.pause(0.05)


def _text(screen, sel: str) -> str:
    return str(screen.query_one(sel, Static).render())


async def test_preview_then_apply_rebalance_and_export(ws, tmp_path):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, CurationScreen)
        await pilot.press("a")  # nothing previewed yet: refuses
        assert "preview first" in _text(screen, "#cur-status")
        screen.query_one("#cur-ops", OptionList).highlighted = 4  # Rebalance
        await pilot.pause()
        screen.query_one("#cur-params", Input).value = "target=shares shares=billing:0.25,security:0.25 seed=1 name=v1"
        await pilot.press("p")
        await _wait(pilot, screen)
        assert screen.previewed is not None and screen.previewed.op == "rebalance"
        assert screen.previewed.state.tv_after < screen.previewed.state.tv_before
        assert ws.scalar("SELECT count(*) FROM dataset_versions") == 0  # preview wrote nothing
        await pilot.press("a")
        await _wait(pilot, screen)
        assert "wrote dataset version v1" in _text(screen, "#cur-status")
        assert ws.scalar("SELECT count(*) FROM dataset_versions") == 1
        screen.query_one("#cur-ops", OptionList).highlighted = 5  # Export
        await pilot.pause()
        screen.query_one("#cur-params", Input).value = f"format=jsonl out={tmp_path / 'ex'}"
        await pilot.press("p")
        await _wait(pilot, screen)
        await pilot.press("a")
        await _wait(pilot, screen)
        assert (tmp_path / "ex" / "v1.train.jsonl").exists()


async def test_errors_and_changed_params_are_reported(ws):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        screen.query_one("#cur-ops", OptionList).highlighted = 3  # Filter
        await pilot.pause()
        screen.query_one("#cur-params", Input).value = "name=x metric=bogus min=1"
        await pilot.press("p")
        await _wait(pilot, screen)
        assert "error: confidence metric" in _text(screen, "#cur-status")
        screen.query_one("#cur-params", Input).value = "name=lc metric=min_logprob min=-0.5 policy=review"
        await pilot.press("p")
        await _wait(pilot, screen)
        screen.query_one("#cur-params", Input).value = "name=lc metric=min_logprob min=-0.1 policy=review"
        await pilot.press("a")
        assert "parameters changed" in _text(screen, "#cur-status")
        assert ws.scalar("SELECT count(*) FROM reviews") == 0


async def test_cancel_stops_a_running_preview(ws):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        screen.query_one("#cur-ops", OptionList).highlighted = 1  # Dedupe
        await pilot.pause()
        screen.query_one("#cur-params", Input).value = "kind=exact"
        screen._start("previewing")
        screen.cancel_event.set()  # cancelled before the first progress checkpoint
        screen._run_preview(screen.current, {"kind": "exact"}, screen.cancel_event)
        await _wait(pilot, screen)
        assert "cancelled" in _text(screen, "#cur-status") and screen.previewed is None
