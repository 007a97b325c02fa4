"""Palette, help, external editor, and the studio/demo commands."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from curation.browse import get_record
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.screens.help import HelpScreen
from tests.studio.conftest import build_workspace, settle

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


async def test_palette_lists_screens_and_current_actions(tmp_path: Path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            titles = {c.title for c in app.get_system_commands(app.screen)}
            assert {"Go to Overview", "Go to Records", "Go to Import", "Accept", "Reject", "Undo"} <= titles
            accept = next(c for c in app.get_system_commands(app.screen) if c.title == "Accept")
            first = app.screen.current.record_id
            await accept.callback()
            await settle(pilot)
            assert get_record(ws, first).status == "accepted"
            await pilot.press("f1")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            console = Console(width=200, file=io.StringIO(), record=True)
            console.print(app.screen._render_help())
            text = console.export_text()
            assert "review.accept" in text and "overview.refresh" in text and "app.help" in text


async def test_external_editor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    editor = tmp_path / "ed.py"
    editor.write_text("import sys; p = sys.argv[1]; open(p, 'w').write('{\"intent\": \"edited outside\"}')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    monkeypatch.delenv("VISUAL", raising=False)
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            rid = app.screen.current.record_id
            await pilot.press("E")
            await settle(pilot)
        assert get_record(ws, rid).response == '{"intent": "edited outside"}'


def _distill(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )


def test_studio_command_errors_and_demo_creates_once(tmp_path: Path) -> None:
    bare = _distill("studio", cwd=tmp_path)  # no name given: nothing is created in the current folder
    assert bare.returncode == 1 and "no workspace" in bare.stderr and "name one" in bare.stderr
    named = _distill("studio", str(tmp_path / "new.duckdb"))  # a named one would be created, but not without a TTY
    assert named.returncode == 1 and "terminal" in named.stderr
    assert list(tmp_path.iterdir()) == []
    demo = tmp_path / "demo.duckdb"
    made = _distill("demo", "--no-open", "--no-teacher", "-w", str(demo))  # the teacher: tests/teacher/test_offline_*
    assert made.returncode == 0, made.stderr
    again = _distill("demo", "--no-open", "--no-teacher", "-w", str(demo))
    assert again.returncode == 0
    with Workspace.open(demo) as ws:
        assert ws.scalar("SELECT count(*) FROM import_batches") == 1
        assert ws.scalar("SELECT count(*) FROM records") == 5000
    no_tty = _distill("studio", str(demo))
    assert no_tty.returncode == 1 and "terminal" in no_tty.stderr
