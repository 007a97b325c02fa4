"""The studio's rough edges found by hand at 160x48 (issue 22), each pinned by a pilot test."""

from __future__ import annotations

import pytest

from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.widgets.record_list import STATUS_LEGEND, RecordList
from tests.studio.conftest import build_workspace, settle, status_text

pytestmark = pytest.mark.timeout(120)


async def test_record_list_has_column_titles_and_a_legend(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=12)) as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            title = str(lst.border_title)
            assert title.split()[:4] == ["id", "st", "slice", "conf"] and "prompt" in title and "response" in title
            assert STATUS_LEGEND in status_text(app, "#records-status")


async def test_sql_error_keeps_focus_in_the_where_box_and_a_good_filter_moves_it_to_the_list(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=12)) as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.click("#f-where")
            await pilot.press(*"no_such_col = 1", "enter")
            await settle(pilot)
            assert "bad WHERE clause" in status_text(app, "#records-status")
            assert app.focused is not None and app.focused.id == "f-where"
            app.screen.query_one("#f-where").value = "record_id > 6"
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.focused, RecordList) and app.focused.total == 6


async def test_digits_switch_screens_from_import_unless_the_path_is_being_typed(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("4")
            await settle(pilot)
            assert app.current_mode == "import"
            await pilot.press("5")
            await settle(pilot)
            assert app.current_mode == "curation"
            await pilot.press("4")
            await settle(pilot)
            await pilot.click("#import-path")
            await pilot.press("5")
            assert app.screen.query_one("#import-path").value == "5" and app.current_mode == "import"
            await pilot.press("escape", "2")  # esc leaves the field, then digits switch again
            await settle(pilot)
            assert app.current_mode == "records"
