from __future__ import annotations

from textual.app import App
from textual.widgets import OptionList, Static

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


async def _select(pilot, screen: CurationScreen, key: str) -> None:
    screen.query_one("#cur-ops", OptionList).highlighted = list(screen.ops).index(key)
    await pilot.pause()


async def test_preview_then_apply_rebalance_and_export(ws, tmp_path):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        assert isinstance(screen, CurationScreen)
        await pilot.press("a")  # nothing previewed yet: refuses
        assert "preview first" in _text(screen, "#cur-status")
        await _select(pilot, screen, "rebalance")
        form = screen.form()
        for name, value in (("to", "shares"), ("shares", "billing=0.25,security=0.25"), ("seed", "1"), ("name", "v1")):
            form.set_value(name, value)
        await pilot.press("p")
        await _wait(pilot, screen)
        assert screen.previewed is not None and screen.previewed.op == "rebalance"
        assert screen.previewed.state.tv_after < screen.previewed.state.tv_before
        assert ws.scalar("SELECT count(*) FROM dataset_versions") == 0  # preview wrote nothing
        await pilot.press("a")
        await _wait(pilot, screen)
        assert "wrote dataset version v1" in _text(screen, "#cur-status")
        assert ws.scalar("SELECT count(*) FROM dataset_versions") == 1
        await _select(pilot, screen, "export")
        await _wait(pilot, screen)
        form = screen.form()
        assert form.raw("version") == "v1"  # the newest version, prefilled
        form.set_value("format", "jsonl")
        form.set_value("out", str(tmp_path / "ex"))
        await pilot.press("p")
        await _wait(pilot, screen)
        await pilot.press("a")
        await _wait(pilot, screen)
        assert (tmp_path / "ex" / "v1.train.jsonl").exists()


async def test_errors_and_changed_params_are_reported(ws):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        await _select(pilot, screen, "filter")
        form = screen.form()
        form.set_value("name", "lc")
        form.set_value("confidence", "answer_prob")
        form.set_value("min", "lots")
        await pilot.pause()
        assert "Min (--min): expected a number, got 'lots'" in _text(form, "#cur-filter-min-error")  # as typed
        await pilot.press("p")
        await _wait(pilot, screen)
        assert "error: Min (--min): expected a number" in _text(screen, "#cur-status")
        form.set_value("min", "0.5")
        await pilot.press("p")  # answer_prob without its field: the check runs in the worker, shown by the field
        await _wait(pilot, screen)
        assert "answer_prob needs the labelled field" in _text(form, "#cur-filter-field-error")
        form.set_value("confidence", "min_logprob")
        form.set_value("min", "-0.5")
        await pilot.press("p")
        await _wait(pilot, screen)
        assert screen.previewed is not None
        form.set_value("min", "-0.1")
        await pilot.press("a")
        assert "parameters changed" in _text(screen, "#cur-status")
        assert ws.scalar("SELECT count(*) FROM reviews") == 0


async def test_cancel_stops_a_running_preview(ws):
    app = _Host(ws)
    async with app.run_test(size=(140, 45)) as pilot:
        screen = app.screen
        await _select(pilot, screen, "dedupe")
        screen.form().set_value("kind", "exact")
        screen._start("previewing")
        screen.cancel_event.set()  # cancelled before the first progress checkpoint
        screen._run_preview(screen.current, screen.form().values(), screen.cancel_event)
        await _wait(pilot, screen)
        assert "cancelled" in _text(screen, "#cur-status") and screen.previewed is None
