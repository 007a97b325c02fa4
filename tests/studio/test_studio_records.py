"""Pilot-driven tests of the records browser: paging, N of M, filters, bad SQL, order, detail."""

from __future__ import annotations

from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.widgets.record_list import RecordList
from tests.studio.conftest import build_workspace, settle, status_text


async def test_browse_page_and_jump(tmp_path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=500)
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            assert lst.total == 500 and lst.is_settled()
            assert status_text(app, "#records-status").startswith("1 of 500")
            await pilot.press("pagedown")
            await settle(pilot)
            assert lst.cursor > 10 and lst.is_settled()
            await pilot.press("end")
            await settle(pilot)
            assert lst.cursor == 499 and lst.is_settled()
            assert lst.current_row().record_id == 500
            assert status_text(app, "#records-status").startswith("500 of 500")
            await pilot.press("pageup", "up")
            await settle(pilot)
            assert lst.is_settled() and lst.current_row() is not None
            # the detail pane follows the cursor
            assert app.screen.query_one("#record-view").shown_record_id == lst.current_row().record_id
            await pilot.press("home")
            await settle(pilot)
            assert lst.current_row().record_id == 1


async def test_filters_and_bad_sql(tmp_path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=60)
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            await pilot.click("#f-slice")
            await pilot.press(*"billing", "enter")
            await settle(pilot)
            assert lst.total == 20
            assert "of 20" in status_text(app, "#records-status")
            assert {lst._rows[i].slice for i in range(20)} == {"billing"}
            await pilot.click("#f-text")
            await pilot.press(*"number 3", "enter")  # 3, 30..39 in billing: 3, 30, 33, 36, 39
            await settle(pilot)
            assert lst.total == 5
            await pilot.click("#f-where")
            await pilot.press(*"no_such_col = 1", "enter")
            await settle(pilot)
            assert "bad WHERE clause" in status_text(app, "#records-status")
            assert lst.total == 5 and lst.is_settled()  # the previous result stays
            app.screen.query_one("#f-where").value = "record_id > 30"
            await pilot.click("#f-where")
            await pilot.press("enter")
            await settle(pilot)
            assert lst.total == 4  # records 31, 34, 37, 40


async def test_order_cycles_and_review_from_browser(tmp_path) -> None:
    path = build_workspace(tmp_path / "w.duckdb", n=30)
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(140, 40)) as pilot:
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            await pilot.press("o")
            await settle(pilot)
            assert lst.order == "confidence"
            confs = [lst._rows[i].confidence for i in range(30)]
            assert confs == sorted(confs)
            await pilot.press("down", "down")
            await settle(pilot)
            chosen = lst.current_row().record_id
            await pilot.press("enter")
            await settle(pilot)
            assert type(app.screen).__name__ == "ReviewScreen"
            assert app.screen.current.record_id == chosen
            await pilot.press("b")
            await settle(pilot)
            assert app.screen.query_one(RecordList) is lst
