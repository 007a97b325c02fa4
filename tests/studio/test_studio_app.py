"""The whole app: every registered screen by hotkey and by the palette, on an empty and a small workspace.

Also: the help lists every screen's bindings, no screen binds a key the app or Textual reserves, and digits
typed into any Input stay in the Input instead of switching screens.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from textual.binding import Binding
from textual.command import CommandPalette
from textual.widgets import Input
from textual.worker import Worker, WorkerState
from textual.worker_manager import WorkerManager

from curation.workspace import Workspace
from studio.app import SCREENS, DistillStudio
from studio.screens.help import HelpScreen
from tests.studio.conftest import build_workspace, settle

pytestmark = pytest.mark.timeout(180)

# Keys Textual 8 gives a meaning everywhere: copy (ctrl+c in the screen and in Inputs), the palette, quit.
RESERVED = {"ctrl+c", "ctrl+p", "ctrl+q"}


@pytest.fixture
def worker_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Errors of workers that failed (they run with exit_on_error=False, so nothing else would notice)."""
    errors: list[str] = []
    original = WorkerManager._remove_worker

    def remove(self: WorkerManager, worker: Worker[Any]) -> None:
        if worker.state == WorkerState.ERROR:
            errors.append(f"{worker.name}: {worker.error!r}")
        original(self, worker)

    monkeypatch.setattr(WorkerManager, "_remove_worker", remove)
    return errors


def _screen_keys(cls: type) -> set[str]:
    keys: set[str] = set()
    for b in getattr(cls, "BINDINGS", []):
        b = b if isinstance(b, Binding) else Binding(*b)
        keys.update(k.strip() for k in b.key.split(","))
    return keys


# Screens whose owners still have to move a key (reported to the lead; strict: the test says when it is fixed).
KNOWN_CLASHES = {}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, id=s.key, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_CLASHES[s.key])])
        if s.key in KNOWN_CLASHES
        else pytest.param(s, id=s.key)
        for s in SCREENS
    ],
)
def test_screen_keys_do_not_clash(spec) -> None:  # type: ignore[no-untyped-def]
    """A screen key must not shadow the app's keys, Textual's reserved keys, or an Input's editing keys
    (a focused Input takes those first, so the screen action would silently not run)."""
    # esc is the app's fallback (leave a text field); screens may give it a better meaning.
    app_keys = _screen_keys(DistillStudio) - {"escape"}
    reserved = {s.hotkey for s in SCREENS} | app_keys | RESERVED | _screen_keys(Input)
    clash = _screen_keys(spec.screen_class) & reserved
    assert not clash, f"{spec.screen_class.__name__} binds {sorted(clash)}"


@pytest.mark.parametrize("populated", [False, True], ids=["empty", "small"])
async def test_every_screen_by_hotkey_and_palette(tmp_path: Path, populated: bool, worker_errors: list[str]) -> None:
    path = tmp_path / "w.duckdb"
    if populated:
        build_workspace(path, n=30)
    with Workspace.open(path) as ws:
        app = DistillStudio(ws)
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            for spec in SCREENS:
                if isinstance(app.focused, Input):  # a screen that focuses a text field first: esc leaves it
                    await pilot.press("escape")
                await pilot.press(spec.hotkey)
                await settle(pilot)
                assert isinstance(app.screen, spec.screen_class), spec.key
                assert app.current_mode == spec.key
            for spec in reversed(SCREENS):
                await pilot.press("ctrl+p")
                await pilot.pause()
                assert isinstance(app.screen, CommandPalette)
                # Set the query at once (typing it key by key re-runs the search per key: seconds per screen).
                app.screen.query_one(Input).value = f"Go to {spec.title}"
                await pilot.pause(0.3)  # the palette searches its providers asynchronously
                await pilot.press("enter")
                await settle(pilot)
                assert isinstance(app.screen, spec.screen_class), spec.key
    assert worker_errors == []


async def test_help_lists_each_screens_bindings(tmp_path: Path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws, start="teacher")
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            await pilot.press("f1")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            console = Console(width=220, file=io.StringIO(), record=True)
            console.print(app.screen._render_help())
            text = console.export_text()
    for spec in SCREENS:
        assert f"{spec.title}: {spec.description}" in text
        for b in spec.screen_class.BINDINGS:
            assert b.id and b.id in text, f"{spec.key}: {b.id} missing from the help"


async def test_digits_typed_into_inputs_stay_there(tmp_path: Path, worker_errors: list[str]) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=10)) as ws:
        app = DistillStudio(ws)
        async with app.run_test(size=(150, 45)) as pilot:
            checked = 0
            for spec in SCREENS:
                await pilot.press(spec.hotkey)
                await settle(pilot)
                # Three fields per screen: the keys are routed by the app for every Input alike, and trying each of
                # the ~100 fields took 75-180 s of CI.
                shown = [f for f in app.screen.query(Input).results() if f.display and not f.disabled]
                for field in shown[:3]:
                    field.focus()
                    field.value = ""
                    await pilot.pause()
                    await pilot.press("1", "8", "?")  # screen hotkeys and help (a key is handled before press returns)
                    await pilot.pause()
                    assert app.current_mode == spec.key, f"typing in {spec.key} #{field.id} switched screens"
                    assert not isinstance(app.screen, HelpScreen)
                    # Integer/number inputs drop the "?"; every Input keeps the digits.
                    assert field.value.startswith("18"), f"{spec.key} #{field.id}: {field.value!r}"
                    # With nothing running, esc leaves the field on every screen (so the hotkeys work again).
                    await pilot.press("escape")
                    await pilot.pause()
                    assert app.focused is not field, f"esc did not leave {spec.key} #{field.id}"
                    checked += 1
            assert checked >= 5  # records/review filters, import path, curation, teacher, training fields
    assert worker_errors == []
