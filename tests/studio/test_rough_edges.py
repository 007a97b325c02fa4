"""The studio's rough edges found by hand at 160x48 (issue 22), each pinned by a pilot test."""

from __future__ import annotations

import pytest
from rich.console import Console
from textual.widgets import Static

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


async def test_review_queue_shows_flagged_records_first_and_counts_them(tmp_path) -> None:
    from curation import review

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=30)) as ws:
        for rid in (25, 28):  # high ids, high confidence: last in a confidence order
            review.queue(ws, rid, "filter low-conf", reviewer="filter")
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            assert app.screen.current is not None and app.screen.current.record_id in (25, 28)
            panel = app.screen.query_one("#review-progress", Static).content
            assert "2 flagged first · 30 in queue" in str(panel.title)
            assert "A accept all · X reject all · L relabel all" in str(panel.caption)  # not only under ?


async def test_keys_typed_after_applying_a_review_filter_stay_in_the_field(tmp_path) -> None:
    from curation.browse import RecordFilter, count_records

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=12)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.click("#f-text")
            await pilot.press(*"ticket", "enter", *" and")
            await settle(pilot)
            assert app.screen.query_one("#f-text").value == "ticket and"
            assert count_records(ws, RecordFilter(statuses=("accepted",))) == 0
            await pilot.press("escape", "a")  # esc back to the queue: now a decides
            await settle(pilot)
            assert count_records(ws, RecordFilter(statuses=("accepted",))) == 1


async def test_overview_batches_table_fits_its_pane_and_the_legend_names_no_colour(tmp_path) -> None:
    from textual.widgets import DataTable

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            table = app.screen.query_one("#batches", DataTable)
            assert table.virtual_size.width <= table.scrollable_content_region.width
            assert "status" in [str(c.label) for c in table.columns.values()][:2]
            console = Console(width=100, record=True, color_system=None)
            console.print(app.screen.query_one("#overview-chart", Static).content)
            chart = console.export_text()
            assert "██ production   ██ accepted" in chart and "blue" not in chart and "green" not in chart


async def test_empty_evaluation_and_teacher_screens_say_what_to_do(tmp_path) -> None:
    from studio.screens.evaluation import NO_EVALUATIONS
    from studio.screens.teacher import NO_TEACHER

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="evaluation")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            assert status_text(app, "#eval-status") == NO_EVALUATIONS
            await pilot.press("6")
            await settle(pilot)
            assert status_text(app, "#teacher-summary") == NO_TEACHER.plain


async def test_palette_lists_screens_and_actions_not_widget_keys(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            app.screen.query_one("#batches").focus()
            await pilot.pause()
            commands = list(app.get_system_commands(app.screen))
            titles = [c.title for c in commands]
            assert "Go to Review" in titles and "Refresh" in titles
            assert not [c for c in commands if "DataTable" in c.help or c.title == "Cursor down"]


async def test_teacher_form_shows_limit_and_budget_one_row_each(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="teacher")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            teacher, limit, budget = (app.screen.query_one(f"#gen-{n}").region for n in ("teacher", "limit", "budget"))
            assert limit.height > 0 and budget.height > 0 and budget.bottom <= 48
            assert budget.y - teacher.y <= 4 * 7  # seven rows of fields, no blank lines between them


async def test_review_screen_shows_records_queued_elsewhere_when_shown_again(tmp_path) -> None:
    # A filter run from the CLI (or another studio, or the Curation screen) while the review screen is open: coming
    # back to it (or ctrl+r) shows the new count and the flagged records first, not the record left on screen.
    from curation import review
    from curation.browse import fetch_page

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=30)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            await pilot.press("1")
            await settle(pilot)
            for rid in (25, 28):
                review.queue(ws, rid, "filter low-conf", reviewer="filter")
            await pilot.press("3")
            await settle(pilot)
            assert app.screen.current is not None and app.screen.current.record_id in (25, 28)
            panel = app.screen.query_one("#review-progress", Static).content
            assert "2 flagged first · 30 in queue" in str(panel.title)
            review.queue(ws, 3, "filter low-conf", reviewer="filter")
            await pilot.press("n", "ctrl+r")  # n: the second of 25, 28; ctrl+r: back to the head of the queue
            await settle(pilot)
            head = fetch_page(ws, app.screen.filter, app.screen.order, limit=1)[0]
            assert app.screen.current.record_id == head.record_id and head.record_id in (3, 25, 28)
            assert "3 flagged first" in str(app.screen.query_one("#review-progress", Static).content.title)


async def test_label_dialog_lists_every_known_label_without_cutting_it(tmp_path) -> None:
    from studio.widgets.modals import LabelModal

    labels = ["account", "billing", "product_info", "security", "shipping", "subscriptions", "technical"]
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            app.push_screen(LabelModal("Move to slice:", labels))
            await settle(pilot)
            known = app.screen.query_one("#prompt-known")
            shown = "".join(known.render_line(y).text for y in range(known.size.height))
            assert "technical" in shown and known.region.right <= app.screen.query_one(".dialog").region.right


def test_a_preview_summary_stays_on_one_line_over_a_narrow_table() -> None:
    from studio.screens.curation_ops import _table

    summary = "lowmean: 797 of 4,999 fail; policy review -> queue 795, 2 human decisions kept"
    console = Console(width=136, record=True, color_system=None)
    console.print(_table(summary, ["slice", "checked", "failed"], [["billing", 1528, 232]]))
    assert summary in console.export_text()


async def test_digits_switch_screens_from_every_screen(tmp_path) -> None:
    # The training screen focused its dataset field: 8, 9, 0 typed into it instead of switching screens.
    from studio.app import SCREENS

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="overview")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            for spec in SCREENS:
                await pilot.press(spec.hotkey)
                await settle(pilot)
                assert app.current_mode == spec.key


async def test_palette_has_no_textual_screen_keys_and_one_quit(tmp_path) -> None:
    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="review")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Accept all" in titles and "Refresh" in titles and "Theme" in titles
            assert not {"Focus Next", "Focus Previous", "Copy selected text", "palette"} & set(titles)
            assert titles.count("Quit") == 1


async def test_adding_a_teacher_focuses_the_field_to_fix(tmp_path) -> None:
    # ctrl+o from the top of the teacher screen: the error showed under a field below the fold, focus stayed put.
    from studio.widgets.option_form import OptionForm

    with Workspace.open(build_workspace(tmp_path / "w.duckdb", n=6)) as ws:
        app = DistillStudio(ws, start="teacher")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            form = app.screen.query_one("#teacher-add-form", OptionForm)
            await pilot.press("ctrl+o")  # no name
            await settle(pilot)
            assert app.focused is form.field("name")
            for name, value in (("name", "t2"), ("base_url", "http://127.0.0.1:9/v1"), ("model", "m"),
                                ("key_env", "sk-abc123def456ghi789")):  # fmt: skip
                form.set_value(name, value)
            app.screen.query_one("#teacher-body").focus()
            await pilot.press("ctrl+o")
            await settle(pilot)
            assert app.focused is form.field("key_env") and form.field("key_env").region.bottom <= 48
