"""The issue's "done when", as a reviewer would do it, on the real sample (sample_data/production_logs.jsonl.gz).

Import it from the studio (path, detected format + preview, slice field, import with progress), browse it,
review 20 records with the keyboard alone (accept, reject with a reason, edit, relabel, undo), quit, then open
the workspace again in a new app and find every decision.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from curation.browse import get_record
from curation.workspace import Workspace
from studio.app import DistillStudio
from studio.widgets.record_list import RecordList
from tests.studio.conftest import settle, status_text

pytestmark = pytest.mark.timeout(240)
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "production_logs.jsonl.gz"


async def _import_sample(app: DistillStudio, pilot) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    screen = app.screen
    screen.query_one("#import-path").focus()
    await pilot.press(*str(SAMPLE), "enter")  # type the path; enter checks it
    await settle(pilot)
    detected = str(screen.query_one("#import-detected").render())
    assert "format log" in detected and "(gzip)" in detected
    preview = screen.query_one("#import-preview")
    assert preview.row_count == 20 and preview.get_row_at(0)[3].startswith('{"intent"')
    select = screen.query_one("#import-slice")
    assert select.value == "metadata.product_area"  # suggested
    select.value = "metadata.channel"  # map another field: the preview follows
    await settle(pilot)
    channels = {preview.get_row_at(i)[1] for i in range(preview.row_count)}
    select.value = "metadata.product_area"
    await settle(pilot)
    areas = {preview.get_row_at(i)[1] for i in range(preview.row_count)}
    assert channels and areas and channels.isdisjoint(areas)
    await pilot.press("ctrl+r")  # import in the background
    await settle(pilot, rounds=5)
    summary = str(screen.query_one("#import-summary").render())
    assert "5,000 imported of 5,000 lines" in summary, summary
    assert screen.query_one("#import-progress").percentage == 1.0


async def test_import_browse_review_twenty_quit_and_reopen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTILL_REVIEWER", "rev1")
    path = tmp_path / "ws.duckdb"
    expected: dict[int, tuple[str, str | None]] = {}  # record id -> (status, reason)
    reasons: set[str] = set()  # reject reasons given so far (a new one is confirmed once)
    edited = relabelled = 0
    with Workspace.open(path) as ws:
        app = DistillStudio(ws, start="import")
        async with app.run_test(size=(160, 48)) as pilot:
            await _import_sample(app, pilot)

            await pilot.press("escape", "2")  # leave the path field, browse
            await settle(pilot)
            lst = app.screen.query_one(RecordList)
            assert status_text(app, "#records-status").startswith("1 of 5,000")
            await pilot.press("pagedown", "pagedown", "end")
            await settle(pilot)
            assert status_text(app, "#records-status").startswith("5,000 of 5,000")
            await pilot.press("home")
            await settle(pilot)
            assert lst.current_row().record_id == 1

            await pilot.press("3")  # review, keyboard only
            await settle(pilot)
            screen = app.screen
            for i in range(20):
                rid = screen.current.record_id
                if i == 3:  # edit: add a field before the closing brace, save with ctrl+s
                    await pilot.press("e")
                    await settle(pilot)
                    await pilot.press("pagedown", "end", "left", *', "checked": true', "ctrl+s")
                    edited = rid
                    expected[rid] = ("accepted", None)
                elif i == 7:  # relabel to a new slice (clear the prefilled one first)
                    await pilot.press("l")
                    await settle(pilot)
                    await pilot.press("ctrl+u", *"vip", "enter", "y")  # y: a new slice, confirmed
                    relabelled = rid
                    # relabel moves on without deciding: accept it too, next
                    await settle(pilot)
                    assert screen.current.record_id != rid
                    await pilot.press("p")  # back to it
                    await settle(pilot)
                    assert screen.current.record_id == rid
                    await pilot.press("a")
                    expected[rid] = ("accepted", None)
                elif i == 11:  # accept, then think again: undo and reject instead
                    await pilot.press("a")
                    await settle(pilot)
                    await pilot.press("u")
                    await settle(pilot)
                    assert screen.current.record_id == rid
                    await pilot.press("r", *"wrong urgency", "enter", "y")  # a new reason, confirmed
                    expected[rid] = ("rejected", "wrong urgency")
                elif i % 5 == 4:
                    await pilot.press("r", *"off topic", "enter", *([] if "off topic" in reasons else ["y"]))
                    reasons.add("off topic")
                    expected[rid] = ("rejected", "off topic")
                else:
                    await pilot.press("a")
                    expected[rid] = ("accepted", None)
                await settle(pilot)
                assert screen.current.record_id != rid  # each decision moves on
            assert len(expected) == 20
            await pilot.press("ctrl+q")
            await settle(pilot)
        assert app.return_code == 0

    with Workspace.open(path) as ws:  # a fresh open: what was committed is all there is
        app = DistillStudio(ws, start="records")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            app.screen.query_one("#f-where").focus()
            await pilot.press(*"status <> 'unreviewed'", "enter")
            await settle(pilot)
            assert status_text(app, "#records-status").startswith("1 of 20")
            await pilot.press("3")
            await settle(pilot)
            console = Console(width=100, file=io.StringIO(), record=True)
            console.print(app.screen.query_one("#review-progress").content)
            progress = console.export_text()
            assert "20" in progress
        for rid, (status, reason) in expected.items():
            rec = get_record(ws, rid)
            assert (rec.status, rec.reason, rec.reviewer) == (status, reason, "rev1"), rid
        edit = get_record(ws, edited)
        # (some sample answers are truncated JSON on purpose, so compare text, not parsed JSON)
        assert '"checked": true' in edit.response and '"checked"' not in edit.original_response
        assert edit.response.replace(', "checked": true', "") == edit.original_response
        assert get_record(ws, relabelled).slice == "vip"
        assert ws.scalar("SELECT count(*) FROM review_events WHERE undone") == 1
