"""The user's keymap: where it is looked for, a remapped screen binding works under its new key, a bad file is a
notification (file and line) and the studio still starts, and the help names the file and every binding id."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.keymap import binding_ids, keymap_path, load_keymap, studio_bindings
from studio.screens.help import HelpScreen
from studio.screens.records import RecordsScreen
from tests.studio.conftest import Note, build_workspace, settle

pytestmark = pytest.mark.timeout(120)


def test_keymap_path_env_then_xdg_then_home(tmp_path: Path) -> None:
    assert keymap_path({"DISTILL_KEYMAP": str(tmp_path / "k.toml"), "XDG_CONFIG_HOME": "/x"}) == tmp_path / "k.toml"
    assert keymap_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "distill" / "keymap.toml"
    assert keymap_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "distill" / "keymap.toml"


def test_load_keymap_reports_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('records.order = "z"\n\n"records.opn" = "x"\n[overview]\nrefresh = 5\n', encoding="utf-8")
    km = load_keymap(path, binding_ids())
    assert km.bindings == {"records.order": "z"}  # the valid line still applies
    assert km.problems == [
        f"{path}:3: unknown binding id 'records.opn' (f1 lists the ids)",
        f'{path}:5: overview.refresh: keys must be a string such as "ctrl+j" or "j,down"',
    ]
    path.write_text('records.order = "z"\napp.help = \n', encoding="utf-8")
    (problem,) = load_keymap(path, binding_ids()).problems
    assert problem.startswith(f"{path}: not valid TOML: ") and "line 2" in problem
    assert load_keymap(tmp_path / "none.toml", binding_ids()).problems == [
        f"{tmp_path / 'none.toml'}: no such keymap file"
    ]


def test_every_binding_has_an_id() -> None:
    missing = [f"{cls}: {b.key}" for cls, bs in studio_bindings().items() for b in bs if not b.id]
    assert missing == []
    assert {"app.show_error", "records.order", "records.up", "traceback.close", "help.close"} <= binding_ids()


async def test_remapped_binding_runs_under_its_new_key(tmp_path: Path, notes: list[Note]) -> None:
    keymap = tmp_path / "keymap.toml"
    # Nested-table form of "records.order": cycle the order with z instead of o.
    keymap.write_text('[records]\norder = "z"\n', encoding="utf-8")
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=10)) as ws:
        app = DistillStudio(ws, start="records", keymap=keymap)
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, RecordsScreen)
            before = screen.records.order
            await pilot.press("o")  # the old key no longer does it
            await settle(pilot)
            assert screen.records.order == before
            await pilot.press("z")
            await settle(pilot)
            assert screen.records.order != before
            assert [n for n in notes if n.title == "Keymap"] == []


async def test_bad_keymap_is_a_notification_and_the_studio_starts(tmp_path: Path, notes: list[Note]) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('"records.order" = "z"\nrecords.nope = "y"\n', encoding="utf-8")
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=5)) as ws:
        app = DistillStudio(ws, start="records", keymap=keymap)
        async with app.run_test(size=(150, 45)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, RecordsScreen)
            shown = [n.message for n in notes if n.title == "Keymap"]
            assert shown == [f"{keymap}:2: unknown binding id 'records.nope' (f1 lists the ids)"]
            before = app.screen.records.order
            await pilot.press("z")  # the good line still applies
            await settle(pilot)
            assert app.screen.records.order != before
            # The help says where the keymap is, shows the key in effect and lists widget and dialog ids too.
            await pilot.press("f1")
            await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            console = Console(width=220, file=io.StringIO(), record=True)
            console.print(app.screen._render_help())
            text = console.export_text()
    assert str(keymap) in text and "1 binding(s) remapped" in text
    assert "records.up" in text and "traceback.close" in text and "app.show_error" in text
    order_row = next(line for line in text.splitlines() if "records.order" in line)
    assert order_row.split()[0] == "z"
